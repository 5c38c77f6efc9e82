"""Helpers of the job tests: waiting for states, training params, a user task, a store dump."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

from core.data.importer import ColumnMapping
from core.jobs import queue

WAIT_S = 90  # generous: the machine has 2 cores and other work may run
LABELS = ["positive", "neutral", "negative"]
QUICK_TRAIN = {"max_train_examples": 32, "batch_size": 4, "log_every": 1}
LONG_TRAIN = {
    "max_train_examples": 0,
    "batch_size": 1,
    "epochs": 5,
    "log_every": 1,
    "eval_every": 100000,
    "save_every": 100000,
}


def wait_for(predicate, timeout: float = WAIT_S, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_state(db, job_id: int, states=("succeeded", "failed", "cancelled"), timeout=WAIT_S):
    def ended():
        job = queue.get(db, job_id)
        return job if job["state"] in states else None

    try:
        return wait_for(ended, timeout, what=f"job {job_id} to reach {states}")
    except AssertionError:
        job = queue.get(db, job_id)
        raise AssertionError(
            f"job {job_id} is {job['state']} ({job['phase']}); log:\n{queue.log_tail(job, 30)}"
        ) from None


def first_progress(db, job_id: int, min_step: int = 1):
    return wait_for(
        lambda: [r for r in queue.progress_rows(db, job_id) if r["step"] >= min_step],
        what=f"job {job_id} to reach step {min_step}",
        interval=0.1,
    )


def train_params(settings: dict, model: str = "tiny-llama-chat", task: str = "fin_sentiment"):
    return {"model_id": model, "task": task, "preset": "quick", "overrides": settings}


def table_rows(db) -> dict[str, list]:
    """Every row of every table, to show a failed request changed nothing."""
    return {
        name: sorted(map(repr, db.execute(f"select * from [{name}]").fetchall()))
        for name in db.table_names()
    }


def write_user_csv(path: Path, n: int = 40) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["headline", "tone"])
        for i in range(n):
            writer.writerow([f"Company {i} reports results for quarter {i % 4 + 1}", LABELS[i % 3]])
    return path


def make_user_task(tmp_path: Path, name: str, n: int = 40):
    from core.tasks.authoring import create_task_from_file

    source = write_user_csv(tmp_path / f"{name}.csv", n)
    return create_task_from_file(
        source,
        name=name,
        kind="choice",
        mapping=ColumnMapping(text="headline", label="tone"),
        labels=LABELS,
        template="Headline: {text}\nTone:",
    )


def run_job_here(db, job_id: int) -> str:
    """Run a queued job in this process (as the job runner would), then restore SIGTERM's
    handler, which ``run_job`` replaces with its cancel handler."""
    from core.jobs.run import run_job

    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        return run_job(job_id, db)
    finally:
        signal.signal(signal.SIGTERM, sigterm)


def kill_group(pid: int | None) -> None:
    if not pid:
        return
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
