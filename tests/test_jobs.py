"""Background jobs end to end: real worker and job subprocesses on the tiny models.

Every test gets its own store (``finboard_home``); the ``jobs_env`` fixture kills the worker
and every job process group it started when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from jobs_support import (
    LONG_TRAIN,
    QUICK_TRAIN,
    first_progress,
    make_user_task,
    table_rows,
    train_params,
    wait_for,
    wait_state,
)

from core.data.importer import DatasetImportError
from core.jobs import queue, reasons, worker
from core.jobs.launch import launch_command
from core.models.registry import RegistryError, get_model
from core.tasks.spec import TaskSpecError

# ---------------------------------------------------------------- lifecycle


def test_eval_job_lifecycle(jobs_env, db):
    job_id = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 8}
    )
    job = queue.get(db, job_id)
    assert job["state"] == "queued" and job["log_path"].endswith(f"job-{job_id}/job.log")
    worker.ensure_worker(idle_exit_s=60)
    job = wait_state(db, job_id)
    assert job["state"] == "succeeded", job["error"]
    (result,) = job["result"]["results"]
    assert result["n_items"] == 8 and 0 <= result["score"] <= 1
    score = db["scores"].get(result["score_id"])
    assert score["job_id"] == job_id and score["item_limit"] == 8
    assert job["started_at"] and job["finished_at"] and job["heartbeat_at"] and job["pid"]
    assert job["progress"] == 1.0 and not job["error"]
    assert "job" in Path(job["log_path"]).read_text()
    samples = db.execute(
        "select count(*) from monitor_samples where job_id = ?", [job_id]
    ).fetchone()[0]
    assert samples >= 1


def test_train_job_registers_model_and_writes_progress(jobs_env, db):
    job_id = queue.submit(db, "train", train_params(QUICK_TRAIN))
    new_id = queue.get(db, job_id)["params"]["new_model_id"]
    worker.ensure_worker(idle_exit_s=60)
    job = wait_state(db, job_id)
    assert job["state"] == "succeeded", job["error"]
    entry = get_model(new_id, db)
    assert entry.is_finetuned and entry.base_model_id == "tiny-llama-chat"
    assert job["result"]["model_id"] == new_id and job["result"]["status"] == "completed"
    rows = queue.progress_rows(db, job_id)
    assert [r["step"] for r in rows] == list(range(1, 9))  # 32 examples / batch 4, every step
    assert rows[-1]["total_steps"] == 8 and rows[-1]["train_loss"] > 0


def test_cancel_queued_job_is_immediate(jobs_env, db):
    job_id = queue.submit(db, "train", train_params(QUICK_TRAIN))
    assert queue.request_cancel(db, job_id) == "cancelled"
    assert queue.get(db, job_id)["state"] == "cancelled"
    assert queue.claim_next(db) is None


def test_kill_9_fails_the_job_and_the_queue_goes_on(jobs_env, db):
    doomed = queue.submit(db, "train", train_params(LONG_TRAIN))
    after = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 8}
    )
    worker.ensure_worker(idle_exit_s=60)
    running = wait_for(  # the job's own code runs (it set its phase): kill it while it loads
        lambda: (job := queue.get(db, doomed))["phase"] == "training" and job["pid"] and job,
        what="the job to start training",
    )
    os.kill(running["pid"], signal.SIGKILL)
    killed = time.monotonic()
    job = wait_state(db, doomed)
    assert job["state"] == "failed"
    assert time.monotonic() - killed < 10
    assert "SIGKILL" in job["error"] and "\n" not in job["error"]
    assert wait_state(db, after)["state"] == "succeeded"


def test_cancel_mid_run_then_resume_continues_the_step_count(jobs_env, db):
    settings = {
        "max_train_examples": 80,
        "batch_size": 1,
        "log_every": 1,
        "save_every": 10,
        "eval_every": 100000,
    }
    first = queue.submit(db, "train", train_params(settings))
    worker.ensure_worker(idle_exit_s=60)
    total = first_progress(db, first, min_step=2)[0]["total_steps"]
    asked = time.monotonic()
    assert queue.request_cancel(db, first) == "running"
    cancelled = wait_state(db, first)
    assert cancelled["state"] == "cancelled", "the run ended before the cancel reached it"
    assert time.monotonic() - asked < 20
    checkpoint = Path(cancelled["checkpoint"])
    assert (checkpoint / "state.json").is_file()
    assert queue.checkpoints(cancelled)[-1][1] == checkpoint
    saved_step = int(checkpoint.name.removeprefix("step-"))
    assert 0 < saved_step < total
    assert queue.request_cancel(db, first) == "cancelled"  # already ended: nothing to do

    second = queue.resume(db, first)
    resumed = queue.get(db, second)
    assert resumed["resumed_from_job"] == first and resumed["run_dir"] == cancelled["run_dir"]
    assert resumed["params"]["resume_from"] == cancelled["checkpoint"]
    assert resumed["params"]["new_model_id"] == cancelled["params"]["new_model_id"]
    worker.ensure_worker(idle_exit_s=60)
    done = wait_state(db, second)
    assert done["state"] == "succeeded", done["error"]
    rows = queue.progress_rows(db, second)
    assert rows[0]["step"] == saved_step + 1 > saved_step
    assert done["result"]["steps"] == rows[-1]["step"] == total  # as an uninterrupted run
    assert get_model(done["params"]["new_model_id"], db).is_finetuned


def test_resume_refuses_what_cannot_be_resumed(jobs_env, db):
    eval_job = queue.submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"]})
    with pytest.raises(queue.JobError, match="only training jobs"):
        queue.resume(db, eval_job)
    train_job = queue.submit(db, "train", train_params(QUICK_TRAIN))
    with pytest.raises(queue.JobError, match="only failed or cancelled"):
        queue.resume(db, train_job)
    queue.request_cancel(db, train_job)
    with pytest.raises(queue.JobError, match="no checkpoint at step 5"):
        queue.resume(db, train_job, 5)
    restarted = queue.get(db, queue.resume(db, train_job))  # no checkpoint: starts over
    assert restarted["params"]["resume_from"] is None


# ---------------------------------------------------------------- bad requests write nothing


def test_corrupt_dataset_never_starts_a_job(jobs_env, db, tmp_path):
    spec = make_user_task(tmp_path, "bad_news")
    data = Path(spec.source["path"])
    with data.open("a", encoding="utf-8") as handle:
        handle.write("A headline with a typo in its label,postive\n")
    before = table_rows(db)
    for kind, params in [
        ("eval", {"model_id": "tiny-llama", "tasks": ["bad_news"], "limit": 8}),
        ("train", train_params(QUICK_TRAIN, task="bad_news")),
        ("finetune_compare", train_params(QUICK_TRAIN, task="bad_news")),
    ]:
        with pytest.raises(DatasetImportError, match="postive"):
            queue.submit(db, kind, params)
    data.rename(data.with_suffix(".xlsx"))  # an unknown format
    task_file = Path(spec.path)
    task_file.write_text(task_file.read_text().replace("bad_news.csv", "bad_news.xlsx"))
    with pytest.raises(DatasetImportError, match="unsupported file type"):
        queue.submit(db, "train", train_params(QUICK_TRAIN, task="bad_news"))
    assert table_rows(db) == before
    assert db["jobs"].count == 0


def test_bad_requests_raise_clear_errors_and_write_nothing(jobs_env, db):
    before = table_rows(db)
    with pytest.raises(RegistryError, match="Unknown model 'nope'"):
        queue.submit(db, "eval", {"model_id": "nope", "tasks": ["fin_sentiment"]})
    with pytest.raises(TaskSpecError, match="Unknown task"):
        queue.submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["no_such_task"]})
    with pytest.raises(ValueError, match="Bad training config: lora_r must be at least 1"):
        queue.submit(db, "train", train_params({"lora_r": 0}))
    with pytest.raises(ValueError, match="Unknown training setting 'lora_rank'"):
        queue.submit(db, "train", train_params({"lora_rank": 8}))
    with pytest.raises(queue.JobError, match="Unknown job kind"):
        queue.submit(db, "sleep", {"model_id": "tiny-llama"})
    assert table_rows(db) == before


def test_new_model_ids_are_unique(jobs_env, db):
    one = queue.submit(db, "train", train_params(QUICK_TRAIN))
    two = queue.submit(db, "train", train_params(QUICK_TRAIN))
    ids = [queue.get(db, j)["params"]["new_model_id"] for j in (one, two)]
    runs = [queue.get(db, j)["run_dir"] for j in (one, two)]
    assert ids[0] != ids[1] and runs[0] != runs[1]


# ---------------------------------------------------------------- the worker


def test_never_two_workers(jobs_env):
    pids: list[int] = []
    threads = [
        threading.Thread(target=lambda: pids.append(worker.ensure_worker(30))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(pids)) == 1
    assert worker.ensure_worker() == pids[0] == worker.running_worker_pid()
    second = subprocess.run(
        [sys.executable, "-m", "core.jobs.worker", "--idle-exit", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=worker.worker_env(),
    )
    assert second.returncode == 1 and "already runs" in second.stdout


def test_idle_worker_exits_and_a_new_one_starts(jobs_env):
    pid = worker.ensure_worker(idle_exit_s=0.5)
    wait_for(lambda: worker.running_worker_pid() is None, what="the idle worker to exit")
    assert worker.ensure_worker(idle_exit_s=30) != pid


def test_worker_start_fails_jobs_whose_process_died(jobs_env, db):
    job_id = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 8}
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    queue.claim_next(db)
    queue.set_pid(db, job_id, dead.pid)
    worker.Worker().recover(db)
    job = queue.get(db, job_id)
    assert job["state"] == "failed" and job["error"] == worker.ORPHAN_REASON


def test_launch_command(jobs_env, db):
    eval_job = {"id": 3, "kind": "eval"}
    train_job = {"id": 4, "kind": "train", "params": {}}
    run_4 = ["-m", "core.jobs.run", "4"]
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    assert launch_command(3, eval_job) == [sys.executable, "-m", "core.jobs.run", "3"]
    assert launch_command(4, train_job) == [sys.executable, *run_4]
    assert launch_command(4, train_job, gpu_ids=[2]) == [sys.executable, *run_4]
    on_gpus = launch_command(4, train_job, gpu_ids=[0, 1], port=29611)
    assert on_gpus[:4] == accelerate and on_gpus[4:6] == ["--num_processes", "2"]
    assert on_gpus[on_gpus.index("--main_process_port") + 1] == "29611"
    assert on_gpus[-3:] == run_4 and "--num_cpu_threads_per_process" not in on_gpus
    on_cpu = launch_command(4, {**train_job, "params": {"processes": 2}})
    assert on_cpu[:4] == accelerate and on_cpu[4:6] == ["--num_processes", "2"]
    assert on_cpu[-3:] == run_4 and "--num_cpu_threads_per_process" in on_cpu


# ---------------------------------------------------------------- the CLI


def test_cli_finetune_compare_prints_the_result_last(jobs_env, tmp_path):
    from core.cli import main

    make_user_task(tmp_path, "tiny_news", n=40)
    result = CliRunner().invoke(
        main,
        [
            "finetune-compare",
            "--model",
            "tiny-llama-chat",
            "--task",
            "tiny_news",
            "--preset",
            "quick",
            "--set",
            "batch_size=4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"base_score", "finetuned_score", "seconds", "job_id"} <= set(out)
    listed = CliRunner().invoke(main, ["jobs", "--json"])
    (job,) = json.loads(listed.stdout)
    assert job["id"] == out["job_id"] and job["state"] == "succeeded"
    table = CliRunner().invoke(main, ["jobs"])
    assert "finetune_compare" in table.stdout and "succeeded" in table.stdout


def test_cli_errors_are_one_line(jobs_env):
    from core.cli import main

    for args, message in [
        (["train", "--model", "nope", "--task", "fin_sentiment"], "Unknown model 'nope'"),
        (
            ["train", "--model", "tiny-llama-chat", "--task", "fin_sentiment", "--set", "lora_r=0"],
            "Bad training config",
        ),
        (["cancel", "99"], "No job 99"),
        (["resume", "99"], "No job 99"),
    ]:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_cli_no_wait_then_cancel(jobs_env, db):
    from core.cli import main

    queued = CliRunner().invoke(
        main,
        [
            "train",
            "--model",
            "tiny-llama-chat",
            "--task",
            "fin_sentiment",
            "--no-wait",
            "--json",
            "--set",
            "max_train_examples=8",
        ],
    )
    assert queued.exit_code == 0, queued.output
    job_id = json.loads(queued.stdout.strip().splitlines()[-1])["job_id"]
    assert worker.running_worker_pid()  # --no-wait still starts a worker
    cancelled = CliRunner().invoke(main, ["cancel", str(job_id)])
    assert cancelled.exit_code == 0 and f"Job {job_id}" in cancelled.output
    assert wait_state(db, job_id)["state"] in ("cancelled", "succeeded")


# ---------------------------------------------------------------- failure reasons


@pytest.mark.parametrize(
    ("exit_code", "log", "expected"),
    [
        (-9, "", reasons.SIGKILL_REASONS[None]),
        (137, "step 3/10\n", reasons.SIGKILL_REASONS[None]),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 3, in f\n    x()\n'
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
            "out of memory on GPU",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 1\nMemoryError\n',
            "out of memory on the machine",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 1\n'
            "core.data.importer.DatasetImportError: d.csv cannot be imported (1 error):\n"
            "  d.csv, row 7, field 'tone': unknown label 'postive'\n",
            "dataset: d.csv cannot be imported (1 error): d.csv, row 7, field 'tone': unknown label",
        ),
        (
            1,
            "Traceback (most recent call last):\n  File \"t.py\", line 1\nKeyError: 'label'\n",
            "dataset: column 'label' not found",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 1\n'
            "ValueError: Bad training config: lora_r must be at least 1\n",
            "Bad training config: lora_r must be at least 1",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 1\n'
            "core.models.ModelLoadError: Model 'x': could not load from /m: bad file\n",
            "Model 'x': could not load from /m: bad file",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 1\n'
            "core.registry.RegistryError: Unknown model 'x'\n",
            "Unknown model 'x'",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "t.py", line 1\n'
            "core.tasks.TaskSpecError: Unknown task 'y'\n",
            "Unknown task 'y'",
        ),
        (
            1,
            "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'a'\n\n"
            "During handling of the above exception, another exception occurred:\n\n"
            'Traceback (most recent call last):\n  File "b.py", line 2, in g\n'
            "    raise RuntimeError('boom')\n    ^^^^^^\nRuntimeError: boom\n",
            "RuntimeError: boom",
        ),
        (-11, "loading\n", "SIGSEGV"),
        (2, "usage: python -m core.jobs.run JOB_ID\n", "exited with code 2; last log line: usage"),
    ],
)
def test_failure_reason(exit_code, log, expected):
    reason = reasons.failure_reason(exit_code, log)
    assert expected in reason
    assert "\n" not in reason and "Traceback" not in reason and len(reason) <= reasons.MAX_CHARS


def test_a_job_process_gets_the_memory_settings_unless_the_user_set_their_own(monkeypatch):
    from core.jobs.worker import job_env

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    env = job_env(None)
    assert env["MALLOC_ARENA_MAX"] == "2"  # two heap arenas, not 8 per core
    assert env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "16"  # the user's own setting wins
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    assert job_env([1, 3])["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"  # a training step's kernels
    assert job_env([1, 3])["CUDA_VISIBLE_DEVICES"] == "1,3"


def test_a_locked_store_delays_a_job_row_write_instead_of_failing_the_job(db, monkeypatch):
    """SQLite gave up on its busy timeout once (a loaded machine); the phase is still written."""
    import sqlite3

    from core.jobs import queue

    job_id = queue.submit(
        db, "eval", {"model_id": "smollm2-135m-instruct", "task": "fin_sentiment"}
    )
    queue.claim_next(db)
    real, calls = db.execute, []

    def locked_once(sql, *args):
        if sql.startswith("update jobs") and not calls:
            calls.append(sql)
            raise sqlite3.OperationalError("database is locked")
        return real(sql, *args)

    monkeypatch.setattr(db, "execute", locked_once)
    monkeypatch.setattr(queue.time, "sleep", lambda seconds: None)
    assert queue.set_phase(db, job_id, "evaluating") and calls
    assert queue.get(db, job_id)["phase"] == "evaluating"
    monkeypatch.setattr(
        db,
        "execute",
        lambda sql, *args: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")),
    )
    with pytest.raises(sqlite3.OperationalError):  # a lock that never ends is still said
        queue.set_phase(db, job_id, "never")


def _rows(*states: str) -> list[dict]:
    """Job rows as ``list_jobs`` gives them (newest first): job 1 has the first state."""
    return [{"id": i + 1, "state": s} for i, s in reversed(list(enumerate(states)))]


@pytest.mark.parametrize(
    "states, pinned, followed, shown",
    [
        (("succeeded", "running", "queued"), None, [1, 2, 3], 2),  # the chain's running job
        (("succeeded", "succeeded", "queued"), None, [1, 2, 3], 3),  # ...then the next one
        (("succeeded", "failed", "succeeded"), None, [1, 2, 3], 3),  # all ended: the last
        (("succeeded", "running", "queued"), 1, None, 1),  # a job the user picked stays
        (("succeeded", "running", "queued"), None, None, 2),  # else the running one
        (("succeeded", "queued", "queued"), None, None, 2),  # ...or the next to run
        (("succeeded", "failed", "cancelled"), None, None, 3),  # ...or the newest
        (("succeeded", "running"), 7, None, 2),  # a pinned job no longer listed
    ],
)
def test_the_jobs_page_follows_the_running_job_unless_one_was_picked(
    states, pinned, followed, shown
):
    assert queue.job_to_show(_rows(*states), pinned, followed) == shown
