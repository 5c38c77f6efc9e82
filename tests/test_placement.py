"""Placing jobs on GPUs: the pure rules, and a real worker on a faked 4-GPU machine.

``FINBOARD_GPUS=4`` makes the worker believe in GPUs 0-3; the tiny jobs still run on the CPU
(with ``CUDA_VISIBLE_DEVICES`` set, which a CPU-only torch ignores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from jobs_support import LONG_TRAIN, train_params, wait_for, wait_state

from core import monitoring
from core.jobs import placement, queue, worker
from core.jobs.placement import Refusal, Start, place

FOUR = [0, 1, 2, 3]
TERMINAL = ("succeeded", "failed", "cancelled")


def jobs(*requests: dict) -> list[dict]:
    """Queued job rows, oldest first, with ids 1, 2, ... and these params."""
    return [{"id": number, "params": params} for number, params in enumerate(requests, 1)]


# ---------------------------------------------------------------- the machine's GPUs


@pytest.mark.parametrize(
    ("value", "expected"),
    [("4", FOUR), ("0,2", [0, 2]), (" 3, 1 ", [1, 3]), ("2,", [2]), ("0", []), ("", [])],
)
def test_finboard_gpus_is_a_count_or_a_list(monkeypatch, value, expected):
    monkeypatch.setattr(monitoring, "gpu_count", lambda: 8)
    monkeypatch.setenv(placement.GPUS_ENV, value)
    assert placement.machine_gpus() == expected


@pytest.mark.parametrize("value", ["four", "-1", "1,x", ","])
def test_a_bad_finboard_gpus_says_what_it_must_be(monkeypatch, value):
    monkeypatch.setenv(placement.GPUS_ENV, value)
    with pytest.raises(ValueError, match="FINBOARD_GPUS must be a GPU count"):
        placement.machine_gpus()


def test_without_finboard_gpus_nvml_counts(monkeypatch):
    monkeypatch.delenv(placement.GPUS_ENV, raising=False)
    monkeypatch.setattr(monitoring, "gpu_count", lambda: 2)
    assert placement.machine_gpus() == [0, 1]
    monkeypatch.setattr(monitoring, "gpu_count", lambda: 0)
    assert placement.machine_gpus() == []


# ---------------------------------------------------------------- the rules


def test_one_gpu_jobs_take_the_lowest_free_index_and_never_share_one():
    plan = place(FOUR, [], jobs({}, {}, {}, {}, {}))
    assert plan.start == [Start(1, [0]), Start(2, [1]), Start(3, [2]), Start(4, [3])]
    assert plan.refuse == []  # the fifth waits
    plan = place(FOUR, [[0], [2]], jobs({"gpus": 1}, {}))
    assert plan.start == [Start(1, [1]), Start(2, [3])]
    assert place(FOUR, [[0], [1], [2], [3]], jobs({})).start == []


def test_an_n_gpu_job_needs_n_free():
    assert place(FOUR, [[0, 1, 2]], jobs({"gpus": 2})).start == []
    assert place(FOUR, [[1, 2]], jobs({"gpus": 2})).start == [Start(1, [0, 3])]
    assert place(FOUR, [], jobs({"gpus": 4})).start == [Start(1, FOUR)]


def test_an_all_job_waits_until_every_gpu_is_free():
    for held in ([[3]], [[0], [1]], [[0, 1, 2, 3]]):
        assert place(FOUR, held, jobs({"gpus": "all"})).start == []
    assert place(FOUR, [], jobs({"gpus": "all"})).start == [Start(1, FOUR)]
    assert place([1, 5], [[]], jobs({"gpus": "all"})).start == [Start(1, [1, 5])]


def test_an_external_job_is_left_to_its_launch_and_holds_nobody_up():
    assert place(FOUR, [], jobs({"external": True}, {})).start == [Start(2, [0])]
    assert place([], [], jobs({"external": True}, {})).start == [Start(2, None)]


def test_strict_fifo_nobody_overtakes_the_oldest_job():
    waiting = jobs({"gpus": 2}, {}, {})  # a 2-GPU job first, then two 1-GPU jobs
    assert place(FOUR, [[0], [1], [2]], waiting).start == []
    assert place(FOUR, [[0, 1]], waiting).start == [Start(1, [2, 3])]
    assert place(FOUR, [[0], [1], [2]], jobs({"gpus": "all"}, {})).start == []
    started = place(FOUR, [[0]], jobs({}, {"gpus": 3}, {}))
    assert started.start == [Start(1, [1])]  # the 3-GPU job then waits, and so does the last


def test_a_job_asking_more_gpus_than_the_machine_has_is_refused_not_kept_waiting():
    plan = place(FOUR, [[0]], jobs({"gpus": 8}, {}, {"gpus": 5}, {}))
    assert plan.refuse == [
        Refusal(1, "asks for 8 GPUs; this machine has 4"),
        Refusal(3, "asks for 5 GPUs; this machine has 4"),
    ]
    assert plan.start == [Start(2, [1]), Start(4, [2])]  # refused jobs block nobody
    assert place([0], [], jobs({"gpus": 2})).refuse[0].reason == (
        "asks for 2 GPUs; this machine has 1"
    )


def test_a_request_that_makes_no_sense_is_refused_with_its_reason():
    (refusal,) = place(FOUR, [], jobs({"gpus": 0}, {})).refuse
    assert refusal.job_id == 1 and "gpus must be a whole number" in refusal.reason


def test_without_a_gpu_one_job_runs_at_a_time_whatever_it_asks():
    for asked in ({}, {"gpus": 4}, {"gpus": "all"}, {"processes": 2}):
        assert place([], [], jobs(asked, {})).start == [Start(1, None)]
        assert place([], [[]], jobs(asked, {})).start == []
    assert place([], [], []).start == [] and place(FOUR, [], []).start == []


def test_devices_text_and_the_gpus_it_holds():
    assert placement.devices_text([2, 3]) == "cuda:2,3"
    assert placement.devices_text(None) == "cpu"
    assert placement.devices_text([], 3) == "cpu x3"
    assert placement.gpus_of("cuda:2,3", FOUR) == [2, 3]
    assert placement.gpus_of("cpu x3", FOUR) == []
    assert placement.gpus_of(None, FOUR) == FOUR  # from a worker that gave every job every GPU


# ---------------------------------------------------------------- the store and the CLI


def test_claim_a_given_job_and_record_its_devices(jobs_env, db):
    from core.cli import main

    first = queue.submit(db, "train", train_params(LONG_TRAIN))
    second = queue.submit(db, "train", train_params(LONG_TRAIN))
    claimed = queue.claim(db, second)
    assert claimed["id"] == second and claimed["state"] == "running" and claimed["started_at"]
    assert queue.claim(db, second) is None  # no longer queued
    assert queue.request_cancel(db, first) == "cancelled"
    assert queue.claim(db, first) is None  # cancelled: never started
    assert queue.set_devices(db, second, "cuda:1")
    assert not queue.set_devices(db, first, "cuda:0")  # only a running job's devices are set
    assert [j["id"] for j in queue.queued_jobs(db)] == []

    listed = json.loads(CliRunner().invoke(main, ["jobs", "--json"]).stdout)
    assert {j["id"]: j["devices"] for j in listed} == {first: None, second: "cuda:1"}
    table = CliRunner().invoke(main, ["jobs"]).stdout
    assert "devices" in table.splitlines()[0] and "cuda:1" in table


def test_queued_jobs_are_oldest_first(jobs_env, db):
    ids = [queue.submit(db, "train", train_params(LONG_TRAIN)) for _ in range(3)]
    assert [j["id"] for j in queue.queued_jobs(db)] == ids
    assert [j["id"] for j in queue.queued_jobs(db, limit=2)] == ids[:2]


# ---------------------------------------------------------------- a worker on four GPUs


def visible_devices(pid: int) -> str | None:
    """The CUDA_VISIBLE_DEVICES the process ``pid`` was started with."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = dict(entry.decode().partition("=")[::2] for entry in entries if b"=" in entry)
    return found.get("CUDA_VISIBLE_DEVICES")


