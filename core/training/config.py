"""Training configuration: one dataclass whose field metadata drives validation, help and the UI.

    >>> config = preset_config("quick", {"epochs": "2"})
    >>> config.method, config.epochs
    ('lora', 2.0)
    >>> preset_config("quick", {"learning_rate": "nan"})
    Traceback (most recent call last):
    ...
    ValueError: Bad training config: learning_rate must be a finite number, not nan
    >>> method_label("prompt-tuning"), knob_applies("lora_r", "prompt-tuning")
    ('Prompt tuning', False)

Each field's metadata holds its help text (the CLI's ``--help-settings`` and the app's
tooltips), its bounds or choices (checked by ``validate``), the methods it applies to (the app
shows only the chosen method's knobs) and, for the learning rate, that it is best edited on a
log scale. Presets are YAML files in ``configs/presets/`` (one per preset, every knob
commented); ``--set key=value`` (CLI) or the app's settings override single fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core import paths

# The training methods, in the order the app offers them, with the label people know them by.
METHODS = {"lora": "LoRA", "qlora": "QLoRA", "prompt-tuning": "Prompt tuning"}
# encoders only (core.training.encoder): train the heads alone, or the whole encoder too
METHODS.update({"head": "Head only (encoder)", "full": "Full fine-tune (encoder)"})
METHOD_HELP = {
    "lora": "Low-rank adapters on the chosen layers; the base weights stay frozen.",
    "qlora": "LoRA over a 4-bit NF4 base (bitsandbytes): big models on small GPUs.",
    "prompt-tuning": "Learn only a few virtual prompt tokens: the smallest adapter.",
}
LORA_METHODS = ("lora", "qlora")
SCHEDULERS = ("cosine", "linear", "constant")
DTYPES = ("auto", "bf16", "fp16", "fp32", "bfloat16", "float16", "float32")


def method_label(method: str | None) -> str:
    """A method as people write it: ``lora`` -> ``LoRA`` (unknown ones as they are)."""
    if not method:
        return "—"
    return METHODS.get(method, method)


def _knob(default: Any, help_text: str, **rules: Any) -> Any:
    """A config field with its help text and rules (min, max, above, below, choices, methods)."""
    return field(default=default, metadata={"help": help_text, **rules})


@dataclass
class TrainConfig:
    # method
    method: str = _knob(
        "lora",
        "lora: low-rank adapters on the chosen layers; qlora: the same over a 4-bit NF4 base "
        "(bitsandbytes), for big models on small GPUs; prompt-tuning: learn only a few virtual "
        "prompt tokens.",
        choices=tuple(METHODS),
    )
    # LoRA / QLoRA
    lora_r: int = _knob(
        16,
        "LoRA rank: size of each low-rank update. Higher learns more, costs more memory and time.",
        min=1,
        max=1024,
        methods=LORA_METHODS,
    )
    lora_alpha: int = _knob(
        32,
        "LoRA scaling: updates are scaled by alpha / r. 2 x r is a common choice.",
        min=1,
        methods=LORA_METHODS,
    )
    lora_dropout: float = _knob(
        0.05,
        "Dropout on the LoRA input during training (regularisation). The prompt start every "
        "example shares is computed once per batch, without dropout.",
        min=0.0,
        below=1.0,
        methods=LORA_METHODS,
    )
    target_modules: str = _knob(
        "all-linear",
        "Which layers get adapters: all-linear, or a comma list of module names such as "
        "q_proj,v_proj.",
        methods=LORA_METHODS,
    )
    # prompt tuning
    num_virtual_tokens: int = _knob(
        20,
        "Prompt tuning: how many virtual tokens are learned and put before every prompt.",
        min=1,
        max=512,
        methods=("prompt-tuning",),
    )
    prompt_init: str = _knob(
        "text",
        "Prompt tuning: start the virtual tokens from the embedding of a text (the task "
        "instruction) or at random.",
        choices=("text", "random"),
        methods=("prompt-tuning",),
    )
    # optimisation
    learning_rate: float = _knob(
        2e-4, "Peak learning rate of AdamW.", above=0.0, max=10.0, scale="log"
    )
    epochs: float = _knob(
        1.0, "Passes over the training split (fractions allowed).", above=0.0, max=1000.0
    )
    batch_size: int = _knob(8, "Examples per forward/backward pass.", min=1, max=4096)
    grad_accum: int = _knob(
        1,
        "Passes accumulated per optimizer step (effective batch = batch_size x grad_accum).",
        min=1,
        max=4096,
    )
    micro_split: int = _knob(
        1,
        "Compute each batch in this many smaller passes (micro-batch = batch_size / micro_split, "
        "accumulation = grad_accum x micro_split): the same update with less memory. An "
        "out-of-memory retry doubles it.",
        min=1,
        max=4096,
    )
    warmup_ratio: float = _knob(
        0.05, "Fraction of steps over which the learning rate ramps up from 0.", min=0.0, below=1.0
    )
    weight_decay: float = _knob(
        0.0, "AdamW weight decay on the trainable parameters.", min=0.0, max=10.0
    )
    scheduler: str = _knob(
        "cosine",
        "Learning-rate schedule after warm-up: cosine, linear or constant.",
        choices=SCHEDULERS,
    )
    max_seq_length: int = _knob(
        256,
        "Longest example in tokens; longer prompts are cut from the left (the answer is kept).",
        min=16,
        max=131072,
    )
    max_train_examples: int = _knob(
        0, "Use only this many training examples (0: the whole train split).", min=0
    )
    # evaluation during training, stopping, checkpoints
    eval_every: int = _knob(25, "Validation loss every N optimizer steps (and at the end).", min=1)
    early_stopping_patience: int = _knob(
        0,
        "Stop after this many validation checks without improvement (0: never). The best "
        "adapter is kept.",
        min=0,
    )
    max_minutes: float = _knob(
        0.0,
        "Time budget in minutes (0: none). For fine-tune-and-compare it covers the whole job "
        "(both evaluations and the training); for a training run, the training. After its "
        "first steps the trainer measures its speed; if the planned steps do not fit, it trains "
        "fewer, re-plans the learning-rate schedule over them and spaces the validation checks "
        "to fit, and the run's notes say so.",
        min=0.0,
    )
    log_every: int = _knob(5, "Write a progress row every N optimizer steps.", min=1)
    save_every: int = _knob(50, "Save a resumable checkpoint every N optimizer steps.", min=1)
    keep_checkpoints: int = _knob(2, "How many of the latest checkpoints to keep.", min=1)
    keep_checkpoints_after_success: bool = _knob(
        False,
        "Keep the resumable checkpoints once the run succeeded (they are deleted by default: "
        "the adapter is saved on its own).",
    )
    # speed and reproducibility
    gradient_checkpointing: bool = _knob(
        False,
        "Recompute activations in the backward pass: less memory, about 30% slower.",
        methods=LORA_METHODS,
    )
    dtype: str = _knob(
        "auto",
        "Compute dtype: auto (bf16 where the hardware runs it natively, else fp16 on GPU / fp32 "
        "on CPU), bf16, fp16 or fp32. Trainable weights always get fp32 master copies.",
        choices=DTYPES,
    )
    seed: int = _knob(0, "Random seed for adapter init, dropout and batch order.", min=0)
    fsdp: bool = _knob(
        False,
        "Data-parallel runs only: shard the frozen base weights over the processes (FSDP), "
        "layer by layer, for a base that does not fit one device in the chosen precision. "
        "LoRA only (a 4-bit QLoRA base is already small: use one or the other).",
        methods=("lora",),
    )

    def validate(self) -> TrainConfig:
        """This config, after checking every field against its rules; ValueError listing all."""
        problems = [problem for item in fields(self) for problem in _check(item, self)]
        if self.method == "prompt-tuning" and self.gradient_checkpointing:
            problems.append(
                "prompt-tuning trains too few weights to need gradient_checkpointing; turn it off"
            )
        if self.fsdp and self.micro_split > 1:
            problems.append("micro_split applies to unsharded runs only; turn fsdp off")
        if self.fsdp and self.method != "lora":
            problems.append(f"fsdp shards a LoRA run's base; it does not apply to {self.method}")
        if problems:
            raise ValueError("Bad training config: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check(item: dataclasses.Field, config: TrainConfig) -> list[str]:
    """The problems of one field's value under its metadata rules."""
    name, value, rules = item.name, getattr(config, item.name), item.metadata
    kind = {"int": int, "float": float, "bool": bool, "str": str}[str(item.type)]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        return [f"{name} must be a {item.type}, not {value!r}"]
    if kind is float and not math.isfinite(value):
        return [f"{name} must be a finite number, not {value}"]
    if "choices" in rules and value not in rules["choices"]:
        return [f"{name} must be one of {', '.join(rules['choices'])}, not {value!r}"]
    bounds = [
        ("min", lambda v, b: v >= b, "at least"),
        ("max", lambda v, b: v <= b, "at most"),
        ("above", lambda v, b: v > b, "more than"),
        ("below", lambda v, b: v < b, "less than"),
    ]
    return [
        f"{name} must be {words} {rules[key]:g}, not {value:g}"
        for key, holds, words in bounds
        if key in rules and not holds(value, rules[key])
    ]


