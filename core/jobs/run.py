"""Run ONE job in this process: ``python -m core.jobs.run JOB_ID``.

The worker starts this in its own process group with stdout and stderr going to the job's log.
It can also be run by hand on a queued job (it claims the job first), which is handy to debug.

- SIGTERM (a cancel request; see ``queue.request_cancel``) sets a stop flag: the trainer checks
  it before every step and saves a checkpoint, evaluations check it after every batch and
  between phases. The job then ends as 'cancelled' with the checkpoint's path.
- A heartbeat thread stamps ``heartbeat_at`` every 2 s and also reads ``cancel_requested``, so
  a cancel reaches the job even when no signal could be sent.
- A monitoring ``Sampler`` records GPU / CPU / RAM samples tagged with the job id every 2 s;
  the job's energy is integrated from them.
- Success stores the result as ``result_json``; an exception stores a readable one-line reason
  (``reasons.failure_reason``) as ``error`` and prints the traceback to the log.

Under a multi-process launcher (``launch.launch_command``) only rank 0 writes the job's row.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import sqlite_utils

from core import monitoring, store
from core.jobs import queue
from core.jobs.reasons import failure_reason

HEARTBEAT_S = 2.0
SAMPLE_S = 2.0
PROGRESS_WRITE_S = 0.5  # at most this often an eval progress update is written


class JobCancelled(Exception):
    """Raised inside a job when its stop flag is set; carries the checkpoint to resume from."""

    def __init__(self, checkpoint: str | None = None):
        super().__init__("cancelled")
        self.checkpoint = checkpoint


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class JobContext:
    """The callbacks a running job hands to evaluation and training code."""

    def __init__(self, db: sqlite_utils.Database, job: dict[str, Any], main: bool = True):
        self.db, self.job, self.job_id, self.main = db, job, int(job["id"]), main
        self.params: dict[str, Any] = job["params"]
        self.run_dir = Path(job["run_dir"]) if job.get("run_dir") else None
        self.stop = threading.Event()
        self._last_write = 0.0

    def should_stop(self) -> bool:
        """True once a cancel was requested (SIGTERM or the cancel_requested flag)."""
        return self.stop.is_set()

    def check(self) -> None:
        if self.stop.is_set():
            raise JobCancelled()

    def phase(self, name: str) -> None:
        """A new phase begins: stop here if cancelled, else record its name."""
        self.check()
        _log(f"phase: {name}")
        if self.main:
            queue.set_phase(self.db, self.job_id, name)

    def train_progress(self, row: dict[str, Any]) -> None:
        """The trainer's progress callback: one job_progress row per call."""
        if self.main:
            queue.add_progress(self.db, self.job_id, row)
        val = row.get("val_loss")
        _log(
            f"step {row.get('step')}/{row.get('total_steps')}"
            f" train_loss {row.get('train_loss') or 0:.4f}"
            + (f" val_loss {val:.4f}" if val is not None else "")
            + f" lr {row.get('learning_rate') or 0:.2e} eta {row.get('eta_s') or 0:.0f}s"
        )

    def eval_progress(self, done: int, total: int) -> None:
        """Evaluation's (done, total) callback: the phase's fraction; stops when cancelled."""
        now = time.monotonic()
        if self.main and (done >= total or now - self._last_write >= PROGRESS_WRITE_S):
            self._last_write = now
            queue.set_progress(self.db, self.job_id, done / max(1, total))
        self.check()

    def energy(self) -> float | None:
        """GPU energy of this job so far in Wh (None without a GPU)."""
        return monitoring.energy_wh(self.db, self.job_id)


# ---------------------------------------------------------------- the job kinds


def run_eval(ctx: JobContext) -> dict[str, Any]:
    """Evaluate params["model_id"] on each of params["tasks"] (the model is loaded once)."""
    from core.evaluation.runner import EvalOptions, evaluate
    from core.models import load_model
    from core.registry import get_model

    params = ctx.params
    options = EvalOptions(**{k: params[k] for k in queue.EVAL_OPTIONS if params.get(k) is not None})
    ctx.phase("loading model")
    entry = get_model(params["model_id"], ctx.db)
    loaded = load_model(entry, device=options.device, dtype=options.dtype)
    results = []
    for number, task in enumerate(params["tasks"], start=1):
        ctx.phase(f"evaluating {task} ({number}/{len(params['tasks'])})")
        result = evaluate(entry.id, task, options=options, db=ctx.db, loaded=loaded,
                          progress=ctx.eval_progress, job_id=ctx.job_id)  # fmt: skip
        _log(
            f"{task}: {result['primary_metric']} {result['score']:.4f} ({result['n_items']} items)"
        )
        results.append(result)
    return {"results": results}


