"""What hardware is here, and how long and how much memory a run will take on it.

    >>> hw = hardware()                                                      # doctest: +SKIP
    >>> estimate_training(get_model("smollm2-135m-instruct"), get_task("fin_sentiment"),
    ...                   preset_config("quick"), hw, db).seconds            # doctest: +SKIP

Estimates come from measurements when there are any: the tokens/s of earlier fine-tunes of
the same base model (their model cards), and the items/s of earlier evaluations. Without one,
a compute-bound guess from the model size and the device class is used, and the estimate
says so. Memory is weights + adapter + optimizer state + activations, from the model size.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from core.models.loading import cpu_has_fast_bf16
from core.models.registry import ModelEntry
from core.store import Database
from core.store import models as model_rows
from core.store import scores as score_rows
from core.tasks.spec import TaskSpec, load_split
from core.training.config import TrainConfig

# Sustained training throughput assumed when nothing was measured (FLOP/s actually achieved).
ASSUMED_FLOPS = {"cuda": 60e12, "mps": 4e12, "cpu": 1.5e11}
CHARS_PER_TOKEN = 4.0
GIB = 2**30


@dataclass
class Hardware:
    device: str
    gpus: list[dict[str, Any]]
    cpu_cores: int
    ram_total_gb: float
    ram_available_gb: float
    bf16: bool
    bitsandbytes: bool

    @property
    def memory_available_gb(self) -> float:
        """What a run can use: the first GPU's memory, else available RAM."""
        return self.gpus[0]["memory_gb"] if self.gpus else self.ram_available_gb

    def summary(self) -> str:
        if self.gpus:
            names = ", ".join(f"{g['name']} ({g['memory_gb']:.0f} GB)" for g in self.gpus)
            return f"{len(self.gpus)} GPU(s): {names}; {self.cpu_cores} CPU cores, {self.ram_total_gb:.0f} GB RAM"
        bf16 = "native bf16" if self.bf16 else "no native bf16"
        return f"No GPU: {self.cpu_cores} CPU cores ({bf16}), {self.ram_total_gb:.0f} GB RAM ({self.ram_available_gb:.0f} GB free)"


def hardware() -> Hardware:
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append({"index": index, "name": props.name, "memory_gb": props.total_memory / GIB})
    device = "cuda" if gpus else ("mps" if torch.backends.mps.is_available() else "cpu")
    memory = psutil.virtual_memory()
    return Hardware(
        device=device,
        gpus=gpus,
        cpu_cores=os.cpu_count() or 1,
        ram_total_gb=memory.total / GIB,
        ram_available_gb=memory.available / GIB,
        bf16=bool(gpus and torch.cuda.is_bf16_supported()) or (not gpus and cpu_has_fast_bf16()),
        bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
    )


@dataclass
class Estimate:
    seconds: float
    memory_gb: float
    measured: bool  # True when the time comes from an earlier run on this machine
    basis: str
    warnings: list[str] = field(default_factory=list)
    fits: bool = True


def _train_tokens(spec: TaskSpec, config: TrainConfig) -> float:
    """Tokens the run will process: the train split's text length / 4 chars per token, plus a prompt overhead."""
    items = load_split(spec, "train").items
    if config.max_train_examples:
        items = items[: config.max_train_examples]
    overhead = len(spec.instruction) + len(spec.template) + 80  # chat markup, answer
    chars = sum(sum(len(v) for v in item.fields.values()) + overhead for item in items)
    return chars / CHARS_PER_TOKEN * config.epochs


def measured_train_tokens_per_s(
    db: Database | None, base_model_id: str, method: str, device: str
) -> float | None:
    """The newest measured training tokens/s for this base model, method and device (model cards)."""
    if db is None:
        return None
    for card_json in model_rows.cards(db, base_model_id, method):
        card = json.loads(card_json)
        if card.get("device") == device and card.get("tokens_per_s"):
            return float(card["tokens_per_s"])
    return None