def field_help(name: str) -> str:
    """The help text of a setting (the app's tooltip, the CLI's --help-settings)."""
    return str(_field(name).metadata.get("help", ""))


def field_rules(name: str) -> dict[str, Any]:
    """A setting's rules: min / max / above / below / choices / methods / scale, as given."""
    return {k: v for k, v in _field(name).metadata.items() if k != "help"}


def knob_applies(name: str, method: str) -> bool:
    """Whether setting ``name`` has any effect with ``method`` (LoRA rank: not for prompt tuning)."""
    methods = _field(name).metadata.get("methods")
    return methods is None or method in methods


def _field(name: str) -> dataclasses.Field:
    for item in fields(TrainConfig):
        if item.name == name:
            return item
    known = ", ".join(f.name for f in fields(TrainConfig))
    raise KeyError(f"Unknown training setting '{name}'. Known settings: {known}")


def settings_help() -> str:
    """Every setting with its default and help text, for ``finboard train --help-settings``."""
    lines = []
    for item in fields(TrainConfig):
        rules = field_rules(item.name)
        only = f" [{', '.join(rules['methods'])} only]" if "methods" in rules else ""
        lines.append(f"{item.name} (default {item.default!r}){only}")
        lines.append(f"    {item.metadata['help']}")
    return "\n".join(lines)


