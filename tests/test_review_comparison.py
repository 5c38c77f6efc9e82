"""A user's review file (with a slice column) as tasks, a real tiny fine-tune-and-compare on
it, and the slices, gaps, verdicts and baseline the Comparison page and the leaderboard show."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import TINY_CHAT_ID, copy_store, evaluate_ids, run_page, tables, write_models_config
from test_reviews import write_reviews

TASK = "bank_features"
N_ROWS = 60
REVIEW_COLUMNS = {
    "name": "bank",
    "text": "review",
    "rating": "stars",
    "features": "features",
    "slices": ["region"],
}


@pytest.fixture(scope="session")
def review_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    import torch

    from core import store
    from core.data.review_import import create_review_tasks
    from core.jobs import queue
    from core.jobs.run import run_job

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models run faster so on a busy 2-core machine
    root = tmp_path_factory.mktemp("review_store")
    path = root / "leaderboard.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINBOARD_HOME", str(root))
        mp.setenv("FINBOARD_DB", str(path))
        mp.setenv(
            "FINBOARD_MODELS_CONFIG", str(write_models_config(root / "m.yaml", tiny_model_dirs))
        )
        create_review_tasks(write_reviews(root / "bank.csv", n=N_ROWS), **REVIEW_COLUMNS)
        db = store.connect(path)
        overrides = {"max_train_examples": 8, "batch_size": 8, "max_seq_length": 128}
        params = {"model_id": TINY_CHAT_ID, "task": TASK, "preset": "quick", "overrides": overrides}
        job_id = queue.submit(db, "finetune_compare", params)
        sigterm = signal.getsignal(signal.SIGTERM)
        try:
            assert run_job(job_id, db) == "succeeded", queue.get(db, job_id)["error"]
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        tuned = queue.get(db, job_id)["params"]["new_model_id"]
        for model_id in (TINY_CHAT_ID, tuned):
            evaluate_ids(model_id, "bank_rating", db=db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    torch.set_num_threads(threads)
    return path


@pytest.fixture
def rdb(db, review_store, tmp_path):
    """A copy of the store, with the review tasks made again from the same file in this home."""
    from core.data.review_import import create_review_tasks

    database = copy_store(db, review_store)
    create_review_tasks(write_reviews(tmp_path / "bank.csv", n=N_ROWS), **REVIEW_COLUMNS)
    yield database
    database.close()


def test_every_score_stores_its_slices(rdb):
    from core.analysis import slices

    for score in rdb.query("select * from scores"):
        report = slices.stored(score)
        assert "length" in report["dimensions"], score["task"]  # every task: a computed slice
        if not score["task"].startswith("bank_"):
            continue  # the finance-suite tasks every fine-tune is also scored on
        assert {"region", "length", "class"} <= set(report["dimensions"]), score["task"]
        n = sum(s["n"] for s in report["dimensions"]["region"]["slices"].values())
        assert n == score["n_items"]
        assert report["thresholds"]["max_relative_drop"] == 0.10


def test_comparison_shows_slices_gaps_verdicts_and_baseline(rdb):
    from core.analysis import comparison

    pair = comparison.latest_pair(rdb)
    view = comparison.build_view(rdb, TINY_CHAT_ID, pair["finetuned_model_id"])
    detail = next(d for d in view.tasks if d.task == TASK)
    assert {row["dimension"] for row in detail.slices["rows"]} >= {"region", "length", "class"}
    assert detail.baseline["name"] == "rule-based (keywords)"
    metrics = set(view.table[view.table["task"] == TASK]["metric"])
    assert {"micro_f1", "macro_f1", "micro_precision"} <= metrics
    rating = view.table[(view.table["task"] == "bank_rating")]
    assert "within1_accuracy" in set(rating["metric"])
    assert rating[rating["metric"] == "within1_accuracy"]["ci"].iloc[0] is not None

    at = run_page("comparison", cmp_task=TASK, cmp_section="Item by item")
    assert not at.exception
    frames = tables(at)
    verdicts = next(f for f in frames if "Fine-tuned verdict" in f.columns)
    assert {"region", "length", "class"} <= set(verdicts["Dimension"])
    assert set(verdicts["Fine-tuned verdict"]) <= {"pass", "fail", "too few items"}
    sliced = next(f for f in frames if "Change 95% CI (paired)" in f.columns)
    assert {"north", "south"} <= set(sliced["Slice"])
    assert any("rule-based (keywords)" in f.columns for f in frames)


def test_leaderboard_detail_shows_a_scores_slices(rdb):
    at = run_page("leaderboard", lb_detail_model=TINY_CHAT_ID, lb_detail_tab="Robustness slices")
    assert not at.exception
    at.selectbox(key="lb_slices_task").set_value("bank_rating").run()
    frames = [d.value for d in at.dataframe]
    verdicts = next(f for f in frames if "Verdict" in f.columns)
    assert {"region", "class"} <= set(verdicts["Dimension"])
    sliced = next(f for f in frames if "95% CI" in f.columns and "Slice" in f.columns)
    assert {"north", "south"} <= set(sliced["Slice"])
