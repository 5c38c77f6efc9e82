"""The worker: one per store, running queued jobs in order, each in its own process group.

    >>> pid = ensure_worker()        # the app / CLI: start one detached if none runs  # doctest: +SKIP
    $ finboard worker                # or run one in the foreground

One worker per store is enforced with an ``fcntl`` lock on ``<db>-worker.lock`` next to the
SQLite file (it also holds the worker's pid). ``ensure_worker`` takes the lock itself before it
starts the worker and hands it over (the worker inherits the locked file), so two callers can
never start two workers.

Several jobs run at once where the machine's GPUs allow: every 0.5 s the worker asks
``placement.place`` which queued jobs start now (oldest first, strictly in order; a job gets the
lowest free GPU indices it asks for; one job at a time on a machine without a GPU), claims each
(``queue.claim``), records its devices ("cuda:2,3") and runs ``launch.launch_command(id, job,
gpu_ids)`` with ``CUDA_VISIBLE_DEVICES`` set to exactly those GPUs and ``start_new_session=True``
(a new process group, so a cancel's SIGTERM reaches the job and everything it started), stdout
+ stderr appended to the job's log file. ``FINBOARD_GPUS`` limits the GPUs it uses (see
``core.jobs.placement``).

The same loop polls every running job without blocking: when a child exits and the job's row
still says 'running' (kill -9, the OOM killer, a segfault) the job is marked failed with a
reason from the exit signal and the log's tail; a job that ran out of memory (CUDA OOM, or the
kernel's OOM killer) is queued again under its id with smaller passes (``core.jobs.retry``),
and not started before its back-off ends. A cancelled job that has not stopped
``cancel_grace_s`` after the request is killed.

On start, jobs left 'running' by a dead process are marked failed; a job whose process still
runs (the previous worker was stopped) is adopted: it keeps the GPUs its row records until it
ends. The worker exits after ``idle_exit_s`` seconds with nothing running and nothing queued
(0: never); ``ensure_worker`` starts a new one when needed. Stopping the worker (SIGTERM) leaves
the running jobs running.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import guard, monitoring, paths, store
from core.jobs import placement, queue, retry
from core.jobs.launch import launch_command, process_count
from core.jobs.reasons import failure_reason
from core.store import Database

POLL_S = 0.5
IDLE_EXIT_S = 300.0
ONEDNN_KERNEL_CACHE = 64  # compiled oneDNN kernels a job keeps (see job_env)
CANCEL_GRACE_S = 60.0  # a cancelled job still running after this is killed
CANCEL_RESEND_S = 3.0  # ... and one that has not stopped after this gets SIGTERM again
LOCK_FD_ENV = "FINBOARD_WORKER_LOCK_FD"  # set by ensure_worker: the inherited, locked file
ORPHAN_REASON = (
    "the job's process ended without recording a result while its worker was stopped too "
    "(the machine may have crashed or restarted)"
)
PATH_VARIABLES = ("FINBOARD_HOME", "FINBOARD_DB", "FINBOARD_CACHE", "FINBOARD_MODELS_CONFIG")


def lock_path() -> Path:
    """The worker lock of the current store: ``<db file>-worker.lock`` beside it."""
    db = paths.db_path()
    return db.with_name(db.name + "-worker.lock")


def worker_log_path() -> Path:
    return paths.runs_dir() / "worker.log"


def _log(message: str) -> None:
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] worker {os.getpid()}: {message}", flush=True)


# ---------------------------------------------------------------- the lock


def _try_lock(path: Path) -> int | None:
    """An fd holding the exclusive lock on ``path``, or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _write_pid(fd: int, pid: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{pid}\n".encode(), 0)


def _read_pid(path: Path, wait_s: float = 3.0) -> int | None:
    """The pid in the lock file (waiting briefly for a holder that is still writing it)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = path.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def running_worker_pid() -> int | None:
    """The pid of this store's worker, or None when no worker holds the lock."""
    fd = _try_lock(lock_path())
    if fd is not None:
        os.close(fd)
        return None
    return _read_pid(lock_path())


def worker_env() -> dict[str, str]:
    """The environment for the worker and its jobs: this store, this home, unbuffered output."""
    env = dict(os.environ)
    for name in PATH_VARIABLES:  # relative paths would move with the working directory
        if env.get(name):
            env[name] = str(Path(env[name]).resolve())
    env["FINBOARD_DB"] = str(paths.db_path().resolve())
    env["FINBOARD_HOME"] = str(paths.home_dir().resolve())
    env["PYTHONUNBUFFERED"] = "1"
    env.pop(LOCK_FD_ENV, None)
    return env


def job_env(gpu_ids: list[int] | None) -> dict[str, str]:
    """The environment of a job's process: the worker's, seeing only the GPUs it was given
    (``CUDA_VISIBLE_DEVICES``, e.g. "2,3"; left alone on a machine without GPUs)."""
    env = worker_env()
    # glibc gives each thread that allocates its own heap arena (up to 8 per core) and keeps
    # what a freed tensor leaves in it: the evaluator's two batch threads and a training
    # run's ever-changing batch shapes then grow the process by gigabytes. Two arenas keep
    # the job's RSS near what it uses (a user's own setting wins).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    # oneDNN (PyTorch's CPU matmuls in bf16; fp32 goes to MKL) caches a compiled kernel and its
    # buffers per shape, up to 1,024, and training and scoring see a new batch shape nearly
    # every batch. One training step alone uses a few dozen (seven projections, the LoRA
    # pairs, their backward passes, for the examples and the shared prefix), repeated in every
    # layer: a smaller cache recompiles them layer after layer. The quick path on real text
    # (bench/quick_real.py, bf16) trained at 314 tokens/s with 8 and 461 with 64, at 2,311 and
    # 2,478 MB peak; the default 1,024 took it to 2,652 MB.
    env.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_KERNEL_CACHE))
    if gpu_ids:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index) for index in gpu_ids)
    return env