def started(db, job_id: int) -> dict | None:
    """The job's row once the worker started its process (state, devices and pid recorded)."""
    job = queue.get(db, job_id)
    return job if job["state"] == "running" and job["pid"] and job["devices"] else None


SLEEPER = "import signal, sys, time; signal.signal(signal.SIGTERM, {}); time.sleep(60)"


def fake_jobs(monkeypatch, ignore_sigterm: bool = False) -> list:
    """Make the worker start a sleeping Python instead of each job (its env and process group
    are real); returns the ``gpu_ids`` it was asked to launch with, in order."""
    handler = "signal.SIG_IGN" if ignore_sigterm else "lambda *_: sys.exit(0)"
    launched = []

    def command(job_id, job=None, gpu_ids=None, port=None):
        launched.append(gpu_ids)
        return [sys.executable, "-c", SLEEPER.format(handler)]

    monkeypatch.setattr(worker, "launch_command", command)
    return launched


def in_process_worker(monkeypatch, gpus: str, **settings) -> worker.Worker:
    """A worker driven step by step by the test (no lock, no loop): ``tend`` and
    ``start_placeable`` are what its loop calls every poll."""
    monkeypatch.setenv(placement.GPUS_ENV, gpus)
    found = worker.Worker(**settings)
    found.gpus = placement.machine_gpus()
    return found