def training_memory_gb(
    entry: ModelEntry, config: TrainConfig, bf16: bool, processes: int = 1
) -> float:
    """Peak memory of one process (one device) of the run, in GiB.

    With ``processes`` > 1 each holds 1/processes of every batch's activations and, with
    ``fsdp``, 1/processes of the base weights plus about two layers being gathered.
    """
    params = entry.params or 1e9
    weight_bytes = 0.55 if config.method == "qlora" else (2 if bf16 else 4)
    trainable = params * (0.01 if config.method != "prompt-tuning" else 1e-4)
    hidden = max(256.0, (params / 1e6) ** 0.5 * 45)  # rough hidden size for the size class
    layers = max(4.0, params / (12 * hidden * hidden))
    weights = params * weight_bytes
    if config.fsdp and processes > 1:
        weights = weights / processes + 2 * weights / layers
    activations = (
        math.ceil(config.batch_size / processes)
        * config.max_seq_length
        * hidden
        * layers
        * 18
        * (0.3 if config.gradient_checkpointing else 1.0)
    )
    return (weights + trainable * 16 + activations) / GIB + 0.6  # + runtime overhead


def estimate_training(
    entry: ModelEntry,
    spec: TaskSpec,
    config: TrainConfig,
    hw: Hardware,
    db: Database | None = None,
    processes: int = 1,
) -> Estimate:
    """Time and memory of a fine-tune, with warnings for runs that will not fit or not work.

    ``processes``: the data-parallel processes the job will get (its GPUs, or its CPU
    processes). GPUs divide the time; CPU processes share the same cores, so they do not
    (bench/train_scaling.py measured a ratio of about 1.0 on 2 cores).
    """
    tokens = _train_tokens(spec, config)
    measured = measured_train_tokens_per_s(db, entry.id, config.method, hw.device)
    if measured:
        seconds, basis = (
            tokens / measured,
            f"measured {measured:.0f} tokens/s in an earlier {config.method} run of this model",
        )
    else:
        flops_per_token = 6 * (entry.params or 1e9)
        rate = ASSUMED_FLOPS[hw.device] / flops_per_token
        seconds, basis = (
            tokens / rate,
            f"no earlier run: assumed {ASSUMED_FLOPS[hw.device] / 1e12:g} TFLOP/s on {hw.device}",
        )
    if processes > 1 and hw.gpus:
        seconds /= processes * 0.9  # data parallel over GPUs: ~90% efficiency per GPU added
        basis += f"; {processes} GPUs data parallel"
    memory = training_memory_gb(entry, config, hw.bf16, processes)
    estimate = Estimate(seconds=seconds, memory_gb=memory, measured=bool(measured), basis=basis)
    estimate.warnings += _training_warnings(entry, config, hw, estimate)
    estimate.fits = memory <= hw.memory_available_gb
    if not estimate.fits:
        estimate.warnings.append(too_big_advice(entry, config, hw, memory))
    return estimate


def too_big_advice(entry: ModelEntry, config: TrainConfig, hw: Hardware, memory_gb: float) -> str:
    """What to do when a fine-tune will not fit one device: FSDP over the GPUs where there are
    several and it would fit, QLoRA, smaller batches."""
    advice = [f"Needs about {memory_gb:.1f} GB but {hw.memory_available_gb:.1f} GB is available"]
    options = []
    if len(hw.gpus) > 1 and config.method == "lora" and not config.fsdp:
        sharded = dataclasses.replace(config, fsdp=True)
        per_gpu = training_memory_gb(entry, sharded, hw.bf16, len(hw.gpus))
        if per_gpu <= hw.memory_available_gb:
            options.append(
                f"shard the base over all {len(hw.gpus)} GPUs (fsdp, GPUs: all: about "
                f"{per_gpu:.1f} GB each)"
            )
    if config.method != "qlora":
        options.append("use QLoRA (a 4-bit base)")
    options.append("a smaller batch size or max_seq_length, or gradient checkpointing")
    return f"{advice[0]}: it will not fit. " + "; or ".join(options).capitalize() + "."


