"""Data parallel on CPU (torch.distributed with gloo, 2 processes): training and evaluation
give what one process gives, each rank doing half of the work.

The probe (``tests/dp_probe.py``) runs under ``torch.distributed.run`` (the launcher
``accelerate launch`` wraps) and in one plain process, on the tiny test models in fp32.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.integration

PROBE = Path(__file__).with_name("dp_probe.py")
REPO = PROBE.parents[1]
STEPS = 5


def run_probe(out: Path, *args: str, processes: int = 1) -> list[dict]:
    if processes == 1:
        command = [sys.executable, str(PROBE), args[0], str(out), *args[1:]]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc-per-node", str(processes), str(PROBE), args[0], str(out), *args[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return [json.loads((out / f"rank-{r}.json").read_text()) for r in range(processes)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dirs):
    from conftest import write_models_config

    root = tmp_path_factory.mktemp("dp")
    config = write_models_config(root / "models.yaml", tiny_model_dirs)
    os.environ["FINBOARD_MODELS_CONFIG"] = str(config)
    try:
        one = run_probe(root / "one", "train", str(STEPS))
        two = run_probe(root / "two", "train", str(STEPS), processes=2)
        sharded = run_probe(root / "fsdp", "train", str(STEPS), "fsdp", processes=2)
        guarded = run_probe(root / "guarded", "guard", str(STEPS), processes=2)
    finally:
        os.environ.pop("FINBOARD_MODELS_CONFIG", None)
    return {"one": one, "two": two, "fsdp": sharded, "guarded": guarded, "root": root}


def test_each_rank_computes_half_of_every_global_batch_and_no_example_twice(trained):
    one, two = trained["one"][0], trained["two"]
    assert one["global_batches"] == two[0]["global_batches"] == two[1]["global_batches"]
    for micro, batch in enumerate(two[0]["global_batches"]):
        share0, share1 = two[0]["seen"][micro], two[1]["seen"][micro]
        assert not set(share0) & set(share1)
        assert sorted(share0 + share1) == batch
        assert abs(len(share0) - len(share1)) <= 1
    per_epoch = two[0]["batches_per_epoch"]
    epoch = [i for rank in two for batch in rank["seen"][:per_epoch] for i in batch]
    assert len(epoch) == len(set(epoch))  # no example twice in an epoch
    assert one["seen"] == one["global_batches"]  # one process computes whole batches


def test_the_summed_gradients_are_the_global_batch_s(trained):
    """The loss is normalised by the global batch's completion tokens, not each rank's."""
    root = trained["root"]
    one = load_file(root / "one" / "first_gradients.safetensors")
    two = load_file(root / "two" / "first_gradients.safetensors")
    largest = max(float(g.abs().max()) for g in one.values())
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert largest > 0 and worst <= 1e-4 * largest, (worst, largest)


def test_two_processes_train_the_same_adapter_as_one(trained):
    root = trained["root"]
    one = load_file(root / "one" / "masters.safetensors")
    two = load_file(root / "two" / "masters.safetensors")
    largest = max(float(w.abs().max()) for w in one.values())
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert largest > 0 and worst <= 1e-3 * largest, (worst, largest)
    a, b = trained["one"][0], trained["two"][0]
    assert a["steps"] == b["steps"] == STEPS
    assert a["tokens"] == b["tokens"]  # tokens counted over every rank
    assert abs(a["mean_train_loss"] - b["mean_train_loss"]) < 1e-4
    assert b["world_size"] == 2


def test_sharding_the_base_fsdp_trains_the_same_adapter(trained):
    root = trained["root"]
    one = load_file(root / "one" / "masters.safetensors")
    sharded = load_file(root / "fsdp" / "masters.safetensors")
    largest = max(float(w.abs().max()) for w in one.values())
    worst = max(float((one[k] - sharded[k]).abs().max()) for k in one)
    assert worst <= 1e-3 * largest, (worst, largest)
    assert any("sharded over 2 processes (FSDP)" in n for n in trained["fsdp"][0]["notes"])


def test_rank_0_s_guard_holds_every_rank_and_the_held_time_spends_no_rank_s_budget(trained):
    """A pause longer than the whole time budget: every rank waits at the same step, counts the
    time held, trains every step, shrinks its passes with rank 0 and ends with the same adapter
    as the unguarded run (the guard is asked on rank 0 only: the probe asserts it)."""
    from dp_probe import GUARD_BUDGET_S, GUARD_PAUSE_S

    assert GUARD_PAUSE_S > GUARD_BUDGET_S
    root = trained["root"]
    for rank in trained["guarded"]:
        assert rank["steps"] == STEPS, rank["notes"]
        assert not any("time budget reached" in n for n in rank["notes"]), rank["notes"]
        assert "from step 2 each micro-batch ran in 2 passes" in rank["notes"]
    two = load_file(root / "two" / "masters.safetensors")
    held = load_file(root / "guarded" / "masters.safetensors")
    largest = max(float(w.abs().max()) for w in two.values())
    worst = max(float((two[k] - held[k]).abs().max()) for k in two)
    assert worst <= 1e-3 * largest, (worst, largest)


def test_two_processes_store_the_same_score_as_one(tmp_path, tiny_model_dirs, finboard_home):
    from core import store

    one = run_probe(tmp_path / "one", "eval")[0]["summary"]
    two = run_probe(tmp_path / "two", "eval", processes=2)
    assert two[0]["summary"] == two[1]["summary"]  # every rank returns the stored summary
    db = store.connect()
    rows = db.execute("select id, metrics_json, n_items from scores order by id").fetchall()
    assert len(rows) == 2  # one row per run: the second rank stored nothing
    assert json.loads(rows[0][1]) == json.loads(rows[1][1]) and rows[0][2] == rows[1][2]
    first, second = (
        db.execute(
            "select item_id, position, parsed, correct, raw_output from predictions "
            "where score_id = ? order by position",
            [score_id],
        ).fetchall()
        for score_id in (rows[0][0], rows[1][0])
    )
    assert len(first) == len(second) == one["n_items"]
    # Same items, answers and verdicts; the log-likelihoods only within float rounding (the
    # ranks' batches differ from one process's, and a batch's make-up moves the last digit).
    assert [row[:4] for row in first] == [row[:4] for row in second]
    for a, b in zip(first, second):
        pairs = zip(a[4].split(), b[4].split(), strict=True)
        for x, y in ((p.split("=")[1], q.split("=")[1]) for p, q in pairs):
            assert float(x) == pytest.approx(float(y), abs=2e-3)


# ---------------------------------------------------------------- as jobs, through the worker

DP_TRAIN = {
    "dtype": "fp32",
    "lora_dropout": 0.0,
    "max_train_examples": 32,
    "batch_size": 4,
    "log_every": 1,
    "eval_every": 100000,
    "save_every": 100000,
}


def _processes_of(job_id: int, home: Path) -> list[int]:
    """Pids of processes running this job (any rank, the launcher) in this store."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        runs_job = b"core.jobs.run" in argv and str(job_id).encode() in argv
        if runs_job and f"FINBOARD_HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


