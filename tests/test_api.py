"""The HTTP API (core.api) and ``finboard serve``: TestClient tests, then one real server.

TestClient tests never start a worker (``ensure_worker`` is recorded instead); the last test
runs ``finboard serve`` in a subprocess and drives a submit → status → leaderboard round trip
over HTTP, with the real worker running the jobs on the tiny model.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import TINY_CHAT_ID, TINY_MODEL_ID, evaluate_ids, store_copy_fixture
from fastapi.testclient import TestClient
from test_comparison import OTHER_TASK, TRAINED_TASK, compared_store_path

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"
LOCAL = "http://127.0.0.1"  # the Host a local client sends (the API refuses other names)
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def worker_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record ensure_worker calls instead of starting a real worker process."""
    from core.jobs import worker

    calls: list[int] = []
    monkeypatch.setattr(worker, "ensure_worker", lambda *a, **k: calls.append(1) or 0)
    return calls


@pytest.fixture
def client(db, worker_calls) -> TestClient:
    from core.api.app import create_app

    return TestClient(create_app(token=None), base_url=LOCAL)


def _jobs(db) -> list[dict]:
    from core.jobs import queue

    return queue.list_jobs(db)


# ---------------------------------------------------------------- submitting


def test_submit_eval_queues_the_job_and_starts_the_worker(client, db, worker_calls):
    body = {"kind": "eval", "model_id": TINY_MODEL_ID, "tasks": ["fin_sentiment"], "limit": 4}
    response = client.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["state"] == "queued" and answer["new_model_id"] is None
    assert worker_calls == [1]
    (stored,) = _jobs(db)
    assert stored["id"] == answer["job_id"] and stored["kind"] == "eval"
    assert stored["params"] == {"model_id": TINY_MODEL_ID, "tasks": ["fin_sentiment"], "limit": 4}

    job = client.get(f"/jobs/{answer['job_id']}").json()
    assert (job["id"], job["kind"], job["state"], job["progress"]) == (
        answer["job_id"],
        "eval",
        "queued",
        0,
    )
    assert job["params"] == stored["params"] and job["created_at"] == stored["created_at"]
    assert job["label"] == "Evaluation" and job["result"] is None and job["plan"] == []
    assert not {"pid", "log_path", "run_dir"} & set(job)  # no paths or pids leave the server


def test_submit_eval_without_tasks_queues_every_task(client, db):
    from core.tasks.spec import list_tasks

    response = client.post("/jobs", json={"kind": "eval", "model_id": TINY_MODEL_ID})
    assert response.status_code == 201, response.text
    assert _jobs(db)[0]["params"]["tasks"] == [spec.name for spec in list_tasks()]


def test_submit_training_stores_the_same_config_as_the_cli(client, db):
    from core.cli.jobs import _training_params
    from core.jobs.kinds import training_config

    body = {
        "kind": "finetune_compare",
        "model_id": TINY_CHAT_ID,
        "task": "fin_sentiment",
        "preset": "quick",
        "method": "lora",
        "overrides": {"max_train_examples": 32, "epochs": 0.5, "gradient_checkpointing": False},
    }
    response = client.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    (stored,) = _jobs(db)
    assert answer["new_model_id"] == stored["params"]["new_model_id"]
    assert answer["new_model_id"].startswith(TINY_CHAT_ID)
    settings = ("max_train_examples=32", "epochs=0.5", "gradient_checkpointing=false")
    cli = _training_params(TINY_CHAT_ID, "fin_sentiment", "lora", "quick", settings)
    assert stored["params"]["config"] == training_config(cli).to_dict()
    assert stored["params"]["preset"] == "quick" and stored["kind"] == "finetune_compare"