def run_train(ctx: JobContext) -> dict[str, Any]:
    """Fine-tune and register the model params["new_model_id"]."""
    from core.training.finetune import finetune

    params = ctx.params
    config = queue.training_config(params)
    ctx.phase("training")
    tuned, result = finetune(
        params["model_id"], params["task"], config, db=ctx.db, run_dir=ctx.run_dir,
        progress=ctx.train_progress, should_stop=ctx.should_stop,
        resume_from=params.get("resume_from"), energy_wh=ctx.energy, new_id=params["new_model_id"],
    )  # fmt: skip
    if tuned is None:
        raise JobCancelled(result.checkpoint)
    return {**result.to_dict(), "model_id": tuned.id, "energy_wh": ctx.energy()}


def run_finetune_compare(ctx: JobContext) -> dict[str, Any]:
    """Base score, fine-tune, fine-tuned score on the same items (core.training.finetune)."""
    from core.training.finetune import finetune_compare

    params = ctx.params
    out = finetune_compare(
        params["model_id"], params["task"], queue.training_config(params), db=ctx.db,
        phase=ctx.phase, progress=ctx.train_progress, eval_progress=ctx.eval_progress,
        should_stop=ctx.should_stop, energy_wh=ctx.energy, job_id=ctx.job_id,
        new_id=params["new_model_id"], run_dir=ctx.run_dir, resume_from=params.get("resume_from"),
    )  # fmt: skip
    if out.get("status") == "cancelled":
        raise JobCancelled(out.get("checkpoint"))
    return {**out, "energy_wh": ctx.energy()}


RUNNERS = {"eval": run_eval, "train": run_train, "finetune_compare": run_finetune_compare}


# ---------------------------------------------------------------- the process


def _heartbeat(path: str | None, ctx: JobContext, done: threading.Event) -> None:
    """Stamp heartbeat_at every HEARTBEAT_S and pick up cancel requests from the row."""
    db = store.connect(path) if path else ctx.db
    try:
        while not done.is_set():
            try:
                queue.heartbeat(db, ctx.job_id)
                row = db.execute(
                    "select cancel_requested from jobs where id = ?", [ctx.job_id]
                ).fetchone()
                if row and row[0]:
                    ctx.stop.set()
            except Exception as exc:  # a busy store must not end the job
                _log(f"heartbeat skipped: {exc}")
            done.wait(HEARTBEAT_S)
    finally:
        if db is not ctx.db:
            db.close()


def _latest_checkpoint(job: dict[str, Any]) -> str | None:
    found = queue.checkpoints(job)
    return str(found[-1][1]) if found else None


def run_job(job_id: int, db: sqlite_utils.Database | None = None) -> str:
    """Run the job to its end in this process; returns the final state."""
    db = db if db is not None else store.connect()
    main = os.environ.get("RANK", "0") == "0"
    job = queue.get(db, job_id)
    if job["state"] == "queued" and main:
        queue.mark_running(db, job_id, os.getpid())
        job = queue.get(db, job_id)
    if job["state"] != "running":
        _log(f"job {job_id} is {job['state']}: nothing to run")
        return job["state"]
    ctx = JobContext(db, job, main)
    signal.signal(signal.SIGTERM, lambda signum, frame: ctx.stop.set())
    if job.get("cancel_requested"):
        ctx.stop.set()
    done = threading.Event()
    path = monitoring.database_file(db)
    threads = []
    sampler = None
    if main:
        beat = threading.Thread(target=_heartbeat, args=(path, ctx, done), daemon=True)
        beat.start()
        threads.append(beat)
        sampler = monitoring.Sampler(db, job_id, SAMPLE_S).start()
    _log(f"job {job_id} ({job['kind']}) started in pid {os.getpid()}: {job['params_json']}")
    state = "failed"
    try:
        result = RUNNERS[job["kind"]](ctx)
        if main:
            queue.mark_succeeded(db, job_id, result)
        state = "succeeded"
        _log(f"job {job_id} succeeded")
    except (JobCancelled, KeyboardInterrupt) as exc:
        checkpoint = getattr(exc, "checkpoint", None) or _latest_checkpoint(job)
        if main:
            queue.mark_cancelled(db, job_id, checkpoint)
        state = "cancelled"
        _log(f"job {job_id} cancelled" + (f"; checkpoint {checkpoint}" if checkpoint else ""))
    except Exception:
        text = traceback.format_exc()
        print(text, file=sys.stderr, flush=True)
        reason = failure_reason(None, text)
        if main:
            queue.mark_failed(db, job_id, reason)
        _log(f"job {job_id} failed: {reason}")
    finally:
        done.set()
        if sampler is not None:
            sampler.stop()
        for thread in threads:
            thread.join(5)
    return state


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m core.jobs.run JOB_ID", file=sys.stderr)
        return 2
    state = run_job(int(args[0]))
    sys.stdout.flush()
    return 1 if state == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
