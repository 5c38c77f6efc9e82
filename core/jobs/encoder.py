"""The job kinds' encoder side: checking, planning and running eval / train / compare jobs
whose model is an encoder (``kind: encoder``). ``core.jobs.kinds`` hands these over here.

A training request's ``task`` may name several tasks with loss weights, ``"a,b:2"``
(``core.training.encoder.parse_task_weights``): one encoder with one head per task, trained
jointly. The stored params then hold ``tasks`` (the names, in order), ``task_weights`` and
``task`` (the first, which names the model). With no preset or config given, the ``encoder``
preset is used: the LLM defaults are tuned for generative models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.jobs.devices import DEVICE_PARAMS, check_request
from core.store import Database

if TYPE_CHECKING:
    from core.jobs.run import JobContext

ENCODER_PRESET = "encoder"


def is_encoder_job(ctx: JobContext) -> bool:
    from core.jobs.kinds import resolved
    from core.models.encoder import is_encoder

    return is_encoder(resolved(ctx)["entry"])


def validate_training(db: Database, params: dict[str, Any], entry: Any) -> dict[str, Any]:
    """An encoder training request: choice tasks with all three splits, an encoder method."""
    from core.jobs.kinds import TRAINING_PARAMS, JobError, _task_with_data, training_config
    from core.training.encoder import ENCODER_METHODS, parse_task_weights, task_heads

    unknown = set(params) - {*TRAINING_PARAMS, *DEVICE_PARAMS, "tasks", "task_weights"}
    if unknown:
        raise JobError(f"Unknown training option(s): {', '.join(sorted(unknown))}")
    params = {**params, **check_request(params)}
    if entry.is_finetuned:
        raise JobError(
            f"'{entry.id}' is already fine-tuned: choose its base model '{entry.base_model_id}'"
        )
    if any(params.get(key) not in (None, 1) for key in ("gpus", "processes")):
        raise JobError("Encoders train in one process: leave out --gpus / --processes")
    if params.get("tasks"):
        names, weights = list(params["tasks"]), dict(params.get("task_weights") or {})
    else:
        try:
            names, weights = parse_task_weights(str(params.get("task") or ""))
        except ValueError as exc:
            raise JobError(str(exc)) from exc
    specs = [_task_with_data(name, ("train", "validation", "test")) for name in names]
    try:
        task_heads(specs)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    if params.get("config") is None and not params.get("preset"):
        params["preset"] = ENCODER_PRESET
    config = training_config(params)
    if config.method not in ENCODER_METHODS:
        raise JobError(
            f"An encoder trains with {', '.join(ENCODER_METHODS)} (not {config.method}): "
            "--method lora, head or full"
        )
    from pathlib import Path

    if params.get("resume_from") and not Path(params["resume_from"]).is_dir():
        raise JobError(f"Checkpoint not found: {params['resume_from']}")
    stored = {k: v for k, v in params.items() if k not in ("overrides", "method", "preset")}
    stored.update(task=names[0], tasks=names, task_weights={n: weights.get(n, 1.0) for n in names})
    stored["config"] = config.to_dict()
    if params.get("preset"):
        stored["preset"] = params["preset"]
    return stored


def check_eval_tasks(entry: Any, names: list[str]) -> None:
    """JobError unless the encoder has a trained head for every task (an untrained encoder has
    none: its baseline is the majority class, scored by ``finetune_compare``)."""
    from pathlib import Path

    from core.jobs.kinds import JobError
    from core.models.encoder import read_heads

    if not entry.is_finetuned:
        raise JobError(
            f"'{entry.id}' is an encoder without trained heads, so it has no answers to score: "
            f"fine-tune it (finboard finetune-compare --model {entry.id} --task TASK), which "
            "also scores the majority-class baseline"
        )
    heads = read_heads(Path(entry.adapter_path))["tasks"]
    missing = [name for name in names if name not in heads]
    if missing:
        raise JobError(
            f"'{entry.id}' has heads for {', '.join(heads)} only, not {', '.join(missing)}"
        )


def plan(ctx: JobContext, compare: bool) -> list[Any]:
    """The phases of an encoder training job with rough seconds (no measurements yet)."""
    from core.jobs.progress import Phase
    from core.training.encoder import multitask_examples
    from core.workflows.encoder_compare import PHASES

    found = ctx_resolved(ctx)
    config = found["config"]
    examples = len(multitask_examples(found["specs"], "train"))
    steps = config.epochs * examples / (config.batch_size * config.grad_accum)
    seconds = {PHASES[0]: 5.0, PHASES[1]: 1.0, PHASES[2]: 0.15 * steps, PHASES[3]: 5.0}
    seconds[PHASES[4]] = 10.0 * len(found["specs"])
    names = PHASES if compare else (PHASES[0], PHASES[2])
    return [Phase(name, seconds[name]) for name in names]


def ctx_resolved(ctx: JobContext) -> dict[str, Any]:
    from core.jobs.kinds import resolved

    return resolved(ctx)


def run_train(ctx: JobContext, compare: bool) -> dict[str, Any]:
    """Train (and, for finetune_compare, compare with the majority baseline) an encoder."""
    from core.jobs.kinds import JobCancelled, train_plan
    from core.training.finetune import result_summary
    from core.workflows.encoder_compare import (
        PHASES,
        encoder_finetune_compare,
        train_encoder_and_register,
    )

    plan_ = train_plan(ctx)
    specs = ctx_resolved(ctx)["specs"]
    weights = ctx.params.get("task_weights") or {}
    if compare:
        out = encoder_finetune_compare(plan_, specs, weights, ctx.db, ctx)
        if out.get("status") == "cancelled":
            raise JobCancelled(out.get("checkpoint"))
        return {**out, "energy_wh": ctx.energy_wh()}
    ctx.phase(PHASES[0])
    from core.models.encoder import load_encoder
    from core.training.encoder import task_heads

    loaded = load_encoder(
        plan_.base,
        heads=task_heads(specs),
        dtype=plan_.config.dtype,
        seed=plan_.config.seed,
        training=True,
    )
    ctx.phase(PHASES[2])
    entry, result, _ = train_encoder_and_register(plan_, specs, weights, ctx.db, ctx, loaded)
    if entry is None:
        raise JobCancelled(result.checkpoint)
    return result_summary(entry, result, ctx.energy_wh())


def run_eval(ctx: JobContext, options: Any) -> dict[str, Any]:
    """Score an encoder's heads on each task of an eval job (loaded once)."""
    from core.evaluation.encoder import evaluate_encoder
    from core.jobs.run import log
    from core.models.encoder import load_encoder

    found = ctx_resolved(ctx)
    ctx.phase("loading model")
    loaded = load_encoder(found["entry"], device=options.device, dtype=options.dtype)
    results = []
    for number, spec in enumerate(found["specs"], start=1):
        ctx.phase(f"evaluating {spec.name} ({number}/{len(found['specs'])})")
        result = evaluate_encoder(
            loaded, spec, db=ctx.db, options=options, progress=ctx.eval_progress, job_id=ctx.job_id
        )
        log(
            f"{spec.name}: {result['primary_metric']} {result['score']:.4f} ({result['n_items']} items)"
        )
        results.append(result)
    return {"results": results}
