"""Training configuration: one dataclass, every knob with its help text, and named presets.

    >>> config = preset_config("quick", {"epochs": "2"})
    >>> config.method, config.epochs
    ('lora', 2.0)

Presets live under ``presets:`` in ``configs/models_config.yaml``; ``--set key=value`` (CLI)
or the app's advanced settings override single fields. ``field_help(name)`` is the tooltip.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from core.registry import RegistryError, load_config

METHODS = ("lora", "qlora", "prompt-tuning")
SCHEDULERS = ("cosine", "linear", "constant")


def _knob(default: Any, help_text: str, **kwargs: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help_text, **kwargs})
    return field(default=default, metadata={"help": help_text, **kwargs})


@dataclass
class TrainConfig:
    # method
    method: str = _knob(
        "lora",
        "lora: low-rank adapters on the chosen layers; qlora: the same over a 4-bit NF4 base (bitsandbytes), for big models on small GPUs; prompt-tuning: learn only a few virtual prompt tokens.",
    )
    # LoRA / QLoRA
    lora_r: int = _knob(
        16,
        "LoRA rank: size of each low-rank update. Higher learns more, costs more memory and time.",
    )
    lora_alpha: int = _knob(
        32, "LoRA scaling: updates are scaled by alpha / r. 2 x r is a common choice."
    )
    lora_dropout: float = _knob(0.05, "Dropout on the LoRA input during training (regularisation).")
    target_modules: str = _knob(
        "all-linear",
        "Which layers get adapters: all-linear, or a comma list such as q_proj,v_proj.",
    )
    # prompt tuning
    num_virtual_tokens: int = _knob(
        20, "Prompt tuning: how many virtual tokens are learned and put before every prompt."
    )
    prompt_init: str = _knob(
        "text",
        "Prompt tuning: start the virtual tokens from the embedding of a text (the task instruction) or at random.",
    )
    # optimisation
    learning_rate: float = _knob(2e-4, "Peak learning rate of AdamW.")
    epochs: float = _knob(1.0, "Passes over the training split (fractions allowed).")
    batch_size: int = _knob(8, "Examples per forward/backward pass.")
    grad_accum: int = _knob(
        1, "Passes accumulated per optimizer step (effective batch = batch_size x grad_accum)."
    )
    warmup_ratio: float = _knob(
        0.05, "Fraction of steps over which the learning rate ramps up from 0."
    )
    weight_decay: float = _knob(0.0, "AdamW weight decay on the trainable parameters.")
    scheduler: str = _knob(
        "cosine", "Learning-rate schedule after warm-up: cosine, linear or constant."
    )
    max_seq_length: int = _knob(
        256, "Longest example in tokens; longer prompts are cut from the left (the answer is kept)."
    )
    max_train_examples: int = _knob(
        0, "Use only this many training examples (0: the whole train split)."
    )
    # evaluation during training, stopping, checkpoints
    eval_every: int = _knob(25, "Validation loss every N optimizer steps (and at the end).")
    early_stopping_patience: int = _knob(
        0,
        "Stop after this many validation checks without improvement (0: never). The best adapter is kept.",
    )
    log_every: int = _knob(5, "Write a progress row every N optimizer steps.")
    save_every: int = _knob(50, "Save a resumable checkpoint every N optimizer steps.")
    keep_checkpoints: int = _knob(2, "How many of the latest checkpoints to keep.")
    # speed and reproducibility
    gradient_checkpointing: bool = _knob(
        False, "Recompute activations in the backward pass: less memory, about 30% slower."
    )
    dtype: str = _knob(
        "auto",
        "Compute dtype: auto (bf16 where the hardware runs it natively, else fp16 on GPU / fp32 on CPU), bf16, fp16 or fp32. Trainable weights always get fp32 master copies.",
    )
    seed: int = _knob(0, "Random seed for adapter init, dropout and batch order.")

    def validate(self) -> TrainConfig:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler must be one of {', '.join(SCHEDULERS)}")
        if self.prompt_init not in ("text", "random"):
            problems.append("prompt_init must be text or random")
        for name in (
            "lora_r",
            "batch_size",
            "grad_accum",
            "num_virtual_tokens",
            "max_seq_length",
            "eval_every",
            "log_every",
            "save_every",
            "keep_checkpoints",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.learning_rate <= 0 or self.epochs <= 0:
            problems.append("learning_rate and epochs must be positive")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.lora_dropout < 1:
            problems.append("warmup_ratio and lora_dropout must be in [0, 1)")
        if self.method == "prompt-tuning" and self.gradient_checkpointing:
            problems.append(
                "prompt-tuning trains too few weights to need gradient_checkpointing; turn it off"
            )
        if problems:
            raise ValueError("Bad training config: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_help(name: str) -> str:
    for item in fields(TrainConfig):
        if item.name == name:
            return item.metadata.get("help", "")
    raise KeyError(name)


def _coerce(name: str, value: Any) -> Any:
    """A CLI / YAML value converted to the field's type."""
    kind = {f.name: f.type for f in fields(TrainConfig)}.get(name)
    if kind is None:
        known = ", ".join(f.name for f in fields(TrainConfig))
        raise ValueError(f"Unknown training setting '{name}'. Known settings: {known}")
    if kind == "bool" and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value.lower() in ("true", "1", "yes")
    try:
        return {"int": int, "float": float, "bool": bool, "str": str}[kind](value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a {kind}, not {value!r}") from exc


def presets() -> dict[str, dict[str, Any]]:
    """Named presets from the models config: name -> {description, settings}."""
    raw = load_config().get("presets") or {}
    if not isinstance(raw, dict):
        raise RegistryError("models_config.yaml: `presets` must be a mapping of name -> settings")
    return raw


def preset_config(name: str | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset's settings (or the defaults), with ``overrides`` applied, validated."""
    values: dict[str, Any] = {}
    if name:
        table = presets()
        if name not in table:
            raise ValueError(f"Unknown preset '{name}'. Presets: {', '.join(table)}")
        values.update({k: v for k, v in table[name].items() if k != "description"})
    values.update(overrides or {})
    return TrainConfig(**{k: _coerce(k, v) for k, v in values.items()}).validate()


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["epochs=2", "lora_r=8"]`` -> ``{"epochs": "2", "lora_r": "8"}`` (checked names)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        _coerce(key.strip(), value.strip())
        result[key.strip()] = value.strip()
    return result
