"""Out-of-memory recovery: a job that ran out of memory is queued again, same id, smaller passes.

    >>> out_of_memory_failure(-9, "", out_of_memory=True)        # the kernel's OOM killer
    True
    >>> out_of_memory_failure(-9, "", out_of_memory=None)        # a kill nobody can explain
    False
    >>> out_of_memory_failure(1, "Traceback (most recent call last):\\n  File ...\\n"
    ...                       "torch.OutOfMemoryError: CUDA out of memory. Tried to", None)
    True
    >>> smaller_training_config({"batch_size": 8, "grad_accum": 2, "micro_split": 1})
    {'batch_size': 8, 'grad_accum': 2, 'micro_split': 2}
    >>> passes({"batch_size": 8, "grad_accum": 2, "micro_split": 2})
    {'micro_batch': 4, 'grad_accum': 4, 'effective_batch': 16}

Rules (the worker applies them when a job's process has ended, ``after_end``):

- Out of memory means: the process was SIGKILLed while memory had run out (the kernel's
  counter moved or the last sample shows RAM full: ``monitoring.ran_out_of_memory``), or its
  last exception (or last log lines) is an out-of-memory error (CUDA OOM, ``MemoryError``).
- A training job is retried from its latest checkpoint with ``micro_split`` doubled: the
  micro-batch (the examples of one pass) halves and the passes accumulated per optimizer step
  double, so the effective batch, the data order and the schedule stay the same. An
  evaluation is retried with its batch size halved. Neither shrinks below one example.
- At most ``oom_retries`` retries (``configs/guard.yaml``); the n-th waits ``oom_backoff_s`` x
  2^(n-1) seconds (the job's ``retry_at``). The job keeps its id; ``attempts`` lists every
  attempt, its settings, how it ended and why.
"""

from __future__ import annotations

import math
import signal
import time
from typing import Any

from core import guard, store
from core.jobs import kinds, queue
from core.jobs.reasons import OOM_PATTERNS, exit_signal, failure_reason, last_exception
from core.store import Database


def out_of_memory_failure(exit_code: int | None, log_text: str, out_of_memory: bool | None) -> bool:
    """Whether a process that ended with ``exit_code`` and wrote ``log_text`` ran out of memory."""
    if exit_signal(exit_code) == signal.SIGKILL:
        return out_of_memory is True
    exception = last_exception(log_text)
    if exception is not None:
        return any(pattern in part for pattern in OOM_PATTERNS for part in exception)
    tail = [line for line in log_text.splitlines() if line.strip()][-5:]
    return any(pattern in line for pattern in OOM_PATTERNS for line in tail)


def passes(config: dict[str, Any]) -> dict[str, int]:
    """A training config's micro-batch, passes per optimizer step and effective batch."""
    split = int(config.get("micro_split") or 1)
    batch, accum = int(config["batch_size"]), int(config["grad_accum"])
    return {
        "micro_batch": math.ceil(batch / split),
        "grad_accum": accum * split,
        "effective_batch": batch * accum,
    }


def smaller_training_config(config: dict[str, Any]) -> dict[str, Any] | None:
    """The config with twice the passes per micro-batch; None when a pass is one example
    already or the run is sharded (FSDP ranks must run the same passes)."""
    split = int(config.get("micro_split") or 1)
    if config.get("fsdp") or math.ceil(int(config["batch_size"]) / split) <= 1:
        return None
    return {**config, "micro_split": split * 2}


def _eval_batch(job: dict[str, Any]) -> int:
    from core.evaluation.runner import default_batch_size

    given = job["params"].get("batch_size")
    return (
        int(given)
        if given
        else default_batch_size("cuda" if "cuda" in str(job.get("devices")) else "cpu")
    )


