"""Out-of-memory recovery: the job keeps its id, is queued again with half the micro-batch and
twice the accumulation (same effective batch), with back-off and a history of attempts."""

from __future__ import annotations

import json
import textwrap

import pytest
from jobs_support import QUICK_TRAIN, train_params, wait_state

from core import guard, monitoring
from core.jobs import queue, retry, worker
from core.store import samples as sample_rows

# Injected into the job processes of one test (a sitecustomize on PYTHONPATH): the first
# attempt raises CUDA's out-of-memory error at step 3, after the checkpoint of step 2; every
# forward pass's size is written down, so the test sees the passes each attempt really ran.
INJECT = textwrap.dedent(
    """
    import os
    from pathlib import Path

    if os.environ.get("FINBOARD_TEST_OOM_DIR"):
        import torch
        from core.training import trainer

        folder = Path(os.environ["FINBOARD_TEST_OOM_DIR"])
        step, loss = trainer.Trainer._step, trainer.Trainer.completion_loss

        def oom_once(self, first_micro):
            marker = folder / "oom-raised"
            if first_micro >= 2 * self.config.grad_accum and not marker.exists():
                marker.write_text("1")
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return step(self, first_micro)

        def counted(self, examples):  # training passes only (not validation)
            if not self.model.training:
                return loss(self, examples)
            attempt = 2 if (folder / "oom-raised").exists() else 1
            with (folder / f"passes-{attempt}.txt").open("a") as handle:
                handle.write(f"{len(examples)}\\n")
            return loss(self, examples)

        trainer.Trainer._step, trainer.Trainer.completion_loss = oom_once, counted
    """
)


def _guard_file(home, **values) -> None:
    lines = [f"{key}: {value}" for key, value in {"min_free_ram_mb": 0, **values}.items()]
    (home / "guard.yaml").write_text("\n".join(lines) + "\n")


def test_an_out_of_memory_failure_is_retried_with_half_the_micro_batch(
    jobs_env, db, tmp_path, monkeypatch
):
    injected = tmp_path / "inject"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(INJECT)
    inherited = __import__("os").environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{injected}:{inherited}" if inherited else str(injected))
    monkeypatch.setenv("FINBOARD_TEST_OOM_DIR", str(injected))
    _guard_file(jobs_env, oom_backoff_s=0.5, oom_retries=2)
    settings = {**QUICK_TRAIN, "max_train_examples": 16, "save_every": 2, "eval_every": 100}
    job_id = queue.submit(db, "train", train_params(settings))
    worker.ensure_worker(idle_exit_s=30)
    job = wait_state(db, job_id, timeout=150)
    assert job["state"] == "succeeded", job["error"]
    first, second = job["attempts"]
    assert first["outcome"] == "out of memory" and "out of memory on GPU" in first["reason"]
    assert (first["micro_batch"], first["grad_accum"], first["effective_batch"]) == (4, 1, 4)
    assert (second["micro_batch"], second["grad_accum"], second["effective_batch"]) == (2, 2, 4)
    assert second["outcome"] == "succeeded" and second["resume_from"].endswith("step-000002")
    assert job["params"]["config"]["micro_split"] == 2 and job["result"]["steps"] == 4
    # what the processes really ran: 4-example passes, then 2-example ones after the retry
    assert set((injected / "passes-1.txt").read_text().split()) == {"4"}
    assert set((injected / "passes-2.txt").read_text().split()) == {"2"}
    retries = [e for e in queue.events(db, job_id) if e["kind"] == "retry"]
    assert len(retries) == 1 and "micro batch 2, grad accum 2" in retries[0]["message"]
    assert "resources" in job["result"] and job["result"]["resources"]["paused_s"] == 0.0


def _running_train_job(db, home, attempts=None) -> dict:
    job_id = queue.submit(db, "train", train_params({**QUICK_TRAIN, "batch_size": 4}))
    queue.claim(db, job_id)
    if attempts:
        queue.set_attempts(db, job_id, attempts)
    return queue.get(db, job_id)