def _coerce(name: str, value: Any) -> Any:
    """A CLI / YAML value converted to the field's type."""
    try:
        kind = str(_field(name).type)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if kind == "bool" and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value.lower() in ("true", "1", "yes")
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return {"int": int, "float": float, "bool": bool, "str": str}[kind](value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a {kind}, not {value!r}") from exc


def check_target_modules(config: TrainConfig, names: frozenset[str] | None) -> None:
    """ValueError unless every name in ``target_modules`` is a layer of the model.

    ``names``: the model's layer names (``core.models.loading.module_names``; None when the
    model is not prepared here yet: then the job checks when it loads the model).

    >>> check_target_modules(TrainConfig(target_modules="q_proj,qq_proj"), frozenset({"q_proj"}))
    Traceback (most recent call last):
    ...
    ValueError: Bad training config: target_modules names no layer of this model: qq_proj; ...
    """
    if names is None or config.method not in LORA_METHODS or config.target_modules == "all-linear":
        return
    wanted = [name.strip() for name in config.target_modules.split(",") if name.strip()]
    missing = [name for name in wanted if name not in names]
    if missing or not wanted:
        linear = sorted(n for n in names if n.endswith(("proj", "fc1", "fc2", "dense")))[:12]
        raise ValueError(
            f"Bad training config: target_modules names no layer of this model: "
            f"{', '.join(missing) or '(empty)'}; its layers include {', '.join(linear)} "
            "(or use all-linear)"
        )


# ---------------------------------------------------------------- presets


def presets_dir() -> Path:
    return paths.PRESETS_DIR


def presets() -> dict[str, dict[str, Any]]:
    """Named presets, from ``configs/presets/<name>.yaml``: name -> {description, settings}."""
    table = {}
    for path in sorted(presets_dir().glob("*.yaml")):
        raw = paths.read_yaml(path, ValueError, "Preset file") or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a preset file must be a mapping of setting -> value")
        table[path.stem] = raw
    return table


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