def test_a_job_left_by_a_stopped_worker_keeps_its_gpus_until_it_ends(jobs_env, db, monkeypatch):
    launched = fake_jobs(monkeypatch)
    old = queue.submit(db, "train", train_params(LONG_TRAIN))
    queue.claim(db, old)
    queue.set_devices(db, old, "cuda:1,2")
    survivor = subprocess.Popen(["sleep", "60"], start_new_session=True)
    queue.set_pid(db, old, survivor.pid)
    big = queue.submit(db, "train", {**train_params(LONG_TRAIN), "gpus": 3})
    small = queue.submit(db, "train", train_params(LONG_TRAIN))

    w = in_process_worker(monkeypatch, "4")
    w.recover(db)  # alive: not failed
    assert w.adopt(db) == 1 and w.children[old].gpu_ids == [1, 2]
    assert w.start_placeable(db) == 0  # 3 GPUs asked, 0 and 3 free: and the small one waits
    assert [queue.get(db, j)["state"] for j in (old, big, small)] == ["running", "queued", "queued"]

    survivor.kill()
    survivor.wait()
    assert w.tend(db) == 1 and not w.children
    assert queue.get(db, old)["state"] == "failed"  # it recorded no end of its own
    assert w.start_placeable(db) == 2 and launched == [[0, 1, 2], [3]]
    rows = [queue.get(db, j) for j in (big, small)]
    assert [row["devices"] for row in rows] == ["cuda:0,1,2", "cuda:3"]
    assert [visible_devices(row["pid"]) for row in rows] == ["0,1,2", "3"]


def test_each_running_job_is_cancelled_on_its_own(jobs_env, db, monkeypatch):
    fake_jobs(monkeypatch, ignore_sigterm=True)
    stubborn, other = (queue.submit(db, "train", train_params(LONG_TRAIN)) for _ in range(2))
    w = in_process_worker(monkeypatch, "2", cancel_grace_s=0.5)
    assert w.start_placeable(db) == 2
    time.sleep(1.0)  # the sleepers ignore SIGTERM from here on
    assert queue.request_cancel(db, stubborn) == "running"

    def stubborn_ended() -> bool:
        w.tend(db)
        return stubborn not in w.children

    wait_for(stubborn_ended, 20, interval=0.2, what="the worker to kill the stubborn job")
    job = queue.get(db, stubborn)
    assert job["state"] == "cancelled" and not queue.job_process_alive(job)
    assert list(w.children) == [other] and queue.get(db, other)["state"] == "running"
    assert w.start_placeable(db) == 0  # nothing queued; GPU 0 is free again
    assert w.children[other].gpu_ids == [1]