def test_a_kernel_oom_kill_is_recognised_and_retried_after_a_back_off(jobs_env, db, monkeypatch):
    _guard_file(jobs_env, oom_backoff_s=30, oom_retries=1)
    job = _running_train_job(db, jobs_env)
    monkeypatch.setattr(monitoring, "ran_out_of_memory", lambda db, job_id, before: True)
    worker.Worker().finish(db, job, exit_code=-9, kills_before=3)  # SIGKILL, memory had run out
    row = queue.get(db, job["id"])
    assert row["state"] == "queued" and row["id"] == job["id"]
    assert row["attempts"][0]["reason"].startswith("killed (SIGKILL) by the system when it ran out")
    assert row["params"]["config"]["micro_split"] == 2 and retry.waiting(row)
    assert row["retry_at"] == pytest.approx(__import__("time").time() + 30, abs=5)
    assert not [j for j in queue.queued_jobs(db) if not retry.waiting(j)]  # not started yet
    queue.claim(db, job["id"])  # the second attempt is killed the same way: no retry left
    worker.Worker().finish(db, queue.get(db, job["id"]), exit_code=-9, kills_before=3)
    failed = queue.get(db, job["id"])
    assert failed["state"] == "failed" and "ran out of memory" in failed["error"]
    assert [a["outcome"] for a in failed["attempts"]] == ["out of memory", "out of memory"]


def test_a_kill_without_memory_short_and_other_errors_are_not_retried(jobs_env, db, monkeypatch):
    _guard_file(jobs_env, oom_backoff_s=0)
    job = _running_train_job(db, jobs_env)
    monkeypatch.setattr(monitoring, "ran_out_of_memory", lambda db, job_id, before: False)
    worker.Worker().finish(db, job, exit_code=-9, kills_before=3)
    row = queue.get(db, job["id"])
    assert row["state"] == "failed" and "memory was not short" in row["error"]
    assert row["attempts"] == []
    assert not retry.out_of_memory_failure(
        1, "Traceback (most recent call last):\nKeyError: 'x'", None
    )


def test_a_pass_of_one_example_cannot_shrink_and_evaluations_halve_their_batch():
    assert (
        retry.smaller_training_config({"batch_size": 2, "grad_accum": 1, "micro_split": 2}) is None
    )
    assert retry.smaller_training_config({"batch_size": 8, "grad_accum": 1, "fsdp": True}) is None
    job = {"kind": "eval", "params": {"batch_size": 16}, "devices": "cpu"}
    assert retry.smaller_params(job) == {"batch_size": 8}
    assert retry.smaller_params({**job, "params": {"batch_size": 1}}) is None
    assert retry.backoff_s(guard.GuardSettings(oom_backoff_s=10), 3) == 40


def test_the_guard_reads_the_newest_sample_of_the_jobs_own_gpus(db):
    rows = [
        {"ts": 1.0, "job_id": 7, "gpu_index": 0, "gpu_temp_c": 60.0},
        {"ts": 1.0, "job_id": 7, "gpu_index": 1, "gpu_temp_c": 61.0},
        {"ts": 3.0, "job_id": 7, "gpu_index": 0, "gpu_temp_c": 90.0},
        {"ts": 3.0, "job_id": 8, "gpu_index": 1, "gpu_temp_c": 99.0},
    ]
    now = __import__("time").time()
    sample_rows.insert(db, [{**row, "ts": now - 3.0 + row["ts"]} for row in rows])
    assert [r["gpu_temp_c"] for r in guard.StoreFeed(db, 7, gpu_ids=[0, 1]).latest()] == [
        90.0,
        61.0,
    ]
    assert [r["gpu_temp_c"] for r in guard.StoreFeed(db, 7, gpu_ids=[1]).latest()] == [61.0]
    assert json.dumps(guard.StoreFeed(db, 9, gpu_ids=[]).latest()) == "[]"
    assert guard.StoreFeed(db, 7, gpu_ids=[1], max_age_s=1.0).latest() == []  # 2 s old: stale
