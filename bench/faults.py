"""Faults: crash, race and bad-file probes of the store, the queue and the importer.

On a fresh home (a temporary folder) with the embedded default model and the built-in
``fin_sentiment`` task, it runs:

1. ``fresh_store_opens``: ``--opens`` processes run ``finboard leaderboard`` on a new store at
   the same instant, ``--rounds`` times; every non-zero exit is an error.
2. ``malformed_files``: every case of ``tests/malformed_cases.py`` is imported as a task; a
   rejection counts as "with location" when its message names the file and the row and field
   the case expects; the store (every byte under the home) is compared after each rejection.
3. ``parallel_submits``: ``--submitters`` processes each submit ``--per`` training jobs at
   the same instant; the model ids and run folders must all differ. ``--run`` of them are then
   trained through the worker (the rest cancelled): each must leave its own adapter.
4. ``kill9_trainer``: a training job's process is killed with SIGKILL mid-training; the seconds
   until the job is recorded failed, and the processes of its group still alive after.
5. ``kill9_worker``: the worker is killed with SIGKILL while it runs a training job; a new
   worker adopts the job, which must finish with a progress row for every step.

    python bench/faults.py [--opens 8] [--rounds 3] [--submitters 4] [--per 5] [--run 2]

The last line is a JSON object with those five keys.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
FINBOARD = [sys.executable, "-c", "from core.cli import main; main()"]
MODEL = "smollm2-135m-instruct"
TRAIN = {  # small and quick: the probes need a job in training, not a good model
    "max_train_examples": 24,
    "batch_size": 4,
    "log_every": 1,
    "eval_every": 100000,
    "save_every": 100000,
    "max_seq_length": 128,
}
LONG = {**TRAIN, "max_train_examples": 0, "epochs": 3}
START_TOGETHER = """
import sys, time
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
"""
SUBMIT = (
    START_TOGETHER
    + """
from core import store
from core.jobs import queue
db = store.connect()
for _ in range(int(sys.argv[2])):
    print(queue.submit(db, "train", {"model_id": sys.argv[3], "task": "fin_sentiment",
                                     "preset": "quick", "overrides": {"max_train_examples": 24,
                                     "batch_size": 4, "eval_every": 100000}}))