def test_without_a_gpu_the_worker_runs_one_job_at_a_time(jobs_env, db, monkeypatch):
    launched = fake_jobs(monkeypatch)
    first, second = (queue.submit(db, "train", train_params(LONG_TRAIN)) for _ in range(2))
    w = in_process_worker(monkeypatch, "0")
    assert w.start_placeable(db) == 1 and w.start_placeable(db) == 0 and launched == [None]
    job = queue.get(db, first)
    assert job["devices"] == "cpu"
    assert visible_devices(job["pid"]) == os.environ.get("CUDA_VISIBLE_DEVICES")  # left alone
    assert queue.get(db, second)["state"] == "queued"


def test_worker_refuses_a_job_bigger_than_the_machine(jobs_env, db, monkeypatch):
    monkeypatch.setenv(placement.GPUS_ENV, "4")
    job_id = queue.submit(db, "train", {**train_params(LONG_TRAIN), "gpus": 8})
    worker.ensure_worker(idle_exit_s=30)
    job = wait_state(db, job_id, timeout=30)
    assert job["state"] == "failed" and job["error"] == "asks for 8 GPUs; this machine has 4"
    assert job["pid"] is None  # no process was started for it


def test_worker_runs_four_jobs_on_four_gpus_and_an_all_job_waits_for_every_one(
    jobs_env, db, monkeypatch
):
    monkeypatch.setenv(placement.GPUS_ENV, "4")
    ids = [queue.submit(db, "train", train_params(LONG_TRAIN)) for _ in range(5)]
    everything = None
    worker.ensure_worker(idle_exit_s=30)
    try:
        first = [
            wait_for(lambda i=i: started(db, i), 30, what=f"job {i} to start") for i in ids[:4]
        ]
        assert [job["devices"] for job in first] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
        assert [visible_devices(job["pid"]) for job in first] == ["0", "1", "2", "3"]
        time.sleep(1.5)  # three polls of the worker: the fifth job still finds no free GPU
        assert queue.get(db, ids[4])["state"] == "queued"
        assert [queue.get(db, i)["state"] for i in ids[:4]] == ["running"] * 4

        everything = queue.submit(db, "train", {**train_params(LONG_TRAIN), "gpus": "all"})
        queue.request_cancel(db, ids[1])  # frees cuda:1: the fifth job (older) takes it
        assert wait_state(db, ids[1], timeout=30)["state"] == "cancelled"
        fifth = wait_for(lambda: started(db, ids[4]), 30, what="the fifth job to start")
        assert fifth["devices"] == "cuda:1" and visible_devices(fifth["pid"]) == "1"
        assert queue.get(db, everything)["state"] == "queued"

        others = [ids[0], *ids[2:]]
        for job_id in others:
            queue.request_cancel(db, job_id)

        def all_job_started() -> dict | None:
            if queue.get(db, everything)["state"] != "queued":  # claimed: every GPU was free
                assert [queue.get(db, i)["state"] for i in others] == ["cancelled"] * 4
            return started(db, everything)

        whole = wait_for(all_job_started, 40, interval=0.1, what="the all-GPU job to start")
        assert whole["devices"] == "cuda:0,1,2,3"
        assert visible_devices(whole["pid"]) == "0,1,2,3"
        ended = [queue.get(db, i)["finished_at"] for i in others]
        assert whole["started_at"] >= max(ended)
    finally:
        submitted = [*ids, *([everything] if everything else [])]
        for job_id in submitted:
            queue.request_cancel(db, job_id)
        for job_id in submitted:
            wait_state(db, job_id, TERMINAL, timeout=30)
