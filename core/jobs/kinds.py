"""The job kinds, in one table: how each is checked, what it runs, whether it trains, its label.

    >>> [kind.name for kind in KINDS.values()]
    ['eval', 'train', 'finetune_compare', 'generate', 'method_run']
    >>> get("finetune_compare").label, get("finetune_compare").trains
    ('Fine-tune & compare', True)

The queue calls ``validate`` before it writes a row (so a bad request changes nothing), the
job process calls ``run`` with its ``JobContext`` (the hooks of ``core.workflows.hooks``), the
launcher asks ``trains`` and the Jobs page shows ``label``. Adding a kind is one entry here.

Ids are resolved here, at the edge: ``validate`` checks that the model, the task and its data
exist; ``run`` turns the stored ids into a ``ModelEntry``, a ``TaskSpec`` and a loaded model
once and hands those to the workflows.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.jobs.devices import DEVICE_PARAMS, check_request
from core.jobs.generate_job import plan_generate, run_generate, validate_generate
from core.store import Database

if TYPE_CHECKING:
    from core.jobs.run import JobContext

EVAL_OPTIONS = ("split", "limit", "num_shots", "seed", "batch_size", "dtype", "device")
TRAINING_PARAMS = (
    "model_id",
    "task",
    "preset",
    "method",
    "overrides",
    "config",
    "resume_from",
    "new_model_id",
)


DEVICE_FLAGS = {"gpus": "--gpus", "processes": "--processes"}
ENCODER_ONLY_METHODS = ("head", "full")  # core.training.encoder: methods of encoders alone


class JobError(ValueError):
    """A job request or action that cannot be done; the message says why and what to do."""


class JobCancelled(Exception):
    """Raised inside a job when its stop flag is set; carries the checkpoint to resume from."""

    def __init__(self, checkpoint: str | None = None):
        super().__init__("cancelled")
        self.checkpoint = checkpoint


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    trains: bool  # it fine-tunes: a model id is reserved, it may run data-parallel
    validate: Callable[[Database, dict[str, Any]], dict[str, Any]]
    run: Callable[[JobContext], dict[str, Any]]
    plan: Callable[[JobContext], list[Any]]  # its phases, with estimated seconds


# ---------------------------------------------------------------- checking requests


def _task_with_data(name: str, splits: tuple[str, ...]) -> Any:
    """The task's spec, after loading ``splits`` (a bad or unknown-format file raises here)."""
    from core.tasks.spec import get_task, load_split

    spec = get_task(name)
    for split in splits:
        load_split(spec, split)
    return spec


def training_config(params: dict[str, Any]) -> Any:
    """The validated ``TrainConfig`` of a training request: ``config``, or preset + overrides.

    >>> training_config({"preset": "quick", "overrides": {"epochs": "2"}}).epochs
    2.0
    """
    from core.training.config import preset_config

    if params.get("config") is not None:
        config = {**params["config"], **(params.get("overrides") or {})}
        try:
            return preset_config(None, config)
        except TypeError as exc:
            raise ValueError(f"Bad training config: {exc}") from exc
    overrides = dict(params.get("overrides") or {})
    if params.get("method"):
        overrides["method"] = params["method"]
    return preset_config(params.get("preset"), overrides)


