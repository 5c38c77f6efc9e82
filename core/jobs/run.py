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
- A training job's resource guard (``core.guard``) is handed to the trainer through
  ``between_steps``: it may pause between optimizer steps or shrink the passes; its events go
  to ``job_events`` and the log. The result carries the run's ``resources`` figures.
- Out of memory (not data-parallel) leaves the row 'running' and exits: the worker reads the
  reason from the log and retries the job (``core.jobs.retry``) or fails it.
- Success stores the result as ``result_json``; an exception stores a readable one-line reason
  (``reasons.failure_reason``) as ``error`` and prints the traceback to the log.

Under a data-parallel launch (``launch.launch_command``) only rank 0 writes the job's row,
except a failure: the rank that raised records its reason (and the launcher stops the rest).
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

from core import guard, monitoring, parallel, store
from core.analysis import utilisation
from core.jobs import kinds, queue, retry
from core.jobs.kinds import JobCancelled
from core.jobs.progress import JobProgress
from core.jobs.reasons import failure_reason
from core.store import Database
from core.workflows.hooks import Hooks

HEARTBEAT_S = 2.0
SAMPLE_S = 2.0
PROGRESS_WRITE_S = 0.5  # at most this often an eval progress update is written


def log(message: str) -> None:
    """One line of the job's own log (time-stamped, flushed at once)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class JobContext(Hooks):
    """The hooks a running job hands to the workflows: every report goes into its row.

    The row's ``progress`` is the share of the whole job done and ``eta_s`` the seconds left,
    from the job's plan of phases (``core.jobs.progress``): one bar across all phases.
    """

    def __init__(self, db: Database, job: dict[str, Any], main: bool = True):
        self.db, self.job, self.job_id, self.main = db, job, int(job["id"]), main
        self.params: dict[str, Any] = job["params"]
        self.run_dir = Path(job["run_dir"]) if job.get("run_dir") else None
        self.stop = threading.Event()
        self.bar = JobProgress([])
        self.resolved: dict[str, Any] | None = None  # the job's ids, resolved once (kinds)
        self._last_write = 0.0
        self.guard: guard.Guard | None = None  # the resource guard (run_job sets it)

    def start_plan(self) -> None:
        """Estimate the job's phases (measured speeds where known) and store the plan."""
        try:
            plan = kinds.get(self.job["kind"]).plan(self)
        except Exception as exc:  # an estimate must never stop a job
            log(f"no time estimate for this job: {exc}")
            plan = []
        self.bar = JobProgress(plan)
        if self.main:
            phases = [{"name": p.name, "seconds": round(p.seconds, 1)} for p in plan]
            queue.set_plan(self.db, self.job_id, phases)
            self.write_progress(force=True)

    def write_progress(self, db: Database | None = None, force: bool = False) -> None:
        """Store the whole-job fraction and ETA (at most every PROGRESS_WRITE_S unless forced)."""
        now = time.monotonic()
        if not self.main or (not force and now - self._last_write < PROGRESS_WRITE_S):
            return
        self._last_write = now
        queue.set_progress(db or self.db, self.job_id, self.bar.fraction, self.bar.eta_s)

    def should_stop(self) -> bool:
        """True once a cancel was requested (SIGTERM or the cancel_requested flag)."""
        return self.stop.is_set()

    def check(self) -> None:
        if self.stop.is_set():
            raise JobCancelled()

    def phase(self, name: str) -> None:
        """A new phase begins: stop here if cancelled, else record its name."""
        self.check()
        log(f"phase: {name}")
        self.bar.enter(name)
        if self.main:
            queue.set_phase(self.db, self.job_id, name)
            self.write_progress(force=True)

    def train_progress(self, row: dict[str, Any]) -> None:
        """The trainer's progress callback: one job_progress row per call."""
        if self.main:
            queue.add_progress(self.db, self.job_id, row)
        self.train_step(row.get("step") or 0, row.get("total_steps") or 0)
        val = row.get("val_loss")
        log(
            f"step {row.get('step')}/{row.get('total_steps')}"
            f" train_loss {row.get('train_loss') or 0:.4f}"
            + (f" val_loss {val:.4f}" if val is not None else "")
            + f" lr {row.get('learning_rate') or 0:.2e} eta {row.get('eta_s') or 0:.0f}s"
        )

    def train_step(self, step: int, total_steps: int) -> None:
        """Every optimizer step: the training phase's fraction."""
        if total_steps:
            self.bar.update(step / total_steps)
            self.write_progress()

    def eval_progress(self, done: float, total: float) -> None:
        """Evaluation's (done, total) callback: the phase's fraction; stops when cancelled."""
        self.bar.update(done / max(1, total))
        self.write_progress(force=done >= total)
        self.check()

    def note(self, message: str) -> None:
        """A line of the job's log (main process only: the other ranks compute the same)."""
        if self.main:
            log(message)

    def energy_wh(self) -> float | None:
        """GPU energy of this job so far in Wh (None without a GPU)."""
        return monitoring.energy_wh(self.db, self.job_id)

    def between_steps(self, step: int, split: int, max_split: int) -> int:
        """The trainer's call between optimizer steps: the resource guard may pause here or
        ask for more passes per micro-batch; the passes to use."""
        if self.guard is None:
            return split
        return self.guard.between_steps(step, split, max_split)

    def guard_event(self, kind: str, message: str, seconds: float | None) -> None:
        """A pause, resume or shrink of the guard: in the log and as an event of the job."""
        log(f"resource guard: {message}")
        if self.main:
            queue.add_event(self.db, self.job_id, kind, message, seconds)

    def resource_figures(self) -> dict[str, Any]:
        """Utilisation, power, temperature and paused time of this job so far."""
        return utilisation.job_figures(self.db, self.job_id)


