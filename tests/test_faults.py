"""The ten ways to lose work or poison the store that issue 16 reproduced, one section each.

Each test failed on the code before the fix. Races run in real processes; a crashed job is
played by rows whose process is gone. The malformed-file suite is ``test_malformed_files.py``;
the crash tests (kill -9 of trainer, worker, both, app restart) are ``test_crashes.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from jobs_support import QUICK_TRAIN, train_params, wait_for, wait_state, write_user_csv

from core import monitoring, paths, store
from core.cli import main
from core.data.importer import ColumnMapping, DatasetImportError
from core.jobs import queue, reasons, worker
from core.store import samples as sample_rows
from core.tasks import authoring, spec

REPO = Path(__file__).resolve().parents[1]
FINBOARD = [sys.executable, "-c", "from core.cli import main; main()"]


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- 1. NaN and infinity


@pytest.mark.parametrize("setting", ["learning_rate=nan", "epochs=inf", "epochs=nan"])
def test_1_non_finite_settings_are_refused_and_later_submits_still_work(jobs_env, db, setting):
    name, value = setting.split("=")
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        queue.submit(db, "train", train_params({name: value}))
    assert db["jobs"].count == 0
    job_id = queue.submit(db, "train", train_params(QUICK_TRAIN))  # the store is still usable
    assert queue.get(db, job_id)["params"]["new_model_id"]


def test_1_the_store_writes_strict_json_only(db):
    assert store.to_json({"lr": float("nan"), "x": [float("inf")]}) == '{"lr": null, "x": [null]}'
    # the JSON functions every id allocation uses still read every row
    db.execute("select json_extract(params_json, '$.model_id') from jobs").fetchall()


# ---------------------------------------------------------------- 2. parallel submits

SUBMIT_TWICE = """
import sys, time
from core import store
from core.jobs import queue
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # all processes start together
db = store.connect()
params = {"model_id": "tiny-llama-chat", "task": "fin_sentiment", "preset": "quick",
          "overrides": {"max_train_examples": 8, "batch_size": 4, "eval_every": 100000}}
for _ in range(2):
    print(queue.submit(db, "train", params))