def validate_eval(db: Database, params: dict[str, Any]) -> dict[str, Any]:
    """An eval request: a model, a list of tasks, and options (``EVAL_OPTIONS``)."""
    from core.models.encoder import is_encoder
    from core.models.registry import get_model

    entry = get_model(params["model_id"], db)
    tasks = params.get("tasks") or ([params["task"]] if params.get("task") else [])
    if isinstance(tasks, str) or not tasks:
        raise JobError("An eval job needs `tasks`: a list of task names")
    if is_encoder(entry):
        from core.jobs.encoder import check_eval_tasks

        check_eval_tasks(entry, list(tasks))
    unknown = set(params) - {"model_id", "tasks", "task", *EVAL_OPTIONS, *DEVICE_PARAMS}
    if unknown:
        raise JobError(f"Unknown eval option(s): {', '.join(sorted(unknown))}")
    params = {**params, **check_request(params)}
    from core.evaluation.runner import EvalOptions
    from core.models.loading import check_device, parse_dtype

    options = {k: params[k] for k in EVAL_OPTIONS if params.get(k) is not None}
    problems = EvalOptions(**options).problems()
    if problems:
        raise JobError("; ".join(problems))
    device = check_device(params.get("device"))
    parse_dtype(params.get("dtype"), device)
    split = params.get("split") or "test"
    for name in tasks:
        _task_with_data(name, tuple(dict.fromkeys((split, "train"))))
    params = {k: v for k, v in params.items() if k != "task"}
    params["tasks"] = list(tasks)
    return params


def validate_training(db: Database, params: dict[str, Any]) -> dict[str, Any]:
    """A training request: a base model, a task with all three splits, a valid config.

    Returns the params to store: the resolved ``config`` in place of preset / method /
    overrides (the model id is reserved by the queue when it writes the row).
    """
    from core.models.registry import get_model

    entry = get_model(params["model_id"], db)
    if not params.get("task"):
        raise JobError("A training job needs a task")
    from core.jobs import encoder as encoder_jobs
    from core.models.encoder import is_encoder

    if is_encoder(entry):
        return encoder_jobs.validate_training(db, params, entry)
    unknown = set(params) - {*TRAINING_PARAMS, *DEVICE_PARAMS}
    if unknown:
        raise JobError(f"Unknown training option(s): {', '.join(sorted(unknown))}")
    params = {**params, **check_request(params)}
    if entry.is_finetuned:
        raise JobError(
            f"'{entry.id}' is already fine-tuned: choose its base model '{entry.base_model_id}'"
        )
    spec = _task_with_data(params["task"], ("train", "validation", "test"))
    from core.tasks.spec import load_split

    if not load_split(spec, "train").items:
        raise JobError(f"Task '{spec.name}' has no train split (a test-only task): evaluate it")
    config = training_config(params)
    from core.models.loading import module_names
    from core.training.config import check_target_modules

    check_target_modules(config, module_names(entry))
    if config.method in ENCODER_ONLY_METHODS:
        raise JobError(f"Method {config.method} is for encoders; '{entry.id}' is a language model")
    if config.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise JobError(
            "QLoRA needs the bitsandbytes package: pip install bitsandbytes, or choose lora"
        )
    if params.get("resume_from") and not Path(params["resume_from"]).is_dir():
        raise JobError(f"Checkpoint not found: {params['resume_from']}")
    stored = {k: v for k, v in params.items() if k not in ("overrides", "method", "preset")}
    stored["config"] = config.to_dict()
    if params.get("preset"):
        stored["preset"] = params["preset"]
    return stored


# ---------------------------------------------------------------- resolving and planning them


def resolved(ctx: JobContext) -> dict[str, Any]:
    """The job's ids turned into a model entry, task specs and a training config, once.

    The plan (estimates) and the run both use these, so a job resolves its model once.
    """
    if ctx.resolved is None:
        from core.models.registry import get_model
        from core.tasks.spec import get_task

        params = ctx.params
        names = params.get("tasks") or [params["task"]]
        ctx.resolved = {
            "entry": get_model(params["model_id"], ctx.db),
            "specs": [get_task(name) for name in names],
            "config": training_config(params) if get(ctx.job["kind"]).trains else None,
        }
    return ctx.resolved


def plan_eval(ctx: JobContext) -> list[Any]:
    """The phases of an eval job with their estimated seconds (``core.jobs.progress``)."""
    from core.analysis import estimates

    found = resolved(ctx)
    return estimates.eval_plan(found["entry"], found["specs"], estimates.hardware(), ctx.db)