# ---------------------------------------------------------------- the process


def _heartbeat(path: str | None, ctx: JobContext, done: threading.Event) -> None:
    """Stamp heartbeat_at every HEARTBEAT_S and pick up cancel requests from the row."""
    db = store.connect(path) if path else ctx.db
    try:
        while not done.is_set():
            try:
                queue.heartbeat(db, ctx.job_id)
                ctx.write_progress(db, force=True)  # a phase without reports still moves
                if queue.cancel_requested(db, ctx.job_id):
                    ctx.stop.set()
            except Exception as exc:  # a busy store must not end the job
                log(f"heartbeat skipped: {exc}")
            done.wait(HEARTBEAT_S)
    finally:
        if db is not ctx.db:
            db.close()


PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "remote process exited")


def lost_a_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another rank is gone (not our fault)."""
    import torch.distributed as dist

    lost = isinstance(exc, getattr(dist, "DistBackendError", ())) or "gloo" in str(exc)
    return lost and any(sign in str(exc) for sign in PEER_LOST)


def _latest_checkpoint(job: dict[str, Any]) -> str | None:
    found = queue.checkpoints(job)
    return str(found[-1][1]) if found else None


def _guard_of(db: Database, ctx: JobContext) -> guard.Guard | None:
    """The resource guard of a training job (None for other kinds). A guard.yaml that cannot
    be used fails the job, naming the file and key: it never trains unguarded by mistake."""
    if not kinds.get(ctx.job["kind"]).trains:
        return None
    return guard.guard_for_job(db, ctx.job_id, ctx.guard_event, ctx.should_stop)


def run_job(job_id: int, db: Database | None = None) -> str:
    """Run the job to its end in this process; returns the final state."""
    db = db if db is not None else store.connect()
    world = parallel.current()  # joins the process group first under a data-parallel launch
    main = world.is_main
    job = queue.get(db, job_id)
    if job["state"] == "queued" and main:  # started by hand or by a multi-machine launch
        queue.mark_running(db, job_id, os.getpid())
        job = queue.get(db, job_id)
    job = world.share_from_main(job)  # every rank runs what rank 0 found, or stops with it
    if job["state"] != "running":
        log(f"job {job_id} is {job['state']}: nothing to run")
        return job["state"]
    ctx = JobContext(db, job, main)
    where = f" (rank {world.rank} of {world.size})" if world.distributed else ""
    if main or world.distributed:
        log(
            f"job {job_id} started in pid {os.getpid()}{where}: "
            f"{kinds.describe(job['kind'], job['params'])}"
        )
    ctx.start_plan()
    signal.signal(signal.SIGTERM, lambda signum, frame: ctx.stop.set())
    if job.get("cancel_requested"):
        ctx.stop.set()
    done = threading.Event()
    path = store.file_of(db)
    threads = []
    sampler = None
    if main:
        beat = threading.Thread(target=_heartbeat, args=(path, ctx, done), daemon=True)
        beat.start()
        threads.append(beat)
        sampler = monitoring.Sampler(db, job_id, SAMPLE_S).start()
    state = "failed"
    try:
        ctx.guard = _guard_of(db, ctx)
        result = kinds.get(job["kind"]).run(ctx)
        if main:
            result = {**result, "resources": ctx.resource_figures()}
            retry.close_history(db, job, "succeeded", None)
            queue.mark_succeeded(db, job_id, result)
        state = "succeeded"
        log(f"job {job_id} succeeded")
    except (JobCancelled, KeyboardInterrupt) as exc:
        checkpoint = getattr(exc, "checkpoint", None) or _latest_checkpoint(job)
        if main:
            retry.close_history(db, job, "cancelled", None)
            queue.mark_cancelled(db, job_id, checkpoint)
        state = "cancelled"
        log(f"job {job_id} cancelled" + (f"; checkpoint {checkpoint}" if checkpoint else ""))
    except Exception as exc:
        text = traceback.format_exc()
        print(text, file=sys.stderr, flush=True)
        if world.distributed and lost_a_peer(exc):
            # another rank died first: the launcher stops us all and its report names that
            # rank, which the worker records as the reason
            log(f"job {job_id}: rank {world.rank} lost a peer rank; the launcher reports why")
            return "failed"
        reason = failure_reason(None, text)
        if not world.distributed and retry.out_of_memory_failure(None, text, None):
            # the worker reads the same reason from the log and retries the job or fails it,
            # so the row never shows 'failed' in between (run by hand: the reaper fails it)
            log(f"job {job_id} ran out of memory: {reason}")
            return "failed"
        if world.distributed:
            reason = f"rank {world.rank} of {world.size}: {reason}"
        retry.close_history(db, job, "failed", reason)
        queue.mark_failed(db, job_id, reason)  # any rank: the one that failed knows why
        log(f"job {job_id} failed: {reason}")
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