def smaller_params(job: dict[str, Any]) -> dict[str, Any] | None:
    """The job's params for its next attempt (None: it cannot run in smaller passes)."""
    params = dict(job["params"])
    if kinds.get(job["kind"]).trains:
        config = smaller_training_config(params["config"])
        if config is None:
            return None
        found = queue.checkpoints(job)
        if found:
            params["resume_from"] = str(found[-1][1])
        return {**params, "config": config}
    batch = _eval_batch(job)
    return None if batch <= 1 else {**params, "batch_size": batch // 2}


def settings_of(job: dict[str, Any]) -> dict[str, Any]:
    """What an attempt ran with, for its history."""
    if kinds.get(job["kind"]).trains:
        return {**passes(job["params"]["config"]), "resume_from": job["params"].get("resume_from")}
    return {"batch_size": _eval_batch(job)}


def attempt(job: dict[str, Any], outcome: str, reason: str | None) -> dict[str, Any]:
    """One entry of a job's history: its number, times, settings, how it ended and why."""
    return {
        "attempt": len(job.get("attempts") or []) + 1,
        "started_at": job.get("started_at"),
        "ended_at": store.now_iso(),
        **settings_of(job),
        "outcome": outcome,
        "reason": reason,
    }


def backoff_s(settings: guard.GuardSettings, retry_number: int) -> float:
    """Seconds before the ``retry_number``-th retry (1 is the first): doubling each time."""
    return settings.oom_backoff_s * 2 ** (retry_number - 1)


def after_end(
    db: Database,
    job: dict[str, Any],
    exit_code: int | None,
    log_text: str,
    out_of_memory: bool | None,
    settings: guard.GuardSettings | None = None,
) -> str | None:
    """After the job's process ended (``job``: its row now): queue it again if it ran out of
    memory and may be retried; returns a line for the worker's log when it did, else None.

    A job already retried gets its last attempt added to its history whatever the end."""
    log_text = this_attempt(log_text, job["id"])
    ended = job["state"] if job["state"] != "running" else "failed"
    reason = job.get("error")
    if ended == "failed":
        reason = reason or failure_reason(exit_code, log_text, out_of_memory)
    short = out_of_memory_failure(exit_code, log_text, out_of_memory)
    short = short or "out of memory" in (job.get("error") or "")  # e.g. a data-parallel rank's
    if ended != "failed" or not short:
        close_history(db, job, ended, reason)
        return None
    settings = settings or guard.load_settings()
    retries = len(job.get("attempts") or [])
    params = smaller_params(job) if retries < settings.oom_retries else None
    history = [*(job.get("attempts") or []), attempt(job, "out of memory", reason)]
    if params is None:  # retried enough, or one example a pass already: the job fails
        queue.set_attempts(db, job["id"], history)
        return None
    wait = backoff_s(settings, retries + 1)
    if not queue.retry_later(db, job["id"], params, history, time.time() + wait):
        return None
    shown = ", ".join(
        f"{key.replace('_', ' ')} {value}"
        for key, value in settings_of({**job, "params": params}).items()
        if key != "resume_from"
    )
    message = (
        f"out of memory ({reason}): retry {retries + 1} of {settings.oom_retries} in {wait:g} s "
        f"with {shown}"
    )
    queue.add_event(db, job["id"], "retry", message)
    return message


def this_attempt(log_text: str, job_id: int) -> str:
    """The log from the latest start of the job's process on (the log spans every attempt).

    >>> this_attempt("job 3 started in pid 1\\nMemoryError\\njob 3 started in pid 2\\nok", 3)
    'job 3 started in pid 2\\nok'
    """
    start = log_text.rfind(f"job {job_id} started in pid")
    return log_text if start < 0 else log_text[start:]


def close_history(db: Database, job: dict[str, Any], outcome: str, reason: str | None) -> None:
    """Add the attempt now ending to the history of a job that was retried before (none when
    it was not; once: the job process and the worker may both report the same end)."""
    history = job.get("attempts") or []
    if history and history[-1].get("started_at") != job.get("started_at"):
        queue.set_attempts(db, job["id"], [*history, attempt(job, outcome, reason)])


def waiting(job: dict[str, Any], now: float | None = None) -> bool:
    """Whether a queued job is still in its back-off before a retry."""
    return bool(job.get("retry_at")) and job["retry_at"] > (now or time.time())