def _plan_training(ctx: JobContext, compare: bool) -> list[Any]:
    from core.analysis import estimates
    from core.jobs import encoder as encoder_jobs

    if encoder_jobs.is_encoder_job(ctx):
        return encoder_jobs.plan(ctx, compare)
    found = resolved(ctx)
    entry, spec, config = found["entry"], found["specs"][0], found["config"]
    from core import parallel

    processes = parallel.current().size  # the devices this very job was given
    hw = estimates.hardware()
    return estimates.training_plan(entry, spec, config, hw, ctx.db, compare, processes)


def plan_train(ctx: JobContext) -> list[Any]:
    return _plan_training(ctx, compare=False)


def plan_finetune_compare(ctx: JobContext) -> list[Any]:
    return _plan_training(ctx, compare=True)


# ---------------------------------------------------------------- running them


def _log(message: str) -> None:
    from core.jobs.run import log

    log(message)


def run_eval(ctx: JobContext) -> dict[str, Any]:
    """Evaluate params["model_id"] on each of params["tasks"] (the model is loaded once)."""
    from core.evaluation.runner import EvalOptions, evaluate
    from core.models.loading import load_model

    params = ctx.params
    options = EvalOptions(**{k: params[k] for k in EVAL_OPTIONS if params.get(k) is not None})
    from core.jobs import encoder as encoder_jobs

    if encoder_jobs.is_encoder_job(ctx):
        return encoder_jobs.run_eval(ctx, options)
    found = resolved(ctx)
    entry, specs = found["entry"], found["specs"]
    ctx.phase("loading model")
    loaded = load_model(entry, device=options.device, dtype=options.dtype)
    results = []
    for number, spec in enumerate(specs, start=1):
        ctx.phase(f"evaluating {spec.name} ({number}/{len(specs)})")
        result = evaluate(
            loaded,
            spec,
            db=ctx.db,
            options=options,
            progress=ctx.eval_progress,
            job_id=ctx.job_id,
        )
        _log(
            f"{spec.name}: {result['primary_metric']} {result['score']:.4f} "
            f"({result['n_items']} items)"
        )
        results.append(result)
    return {"results": results}


def train_plan(ctx: JobContext) -> Any:
    """The job's ``TrainPlan``: its ids resolved once (``resolved``)."""
    from core.training.finetune import TrainPlan

    found = resolved(ctx)
    resume = ctx.params.get("resume_from")
    return TrainPlan(
        base=found["entry"],
        task=found["specs"][0],
        config=found["config"],
        new_model_id=ctx.params["new_model_id"],
        run_dir=Path(ctx.run_dir),
        resume_from=Path(resume) if resume else None,
        job_id=ctx.job_id,
    )


def run_train(ctx: JobContext) -> dict[str, Any]:
    """Fine-tune and register the model params["new_model_id"]."""
    from core.jobs import encoder as encoder_jobs
    from core.training.finetune import result_summary, train_and_register
    from core.training.trainer import load_for_training

    if encoder_jobs.is_encoder_job(ctx):
        return encoder_jobs.run_train(ctx, compare=False)
    plan = train_plan(ctx)
    ctx.phase("loading the base model")
    loaded = load_for_training(plan.base, plan.config)
    ctx.phase("training")
    entry, result = train_and_register(plan, ctx.db, ctx, loaded=loaded)
    if entry is None:
        raise JobCancelled(result.checkpoint)
    return result_summary(entry, result, ctx.energy_wh())


def run_finetune_compare(ctx: JobContext) -> dict[str, Any]:
    """Base score, fine-tune, fine-tuned score on the same items (core.workflows)."""
    from core.jobs import encoder as encoder_jobs
    from core.workflows.finetune_compare import finetune_compare

    if encoder_jobs.is_encoder_job(ctx):
        return encoder_jobs.run_train(ctx, compare=True)
    out = finetune_compare(train_plan(ctx), ctx.db, ctx)
    if out.get("status") == "cancelled":
        raise JobCancelled(out.get("checkpoint"))
    return {**out, "energy_wh": ctx.energy_wh()}