"""


@pytest.mark.integration
def test_2_parallel_submits_get_unique_models_and_no_adapter_is_lost(jobs_env, db):
    start = time.time() + 8  # time for every process to import torch first
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMIT_TWICE, str(start)],
            cwd=REPO,
            env=worker.worker_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    job_ids = [int(line) for p in processes for line in p.communicate(timeout=120)[0].split()]
    assert len(job_ids) == 6
    jobs = [queue.get(db, job_id) for job_id in job_ids]
    model_ids = {job["params"]["new_model_id"] for job in jobs}
    assert len(model_ids) == 6 and len({job["run_dir"] for job in jobs}) == 6
    worker.ensure_worker(idle_exit_s=60)
    for job_id in job_ids:
        assert wait_state(db, job_id, timeout=300)["state"] == "succeeded"
    adapters = {Path(queue.get(db, j)["result"]["adapter_dir"]) for j in job_ids}
    assert len(adapters) == 6
    assert all((folder / "adapter_config.json").is_file() for folder in adapters)
    finetuned = {row[0] for row in db.execute("select id from models").fetchall()}
    assert model_ids <= finetuned


def test_2_an_id_already_on_disk_is_never_reused(jobs_env, db):
    from core.training.finetune import new_model_id

    wanted = new_model_id("tiny-llama-chat", "fin_sentiment", "lora")
    (paths.adapters_dir() / wanted).mkdir(parents=True)  # e.g. a store that was deleted
    job_id = queue.submit(db, "train", train_params(QUICK_TRAIN))
    assert queue.get(db, job_id)["params"]["new_model_id"] == f"{wanted}-2"


# ---------------------------------------------------------------- 3. smoke tests and --limit


@pytest.mark.parametrize("limit", ["-5", "0"])
def test_3_a_limit_below_one_is_refused(finboard_home, limit):
    result = _run("eval", "--model", "tiny-llama", "--task", "fin_sentiment", "--limit", limit)
    assert result.exit_code == 2 and "--limit" in result.output


def test_3_an_eval_job_with_a_negative_limit_stores_nothing(jobs_env, db):
    with pytest.raises(ValueError, match="limit must be a whole number of at least 1"):
        queue.submit(
            db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": -5}
        )
    assert db["jobs"].count == 0


# (the leaderboard ranks full-split scores only: tests/test_leaderboard.py
#  test_smoke_tests_are_shown_apart_and_never_ranked, and tests/test_cli.py)


# ---------------------------------------------------------------- 4. labels and small files


def _case_file(tmp_path: Path) -> Path:
    path = tmp_path / "cased.csv"
    labels = ["Positive", "positive", "negative"]
    rows = [f"Company {i} results,{labels[i % 3]}" for i in range(40)]
    path.write_text("headline,tone\n" + "\n".join(rows) + "\n")
    return path


def test_4_labels_differing_only_in_case_are_refused_without_a_label_list(finboard_home, tmp_path):
    source = _case_file(tmp_path)
    with pytest.raises(DatasetImportError, match="differ only in case") as caught:
        authoring.create_task_from_file(
            source,
            name="cased",
            kind="choice",
            mapping=ColumnMapping(text="headline", label="tone"),
        )
    assert "cased.csv, row" in str(caught.value) and "'tone'" in str(caught.value)
    assert not paths.user_tasks_dir().exists() or not list(paths.user_tasks_dir().iterdir())
    assert "fin_sentiment" in [s.name for s in spec.list_tasks()]  # every other task still works


def test_4_with_a_label_list_case_is_ignored(finboard_home, tmp_path):
    task = authoring.create_task_from_file(
        _case_file(tmp_path),
        name="cased",
        kind="choice",
        mapping=ColumnMapping(text="headline", label="tone"),
        labels=["positive", "negative"],
    )
    answers = {
        item.answer for name in spec.SPLIT_NAMES for item in spec.load_split(task, name).items
    }
    assert answers == {"positive", "negative"}  # 'Positive' and 'positive' are one class


def test_4_a_three_row_file_is_refused_with_its_split_sizes(finboard_home, tmp_path):
    source = write_user_csv(tmp_path / "tiny.csv", n=3)
    with pytest.raises(spec.TaskSpecError, match="every split needs at least one row"):
        authoring.create_task_from_file(
            source, name="tiny", kind="choice", mapping=ColumnMapping(text="headline", label="tone")
        )
    assert "tiny" not in [s.name for s in spec.list_tasks()]


def test_4_tasks_remove_deletes_a_user_task_and_its_data(finboard_home, tmp_path):
    source = write_user_csv(tmp_path / "news.csv")
    result = _run(
        *("tasks", "add", "news", "--file", str(source), "--kind", "choice"),
        *("--text-column", "headline", "--label-column", "tone"),
    )
    assert result.exit_code == 0, result.output
    assert "news" in [s.name for s in spec.list_tasks()]
    removed = _run("tasks", "remove", "news")
    assert removed.exit_code == 0, removed.output
    assert "news" not in [s.name for s in spec.list_tasks()]
    assert not list((paths.user_data_dir() / "datasets").glob("news.*"))
    builtin = _run("tasks", "remove", "fin_sentiment")
    assert builtin.exit_code != 0 and "built-in" in builtin.output


# ---------------------------------------------------------------- 5. settings checked at submit


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("target_modules=nothing_proj", "target_modules names no layer of this model"),
        ("dtype=float8", "dtype must be one of"),
        ("weight_decay=-1", "weight_decay must be at least 0"),
        ("max_seq_length=1", "max_seq_length must be at least 16"),
        ("lora_alpha=-5", "lora_alpha must be at least 1"),
        ("max_train_examples=-5", "max_train_examples must be at least 0"),
    ],
)
def test_5_bad_settings_are_refused_at_submit(jobs_env, db, setting, message):
    name, value = setting.split("=")
    with pytest.raises(ValueError, match=message):
        queue.submit(db, "train", train_params({name: value}))
    assert db["jobs"].count == 0 and db["model_reservations"].count == 0


def test_5_eval_options_and_devices_are_checked_before_anything_runs(finboard_home, tmp_path):
    batch = _run("eval", "--model", "tiny-llama", "--task", "fin_sentiment", "--batch-size", "-1")
    assert batch.exit_code == 2 and "--batch-size" in batch.output
    import torch

    if not torch.cuda.is_available():
        cuda = _run(*"eval --model tiny-llama --task fin_sentiment --limit 2 --device cuda".split())
        assert cuda.exit_code == 1 and "no CUDA GPU is usable here" in cuda.output
        assert "Traceback" not in cuda.output
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_bytes(b"these are my notes, not a database\n")
    before = not_a_store.read_bytes()
    result = _run("--db", str(not_a_store), "leaderboard")
    assert result.exit_code == 1 and "is not a usable SQLite store" in result.output
    assert "Traceback" not in result.output and not_a_store.read_bytes() == before


# ---------------------------------------------------------------- 6. heartbeat and process identity


def _ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _running_job(db, pid: int, silent_s: float) -> int:
    job_id = queue.submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"]})
    queue.claim_next(db)
    queue.set_pid(db, job_id, pid)
    with db.conn:  # as if the last heartbeat came ``silent_s`` ago
        db.execute("update jobs set heartbeat_at = ? where id = ?", [_ago(silent_s), job_id])
    return job_id


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_6_a_job_whose_process_and_worker_died_shows_failed_in_the_list(jobs_env, db):
    job_id = _running_job(db, _dead_pid(), silent_s=120)
    listed = _run("jobs", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = [r for r in json.loads(listed.output) if r["id"] == job_id]
    assert row["state"] == "failed" and "heartbeat stopped" in row["error"]


def test_6_a_fresh_heartbeat_is_not_reaped(jobs_env, db):
    job_id = _running_job(db, _dead_pid(), silent_s=1)
    assert queue.reap_stale(db) == []
    assert queue.get(db, job_id)["state"] == "running"


def test_6_a_reused_pid_is_never_signalled_nor_waited_for(jobs_env, db):
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a group leader
    try:
        job_id = _running_job(db, stranger.pid, silent_s=120)
        with db.conn:  # the job's process started long before this one got its pid
            db.execute("update jobs set pid_started = pid_started - 3600 where id = ?", [job_id])
        job = queue.get(db, job_id)
        assert not queue.job_process_alive(job)
        assert not queue.signal_job(job)
        queue.request_cancel(db, job_id)
        started = time.monotonic()
        worker.Worker().recover(db)  # fails it at once instead of waiting on the stranger
        assert time.monotonic() - started < 5
        assert queue.get(db, job_id)["state"] == "failed"
        assert stranger.poll() is None  # the unrelated process was left alone
    finally:
        stranger.kill()
        stranger.wait()


# ---------------------------------------------------------------- 7. parallel first opens

OPEN_AT = """
import sys, time
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
from core.cli import main
main(["leaderboard"])
"""


@pytest.mark.integration
def test_7_parallel_first_opens_of_a_fresh_store_all_succeed(tmp_path):
    home = tmp_path / "fresh"
    env = {**os.environ, "FINBOARD_HOME": str(home), "FINBOARD_DB": str(home / "lb.db")}
    start = time.time() + 6
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, str(start)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    failed = [err for (_, err), p in zip(outputs, processes, strict=True) if p.returncode != 0]
    assert failed == []
    db = store.connect(home / "lb.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(store.schema.MIGRATIONS)


# ---------------------------------------------------------------- 8. per-store run folders


def test_8_two_stores_under_one_home_never_share_a_log(jobs_env, monkeypatch):
    logs = []
    for name in ("a.db", "b.db"):
        monkeypatch.setenv("FINBOARD_DB", str(jobs_env / name))
        database = store.connect()
        job_id = queue.submit(
            database, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"]}
        )
        logs.append((job_id, queue.get(database, job_id)["log_path"]))
        database.close()
    assert logs[0][0] == logs[1][0] == 1  # ids restart per store...
    assert logs[0][1] != logs[1][1]  # ...their logs do not meet


def test_8_a_store_elsewhere_keeps_its_runs_beside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("FINBOARD_HOME", raising=False)
    monkeypatch.setenv("FINBOARD_DB", str(tmp_path / "data" / "lb.db"))
    monkeypatch.chdir(tmp_path)
    assert paths.runs_dir().is_relative_to(tmp_path / "data")
    assert paths.adapters_dir() == tmp_path / "data" / "adapters"
    assert not paths.runs_dir().is_relative_to(REPO)


# ---------------------------------------------------------------- 9 and 10. disk, kill reasons
# (checkpoints removed after success unless kept: tests/test_workflows.py
#  test_after_success_the_run_keeps_no_checkpoints_unless_asked; weights_only checkpoint loads:
#  tests/test_training.py test_checkpoints_load_without_unpickling_code; bind, token and Host:
#  tests/test_app_security.py and tests/test_api.py)


def _job_with_ram_sample(db, used_share: float) -> int:
    job_id = queue.submit(db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"]})
    row = {"ts": time.time(), "job_id": job_id, "ram_used_mb": 1000 * used_share}
    sample_rows.insert(db, [{**row, "ram_total_mb": 1000.0}])
    return job_id


def test_10_a_kill_blames_memory_only_when_memory_ran_out(jobs_env, db, monkeypatch):
    monkeypatch.setattr(monitoring, "oom_kills", lambda: None)  # no cgroup counter: samples tell
    calm, full = _job_with_ram_sample(db, 0.4), _job_with_ram_sample(db, 0.97)
    assert monitoring.ran_out_of_memory(db, calm, None) is False
    assert monitoring.ran_out_of_memory(db, full, None) is True
    counter = iter([5])
    monkeypatch.setattr(monitoring, "oom_kills", lambda: next(counter))
    assert monitoring.ran_out_of_memory(db, full, kills_before=5) is False  # counter did not move
    assert "memory was not short" in reasons.failure_reason(-9, "", out_of_memory=False)
    assert "ran out of memory" in reasons.failure_reason(-9, "", out_of_memory=True)


@pytest.mark.integration
def test_10_killing_a_job_by_hand_is_not_blamed_on_memory(jobs_env, db):
    job_id = queue.submit(db, "train", train_params({**QUICK_TRAIN, "epochs": 20}))
    worker.ensure_worker(idle_exit_s=60)
    running = wait_for(
        lambda: (job := queue.get(db, job_id))["phase"] == "training" and job["pid"] and job,
        what="the job to start training",
    )
    os.kill(running["pid"], 9)
    failed = wait_state(db, job_id)
    assert failed["state"] == "failed" and "SIGKILL" in failed["error"]
    assert failed["error"] != reasons.SIGKILL_REASONS[True]