def _training_warnings(
    entry: ModelEntry, config: TrainConfig, hw: Hardware, estimate: Estimate
) -> list[str]:
    warnings = []
    if config.method == "qlora" and not hw.bitsandbytes:
        warnings.append(
            "QLoRA needs bitsandbytes, which is not installed: pip install bitsandbytes, or choose LoRA."
        )
    if config.method == "qlora" and hw.device == "mps":
        warnings.append("bitsandbytes 4-bit has no Apple MPS backend: choose LoRA on this machine.")
    if hw.device == "cpu" and (entry.params or 0) > 2e9:
        warnings.append(
            f"{entry.display_name} has {entry.params / 1e9:.1f}B parameters and there is no GPU: "
            "training on the CPU would take days. Use a GPU machine or a smaller model."
        )
    if estimate.seconds > 6 * 3600:
        warnings.append(
            f"Estimated {estimate.seconds / 3600:.0f} hours: consider the quick preset or fewer epochs."
        )
    return warnings


def estimate_eval(
    entry: ModelEntry, spec: TaskSpec, hw: Hardware, db: Database | None = None
) -> Estimate:
    """Time of one evaluation on the task's test split (memory: the model for inference)."""
    n_items = len(load_split(spec, "test"))
    rate = score_rows.latest_items_per_s(db, entry.id, spec.name) if db is not None else None
    if rate:
        seconds, basis = n_items / rate, f"measured {rate:.1f} items/s in an earlier run"
    else:
        # Prompt-token equivalents per item, fitted to SmolLM2 135M on the 2-core AVX2 CPU in
        # fp32 (the slowest machine class here): fin_sentiment 9.1 items/s (the shared prompt
        # prefix is computed once per batch), eps_extraction 4.1, revenue_analysis 3.0-4.6.
        tokens_per_item = 60 + (spec.max_new_tokens * 2.5 if spec.is_generation else 0)
        seconds = n_items * tokens_per_item * 2 * (entry.params or 1e9) / ASSUMED_FLOPS[hw.device]
        basis = "no earlier run: estimated from the model size"
    memory = (entry.params or 1e9) * (2 if hw.bf16 else 4) / GIB + 0.5
    fits = memory <= hw.memory_available_gb
    warnings = (
        []
        if fits
        else [
            f"Needs about {memory:.1f} GB, {hw.memory_available_gb:.1f} GB available: it will not fit."
        ]
    )
    return Estimate(
        seconds=seconds,
        memory_gb=memory,
        measured=bool(rate),
        basis=basis,
        warnings=warnings,
        fits=fits,
    )


def estimate_evals(
    entry: ModelEntry, specs: list[TaskSpec], hw: Hardware, db: Database | None = None
) -> Estimate:
    """One estimate for evaluating ``entry`` on several tasks in a row (one model load)."""
    parts = [estimate_eval(entry, spec, hw, db) for spec in specs]
    measured = sum(p.measured for p in parts)
    return Estimate(
        seconds=sum(p.seconds for p in parts),
        memory_gb=max(p.memory_gb for p in parts),
        measured=measured == len(parts),
        basis=f"{measured} of {len(parts)} task(s) measured in earlier runs, the rest estimated from the model size",
        warnings=list(dict.fromkeys(w for p in parts for w in p.warnings)),
        fits=all(p.fits for p in parts),
    )


# ---------------------------------------------------------------- whole jobs


# A GGUF model's first use de-quantizes it into the cache (``loading.gguf_parsed_once``):
# measured on the 2-core AVX2 CPU, SmolLM2 135M 21 s, Gemma 3 270M (a 262k-token vocabulary
# to read) 53 s.
GGUF_PREPARE_S = {"smollm2-135m-instruct": 21.0, "gemma3-270m": 53.0}
GGUF_PREPARE_S_PER_PARAM = 21.0 / 135e6  # other GGUF models: SmolLM2's rate


def prepare_seconds(entry: ModelEntry) -> float:
    """Time to prepare the model on its first use here (0 once prepared, or nothing to do)."""
    from core.models.loading import prepared_directory

    if entry.source.kind != "gguf_package" or prepared_directory(entry) is not None:
        return 0.0
    return GGUF_PREPARE_S.get(entry.id, (entry.params or 1e9) * GGUF_PREPARE_S_PER_PARAM)