def validate_method_run(db: Database, params: dict[str, Any]) -> dict[str, Any]:
    from core.workflows.compare_methods import validate_method_run as validate

    return validate(db, params)


def run_method_run(ctx: JobContext) -> dict[str, Any]:
    """One method of a compare-methods run (core.workflows.compare_methods)."""
    from core.workflows.compare_methods import run_method

    return run_method(ctx)


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("eval", "Evaluation", False, validate_eval, run_eval, plan_eval),
        JobKind("train", "Fine-tune", True, validate_training, run_train, plan_train),
        JobKind(
            "finetune_compare",
            "Fine-tune & compare",
            True,
            validate_training,
            run_finetune_compare,
            plan_finetune_compare,
        ),
        JobKind("generate", "Generate data", False, validate_generate, run_generate, plan_generate),
        JobKind(
            "method_run",
            "Compare methods: one method",
            True,
            validate_method_run,
            run_method_run,
            plan_finetune_compare,
        ),
    )
}


def command_line(kind: str, params: dict[str, Any]) -> str:
    """The ``finboard`` command that queues the same job (the app's "Preview command").

    >>> command_line("finetune_compare", {"model_id": "m", "task": "t", "preset": "quick",
    ...              "method": "qlora", "overrides": {"epochs": 2}})
    'finboard finetune-compare --model m --task t --preset quick --method qlora --set epochs=2'
    >>> command_line("eval", {"model_id": "m", "tasks": ["a", "b"], "limit": 5})
    'finboard eval --model m --task a --task b --limit 5'
    """
    import shlex

    parts = ["finboard", kind.replace("_", "-"), "--model", str(params["model_id"])]
    if kind == "eval":
        for task in params.get("tasks") or [params.get("task")]:
            parts += ["--task", str(task)]
        flags = {
            "split": "--split",
            "limit": "--limit",
            "num_shots": "--shots",
            "seed": "--seed",
            "batch_size": "--batch-size",
            "dtype": "--dtype",
            "device": "--device",
        }
        for key, flag in {**flags, **DEVICE_FLAGS}.items():
            if params.get(key) is not None:
                parts += [flag, str(params[key])]
        return shlex.join(parts)
    parts += ["--task", str(params["task"])]
    if params.get("preset"):
        parts += ["--preset", str(params["preset"])]
    if params.get("method"):
        parts += ["--method", str(params["method"])]
    for key, value in (params.get("overrides") or {}).items():
        shown = str(value).lower() if isinstance(value, bool) else value
        parts += ["--set", f"{key}={shown}"]
    for key, flag in DEVICE_FLAGS.items():
        if params.get(key) is not None:
            parts += [flag, str(params[key])]
    return shlex.join(parts)


def describe(kind: str, params: dict[str, Any]) -> str:
    """One short line about a job, for its log: what runs on what."""
    what = params.get("task") or ", ".join(params.get("tasks") or []) or params.get("name")
    line = f"{label(kind)} of {params.get('model_id')} on {what}"
    config = params.get("config") or {}
    if config:
        line += f" ({config.get('method')}"
        line += f", preset {params['preset']})" if params.get("preset") else ")"
    return line


def get(name: str) -> JobKind:
    """The kind called ``name``; JobError naming the known ones when there is none."""
    if name not in KINDS:
        raise JobError(f"Unknown job kind '{name}': use one of {', '.join(KINDS)}")
    return KINDS[name]


def label(name: str) -> str:
    """What the UI calls a job kind (its internal name when unknown)."""
    return KINDS[name].label if name in KINDS else name


def training_kinds() -> tuple[str, ...]:
    return tuple(name for name, kind in KINDS.items() if kind.trains)