def test_a_two_process_training_job_leaves_one_adapter_one_model_one_progress(jobs_env, db):
    from jobs_support import train_params, wait_state

    from core.jobs import queue, worker

    two = queue.submit(db, "train", {**train_params(DP_TRAIN), "processes": 2})
    one = queue.submit(db, "train", train_params(DP_TRAIN))
    worker.ensure_worker(idle_exit_s=60)
    jobs = {n: wait_state(db, job_id, timeout=300) for n, job_id in (("two", two), ("one", one))}
    for job in jobs.values():
        assert job["state"] == "succeeded", job["error"]
    assert jobs["two"]["result"]["world_size"] == 2 and jobs["one"]["result"]["world_size"] == 1
    models = [row[0] for row in db.execute("select id from models").fetchall()]
    assert sorted(models) == sorted(j["params"]["new_model_id"] for j in jobs.values())
    adapters = sorted(p.name for p in (jobs_env / "adapters").iterdir())
    assert adapters == sorted(models)  # one adapter folder per job, none per rank
    steps = [row["step"] for row in queue.progress_rows(db, two)]
    assert steps == list(range(1, jobs["two"]["result"]["steps"] + 1))  # one row per step
    a = load_file(Path(jobs["one"]["result"]["adapter_dir"]) / "adapter_model.safetensors")
    b = load_file(Path(jobs["two"]["result"]["adapter_dir"]) / "adapter_model.safetensors")
    largest = max(float(w.abs().max()) for w in a.values())
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-3 * largest
    assert not _processes_of(two, jobs_env)


def test_killing_one_rank_fails_the_job_and_leaves_no_process(jobs_env, db):
    import signal
    import time

    from jobs_support import LONG_TRAIN, train_params, wait_for, wait_state

    from core.jobs import queue, worker

    job_id = queue.submit(db, "train", {**train_params(LONG_TRAIN), "processes": 2})
    worker.ensure_worker(idle_exit_s=60)
    wait_for(
        lambda: len(queue.progress_rows(db, job_id)) >= 2, timeout=180, what="two training steps"
    )
    ranks = [
        pid
        for pid in _processes_of(job_id, jobs_env)
        if b"RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()
    ]
    assert len(ranks) == 1, ranks
    os.kill(ranks[0], signal.SIGKILL)
    killed = time.monotonic()
    job = wait_state(db, job_id, timeout=60)
    assert job["state"] == "failed" and time.monotonic() - killed < 10
    assert job["error"].startswith("rank 1: killed (SIGKILL)"), job["error"]
    wait_for(lambda: not _processes_of(job_id, jobs_env), timeout=10, what="no process left")


def test_a_job_across_two_machines_with_the_documented_command(jobs_env, db, monkeypatch):
    """Two "machines" on this one: the README's command with --machine_rank 0 and 1."""
    import time

    from click.testing import CliRunner

    from core.cli import main
    from core.jobs import queue, worker
    from core.jobs.launch import free_port, machines_command

    submitted = CliRunner().invoke(
        main,
        ["train", "--model", "tiny-llama-chat", "--task", "fin_sentiment", "--external", "--json"]
        + [arg for key, value in DP_TRAIN.items() for arg in ("--set", f"{key}={value}")],
    )
    assert submitted.exit_code == 0, submitted.output
    assert "--machine_rank" in submitted.output and "--num_machines" in submitted.output
    job_id = json.loads(submitted.output.strip().splitlines()[-1])["job_id"]
    worker.ensure_worker(idle_exit_s=30)
    time.sleep(3)
    assert queue.get(db, job_id)["state"] == "queued"  # the worker leaves it to the launch
    port = free_port()
    env = {**worker.worker_env(), "OMP_NUM_THREADS": "1"}
    machines = [
        subprocess.Popen(
            machines_command(job_id, 2, rank, 2, "127.0.0.1", port),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [machine.communicate(timeout=300)[0] for machine in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    job = queue.get(db, job_id)
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["world_size"] == 2
    assert [row[0] for row in db.execute("select id from models").fetchall()] == [
        job["params"]["new_model_id"]
    ]
