"""The ``generate`` job kind: checked at submit, planned, run (``core.workflows.generate``)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from core.store import Database

if TYPE_CHECKING:
    from core.jobs.run import JobContext

SECONDS_PER_RECORD = 3.0  # a first estimate (SmolLM2 on a 2-core CPU makes one in ~2-4 s)


def settings_of(params: dict[str, Any]) -> Any:
    """The job's ``GenerateSettings`` (the params minus nothing: they are its fields)."""
    from core.workflows.generate import GenerateSettings

    return GenerateSettings(**params)


def validate_generate(db: Database, params: dict[str, Any]) -> dict[str, Any]:
    """A generate request: an instruct model, a new task name, settings that can run."""
    from core.jobs.kinds import JobError
    from core.models.registry import get_model
    from core.tasks.authoring import check_task_name
    from core.workflows.generate import GenerateSettings

    known = {f.name for f in fields(GenerateSettings)}
    unknown = set(params) - known
    if unknown:
        raise JobError(f"Unknown generate option(s): {', '.join(sorted(unknown))}")
    if not params.get("name") or not params.get("model_id"):
        raise JobError("A generate job needs `name` (the task it makes) and `model_id`")
    entry = get_model(params["model_id"], db)
    if not entry.instruct:
        raise JobError(f"'{entry.id}' is not an instruct model: generation needs a chat template")
    check_task_name(params["name"])
    try:
        settings = settings_of(params)
    except TypeError as exc:
        raise JobError(f"Bad generate settings: {exc}") from exc
    problems = settings.problems()
    if problems:
        raise JobError("; ".join(problems))
    return {k: v for k, v in params.items()}


def plan_generate(ctx: JobContext) -> list[Any]:
    from core.jobs.progress import Phase

    count = int(ctx.params.get("count") or 200)
    return [
        Phase("loading model", 5.0),
        Phase("generating", count * SECONDS_PER_RECORD),
        Phase("filtering", 2.0 + count * 0.01),
    ]


def run_generate(ctx: JobContext) -> dict[str, Any]:
    """Make the records (resuming from the run's checkpoint), filter them, store the task."""
    from core.jobs import queue
    from core.jobs.kinds import JobCancelled
    from core.jobs.run import log
    from core.models.loading import load_model
    from core.models.registry import get_model
    from core.workflows.generate import generate

    settings = settings_of(ctx.params)
    ctx.phase("loading model")
    loaded = load_model(get_model(settings.model_id, ctx.db))

    def progress(done: int, total: int, kept: int, rejected: int, eta_s: float) -> None:
        ctx.bar.update(done / max(1, total))
        line = f"generating: {done}/{total} raw, {kept} kept, {rejected} rejected, eta {eta_s:.0f}s"
        log(line)
        if ctx.main:
            queue.set_phase(ctx.db, ctx.job_id, line)
            ctx.write_progress(force=True)

    result = generate(loaded, settings, ctx, progress)
    if result.get("status") == "cancelled":
        raise JobCancelled(result["folder"])
    log(f"kept {result['kept']} of {result['raw']} raw records: {result['rejected']}")
    return result
