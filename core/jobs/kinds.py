"""The job kinds, in one table: how each is checked, what it runs, whether it trains, its label.

    >>> [kind.name for kind in KINDS.values()]
    ['eval', 'train', 'finetune_compare']
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
    from core.models.registry import get_model

    get_model(params["model_id"], db)
    tasks = params.get("tasks") or ([params["task"]] if params.get("task") else [])
    if isinstance(tasks, str) or not tasks:
        raise JobError("An eval job needs `tasks`: a list of task names")
    unknown = set(params) - {"model_id", "tasks", "task", *EVAL_OPTIONS}
    if unknown:
        raise JobError(f"Unknown eval option(s): {', '.join(sorted(unknown))}")
    limit = params.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise JobError(f"limit must be a positive whole number, not {limit!r}")
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
    unknown = set(params) - set(TRAINING_PARAMS)
    if unknown:
        raise JobError(f"Unknown training option(s): {', '.join(sorted(unknown))}")
    if entry.is_finetuned:
        raise JobError(
            f"'{entry.id}' is already fine-tuned: choose its base model '{entry.base_model_id}'"
        )
    _task_with_data(params["task"], ("train", "validation", "test"))
    config = training_config(params)
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


# ---------------------------------------------------------------- running them


def _log(message: str) -> None:
    from core.jobs.run import log

    log(message)


def run_eval(ctx: JobContext) -> dict[str, Any]:
    """Evaluate params["model_id"] on each of params["tasks"] (the model is loaded once)."""
    from core.evaluation.runner import EvalOptions, evaluate
    from core.models.loading import load_model
    from core.models.registry import get_model
    from core.tasks.spec import get_task

    params = ctx.params
    options = EvalOptions(**{k: params[k] for k in EVAL_OPTIONS if params.get(k) is not None})
    ctx.phase("loading model")
    entry = get_model(params["model_id"], ctx.db)
    specs = [get_task(name) for name in params["tasks"]]
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
            f"{spec.name}: {result['primary_metric']} {result['score']:.4f} ({result['n_items']} items)"
        )
        results.append(result)
    return {"results": results}


def train_plan(ctx: JobContext) -> Any:
    """The job's ``TrainPlan``: its ids resolved once, here."""
    from core.models.registry import get_model
    from core.tasks.spec import get_task
    from core.training.finetune import TrainPlan

    params = ctx.params
    resume = params.get("resume_from")
    return TrainPlan(
        base=get_model(params["model_id"], ctx.db),
        task=get_task(params["task"]),
        config=training_config(params),
        new_model_id=params["new_model_id"],
        run_dir=Path(ctx.run_dir),
        resume_from=Path(resume) if resume else None,
        job_id=ctx.job_id,
    )


def run_train(ctx: JobContext) -> dict[str, Any]:
    """Fine-tune and register the model params["new_model_id"]."""
    from core.training.finetune import result_summary, train_and_register

    ctx.phase("training")
    entry, result = train_and_register(train_plan(ctx), ctx.db, ctx)
    if entry is None:
        raise JobCancelled(result.checkpoint)
    return result_summary(entry, result, ctx.energy_wh())


def run_finetune_compare(ctx: JobContext) -> dict[str, Any]:
    """Base score, fine-tune, fine-tuned score on the same items (core.workflows)."""
    from core.workflows.finetune_compare import finetune_compare

    out = finetune_compare(train_plan(ctx), ctx.db, ctx)
    if out.get("status") == "cancelled":
        raise JobCancelled(out.get("checkpoint"))
    return {**out, "energy_wh": ctx.energy_wh()}


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("eval", "Evaluation", False, validate_eval, run_eval),
        JobKind("train", "Fine-tune", True, validate_training, run_train),
        JobKind(
            "finetune_compare", "Fine-tune & compare", True, validate_training, run_finetune_compare
        ),
    )
}


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
