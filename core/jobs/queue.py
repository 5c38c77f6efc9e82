"""The job queue: rows in SQLite, written and read by small functions with one job each.

    >>> job_id = submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"],
    ...                              "limit": 8})                                  # doctest: +SKIP
    >>> get(db, job_id)["state"]                                                   # doctest: +SKIP
    'queued'
    >>> request_cancel(db, job_id)                                                 # doctest: +SKIP

A job goes queued → running → succeeded | failed | cancelled. ``submit`` checks everything a
user can get wrong (model, task, its data, the training config) *before* writing a row, so a
bad request raises a clear error and leaves the store untouched. A worker
(``core.jobs.worker``) takes queued jobs in order and runs each with ``core.jobs.run``.

Job kinds and their ``params``:

- ``eval``: ``model_id``, ``tasks`` (list), optional ``split``, ``limit``, ``num_shots``,
  ``seed``, ``batch_size``, ``dtype``, ``device``.
- ``train`` / ``finetune_compare``: ``model_id``, ``task``, and either ``config`` (a full
  ``TrainConfig`` dict) or ``preset`` + ``overrides``; ``submit`` stores the resolved ``config``
  and the fine-tuned model's id, ``new_model_id``. ``resume_from``: a checkpoint directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
from pathlib import Path
from typing import Any

import sqlite_utils

from core import paths, store

KINDS = ("eval", "train", "finetune_compare")
TRAINING_KINDS = ("train", "finetune_compare")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
EVAL_OPTIONS = ("split", "limit", "num_shots", "seed", "batch_size", "dtype", "device")


class JobError(ValueError):
    """A job request or action that cannot be done; the message says why and what to do."""


# ---------------------------------------------------------------- validation


def _check_task_data(task_name: str, splits: tuple[str, ...]) -> Any:
    """The task's spec, after loading ``splits`` (a bad or unknown-format file raises here)."""
    from core.tasks import get_task, load_split

    spec = get_task(task_name)
    for split in splits:
        load_split(spec, split)
    return spec


def training_config(params: dict[str, Any]) -> Any:
    """The validated ``TrainConfig`` of a train / finetune_compare request.

    >>> training_config({"preset": "quick", "overrides": {"epochs": "2"}}).epochs
    2.0
    """
    from core.training.config import TrainConfig, preset_config

    if params.get("config") is not None:
        config = dict(params["config"])
        if params.get("overrides"):
            config.update(params["overrides"])
        try:
            return preset_config(None, config)
        except TypeError as exc:
            raise ValueError(f"Bad training config: {exc}") from exc
    config = preset_config(params.get("preset"), params.get("overrides") or {})
    if params.get("method"):
        config = TrainConfig(**{**config.to_dict(), "method": params["method"]}).validate()
    return config