"""
)
OPEN = START_TOGETHER + "from core.cli import main\nmain(['leaderboard'])\n"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def together(script: str, args: list[str], count: int, env: dict[str, str]) -> list:
    """Start ``count`` processes that begin ``script`` at the same instant; their results."""
    start = time.time() + 8  # time for each to import its libraries first
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(start), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    return [(p, *p.communicate(timeout=300)) for p in processes]


# ---------------------------------------------------------------- the probes


def fresh_store_opens(base: Path, opens: int, rounds: int) -> dict:
    errors = []
    for number in range(rounds):
        home = base / f"fresh-{number}"
        env = {**os.environ, "FINBOARD_HOME": str(home), "FINBOARD_DB": str(home / "lb.db")}
        for process, _out, err in together(OPEN, [], opens, env):
            if process.returncode != 0:
                errors.append(err.strip().splitlines()[-1] if err.strip() else "no message")
    print(f"fresh store opens: {opens * rounds} processes, {len(errors)} errors")
    return {"processes": opens * rounds, "errors": len(errors), "messages": errors[:3]}


def malformed_files(base: Path) -> dict:
    from malformed_cases import CASES, Accepted, import_case, rejection_problems, snapshot

    from core import store

    store.connect().close()
    home = Path(os.environ["FINBOARD_HOME"])
    rejected = located = changed = accepted = 0
    for case in CASES:
        folder = base / "uploads" / case.id
        folder.mkdir(parents=True)
        before = snapshot(home)
        try:
            import_case(case, folder)
        except Exception as exc:  # every rejection is an exception with a message
            rejected += 1
            located += not isinstance(case.expect, Accepted) and not rejection_problems(case, exc)
            changed += snapshot(home) != before
            continue
        accepted += 1
    expected_rejections = sum(not isinstance(case.expect, Accepted) for case in CASES)
    print(
        f"malformed files: {len(CASES)} tried, {rejected} rejected ({expected_rejections} "
        f"expected), {located} with file/row/field, {accepted} accepted, store changed {changed}"
    )
    return {
        "tried": len(CASES),
        "rejected": rejected,
        "rejected_with_location": located,
        "accepted": accepted,
        "store_changed": changed,
    }


def parallel_submits(db, submitters: int, per: int, run: int) -> dict:
    from core.jobs import queue, worker

    results = together(SUBMIT, [str(per), MODEL], submitters, worker.worker_env())
    failed = [err.strip().splitlines()[-1] for p, _, err in results if p.returncode != 0]
    job_ids = [int(line) for _, out, _ in results for line in out.split()]
    jobs = [queue.get(db, job_id) for job_id in job_ids]
    models = {job["params"]["new_model_id"] for job in jobs}
    run_dirs = {job["run_dir"] for job in jobs}
    for job in jobs[run:]:
        queue.request_cancel(db, job["id"])
    worker.ensure_worker(idle_exit_s=60)
    trained = [
        wait_for(
            lambda j=job: queue.get(db, j["id"])["state"] in ("succeeded", "failed") and j,
            900,
            f"job {job['id']}",
        )
        for job in jobs[:run]
    ]
    adapters = set()
    for job in trained:
        row = queue.get(db, job["id"])
        if row["state"] == "succeeded":
            adapter = Path(row["result"]["adapter_dir"])
            if (adapter / "adapter_config.json").is_file():
                adapters.add(adapter)
    print(
        f"parallel submits: {len(jobs)} jobs from {submitters} processes, {len(models)} unique "
        f"models, {len(run_dirs)} run folders; {len(adapters)} of {run} trained adapters found"
    )
    return {
        "jobs": len(jobs),
        "unique_models": len(models),
        "unique_run_dirs": len(run_dirs),
        "submit_errors": len(failed),
        "trained": run,
        "adapters": len(adapters),
    }


def _in_training(db, job_id: int, min_step: int) -> dict:
    from core.jobs import queue

    def ready():
        job = queue.get(db, job_id)
        if job["state"] not in ("queued", "running"):
            raise SystemExit(f"job {job_id} ended early: {job['state']} {job['error']}")
        steps = [row["step"] for row in queue.progress_rows(db, job_id) if row.get("step")]
        return job if job["pid"] and steps and max(steps) >= min_step else None

    return wait_for(ready, 600, f"job {job_id} to train")


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill9_trainer(db) -> dict:
    from core.jobs import queue, worker

    params = {"model_id": MODEL, "task": "fin_sentiment", "preset": "quick", "overrides": LONG}
    job_id = queue.submit(db, "train", params)
    worker.ensure_worker(idle_exit_s=60)
    job = _in_training(db, job_id, 2)
    os.kill(job["pid"], signal.SIGKILL)
    killed = time.monotonic()
    ended = wait_for(
        lambda: queue.get(db, job_id)["state"] != "running" and queue.get(db, job_id), 120, "fail"
    )
    seconds = time.monotonic() - killed
    orphans = int(_group_alive(job["pid"]))
    print(
        f"kill -9 trainer: {ended['state']} after {seconds:.2f} s ({ended['error']}); "
        f"orphans {orphans}"
    )
    return {"state": ended["state"], "failed_within_s": round(seconds, 2), "orphans": orphans}


def kill9_worker(db) -> dict:
    from core.jobs import queue, worker

    settings = {**TRAIN, "max_train_examples": 48}
    params = {"model_id": MODEL, "task": "fin_sentiment", "preset": "quick", "overrides": settings}
    job_id = queue.submit(db, "train", params)
    worker.ensure_worker(idle_exit_s=60)
    _in_training(db, job_id, 2)
    os.kill(worker.running_worker_pid(), signal.SIGKILL)
    wait_for(lambda: worker.running_worker_pid() is None, 30, "the worker to die")
    worker.ensure_worker(idle_exit_s=60)
    done = wait_for(
        lambda: (
            queue.get(db, job_id)["state"] not in ("queued", "running") and queue.get(db, job_id)
        ),
        900,
        "the adopted job",
    )
    steps = {row["step"] for row in queue.progress_rows(db, job_id) if row.get("step")}
    total = (done.get("result") or {}).get("steps") or max(steps, default=0)
    lost = len(set(range(1, total + 1)) - steps)
    print(f"kill -9 worker: the adopted job {done['state']}; {total} steps, {lost} rows lost")
    return {"state": done["state"], "steps": total, "rows_lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--per", type=int, default=5)
    parser.add_argument("--run", type=int, default=2)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="faults_"))
    home = base / "home"
    os.environ.update(
        FINBOARD_HOME=str(home),
        FINBOARD_DB=str(home / "leaderboard.db"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    os.environ.pop("FINBOARD_MODELS_CONFIG", None)
    print(f"home: {home}")
    from core import store
    from core.jobs import worker

    result = {"fresh_store_opens": fresh_store_opens(base, args.opens, args.rounds)}
    result["malformed_files"] = malformed_files(base)
    db = store.connect()
    try:
        result["parallel_submits"] = parallel_submits(db, args.submitters, args.per, args.run)
        result["kill9_trainer"] = kill9_trainer(db)
        result["kill9_worker"] = kill9_worker(db)
    finally:
        pid = worker.running_worker_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
