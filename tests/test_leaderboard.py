"""The leaderboard: latest score per (model, task), overall = mean of primary metrics, ties."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core import store
from core.analysis import leaderboard as lb
from core.store import scores as score_rows


def add_score(
    db,
    model_id: str,
    task: str,
    value: float,
    low: float,
    high: float,
    split: str = "test",
    **extra,
) -> int:
    row = {
        "model_id": model_id,
        "task": task,
        "task_version": 1,
        "split": split,
        "split_fingerprint": "f" * 64,
        "n_items": 100,
        "primary_metric": "accuracy",
        "primary_value": value,
        "ci_low": low,
        "ci_high": high,
        "metrics_json": "{}",
        "created_at": store.now_iso(),
        **extra,
    }
    return score_rows.insert(
        db, row, [{"item_id": "i1", "position": 0, "gold": "a", "parsed": "a", "correct": 1}]
    )


def by_model(table: pd.DataFrame) -> dict[str, dict]:
    return {row["model_id"]: row for row in table.to_dict("records")}


def test_empty_store_gives_an_empty_table_with_the_columns(db):
    table = lb.leaderboard(db)
    assert table.empty
    assert list(table.columns) == lb.BASE_COLUMNS
    assert lb.latest_scores(db).empty


def test_overlapping_intervals_share_a_rank_and_separated_ones_do_not(db):
    add_score(db, "model-a", "t1", 0.80, 0.70, 0.90)
    add_score(db, "model-b", "t1", 0.75, 0.65, 0.85)  # overlaps a: a tie
    add_score(db, "model-c", "t1", 0.20, 0.10, 0.30)  # clearly below both
    add_score(db, "model-d", "t1", 0.50, 0.32, 0.68)  # between: below a, tied with b, above c
    table = lb.leaderboard(db)
    rows = by_model(table)
    assert rows["model-a"]["rank"] == 1
    assert rows["model-b"]["rank"] == 1
    # d: a's low 0.70 > d's high 0.68 and b's low 0.65 < 0.68 -> one model better beyond doubt
    assert rows["model-d"]["rank"] == 2
    # c: a, b and d all have lows above c's high 0.30
    assert rows["model-c"]["rank"] == 4
    assert list(table["model_id"]) == [
        "model-a",
        "model-b",
        "model-d",
        "model-c",
    ]  # rank, then score


def test_rank_with_ties_directly():
    low = pd.Series([0.7, 0.1, 0.4, 0.75])
    high = pd.Series([0.9, 0.3, 0.6, 0.95])
    assert list(lb.rank_with_ties(low, high)) == [1, 4, 3, 1]
    assert list(lb.rank_with_ties(pd.Series([0.5, 0.5]), pd.Series([0.5, 0.5]))) == [1, 1]


def test_latest_score_per_model_and_task_wins(db):
    add_score(db, "model-a", "t1", 0.20, 0.10, 0.30)
    add_score(db, "model-a", "t1", 0.90, 0.85, 0.95)
    add_score(db, "model-a", "t2", 0.40, 0.30, 0.50)
    add_score(db, "model-b", "t1", 0.60, 0.50, 0.70)
    add_score(db, "model-b", "t1", 0.30, 0.20, 0.40)  # a newer, worse score replaces the older one
    latest = lb.latest_scores(db)
    assert len(latest) == 3
    rows = by_model(lb.leaderboard(db))
    assert rows["model-a"]["t1"] == 0.90
    assert rows["model-a"]["t1_low"] == 0.85 and rows["model-a"]["t1_high"] == 0.95
    assert rows["model-b"]["t1"] == 0.30


def test_other_splits_are_ignored(db):
    add_score(db, "model-a", "t1", 0.50, 0.40, 0.60)
    add_score(db, "model-a", "t1", 0.99, 0.98, 1.00, split="validation")  # newer, but not test
    assert by_model(lb.leaderboard(db))["model-a"]["t1"] == 0.50
    assert by_model(lb.leaderboard(db, split="validation"))["model-a"]["t1"] == 0.99


def test_overall_is_the_mean_of_primary_metrics(db):
    add_score(db, "model-a", "t1", 0.80, 0.70, 0.90)
    add_score(db, "model-a", "t2", 0.40, 0.30, 0.50)
    add_score(db, "model-a", "t3", 0.60, 0.55, 0.65)
    add_score(db, "model-b", "t1", 0.50, 0.40, 0.60)  # scored on one task only
    table = lb.leaderboard(db)
    rows = by_model(table)
    assert rows["model-a"]["overall"] == pytest.approx(0.6)
    assert rows["model-a"]["overall_low"] == pytest.approx((0.70 + 0.30 + 0.55) / 3)
    assert rows["model-a"]["overall_high"] == pytest.approx((0.90 + 0.50 + 0.65) / 3)
    assert rows["model-a"]["tasks_scored"] == 3
    assert rows["model-b"]["overall"] == pytest.approx(0.5)
    assert rows["model-b"]["tasks_scored"] == 1
    assert math.isnan(rows["model-b"]["t2"])
    assert lb.task_columns(table) == ["t1", "t2", "t3"]


def test_task_filter(db):
    add_score(db, "model-a", "t1", 0.80, 0.70, 0.90)
    add_score(db, "model-a", "t2", 0.20, 0.10, 0.30)
    add_score(db, "model-b", "t1", 0.30, 0.20, 0.40)
    add_score(db, "model-b", "t2", 0.90, 0.85, 0.95)
    only_t2 = lb.leaderboard(db, ["t2"])
    assert lb.task_columns(only_t2) == ["t2"]
    assert "t1" not in only_t2.columns
    rows = by_model(only_t2)
    assert rows["model-b"]["overall"] == pytest.approx(0.9) and rows["model-b"]["rank"] == 1
    assert rows["model-a"]["overall"] == pytest.approx(0.2) and rows["model-a"]["rank"] == 2
    both = by_model(lb.leaderboard(db, ["t1", "t2"]))
    assert both["model-a"]["overall"] == pytest.approx(0.5)
    assert both["model-a"]["rank"] == both["model-b"]["rank"] == 1


def test_task_filter_matching_nothing_is_empty(db):
    add_score(db, "model-a", "t1", 0.80, 0.70, 0.90)
    table = lb.leaderboard(db, ["no_such_task"])
    assert table.empty


def test_registry_facts_join_and_unregistered_models_are_marked(db):
    from core.models import registry
    from core.models.registry import ModelEntry, ModelSource

    registry.register_finetuned(
        db,
        ModelEntry(
            id="tiny-llama-lora",
            display_name="Tiny + LoRA",
            source=ModelSource(kind="local", path="/x"),
            kind="finetuned",
            base_model_id="tiny-llama",
            method="lora",
            trained_on_task="t1",
            adapter_path="/tmp/adapter",
        ),
    )
    add_score(db, "tiny-llama", "t1", 0.5, 0.4, 0.6)
    add_score(db, "tiny-llama-lora", "t1", 0.6, 0.5, 0.7)
    add_score(db, "deleted-model", "t1", 0.1, 0.0, 0.2)
    rows = by_model(lb.leaderboard(db))
    assert rows["tiny-llama"]["display_name"] == "Tiny Llama (tiny-llama)"
    assert rows["tiny-llama"]["kind"] == "base"
    assert rows["tiny-llama"]["params"] == 40000
    assert rows["tiny-llama-lora"]["kind"] == "finetuned"
    assert rows["tiny-llama-lora"]["base_model_id"] == "tiny-llama"
    assert rows["tiny-llama-lora"]["method"] == "lora"
    assert rows["deleted-model"]["kind"] == "unregistered"
    assert rows["deleted-model"]["display_name"] == "deleted-model"


def test_score_details_and_predictions(db):
    first = add_score(db, "model-a", "t1", 0.5, 0.4, 0.6)
    second = add_score(db, "model-a", "t2", 0.7, 0.6, 0.8)
    details = lb.score_details(db, "model-a")
    assert [d["id"] for d in details] == [second, first]  # newest first
    preds = lb.predictions(db, first)
    assert list(preds["item_id"]) == ["i1"]
    assert lb.predictions(db, first, wrong_only=True).empty


def test_models_scored_on_fewer_tasks_are_ranked_apart(db):
    add_score(db, "full-low", "t1", 0.30, 0.25, 0.35)
    add_score(db, "full-low", "t2", 0.30, 0.25, 0.35)
    add_score(db, "full-high", "t1", 0.70, 0.65, 0.75)
    add_score(db, "full-high", "t2", 0.70, 0.65, 0.75)
    add_score(db, "partial", "t1", 0.95, 0.90, 0.99)  # best overall, but on one task only
    table = lb.leaderboard(db)
    assert table["model_id"].tolist() == ["full-high", "full-low", "partial"]
    rows = by_model(table)
    assert rows["full-high"]["rank"] == 1 and rows["full-low"]["rank"] == 2
    assert not rows["partial"]["complete"] and rows["partial"]["tasks_scored"] == 1
    assert rows["partial"]["rank"] == 1  # first of the partial group, listed after the full ones
    only_t1 = lb.leaderboard(db, ["t1"])  # on the one task all have, every model is complete
    assert only_t1["complete"].all() and only_t1["model_id"].iloc[0] == "partial"


def test_smoke_tests_are_shown_apart_and_never_ranked(db):
    add_score(db, "model-a", "t1", 0.60, 0.50, 0.70)
    add_score(db, "model-a", "t1", 0.99, 0.90, 1.00, item_limit=5)  # newer, but a smoke test
    add_score(db, "model-b", "t1", 0.10, 0.00, 0.20, item_limit=5)  # only a smoke test
    table = lb.leaderboard(db)
    assert table["model_id"].tolist() == ["model-a"]
    assert by_model(table)["model-a"]["t1"] == 0.60
    smoke = lb.smoke_tests(db)
    assert sorted(smoke["model_id"]) == ["model-a", "model-b"]
    assert set(smoke["item_limit"]) == {5}


def test_a_filtered_view_is_ranked_among_the_shown_models(db):
    add_score(db, "a", "t1", 0.90, 0.85, 0.95)
    add_score(db, "b", "t1", 0.50, 0.45, 0.55)
    table = lb.leaderboard(db)
    shown = lb.rank(table[table["model_id"] == "b"])
    assert shown["rank"].tolist() == [1]