def _unique_model_id(db: sqlite_utils.Database, wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``-3``... when a job, model or run folder already uses it."""
    taken = {
        row[0]
        for row in db.execute(
            "select json_extract(params_json, '$.new_model_id') from jobs "
            "where json_extract(params_json, '$.new_model_id') like ?",
            [wanted + "%"],
        ).fetchall()
    }
    taken |= {row[0] for row in db.execute("select id from models where id like ?", [wanted + "%"])}
    candidate, number = wanted, 1
    while candidate in taken or (paths.runs_dir() / candidate).exists():
        number += 1
        candidate = f"{wanted}-{number}"
    return candidate


def validate(db: sqlite_utils.Database, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check a request and return the params to store (resolved config, new model id).

    Raises ``JobError`` / ``RegistryError`` / ``TaskSpecError`` / ``DatasetImportError`` /
    ``ValueError`` with a message a user can act on; writes nothing.
    """
    from core.registry import get_model

    if kind not in KINDS:
        raise JobError(f"Unknown job kind '{kind}': use one of {', '.join(KINDS)}")
    params = dict(params)
    if not params.get("model_id"):
        raise JobError("A job needs a model_id")
    entry = get_model(params["model_id"], db)
    if kind == "eval":
        tasks = params.get("tasks") or ([params["task"]] if params.get("task") else [])
        if isinstance(tasks, str) or not tasks:
            raise JobError("An eval job needs `tasks`: a list of task names")
        unknown = set(params) - {"model_id", "tasks", "task", *EVAL_OPTIONS}
        if unknown:
            raise JobError(f"Unknown eval option(s): {', '.join(sorted(unknown))}")
        limit = params.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise JobError(f"limit must be a positive whole number, not {limit!r}")
        split = params.get("split") or "test"
        for name in tasks:
            _check_task_data(name, tuple(dict.fromkeys((split, "train"))))
        params.pop("task", None)
        params["tasks"] = list(tasks)
        return params
    if not params.get("task"):
        raise JobError(f"A {kind} job needs a task")
    if entry.is_finetuned:
        raise JobError(
            f"'{entry.id}' is already fine-tuned: choose its base model '{entry.base_model_id}'"
        )
    spec = _check_task_data(params["task"], ("train", "validation", "test"))
    config = training_config(params)
    if config.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise JobError(
            "QLoRA needs the bitsandbytes package: pip install bitsandbytes, or choose lora"
        )
    if params.get("resume_from") and not Path(params["resume_from"]).is_dir():
        raise JobError(f"Checkpoint not found: {params['resume_from']}")
    from core.training.finetune import new_model_id

    params["config"] = config.to_dict()
    params.pop("overrides", None)
    params.pop("method", None)
    params["new_model_id"] = params.get("new_model_id") or _unique_model_id(
        db, new_model_id(entry.id, spec.name, config.method)
    )
    return params


# ---------------------------------------------------------------- writing jobs


def submit(
    db: sqlite_utils.Database,
    kind: str,
    params: dict[str, Any],
    *,
    resumed_from_job: int | None = None,
    run_dir: str | Path | None = None,
) -> int:
    """Validate ``params`` and queue a job; returns its id. Nothing is written on a bad request.

    >>> submit(db, "train", {"model_id": "tiny-llama-chat", "task": "fin_sentiment",
    ...                      "preset": "quick", "overrides": {"max_train_examples": 32}})  # doctest: +SKIP
    7
    """
    params = validate(db, kind, params)
    with db.conn:
        job_id = int(
            db["jobs"]
            .insert(
                {
                    "kind": kind,
                    "params_json": store.to_json(params),
                    "state": "queued",
                    "progress": 0.0,
                    "created_at": store.now_iso(),
                    "cancel_requested": 0,
                    "resumed_from_job": resumed_from_job,
                }
            )
            .last_pk
        )
        job_dir = paths.runs_dir() / f"job-{job_id}"
        if run_dir is None:
            run_dir = (
                paths.runs_dir() / params["new_model_id"] if kind in TRAINING_KINDS else job_dir
            )
        db["jobs"].update(
            job_id, {"log_path": str(job_dir / "job.log"), "run_dir": str(Path(run_dir))}
        )
    return job_id


def _update(db: sqlite_utils.Database, job_id: int, values: dict[str, Any], *states: str) -> bool:
    """Set ``values`` on the job if it is in one of ``states`` (any state when none); True if so.

    The state guard makes every transition safe against races: a job that recorded its own end
    is never overwritten by the worker, and a cancelled queued job is never started.
    """
    columns = ", ".join(f"[{k}] = ?" for k in values)
    where = f" and state in ({', '.join('?' * len(states))})" if states else ""
    with db.conn:
        cursor = db.execute(
            f"update jobs set {columns} where id = ?{where}", [*values.values(), job_id, *states]
        )
    return cursor.rowcount > 0


def claim_next(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """Atomically move the oldest queued job to running and return it (None: queue empty)."""
    with db.conn:
        row = db.execute(
            "update jobs set state = 'running', started_at = ?, phase = 'starting', progress = 0 "
            "where id = (select id from jobs where state = 'queued' order by id limit 1) "
            "and state = 'queued' returning id",
            [store.now_iso()],
        ).fetchone()
    return get(db, row[0]) if row else None


def mark_running(db: sqlite_utils.Database, job_id: int, pid: int | None = None) -> bool:
    """queued → running (or record the pid of an already running job)."""
    values: dict[str, Any] = {"state": "running", "heartbeat_at": store.now_iso()}
    if pid is not None:
        values["pid"] = pid
    if get(db, job_id)["started_at"] is None:
        values["started_at"] = store.now_iso()
    return _update(db, job_id, values, *ACTIVE_STATES)


def set_pid(db: sqlite_utils.Database, job_id: int, pid: int) -> bool:
    """Record the pid (and process group) of a running job's process."""
    return _update(db, job_id, {"pid": pid}, "running")


def set_phase(db: sqlite_utils.Database, job_id: int, phase: str, progress: float = 0.0) -> bool:
    """Name the running job's current phase; ``progress`` is the fraction of it done (0..1)."""
    return _update(db, job_id, {"phase": phase, "progress": progress}, "running")


def set_progress(db: sqlite_utils.Database, job_id: int, progress: float) -> bool:
    """The fraction of the current phase done, clamped to 0..1."""
    return _update(db, job_id, {"progress": max(0.0, min(1.0, float(progress)))}, "running")


def heartbeat(db: sqlite_utils.Database, job_id: int) -> bool:
    """Stamp ``heartbeat_at``: the job's process is alive (core.jobs.run, every 2 s)."""
    return _update(db, job_id, {"heartbeat_at": store.now_iso()}, "running")


def add_progress(db: sqlite_utils.Database, job_id: int, row: dict[str, Any]) -> int:
    """Store one training progress row (the trainer's dict) and move the job's progress."""
    columns = ("step", "total_steps", "epoch", "train_loss", "val_loss", "learning_rate",
               "tokens_per_s", "elapsed_s", "eta_s")  # fmt: skip
    record = {k: row.get(k) for k in columns}
    with db.conn:
        pk = (
            db["job_progress"]
            .insert({**record, "job_id": job_id, "created_at": store.now_iso()})
            .last_pk
        )
    if row.get("total_steps"):
        set_progress(db, job_id, row["step"] / row["total_steps"])
    return int(pk)


def mark_succeeded(db: sqlite_utils.Database, job_id: int, result: Any) -> bool:
    """running → succeeded, storing ``result`` (a JSON-able dict) as ``result_json``."""
    return _update(
        db,
        job_id,
        {"state": "succeeded", "progress": 1.0, "phase": "done", "finished_at": store.now_iso(),
         "result_json": store.to_json(result)},
        "running",
    )  # fmt: skip


def mark_failed(db: sqlite_utils.Database, job_id: int, error: str) -> bool:
    """queued / running → failed with ``error``, a readable one-line reason (see reasons.py)."""
    return _update(
        db,
        job_id,
        {"state": "failed", "error": error, "phase": "failed", "finished_at": store.now_iso()},
        *ACTIVE_STATES,
    )


def mark_cancelled(
    db: sqlite_utils.Database, job_id: int, checkpoint: str | Path | None = None
) -> bool:
    """queued / running → cancelled, with the checkpoint a resume would start from."""
    values: dict[str, Any] = {"state": "cancelled", "phase": "cancelled",
                              "finished_at": store.now_iso()}  # fmt: skip
    if checkpoint:
        values["checkpoint"] = str(checkpoint)
    return _update(db, job_id, values, *ACTIVE_STATES)


# ---------------------------------------------------------------- reading jobs


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["params"] = json.loads(row["params_json"]) if row.get("params_json") else {}
    row["result"] = json.loads(row["result_json"]) if row.get("result_json") else None
    return row


def get(db: sqlite_utils.Database, job_id: int) -> dict[str, Any]:
    """The job row, with ``params`` and ``result`` decoded; JobError when there is none."""
    rows = list(db.query("select * from jobs where id = ?", [job_id]))
    if not rows:
        raise JobError(f"No job {job_id}: `finboard jobs` lists them")
    return _decode(rows[0])


def list_jobs(
    db: sqlite_utils.Database, limit: int = 50, states: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The newest jobs first (decoded like ``get``), optionally only those in ``states``."""
    where = f"where state in ({', '.join('?' * len(states))}) " if states else ""
    rows = db.query(f"select * from jobs {where}order by id desc limit ?", [*states, limit])
    return [_decode(row) for row in rows]


def progress_rows(db: sqlite_utils.Database, job_id: int) -> list[dict[str, Any]]:
    """The job's training progress rows, oldest first."""
    return list(db.query("select * from job_progress where job_id = ? order by id", [job_id]))


def checkpoints(job: dict[str, Any]) -> list[tuple[int, Path]]:
    """Resumable checkpoints under the job's ``run_dir/checkpoints``, as (step, path), by step."""
    if not job.get("run_dir"):
        return []
    found = []
    for path in (Path(job["run_dir"]) / "checkpoints").glob("step-*"):
        if path.suffix == ".tmp" or not (path / "state.json").is_file():
            continue
        try:
            found.append((int(path.name.removeprefix("step-")), path))
        except ValueError:
            continue
    return sorted(found)


def log_tail(job: dict[str, Any], n_lines: int = 40) -> str:
    """The last ``n_lines`` lines of the job's log ('' when it has none yet)."""
    path = Path(job.get("log_path") or "")
    if not job.get("log_path") or not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max(64_000, n_lines * 400)))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-n_lines:])