REFUSED = [
    pytest.param(
        {"kind": "eval", "model_id": TINY_MODEL_ID, "limit": 0}, ["body", "limit"], "", id="limit0"
    ),
    pytest.param(
        {"kind": "eval", "model_id": "no-such-model", "tasks": ["fin_sentiment"]},
        ["body", "model_id"],
        "Unknown model 'no-such-model'",
        id="unknown-model",
    ),
    pytest.param(
        {"kind": "train", "model_id": TINY_CHAT_ID, "task": "fin_sentiment"}
        | {"overrides": {"learning_rate": "nan"}},
        ["body", "overrides", "learning_rate"],
        "learning_rate must be a finite number",
        id="nan-setting",
    ),
    pytest.param(
        {"kind": "train", "model_id": TINY_CHAT_ID, "task": "fin_sentiment"}
        | {"overrides": {"lora_r": 8, "no_such_knob": 1}},
        ["body", "overrides", "no_such_knob"],
        "Unknown training setting 'no_such_knob'",
        id="unknown-setting",
    ),
    pytest.param(
        {"kind": "train", "model_id": TINY_CHAT_ID, "task": "fin_sentiment", "preset": "nope"},
        ["body", "preset"],
        "Unknown preset 'nope'",
        id="unknown-preset",
    ),
    pytest.param(
        {"kind": "train", "model_id": TINY_CHAT_ID, "task": "no_such_task"},
        ["body", "task"],
        "Unknown task 'no_such_task'",
        id="unknown-task",
    ),
    pytest.param(
        {"kind": "eval", "model_id": TINY_MODEL_ID, "tasks": ["no_such_task"]},
        ["body", "tasks"],
        "Unknown task 'no_such_task'",
        id="unknown-eval-task",
    ),
    pytest.param(
        {"kind": "train", "model_id": TINY_CHAT_ID},
        ["body", "task"],
        "needs a task",
        id="training-without-task",
    ),
    pytest.param(
        {"kind": "eval", "model_id": TINY_MODEL_ID, "preset": "quick"},
        ["body", "preset"],
        "for training jobs only",
        id="preset-on-eval",
    ),
    pytest.param(
        {"kind": "train", "model_id": TINY_CHAT_ID, "task": "fin_sentiment", "method": "full"},
        ["body", "method"],
        "",
        id="unknown-method",
    ),
    pytest.param({"kind": "sing", "model_id": TINY_MODEL_ID}, ["body", "kind"], "", id="kind"),
    pytest.param(
        {"kind": "eval", "model_id": TINY_MODEL_ID, "colour": "red"},
        ["body", "colour"],
        "",
        id="unknown-field",
    ),
]


@pytest.mark.parametrize(("body", "loc", "message"), REFUSED)
def test_a_bad_request_is_refused_naming_the_field_and_stores_nothing(
    client, db, worker_calls, body, loc, message
):
    response = client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(error["loc"] == loc for error in detail), detail
    assert message in " ".join(error["msg"] for error in detail)
    assert _jobs(db) == [] and db["model_reservations"].count == 0
    assert worker_calls == []


# ---------------------------------------------------------------- reading and cancelling jobs