def ensure_worker(idle_exit_s: float | None = None) -> int:
    """The pid of this store's worker, starting one detached when none runs. Never starts two.

    The new worker logs to ``runs/worker.log`` and exits after ``idle_exit_s`` (default 300 s)
    without work.
    """
    path = lock_path()
    fd = _try_lock(path)
    if fd is None:
        pid = _read_pid(path)
        if pid is None:
            raise RuntimeError(f"A worker holds {path} but wrote no pid in it")
        return pid
    try:
        env = worker_env()
        env[LOCK_FD_ENV] = str(fd)
        command = [sys.executable, "-m", "core.jobs.worker"]
        if idle_exit_s is not None:
            command += ["--idle-exit", str(idle_exit_s)]
        process = spawn(command, worker_log_path(), env, pass_fds=(fd,))
        _write_pid(fd, process.pid)
    finally:
        os.close(fd)  # the worker keeps the lock through its inherited copy
    return process.pid


def spawn(
    command: list[str], log_path: Path, env: dict[str, str], pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    """Start ``command`` detached in a new process group (a cancel's signal reaches all of it),
    with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=pass_fds,
            start_new_session=True,
            cwd=str(paths.REPO_ROOT),
        )


# ---------------------------------------------------------------- the loop


@dataclass
class Child:
    """A running job the worker watches: one it started (``process``), or one adopted from a
    previous worker (``process`` None: watched through the pid its row records)."""

    job: dict[str, Any]
    gpu_ids: list[int]  # the GPUs it holds until it ends ([] on the CPU)
    process: subprocess.Popen | None = None
    kills_before: int | None = None  # the OOM killer's count when it started
    cancel_seen: float | None = None  # when the worker first saw its cancel request
    resent: bool = False  # whether the worker sent the cancel's SIGTERM again

    def ended(self) -> tuple[bool, int | None]:
        """(whether the job's process ended, its exit status when the worker started it)."""
        if self.process is not None:
            code = self.process.poll()
            return code is not None, code
        return not queue.job_process_alive(self.job), None

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else self.job.get("pid")


class Worker:
    """Runs the queued jobs of the current store, as many at once as the GPUs allow (one at a
    time without a GPU: ``core.jobs.placement``), until idle for ``idle_exit_s``."""

    def __init__(
        self,
        idle_exit_s: float = IDLE_EXIT_S,
        poll_s: float = POLL_S,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self.idle_exit_s, self.poll_s, self.cancel_grace_s = idle_exit_s, poll_s, cancel_grace_s
        self.stopping = False
        self.fd: int | None = None
        self.db: Database | None = None
        self.gpus: list[int] = []  # the machine's GPUs (placement.machine_gpus)
        self.children: dict[int, Child] = {}  # running jobs by id

    # -- lock

    def acquire(self) -> bool:
        """Take the store's worker lock (or adopt the one ensure_worker passed); False if taken."""
        inherited = os.environ.pop(LOCK_FD_ENV, None)
        if inherited is not None:
            self.fd = int(inherited)
        else:
            self.fd = _try_lock(lock_path())
            if self.fd is None:
                return False
        _write_pid(self.fd, os.getpid())
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    # -- jobs left by a previous worker

    def recover(self, db: Database) -> None:
        """Fail every 'running' job whose process is gone (a previous worker died with it)."""
        for job in queue.list_jobs(db, limit=1000, states=("running",)):
            if not queue.job_process_alive(job):
                found = failure_reason(None, queue.log_tail(job, 80))
                reason = found if "ended without recording" not in found else ORPHAN_REASON
                queue.mark_failed(db, job["id"], reason)
                _log(f"job {job['id']}: {reason}")

    def adopt(self, db: Database) -> int:
        """Watch every job still running from a previous worker (it was stopped): each holds
        the GPUs its row records until it ends, and its end is recorded like any other's.
        Returns how many were adopted."""
        adopted = 0
        for job in queue.list_jobs(db, limit=1000, states=("running",)):
            if job["id"] in self.children or not queue.job_process_alive(job):
                continue
            gpu_ids = placement.gpus_of(job.get("devices"), self.gpus)
            self.children[job["id"]] = Child(job, gpu_ids)
            _log(f"job {job['id']} still runs in pid {job['pid']} on {job.get('devices')}")
            adopted += 1
        return adopted

    # -- ends

    def finish(
        self,
        db: Database,
        job: dict[str, Any],
        exit_code: int | None,
        kills_before: int | None = None,
    ) -> None:
        """After the job's process ended: if it recorded no end state, record one; a job that
        ran out of memory is queued again with smaller passes (``core.jobs.retry``)."""
        row = queue.get(db, job["id"])
        if row["state"] == "running" and row["cancel_requested"]:
            found = queue.checkpoints(row)
            queue.mark_cancelled(db, row["id"], found[-1][1] if found else None)
            retry.close_history(db, row, "cancelled", None)
            _log(f"job {job['id']} cancelled (exit {exit_code})")
            return
        log_text = queue.log_tail(row, 80)
        memory = None
        if row["state"] == "running":
            memory = monitoring.ran_out_of_memory(db, row["id"], kills_before)
        try:
            retried = retry.after_end(db, row, exit_code, log_text, memory)
        except guard.GuardConfigError as exc:  # a broken guard.yaml: no retry, said why
            retried = None
            _log(f"job {job['id']}: no out-of-memory retry: {exc}")
        if retried:
            _log(f"job {job['id']}: {retried}")
            return
        if row["state"] != "running":
            _log(f"job {job['id']} ended: {row['state']} (exit {exit_code})")
            return
        reason = failure_reason(exit_code, log_text, out_of_memory=memory)
        queue.mark_failed(db, row["id"], reason)
        _log(f"job {job['id']} failed (exit {exit_code}): {reason}")

    def enforce_cancel(self, db: Database, child: Child) -> None:
        """A cancelled job still running: SIGTERM again after a few seconds (the requester may
        have had no pid to signal), SIGKILL after ``cancel_grace_s``."""
        row = queue.get(db, child.job["id"])
        if not row["cancel_requested"]:
            return
        child.cancel_seen = child.cancel_seen or time.monotonic()
        waited = time.monotonic() - child.cancel_seen
        if waited > CANCEL_RESEND_S and not child.resent:
            queue.signal_job(row, signal.SIGTERM)
            child.resent = True
        elif waited > self.cancel_grace_s:
            _log(f"job {row['id']} ignored its cancel for {waited:.0f} s: killing it")
            queue.signal_job(row, signal.SIGKILL)

    def tend(self, db: Database) -> int:
        """Poll every running job once (never blocking): record the end of those that ended,
        push the cancels of the others. Returns how many ended."""
        ended = 0
        for job_id, child in list(self.children.items()):
            done, exit_code = child.ended()
            if not done:
                self.enforce_cancel(db, child)
                continue
            if child.process is not None:  # anything the job left behind in its group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGKILL)
            self.finish(db, child.job, exit_code, child.kills_before)
            del self.children[job_id]
            ended += 1
        return ended

    # -- starts

    def start_placeable(self, db: Database) -> int:
        """Claim and start every queued job placement allows now; fail those that can never
        run here. Returns how many started."""
        if not self.gpus and self.children:
            return 0  # without a GPU one job runs at a time: nothing to look up
        held = [child.gpu_ids for child in self.children.values()]
        ready = [job for job in queue.queued_jobs(db) if not retry.waiting(job)]  # back-off
        plan = placement.place(self.gpus, held, ready)
        for refusal in plan.refuse:
            if queue.mark_failed(db, refusal.job_id, refusal.reason):
                _log(f"job {refusal.job_id} failed: {refusal.reason}")
        started = 0
        for start in plan.start:
            job = queue.claim(db, start.job_id)
            if job is not None:  # None: cancelled since it was read
                started += self.start(db, job, start.gpu_ids)
        return started

    def start(self, db: Database, job: dict[str, Any], gpu_ids: list[int] | None) -> bool:
        """Run a claimed job on ``gpu_ids`` (None: the CPU) in its own process group; True if
        its process started (else the job is failed with the reason)."""
        try:
            devices = placement.devices_text(gpu_ids, process_count(job, gpu_ids))
            queue.set_devices(db, job["id"], devices)
            command = launch_command(job["id"], job, gpu_ids=gpu_ids)
            kills_before = monitoring.oom_kills()
            process = spawn(command, Path(job["log_path"]), job_env(gpu_ids))
        except Exception as exc:
            queue.mark_failed(db, job["id"], f"could not start the job process: {exc}")
            _log(f"job {job['id']} could not start: {exc}")
            return False
        queue.set_pid(db, job["id"], process.pid)
        self.children[job["id"]] = Child(job, list(gpu_ids or []), process, kills_before)
        _log(
            f"job {job['id']} ({job['kind']}) started on {devices}: pid {process.pid}, "
            f"log {job['log_path']}"
        )
        return True

    # -- the worker's life

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _idle_exit(self, db: Database) -> bool:
        """Nothing ran for ``idle_exit_s``: True to exit (the queue is empty, or another worker
        took over); False to go on (a job came in while the lock was released)."""
        self.release()
        if not queue.list_jobs(db, limit=1, states=("queued",)):
            _log("idle: exiting")
            return True
        return not self.acquire()  # a new worker took over in between

    def run(self) -> int:
        """The worker's life: lock, recover, then start and watch jobs until idle or stopped.
        Exit status."""
        if not self.acquire():
            _log(f"a worker already runs for {paths.db_path()} (pid {running_worker_pid()})")
            return 1
        try:
            self.gpus = placement.machine_gpus()
        except ValueError as exc:  # a FINBOARD_GPUS that names no GPUs
            _log(str(exc))
            self.release()
            return 2
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        db = store.connect()
        try:
            gpus = ",".join(map(str, self.gpus)) or "none"
            _log(f"started for {paths.db_path()} (idle exit {self.idle_exit_s:g} s, GPUs {gpus})")
            self.recover(db)
            self.adopt(db)
            idle_since = time.monotonic()
            while not self.stopping:
                self.tend(db)
                if not self.stopping:
                    self.start_placeable(db)
                if self.children:
                    idle_since = time.monotonic()
                elif self.idle_exit_s and time.monotonic() - idle_since >= self.idle_exit_s:
                    if self._idle_exit(db):
                        return 0
                    idle_since = time.monotonic()
                    continue
                time.sleep(self.poll_s)
            for job_id, child in self.children.items():
                _log(f"stopping; job {job_id} keeps running in pid {child.pid()}")
            _log("stopped")
            return 0
        finally:
            self.release()
            db.close()


def run_worker(idle_exit_s: float = IDLE_EXIT_S) -> int:
    """Run a worker in this process (``finboard worker``); returns its exit status."""
    return Worker(idle_exit_s=idle_exit_s).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs.worker", description=__doc__)
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=IDLE_EXIT_S,
        help="Exit after this many seconds without jobs (0: never).",
    )
    args = parser.parse_args(argv)
    return run_worker(args.idle_exit)


if __name__ == "__main__":
    sys.exit(main())