# ---------------------------------------------------------------- actions


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (and is not a zombie)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def signal_job(job: dict[str, Any], signum: int = signal.SIGTERM) -> bool:
    """Send ``signum`` to the job's process group (its pid leads one); True if sent."""
    pid = job.get("pid")
    if not pid_alive(pid):
        return False
    try:
        if os.getpgid(pid) != pid:  # not the group leader we started: never signal a stranger
            return False
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def request_cancel(db: sqlite_utils.Database, job_id: int) -> str:
    """Cancel a job: a queued one at once, a running one by SIGTERM to its process group.

    A running job saves a checkpoint and ends as 'cancelled' within seconds (the worker kills it
    if it does not). Returns the job's state after the request.
    """
    if _update(db, job_id, {"state": "cancelled", "phase": "cancelled", "cancel_requested": 1,
                            "finished_at": store.now_iso()}, "queued"):  # fmt: skip
        return "cancelled"
    job = get(db, job_id)
    if job["state"] != "running":
        return job["state"]
    _update(db, job_id, {"cancel_requested": 1}, "running")
    signal_job(job, signal.SIGTERM)
    return "running"


def resume(
    db: sqlite_utils.Database, job_id: int, checkpoint: int | str | Path | None = None
) -> int:
    """Queue a failed or cancelled training job again from a checkpoint; returns the new job id.

    ``checkpoint``: a step number, a checkpoint directory, or None for the latest one (with no
    checkpoint at all the job starts over). The new job keeps the params, the run directory and
    the fine-tuned model id of the old one.

        >>> resume(db, 12)            # doctest: +SKIP
        13
    """
    job = get(db, job_id)
    if job["kind"] not in TRAINING_KINDS:
        raise JobError(f"Job {job_id} is an {job['kind']} job: only training jobs can be resumed")
    if job["state"] not in ("failed", "cancelled"):
        raise JobError(
            f"Job {job_id} is {job['state']}: only failed or cancelled jobs can be resumed"
        )
    available = checkpoints(job)
    if checkpoint is None:
        chosen = available[-1][1] if available else None
    elif isinstance(checkpoint, int) or str(checkpoint).isdigit():
        matches = [path for step, path in available if step == int(checkpoint)]
        if not matches:
            steps = ", ".join(str(step) for step, _ in available) or "none"
            raise JobError(f"Job {job_id} has no checkpoint at step {checkpoint} (steps: {steps})")
        chosen = matches[0]
    else:
        chosen = Path(checkpoint)
        if not (chosen / "state.json").is_file():
            raise JobError(f"Not a checkpoint directory: {chosen}")
    params = dict(job["params"])
    params["resume_from"] = str(chosen) if chosen else None
    return submit(db, job["kind"], params, resumed_from_job=job_id, run_dir=job["run_dir"])
