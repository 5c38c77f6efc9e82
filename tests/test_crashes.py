"""Crashes: kill -9 of a trainer, of the worker, of both, and of the app in the middle of a job.

Real worker and job processes on the tiny models. Whatever dies, no job is lost: a killed
trainer is failed at once with a reason and leaves no process behind, a killed worker's job
keeps running and is adopted by the next worker without losing a progress row, and the app is
only a window on the queue.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from jobs_support import LONG_TRAIN, first_progress, train_params, wait_for, wait_state

from core.jobs import queue, reasons, worker

pytestmark = pytest.mark.integration


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _training(db, settings: dict) -> dict:
    job_id = queue.submit(db, "train", train_params(settings))
    worker.ensure_worker(idle_exit_s=60)
    first_progress(db, job_id, min_step=2)
    return queue.get(db, job_id)


def test_kill9_of_the_trainer_fails_it_at_once_and_leaves_no_orphan(jobs_env, db):
    job = _training(db, LONG_TRAIN)
    os.kill(job["pid"], signal.SIGKILL)
    killed = time.monotonic()
    failed = wait_state(db, job["id"])
    assert failed["state"] == "failed" and time.monotonic() - killed < 10
    assert "SIGKILL" in failed["error"] and failed["error"] != reasons.SIGKILL_REASONS[True]
    assert not _group_alive(job["pid"])  # nothing of the job's process group is left


def test_kill9_of_the_worker_loses_no_job_and_no_progress_row(jobs_env, db):
    settings = {**LONG_TRAIN, "epochs": 1, "max_train_examples": 60}
    job = _training(db, settings)
    os.kill(worker.running_worker_pid(), signal.SIGKILL)
    wait_for(lambda: worker.running_worker_pid() is None, what="the worker to die")
    assert queue.job_process_alive(queue.get(db, job["id"]))  # the job runs on alone
    worker.ensure_worker(idle_exit_s=60)  # the next worker adopts it
    done = wait_state(db, job["id"], timeout=300)
    assert done["state"] == "succeeded", done["error"]
    steps = [row["step"] for row in queue.progress_rows(db, job["id"]) if row.get("step")]
    assert steps == sorted(set(steps)) and steps[-1] == done["result"]["steps"]
    assert steps == list(range(steps[0], steps[-1] + 1))  # log_every 1: every step is there


def test_kill9_of_worker_and_trainer_fails_the_job_with_a_reason(jobs_env, db):
    job = _training(db, LONG_TRAIN)
    os.kill(worker.running_worker_pid(), signal.SIGKILL)
    os.killpg(job["pid"], signal.SIGKILL)
    wait_for(lambda: not queue.job_process_alive(job), what="the job to die")
    wait_for(lambda: worker.running_worker_pid() is None, what="the worker to die")
    assert queue.get(db, job["id"])["state"] == "running"  # nobody recorded its end yet
    worker.ensure_worker(idle_exit_s=60)  # a new worker (or the Jobs page, later) records it
    failed = wait_state(db, job["id"])
    assert failed["state"] == "failed" and failed["error"]
    after = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 4}
    )
    assert wait_state(db, after)["state"] == "succeeded"  # and the queue goes on


@pytest.mark.browser
def test_the_app_can_die_and_restart_in_the_middle_of_a_job(jobs_env, db):
    import shutil

    from browser_support import FINBOARD, LOADED, free_port, launch_chromium, running_server

    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import expect, sync_playwright

    job = _training(db, {**LONG_TRAIN, "epochs": 1, "max_train_examples": 40})
    port = free_port()
    env = {**os.environ}
    # Hold the job mid-run while the app starts and dies: on a fast machine 40 examples can
    # finish before Streamlit listens, and then the app would not die "in the middle" of it.
    # A stopped process is alive, so nothing takes it for dead.
    os.killpg(job["pid"], signal.SIGSTOP)
    try:
        with running_server([*FINBOARD, "app", "--port", str(port)], env, port):
            pass  # served, then killed: the job never noticed
        assert queue.get(db, job["id"])["state"] == "running"
    finally:
        os.killpg(job["pid"], signal.SIGCONT)
    assert wait_state(db, job["id"], timeout=300)["state"] == "succeeded"
    port = free_port()
    with (
        running_server([*FINBOARD, "app", "--port", str(port)], env, port) as url,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(f"{url}/jobs")
        page.wait_for_function(LOADED, polling=100, timeout=60_000)
        table = page.locator("table.fb-table").first  # the queue
        expect(table).to_contain_text("succeeded", timeout=30_000)
        browser.close()