def cached_load_seconds(entry: ModelEntry, hw: Hardware) -> float:
    """Time to load a prepared (cached) model: about a second per 250M parameters on CPU."""
    params = entry.params or 1e9
    return 1.0 + params / (250e6 if hw.device == "cpu" else 1e9)


def load_seconds(entry: ModelEntry, hw: Hardware) -> float:
    """Time to load the model, its preparation on first use (``prepare_seconds``) included."""
    return cached_load_seconds(entry, hw) + prepare_seconds(entry)


def has_full_score(db: Database | None, entry: ModelEntry, spec: TaskSpec) -> bool:
    """Whether the model has a full test-split score of this task version and prompt."""
    if db is None:
        return False
    return score_rows.has_full_score(db, entry.id, spec.name, spec.version, spec.prompt_hash)


def eval_plan(entry: ModelEntry, specs: list[TaskSpec], hw: Hardware, db: Database | None):
    """The phases of an evaluation job: load once, then each task in turn."""
    from core.jobs.progress import Phase

    plan = [Phase("loading model", load_seconds(entry, hw))]
    for number, spec in enumerate(specs, start=1):
        seconds = estimate_eval(entry, spec, hw, db).seconds
        plan.append(Phase(f"evaluating {spec.name} ({number}/{len(specs)})", seconds))
    return plan


def training_plan(
    entry: ModelEntry,
    spec: TaskSpec,
    config: TrainConfig,
    hw: Hardware,
    db: Database | None,
    compare: bool,
    processes: int = 1,
):
    """The phases of a train (``compare=False``) or fine-tune-and-compare job, in run order."""
    from core.jobs.progress import Phase
    from core.workflows.finetune_compare import phase_order, scored_tasks, training_budget_s

    cached_load = cached_load_seconds(entry, hw)
    load = cached_load + prepare_seconds(entry)
    train = estimate_training(entry, spec, config, hw, db, processes).seconds
    if not compare:
        return [Phase("loading the base model", load), Phase("training", train)]
    tasks = scored_tasks(db, entry, spec)
    scoring = evaluation_seconds(entry, tasks, hw, db)
    base_eval = sum(base_evaluation_seconds(entry, tasks, db, scoring))
    budget = training_budget_s(config, load + base_eval, sum(scoring))
    seconds = {
        "loading the base model": load,
        "evaluating base model": base_eval,
        "training": train if budget is None else min(train, budget),
        "checking the adapter": cached_load + 2.0,
        "evaluating fine-tuned model": sum(scoring),
    }
    return [Phase(name, seconds[name]) for name in phase_order(config.method)]


def evaluation_seconds(
    entry: ModelEntry, specs: list[TaskSpec], hw: Hardware, db: Database | None
) -> list[float]:
    """Each task's expected scoring time (``estimate_eval``)."""
    return [estimate_eval(entry, spec, hw, db).seconds for spec in specs]


REUSED_SCORE_S = 1.0  # a base score of these weights that is stored already: looked up, reused


def base_evaluation_seconds(
    entry: ModelEntry, specs: list[TaskSpec], db: Database | None, scoring: list[float]
) -> list[float]:
    """The base's share of ``scoring`` (``evaluation_seconds``): a stored score is reused."""
    return [
        REUSED_SCORE_S if has_full_score(db, entry, spec) else seconds
        for spec, seconds in zip(specs, scoring)
    ]


def plan_estimate(plan: list, basis: str, memory_gb: float, hw: Hardware) -> Estimate:
    """One estimate for a whole job from its phases (their sum), with the memory it needs."""
    fits = memory_gb <= hw.memory_available_gb
    warnings = (
        []
        if fits
        else [
            f"Needs about {memory_gb:.1f} GB but {hw.memory_available_gb:.1f} GB is available: "
            "it will not fit. Use QLoRA, a smaller batch size or max_seq_length, or gradient "
            "checkpointing."
        ]
    )
    return Estimate(
        seconds=sum(p.seconds for p in plan),
        memory_gb=memory_gb,
        measured=False,
        basis=basis,
        warnings=warnings,
        fits=fits,
    )