def test_unknown_job_is_404(client):
    for method, path in (("get", "/jobs/999"), ("get", "/jobs/999/progress")) + (
        ("post", "/jobs/999/cancel"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert "No job 999" in response.json()["detail"]
    assert client.get("/jobs/abc").status_code == 422


def test_list_cancel_and_progress(client, db):
    from core.jobs import queue

    body = {"kind": "eval", "model_id": TINY_MODEL_ID, "tasks": ["fin_sentiment"]}
    first, second = (client.post("/jobs", json=body).json()["job_id"] for _ in range(2))
    assert [job["id"] for job in client.get("/jobs").json()] == [second, first]
    assert [job["id"] for job in client.get("/jobs", params={"limit": 1}).json()] == [second]
    assert client.get("/jobs", params={"limit": 0}).status_code == 422

    assert client.post(f"/jobs/{first}/cancel").json() == {"job_id": first, "state": "cancelled"}
    job = client.get(f"/jobs/{first}").json()
    assert job["state"] == "cancelled" and job["cancel_requested"] and job["finished_at"]
    assert queue.get(db, first)["state"] == "cancelled"

    assert client.get(f"/jobs/{second}/progress").json() == []
    queue.add_progress(db, second, {"step": 1, "total_steps": 4, "train_loss": 2.5})
    queue.add_progress(db, second, {"step": 2, "total_steps": 4, "train_loss": 2.0})
    rows = client.get(f"/jobs/{second}/progress").json()
    assert [(r["step"], r["train_loss"], r["total_steps"]) for r in rows] == [
        (1, 2.5, 4),
        (2, 2.0, 4),
    ]


# ---------------------------------------------------------------- results and catalog


def test_leaderboard_ranks_full_scores_only(client, db, one_thread):
    from core.evaluation.runner import EvalOptions

    evaluate_ids(TINY_CHAT_ID, "fin_sentiment", options=EvalOptions(limit=8), db=db)
    assert client.get("/leaderboard").json() == []  # a smoke test is not ranked
    result = evaluate_ids(TINY_MODEL_ID, "fin_sentiment", db=db)
    (row,) = client.get("/leaderboard").json()
    assert (row["model_id"], row["rank"], row["complete"]) == (TINY_MODEL_ID, 1, True)
    assert row["fin_sentiment"] == pytest.approx(result["score"])
    assert [row["fin_sentiment_low"], row["fin_sentiment_high"]] == pytest.approx(result["ci"])
    assert client.get("/leaderboard", params={"task": "eps_extraction"}).json() == []
    assert client.get("/leaderboard", params={"task": "fin_sentiment"}).json() == [row]


@pytest.fixture(scope="session")
def compared_store(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs) -> Path:
    return compared_store_path(tmp_path_factory, tiny_model_dirs)  # built once per session


cdb = store_copy_fixture("compared_store")


def test_compare_base_and_fine_tuned(cdb, worker_calls):
    from core.api.app import create_app
    from core.jobs import queue

    client = TestClient(create_app(token=None), base_url=LOCAL)
    (job,) = [j for j in queue.list_jobs(cdb) if j["kind"] == "finetune_compare"]
    tuned = job["params"]["new_model_id"]
    view = client.get("/compare", params={"base": TINY_CHAT_ID, "tuned": tuned})
    assert view.status_code == 200, view.text
    answer = view.json()
    assert (answer["base_id"], answer["tuned_id"], answer["empty"]) == (TINY_CHAT_ID, tuned, False)
    head = answer["headline"]
    assert head["task"] == TRAINED_TASK and head["metric"] == "accuracy"
    assert head["improvement"] == pytest.approx(head["tuned"] - head["base"])
    assert {row["task"] for row in answer["table"]} >= {TRAINED_TASK, OTHER_TASK}
    primary = [r for r in answer["table"] if r["task"] == TRAINED_TASK and r["primary"]]
    assert primary[0]["base"] == head["base"] and primary[0]["tuned"] == head["tuned"]
    assert answer["facts"]["method"] == "lora" and answer["facts"]["steps"] > 0
    for params in ({"base": "nope", "tuned": tuned}, {"base": TINY_CHAT_ID, "tuned": "nope"}):
        missing = client.get("/compare", params=params)
        assert missing.status_code == 404 and "Unknown model 'nope'" in missing.json()["detail"]


def test_models_tasks_and_resources(client, db):
    from core import monitoring
    from core.models.registry import list_models
    from core.tasks.spec import list_tasks

    models = client.get("/models").json()
    assert [m["id"] for m in models] == [entry.id for entry in list_models(db)]
    assert {TINY_MODEL_ID, TINY_CHAT_ID} <= {m["id"] for m in models}
    tasks = client.get("/tasks").json()
    assert [(t["name"], t["version"], t["kind"], t["primary_metric"]) for t in tasks] == [
        (spec.name, spec.version, spec.kind, spec.primary_metric) for spec in list_tasks()
    ]
    resources = client.get("/resources").json()
    assert resources["gpu_available"] is monitoring.gpu_available()
    assert resources["status"] == monitoring.status_line()
    assert len(resources["samples"]) == max(1, monitoring.gpu_count())
    assert all(s["ram_total_mb"] > 0 and 0 <= s["cpu_percent"] <= 100 for s in resources["samples"])
    assert client.get("/health").json() == {"ok": True}


# ---------------------------------------------------------------- token and docs


def test_a_token_guards_every_endpoint_but_health(db, worker_calls):
    from core.api.app import create_app

    client = TestClient(create_app(token=TOKEN), base_url=LOCAL)
    assert client.get("/health").json() == {"ok": True}
    good = {"Authorization": f"Bearer {TOKEN}"}
    wrong = ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"})
    for path in ("/jobs", "/leaderboard", "/models", "/tasks", "/docs", "/openapi.json"):
        for headers in wrong:
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers=good).status_code == 200, path
    body = {"kind": "eval", "model_id": TINY_MODEL_ID, "tasks": ["fin_sentiment"]}
    assert client.post("/jobs", json=body).status_code == 401
    assert _jobs(db) == []
    assert client.post("/jobs", json=body, headers=good).status_code == 201
    assert len(_jobs(db)) == 1


def test_docs_page_lists_every_endpoint_and_loads_nothing(client):
    spec = client.get("/openapi.json").json()
    assert spec == client.app.openapi()
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    text = page.text
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            heading = f'<span class="method">{method.upper()}</span> <code>{path}</code>'
            assert heading in text, (method, path)
            assert operation["summary"].replace("'", "&#x27;") in text
    for name in ("JobRequest", "Submitted", "Job", "Comparison"):
        assert f'id="schema-{name}"' in text
    assert re.search(r"https?://|<script|<link|src=|@import", text, re.I) is None
    assert client.get("/redoc").status_code == 404


# ---------------------------------------------------------------- finboard serve


def _serve(args: list[str], env: dict[str, str] | None = None):
    from core.cli import main

    return CliRunner().invoke(main, ["serve", *args], env=env)


def test_serve_refuses_a_network_address_without_expose_and_token(monkeypatch):
    import uvicorn

    started: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append({"app": app, **kw}))
    monkeypatch.delenv("FINBOARD_API_TOKEN", raising=False)
    for args in (["--host", "0.0.0.0"], ["--host", "192.168.1.5", "--token", "t"]):
        result = _serve(args)
        assert result.exit_code == 2 and "--expose" in result.output, result.output
    result = _serve(["--host", "0.0.0.0", "--expose"])
    assert result.exit_code == 2 and "without a token" in result.output
    assert started == []

    result = _serve(
        ["--host", "0.0.0.0", "--expose", "--port", "8700"], {"FINBOARD_API_TOKEN": "t"}
    )
    assert result.exit_code == 0, result.output
    assert "reachable from the network" in result.stderr and "requires the token" in result.stderr
    assert (started[-1]["host"], started[-1]["port"]) == ("0.0.0.0", 8700)
    exposed = TestClient(started[-1]["app"], base_url=LOCAL)
    assert exposed.get("/tasks").status_code == 401
    assert exposed.get("/tasks", headers={"Authorization": "Bearer t"}).status_code == 200

    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        result = _serve(["--host", host])
        assert result.exit_code == 0 and "reachable" not in result.output, result.output
        assert started[-1]["host"] == host and started[-1]["port"] == 8600
    assert (
        TestClient(started[-1]["app"], base_url=LOCAL).get("/tasks").status_code == 200
    )  # no token: open
    _serve(["--token", TOKEN])
    assert (
        TestClient(started[-1]["app"], base_url=LOCAL).get("/tasks").status_code == 401
    )  # loopback, token set


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop_processes_of(home: Path) -> None:
    """Kill every process started for this store (the server, the worker, its jobs)."""
    markers = {f"FINBOARD_HOME={path}".encode() for path in (home, home.resolve())}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = set((proc / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if markers & environ:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)


def _wait_until_up(http: httpx.Client, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"finboard serve exited:\n{log.read_text()}"
        with contextlib.suppress(httpx.TransportError):
            if http.get("/health").status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"finboard serve did not answer within 60 s:\n{log.read_text()}")


def _run_job(http: httpx.Client, body: dict, timeout_s: float = 90) -> dict:
    """POST the job, then poll GET /jobs/{id} until it ends; its final row."""
    submitted = http.post("/jobs", json=body)
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        assert 0 <= job["progress"] <= 1
        if job["state"] in TERMINAL:
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not end within {timeout_s} s: {job}")


def test_real_server_round_trip(finboard_home: Path, tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("FINBOARD_API_TOKEN", None)
    log = tmp_path / "serve.log"
    command = [
        sys.executable,
        "-c",
        "from core.cli import main; main()",
        "serve",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            _wait_until_up(http, server, log)
            base = {"kind": "eval", "model_id": TINY_MODEL_ID, "tasks": ["fin_sentiment"]}
            smoke = _run_job(http, {**base, "limit": 4})
            assert smoke["state"] == "succeeded", smoke["error"]
            assert smoke["progress"] == 1 and smoke["result"]["results"][0]["n_items"] == 4
            assert http.get("/leaderboard").json() == []  # a --limit run is not ranked

            full = _run_job(http, base)
            assert full["state"] == "succeeded", full["error"]
            (score,) = full["result"]["results"]
            assert score["n_items"] == 200
            assert [job["id"] for job in http.get("/jobs").json()] == [full["id"], smoke["id"]]
            (row,) = http.get("/leaderboard").json()
            assert row["model_id"] == TINY_MODEL_ID and row["rank"] == 1
            assert row["fin_sentiment"] == pytest.approx(score["score"])
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        _stop_processes_of(finboard_home)
        server.wait(10)


def test_a_local_api_refuses_a_rebound_host_name(db, worker_calls, monkeypatch):
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 sends its own Host."""
    from core.api.app import create_app

    monkeypatch.delenv("FINBOARD_ALLOWED_HOSTS", raising=False)
    client = TestClient(create_app(token=None), base_url="http://rebind.test:8600")
    refused = client.post("/jobs", json={"kind": "eval", "model_id": "tiny-llama"})
    assert refused.status_code == 421 and "this machine only" in refused.json()["detail"]
    assert client.get("/leaderboard").status_code == 421
    assert db["jobs"].count == 0 and worker_calls == []
    monkeypatch.setenv("FINBOARD_ALLOWED_HOSTS", "rebind.test")
    assert client.get("/tasks").status_code == 200
