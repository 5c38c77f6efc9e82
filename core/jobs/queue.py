"""The job queue: rows in SQLite, written and read by small functions with one job each.

    >>> job_id = submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"],
    ...                              "limit": 8})                                  # doctest: +SKIP
    >>> get(db, job_id)["state"]                                                   # doctest: +SKIP
    'queued'
    >>> request_cancel(db, job_id)                                                 # doctest: +SKIP

A job goes queued → running → succeeded | failed | cancelled. ``submit`` checks everything a
user can get wrong (model, task, its data, the training config) *before* writing a row, so a
bad request raises a clear error and leaves the store untouched. A worker
(``core.jobs.worker``) takes queued jobs in order, several at once where the machine's GPUs
allow (``core.jobs.placement``), and runs each with ``core.jobs.run``.

Job kinds and their ``params``:

- ``eval``: ``model_id``, ``tasks`` (list), optional ``split``, ``limit``, ``num_shots``,
  ``seed``, ``batch_size``, ``dtype``, ``device``.
- ``train`` / ``finetune_compare``: ``model_id``, ``task``, and either ``config`` (a full
  ``TrainConfig`` dict) or ``preset`` + ``overrides``; ``submit`` stores the resolved ``config``
  and the fine-tuned model's id, ``new_model_id``. ``resume_from``: a checkpoint directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from core import paths, store
from core.jobs import kinds
from core.jobs.kinds import EVAL_OPTIONS, JobError  # noqa: F401  (re-exported for callers)
from core.store import Database

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
HEARTBEAT_STALE_S = 30.0  # a running job stamps its heartbeat every 2 s


# ---------------------------------------------------------------- writing jobs


def validate(db: Database, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check a request (``kinds.get(kind).validate``) and return the params to store.

    Raises ``JobError`` / ``RegistryError`` / ``TaskSpecError`` / ``DatasetImportError`` /
    ``ValueError`` with a message a user can act on; writes nothing.
    """
    job_kind = kinds.get(kind)
    params = dict(params)
    if not params.get("model_id"):
        raise JobError("A job needs a model_id")
    return job_kind.validate(db, params)


def _model_id_taken(db: Database, candidate: str) -> bool:
    """Whether a job reserved this fine-tuned model id, a model has it, or a run folder exists."""
    reserved = db.execute(
        "select 1 from model_reservations where model_id = ?", [candidate]
    ).fetchone()
    if reserved:
        return True
    model = db.execute("select 1 from models where id = ?", [candidate]).fetchone()
    folders = (paths.runs_dir() / candidate, paths.adapters_dir() / candidate)
    return bool(model) or any(folder.exists() for folder in folders)


def _reserve_model_id(db: Database, wanted: str, job_id: int) -> str:
    """``wanted``, or ``wanted-2``, ``-3``...: the first id nobody uses, reserved for ``job_id``.

    Called inside the submit transaction (``BEGIN IMMEDIATE``), so no other submit can take the
    same id between the check and the insert; the reservation table's primary key makes a
    duplicate impossible even so.
    """
    candidate, number = wanted, 1
    while _model_id_taken(db, candidate):
        number += 1
        candidate = f"{wanted}-{number}"
    db.execute(
        "insert into model_reservations (model_id, job_id, created_at) values (?, ?, ?)",
        [candidate, job_id, store.now_iso()],
    )
    return candidate


def submit(
    db: Database,
    kind: str,
    params: dict[str, Any],
    *,
    resumed_from_job: int | None = None,
    run_dir: str | Path | None = None,
) -> int:
    """Validate ``params`` and queue a job; returns its id. Nothing is written on a bad request.

    A training job gets its fine-tuned model id (``new_model_id``) reserved in the same
    transaction that writes the row, so parallel submits can never share one; a resumed job
    keeps the id of the job it resumes.

    >>> submit(db, "train", {"model_id": "tiny-llama-chat", "task": "fin_sentiment",
    ...                      "preset": "quick", "overrides": {"max_train_examples": 32}})  # doctest: +SKIP
    7
    """
    params = validate(db, kind, params)
    trains = kinds.get(kind).trains
    db.execute("BEGIN IMMEDIATE")
    try:
        cursor = db.execute(
            "insert into jobs (kind, params_json, state, progress, created_at, cancel_requested, "
            "resumed_from_job) values (?, ?, 'queued', 0, ?, 0, ?)",
            [kind, store.to_json(params), store.now_iso(), resumed_from_job],
        )
        job_id = int(cursor.lastrowid)
        if trains and not params.get("new_model_id"):
            from core.training.finetune import new_model_id

            config = params["config"]
            wanted = new_model_id(params["model_id"], params["task"], config["method"])
            params["new_model_id"] = _reserve_model_id(db, wanted, job_id)
        job_dir = paths.runs_dir() / f"job-{job_id}"
        if run_dir is None:
            run_dir = paths.runs_dir() / params["new_model_id"] if trains else job_dir
        db.execute(
            "update jobs set params_json = ?, log_path = ?, run_dir = ? where id = ?",
            [store.to_json(params), str(job_dir / "job.log"), str(Path(run_dir)), job_id],
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return job_id


LOCK_ATTEMPTS = 3  # job-row writes that met a locked store: tries, each waiting the busy timeout


def _update(db: Database, job_id: int, values: dict[str, Any], *states: str) -> bool:
    """Set ``values`` on the job if it is in one of ``states`` (any state when none); True if so.

    The state guard makes every transition safe against races: a job that recorded its own end
    is never overwritten by the worker, and a cancelled queued job is never started.
    """
    columns = ", ".join(f"[{k}] = ?" for k in values)
    where = f" and state in ({', '.join('?' * len(states))})" if states else ""
    sql = f"update jobs set {columns} where id = ?{where}"
    parameters = [*values.values(), job_id, *states]
    for attempt in range(1, LOCK_ATTEMPTS):
        try:
            return _run_update(db, sql, parameters)
        except sqlite3.OperationalError as exc:
            # The store waits BUSY_TIMEOUT_MS for a lock; a store that busy (a loaded machine,
            # many processes) must not fail a running job over a phase or heartbeat write.
            if "locked" not in str(exc):
                raise
            time.sleep(attempt)
    return _run_update(db, sql, parameters)  # the last try: its error is the caller's


def _run_update(db: Database, sql: str, parameters: list[Any]) -> bool:
    with db.conn:
        cursor = db.execute(sql, parameters)
    return cursor.rowcount > 0


def claim_next(db: Database) -> dict[str, Any] | None:
    """Atomically move the oldest queued job to running and return it (None: queue empty)."""
    with db.conn:
        row = db.execute(
            "update jobs set state = 'running', started_at = ?, phase = 'starting', progress = 0 "
            "where id = (select id from jobs where state = 'queued' order by id limit 1) "
            "and state = 'queued' returning id",
            [store.now_iso()],
        ).fetchone()
    return get(db, row[0]) if row else None


def claim(db: Database, job_id: int) -> dict[str, Any] | None:
    """Atomically move this queued job to running and return it (None: it is no longer
    queued, e.g. cancelled since the worker chose it)."""
    with db.conn:
        row = db.execute(
            "update jobs set state = 'running', started_at = ?, phase = 'starting', progress = 0 "
            "where id = ? and state = 'queued' returning id",
            [store.now_iso(), job_id],
        ).fetchone()
    return get(db, row[0]) if row else None


def set_devices(db: Database, job_id: int, devices: str) -> bool:
    """Record what the running job was given to run on ("cuda:0,1", "cpu", "cpu x2")."""
    return _update(db, job_id, {"devices": devices}, "running")


def mark_running(db: Database, job_id: int, pid: int | None = None) -> bool:
    """queued → running (or record the pid of an already running job)."""
    values: dict[str, Any] = {"state": "running", "heartbeat_at": store.now_iso()}
    if pid is not None:
        values.update(pid=pid, pid_started=process_started(pid))
    if get(db, job_id)["started_at"] is None:
        values["started_at"] = store.now_iso()
    return _update(db, job_id, values, *ACTIVE_STATES)


def set_pid(db: Database, job_id: int, pid: int) -> bool:
    """Record the pid (and process group) of a running job's process, with its start time.

    The start time tells this process from a later one that got the same pid (after a
    reboot, say): nothing is ever signalled or waited for on a pid alone.
    """
    return _update(db, job_id, {"pid": pid, "pid_started": process_started(pid)}, "running")


def set_plan(db: Database, job_id: int, plan: list[dict[str, Any]]) -> bool:
    """The running job's phases with their estimated seconds (what its progress bar spans)."""
    return _update(db, job_id, {"plan_json": store.to_json(plan)}, "running")


def set_phase(db: Database, job_id: int, phase: str) -> bool:
    """Name the running job's current phase."""
    return _update(db, job_id, {"phase": phase}, "running")


def set_progress(db: Database, job_id: int, progress: float, eta_s: float | None = None) -> bool:
    """The share of the whole job done (clamped to 0..1) and the seconds it has left."""
    values = {"progress": max(0.0, min(1.0, float(progress))), "eta_s": eta_s}
    return _update(db, job_id, values, "running")


def heartbeat(db: Database, job_id: int) -> bool:
    """Stamp ``heartbeat_at``: the job's process is alive (core.jobs.run, every 2 s)."""
    return _update(db, job_id, {"heartbeat_at": store.now_iso()}, "running")


def add_progress(db: Database, job_id: int, row: dict[str, Any]) -> int:
    """Store one training progress row (the trainer's dict); ``set_progress`` moves the bar."""
    columns = (
        "step",
        "total_steps",
        "epoch",
        "train_loss",
        "val_loss",
        "learning_rate",
        "tokens_per_s",
        "elapsed_s",
        "eta_s",
    )
    record = {k: row.get(k) for k in columns}
    with db.conn:
        pk = (
            db["job_progress"]
            .insert({**record, "job_id": job_id, "created_at": store.now_iso()})
            .last_pk
        )
    return int(pk)


def mark_succeeded(db: Database, job_id: int, result: Any) -> bool:
    """running → succeeded, storing ``result`` (a JSON-able dict) as ``result_json``."""
    return _update(
        db,
        job_id,
        {
            "state": "succeeded",
            "progress": 1.0,
            "phase": "done",
            "finished_at": store.now_iso(),
            "result_json": store.to_json(result),
        },
        "running",
    )


def mark_failed(db: Database, job_id: int, error: str) -> bool:
    """queued / running → failed with ``error``, a readable one-line reason (see reasons.py)."""
    return _update(
        db,
        job_id,
        {"state": "failed", "error": error, "phase": "failed", "finished_at": store.now_iso()},
        *ACTIVE_STATES,
    )


def mark_cancelled(db: Database, job_id: int, checkpoint: str | Path | None = None) -> bool:
    """queued / running → cancelled, with the checkpoint a resume would start from."""
    values: dict[str, Any] = {
        "state": "cancelled",
        "phase": "cancelled",
        "finished_at": store.now_iso(),
    }
    if checkpoint:
        values["checkpoint"] = str(checkpoint)
    return _update(db, job_id, values, *ACTIVE_STATES)


def retry_later(
    db: Database,
    job_id: int,
    params: dict[str, Any],
    attempts: list[dict[str, Any]],
    retry_at: float,
) -> bool:
    """running / failed → queued again under the same id, with new ``params``, the history of
    its ``attempts`` and the Unix time before which the worker does not start it."""
    values = {
        "state": "queued",
        "phase": "waiting to retry",
        "progress": 0.0,
        "error": None,
        "finished_at": None,
        "pid": None,
        "pid_started": None,
        "params_json": store.to_json(params),
        "attempts_json": store.to_json(attempts),
        "retry_at": retry_at,
    }
    return _update(db, job_id, values, "running", "failed")


def set_attempts(db: Database, job_id: int, attempts: list[dict[str, Any]]) -> bool:
    """Record the job's history of attempts (an ended job's last one included)."""
    return _update(db, job_id, {"attempts_json": store.to_json(attempts)})


def add_event(
    db: Database, job_id: int, kind: str, message: str, seconds: float | None = None
) -> int:
    """Store one event of a running job (the resource guard's pause, resume, shrink)."""
    row = {"job_id": job_id, "ts": time.time(), "kind": kind, "message": message}
    with db.conn:
        pk = db["job_events"].insert({**row, "seconds": seconds}).last_pk
    return int(pk)


def events(db: Database, job_id: int) -> list[dict[str, Any]]:
    """The job's events, oldest first."""
    return list(db.query("select * from job_events where job_id = ? order by id", [job_id]))


def paused_seconds(db: Database, job_id: int) -> float:
    """How long the resource guard held the job, over all its attempts."""
    row = db.execute(
        "select coalesce(sum(seconds), 0) from job_events where job_id = ? and kind = 'resume'",
        [job_id],
    ).fetchone()
    return float(row[0])


# ---------------------------------------------------------------- reading jobs


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["params"] = json.loads(row["params_json"]) if row.get("params_json") else {}
    row["result"] = json.loads(row["result_json"]) if row.get("result_json") else None
    row["plan"] = json.loads(row["plan_json"]) if row.get("plan_json") else []
    row["attempts"] = json.loads(row["attempts_json"]) if row.get("attempts_json") else []
    return row


def get(db: Database, job_id: int) -> dict[str, Any]:
    """The job row, with ``params`` and ``result`` decoded; JobError when there is none."""
    rows = list(db.query("select * from jobs where id = ?", [job_id]))
    if not rows:
        raise JobError(f"No job {job_id}: `finboard jobs` lists them")
    return _decode(rows[0])


def list_jobs(db: Database, limit: int = 50, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The newest jobs first (decoded like ``get``), optionally only those in ``states``."""
    where = f"where state in ({', '.join('?' * len(states))}) " if states else ""
    rows = db.query(f"select * from jobs {where}order by id desc limit ?", [*states, limit])
    return [_decode(row) for row in rows]


def job_to_show(jobs: list[dict[str, Any]], pinned: int | None, followed: list[int] | None) -> int:
    """The job the Jobs page shows (``jobs``: ``list_jobs``'s rows, newest first).

    ``followed``: jobs queued together (the demo): the first of them still queued or running,
    then the last one once all have ended, so the panel moves along the chain as it runs.
    ``pinned``: the job the user picked, launched or resumed. Otherwise the running job, the
    next queued one, or the newest.
    """
    ids = [job["id"] for job in jobs]
    if followed:
        chain = sorted(i for i in followed if i in ids)
        waiting = [j["id"] for j in jobs if j["id"] in chain and j["state"] in ACTIVE_STATES]
        if waiting:
            return min(waiting)
        if chain:
            return chain[-1]
    if pinned in ids:
        return pinned
    for state in ("running", "queued"):
        matching = [j["id"] for j in jobs if j["state"] == state]
        if matching:
            return min(matching)  # the oldest: the queue runs in order
    return ids[0]


def queued_jobs(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The queued jobs, oldest first (the order the worker starts them in), decoded."""
    rows = db.query("select * from jobs where state = 'queued' order by id limit ?", [limit])
    return [_decode(row) for row in rows]


def progress_rows(db: Database, job_id: int) -> list[dict[str, Any]]:
    """The job's training progress rows, oldest first."""
    return list(db.query("select * from job_progress where job_id = ? order by id", [job_id]))


def latest_progress(db: Database, job_id: int) -> dict[str, Any] | None:
    """The job's newest training progress row, or None before the first one."""
    rows = list(
        db.query("select * from job_progress where job_id = ? order by id desc limit 1", [job_id])
    )
    return rows[0] if rows else None


def cancel_requested(db: Database, job_id: int) -> bool:
    """Whether somebody asked this job to stop."""
    row = db.execute("select cancel_requested from jobs where id = ?", [job_id]).fetchone()
    return bool(row and row[0])


def resume_chain(db: Database, job_id: int) -> list[int]:
    """``job_id`` and the jobs it resumed, oldest first (a training run split by cancels)."""
    chain, current = [], job_id
    while current is not None and current not in chain:
        chain.append(current)
        row = db.execute("select resumed_from_job from jobs where id = ?", [current]).fetchone()
        current = row[0] if row else None
    return chain[::-1]


def training_curve(db: Database, job_id: int) -> list[dict[str, Any]]:
    """Train / validation loss by step over a job and the jobs it resumed.

    When a job was resumed by a later one, the later job's row wins for a step both logged.
    ``val_loss`` is kept only on the steps where it was measured (progress rows repeat the
    last one).
    """
    by_step: dict[int, dict[str, Any]] = {}
    for number in resume_chain(db, job_id):
        for row in progress_rows(db, number):
            by_step[int(row["step"])] = {**row, "job_id": number}
    curve = [by_step[step] for step in sorted(by_step)]
    previous = None
    for row in curve:
        measured = row["val_loss"]
        if measured == previous:
            row["val_loss"] = None
        previous = measured
    return curve


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


OWN_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\] ")


def log_lines(job: dict[str, Any], n_lines: int = 200) -> tuple[list[str], list[str]]:
    """The log's last lines, split into the product's own (time-stamped) and the libraries'.

    Progress bars and warnings of the libraries (tqdm, transformers, torch) are kept, apart, so
    a page can fold them away; a traceback after a failure is among them.

        >>> log_lines({"log_path": None})
        ([], [])
    """
    ours, library = [], []
    for line in log_tail(job, n_lines).splitlines():
        for part in line.split("\r"):  # tqdm redraws a bar on one line with carriage returns
            if part.strip():
                (ours if OWN_LINE.match(part) else library).append(part.rstrip())
    return ours, library


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


def process_started(pid: int | None) -> float | None:
    """When process ``pid`` started (Unix time), or None when there is no such process."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time()) if pid else None
    except (psutil.Error, ValueError):
        return None


def job_process_alive(job: dict[str, Any]) -> bool:
    """Whether the job's own process still runs: its pid exists and started when recorded."""
    pid = job.get("pid")
    if not pid_alive(pid):
        return False
    recorded = job.get("pid_started")
    if recorded is None:  # rows from before start times were kept
        return True
    started = process_started(pid)
    return started is not None and abs(started - recorded) < 1.0


def reap_stale(db: Database, stale_s: float = HEARTBEAT_STALE_S) -> list[int]:
    """Fail every 'running' job whose process is gone and whose heartbeat stopped; their ids.

    A job's process stamps its heartbeat every 2 s. When the worker and the job both died (a
    crash, a reboot), nobody records an end: a reader calling this (the Jobs page, ``finboard
    jobs``, a starting worker) finds such a job and fails it with the reason its log gives.
    """
    from datetime import datetime, timezone

    from core.jobs.reasons import failure_reason

    reaped = []
    now = datetime.now(timezone.utc)
    for job in list_jobs(db, limit=1000, states=("running",)):
        stamp = job.get("heartbeat_at") or job.get("started_at") or job.get("created_at")
        silent = (now - datetime.fromisoformat(stamp)).total_seconds()
        if silent < stale_s or job_process_alive(job):
            continue
        found = failure_reason(None, log_tail(job, 80))
        why = f"its process is gone and its heartbeat stopped at {stamp[11:19]} UTC"
        reason = found if "ended without recording" not in found else f"the job stopped: {why}"
        if mark_failed(db, job["id"], reason):
            reaped.append(int(job["id"]))
    return reaped


def signal_job(job: dict[str, Any], signum: int = signal.SIGTERM) -> bool:
    """Send ``signum`` to the job's process group (its pid leads one); True if sent."""
    pid = job.get("pid")
    if not job_process_alive(job):  # a pid reused by another program is never signalled
        return False
    try:
        if os.getpgid(pid) != pid:  # not the group leader we started: never signal a stranger
            return False
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def request_cancel(db: Database, job_id: int) -> str:
    """Cancel a job: a queued one at once, a running one by SIGTERM to its process group.

    A running job saves a checkpoint and ends as 'cancelled' within seconds (the worker kills it
    if it does not). Returns the job's state after the request.
    """
    if _update(
        db,
        job_id,
        {
            "state": "cancelled",
            "phase": "cancelled",
            "cancel_requested": 1,
            "finished_at": store.now_iso(),
        },
        "queued",
    ):
        return "cancelled"
    job = get(db, job_id)
    if job["state"] != "running":
        return job["state"]
    _update(db, job_id, {"cancel_requested": 1}, "running")
    signal_job(job, signal.SIGTERM)
    return "running"


def resume(db: Database, job_id: int, checkpoint: int | str | Path | None = None) -> int:
    """Queue a failed or cancelled training job again from a checkpoint; returns the new job id.

    ``checkpoint``: a step number, a checkpoint directory, or None for the latest one (with no
    checkpoint at all the job starts over). The new job keeps the params, the run directory and
    the fine-tuned model id of the old one.

        >>> resume(db, 12)            # doctest: +SKIP
        13
    """
    job = get(db, job_id)
    resumable = kinds.get(job["kind"]).trains or job["kind"] == "generate"
    if not resumable:
        raise JobError(f"Job {job_id} is an {job['kind']} job: only training jobs can be resumed")
    if job["state"] not in ("failed", "cancelled"):
        raise JobError(
            f"Job {job_id} is {job['state']}: only failed or cancelled jobs can be resumed"
        )
    if job["kind"] == "generate":  # it resumes from its own checkpoint (core.workflows.generate)
        return submit(db, "generate", dict(job["params"]), resumed_from_job=job_id)
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
