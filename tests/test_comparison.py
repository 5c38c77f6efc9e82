"""core.analysis.comparison and report on a store filled by a real tiny fine-tune-and-compare job.

The store is built once per session (``compared_store_path``): the tiny chat model scored on
two tasks, then a real ``finetune_compare`` job run through ``core.jobs.run`` (so the training
curve lands in ``job_progress``; it scores both models on every task), then the fine-tuned
model scored on the second task with a limit. Each
test works on its own copy.
"""

from __future__ import annotations

import dataclasses
import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CHAT_ID, evaluate_ids, store_copy_fixture, write_models_config

TRAINED_TASK, OTHER_TASK = "fin_sentiment", "eps_extraction"
LIMIT = 16
TRAIN_OVERRIDES = {"max_train_examples": 32, "batch_size": 8, "log_every": 1, "eval_every": 2}
_BUILT: dict[str, Path] = {}  # one build per session, shared with test_app_comparison.py


def compared_store_path(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    """Build (once per session) the store described in the module docstring; its path."""
    if "path" in _BUILT:
        return _BUILT["path"]
    from core import store
    from core.evaluation.runner import EvalOptions
    from core.jobs import queue
    from core.jobs.run import run_job

    root = tmp_path_factory.mktemp("compared_store")
    path = root / "leaderboard.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINBOARD_HOME", str(root))
        mp.setenv("FINBOARD_DB", str(path))
        mp.setenv(
            "FINBOARD_MODELS_CONFIG",
            str(write_models_config(root / "models.yaml", tiny_model_dirs)),
        )
        db = store.connect(path)
        for task in (TRAINED_TASK, OTHER_TASK):
            evaluate_ids(TINY_CHAT_ID, task, options=EvalOptions(limit=LIMIT), db=db)
        job_id = queue.submit(
            db,
            "finetune_compare",
            {
                "model_id": TINY_CHAT_ID,
                "task": TRAINED_TASK,
                "preset": "quick",
                "overrides": TRAIN_OVERRIDES,
            },
        )
        sigterm = signal.getsignal(signal.SIGTERM)
        try:
            assert run_job(job_id, db) == "succeeded", queue.get(db, job_id)["error"]
        finally:
            signal.signal(signal.SIGTERM, sigterm)  # run_job installs its cancel handler
        tuned_id = queue.get(db, job_id)["params"]["new_model_id"]
        evaluate_ids(tuned_id, OTHER_TASK, options=EvalOptions(limit=LIMIT), db=db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    _BUILT["path"] = path
    return path


@pytest.fixture(scope="session")
def compared_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    return compared_store_path(tmp_path_factory, tiny_model_dirs)


cdb = store_copy_fixture("compared_store")  # this test's own copy


@pytest.fixture
def pair(cdb) -> dict:
    from core.analysis import comparison

    found = comparison.latest_pair(cdb)
    assert found is not None
    return found


def test_latest_pair_is_the_stored_finetune_compare_run(cdb, pair):
    from core.analysis import comparison

    stored = comparison.pairs(cdb)  # one pair per task scored on, the trained task's newest
    assert [p["id"] for p in stored][0] == pair["id"] and len(stored) == 3
    assert pair["base_model_id"] == TINY_CHAT_ID and pair["task"] == TRAINED_TASK
    assert pair["base_name"] == f"Tiny Llama ({TINY_CHAT_ID})"
    assert pair["finetuned_name"].startswith("Tiny Llama") and "lora" in pair["finetuned_name"]
    assert comparison.finetuned_by_base(cdb) == {TINY_CHAT_ID: [pair["finetuned_model_id"]]}


def test_paired_items_are_the_same_items_of_both_scores(cdb, pair):
    from core.analysis import comparison

    items = comparison.paired_items(cdb, pair["base_score_id"], pair["finetuned_score_id"])
    for score_id, side in ((pair["base_score_id"], "base"), (pair["finetuned_score_id"], "tuned")):
        stored = pd.DataFrame(
            list(
                cdb.query(
                    "select * from predictions where score_id = ? order by position", [score_id]
                )
            )
        )
        assert items["item_id"].tolist() == stored["item_id"].tolist()
        assert items[f"{side}_correct"].tolist() == stored["correct"].tolist()
    assert len(items) == 200  # finetune_compare scores the whole test split


def test_mismatched_fingerprints_raise(cdb, pair):
    from core.analysis import comparison

    limited = cdb.execute(
        "select id from scores where model_id = ? and task = ? and item_limit = ?",
        [TINY_CHAT_ID, TRAINED_TASK, LIMIT],
    ).fetchone()[0]
    with pytest.raises(ValueError, match="different items"):
        comparison.paired_items(cdb, limited, pair["finetuned_score_id"])
    with pytest.raises(ValueError, match="no score #999"):
        comparison.paired_items(cdb, 999, pair["finetuned_score_id"])


def test_paired_ci_contains_the_delta():
    from core.analysis import paired

    rng = np.random.default_rng(1)
    base = rng.random(150) < 0.5
    tuned = np.where(rng.random(150) < 0.3, ~base, base)
    result = paired.paired_delta_ci(base, tuned, seed=3)
    assert result["delta"] == pytest.approx(tuned.mean() - base.mean())
    low, high = result["ci"]
    assert low <= result["delta"] <= high
    assert paired.paired_delta_ci(base, tuned, seed=3) == result  # seeded
    assert paired.paired_delta_ci(base, base)["ci"] == [0.0, 0.0]  # no disagreement, no doubt
    # pairing: the interval is narrower than the difference of two unpaired intervals
    from core.evaluation.metrics import mean_with_ci

    unpaired = np.subtract(mean_with_ci(tuned)["ci"], mean_with_ci(base)["ci"][::-1])
    assert high - low < unpaired[1] - unpaired[0]


def test_win_loss_tie_on_a_hand_made_frame():
    from core.analysis import paired

    frame = pd.DataFrame(
        {"base_correct": [1, 1, 0, 0, 0, 1, 0], "tuned_correct": [1, 0, 1, 1, 0, 1, 0]}
    )
    assert paired.win_loss_tie(frame) == {
        "win": 2,
        "loss": 1,
        "tie": 4,
        "both_right": 2,
        "both_wrong": 2,
        "n": 7,
    }
    empty = paired.win_loss_tie(frame.iloc[0:0])
    assert empty["n"] == 0 and empty["win"] == empty["loss"] == empty["tie"] == 0


def test_win_loss_tie_and_flips_on_the_real_pair(cdb, pair):
    from core.analysis import comparison, paired

    items = comparison.paired_items(cdb, pair["base_score_id"], pair["finetuned_score_id"])
    tally = paired.win_loss_tie(items)
    assert tally["win"] + tally["loss"] + tally["tie"] == tally["n"] == len(items)
    flips = paired.flipped_items(items)
    disagree = items[items["base_correct"] != items["tuned_correct"]]
    assert set(flips["item_id"]) == set(disagree["item_id"])
    assert len(flips) == tally["win"] + tally["loss"]
    wins = flips[flips["flip"] == "win"]
    assert set(wins["item_id"]) == set(disagree.loc[disagree["tuned_correct"] == 1, "item_id"])
    assert (wins["tuned_answer"] == wins["gold"]).all()
    losses = flips[flips["flip"] == "loss"]
    assert (losses["base_answer"] == losses["gold"]).all()
    assert {"prompt", "gold", "base_output", "tuned_output"} <= set(flips.columns)
    # the stored accuracies are the paired items' means, so the delta agrees too
    delta = paired.paired_delta_ci(items["base_correct"], items["tuned_correct"])["delta"]
    assert delta == pytest.approx((tally["win"] - tally["loss"]) / tally["n"])


def test_comparison_table_covers_every_shared_task_and_has_an_overall_row(cdb, pair):
    from core.analysis import comparison, paired

    view = comparison.build_view(cdb, TINY_CHAT_ID, pair["finetuned_model_id"])
    table = view.table
    assert list(table.columns[:6]) == ["task", "metric", "base", "tuned", "improvement", "ci"]
    assert table["task"].iloc[0] == TRAINED_TASK  # the task it was trained on comes first
    assert set(table["task"].dropna()) == {TRAINED_TASK, OTHER_TASK, "revenue_analysis"}
    overall = table.iloc[-1]
    assert overall["metric"] == "overall" and pd.isna(overall["task"])
    primary = table[table["primary"] & (table["metric"] != "overall")]
    assert overall["base"] == pytest.approx(primary["base"].mean())
    assert overall["improvement"] == pytest.approx(primary["improvement"].mean())
    metrics = set(table.loc[table["task"] == OTHER_TASK, "metric"])
    assert metrics == {"accuracy", "unparseable_rate", "mae"}
    assert {"accuracy", "macro_f1"} <= set(table.loc[table["task"] == TRAINED_TASK, "metric"])

    accuracy = table[(table["task"] == TRAINED_TASK) & (table["metric"] == "accuracy")].iloc[0]
    assert accuracy["n_items"] == 200  # the full pair, not the quick 16-item base score
    assert accuracy["improvement"] == pytest.approx(accuracy["tuned"] - accuracy["base"])
    assert accuracy["base_score_id"] == pair["base_score_id"]  # the stored pair's score ids
    assert accuracy["tuned_score_id"] == pair["finetuned_score_id"]
    items = comparison.paired_items(cdb, pair["base_score_id"], pair["finetuned_score_id"])
    expected = paired.paired_delta_ci(items["base_correct"], items["tuned_correct"])
    assert accuracy["ci"] == pytest.approx(expected["ci"])
    low, high = accuracy["ci"]
    assert low <= accuracy["improvement"] <= high
    assert accuracy["verdict"] == (
        "better" if low > 0 else "worse" if high < 0 else "no clear change"
    )

    unparseable = table[table["metric"] == "unparseable_rate"].iloc[0]
    assert not unparseable["higher_is_better"]  # lower is better: improvement = base - tuned
    assert unparseable["improvement"] == pytest.approx(unparseable["base"] - unparseable["tuned"])

    head = view.headline
    assert head.task == TRAINED_TASK and head.unit == "points"
    assert head.points == pytest.approx(100 * accuracy["improvement"])
    assert comparison.headline_sentence(head).split()[0] in ("improves", "lowers", "changes")
    assert [d.task for d in view.tasks] == [TRAINED_TASK, OTHER_TASK, "revenue_analysis"]
    assert paired.metric_label("macro_f1") == "Macro-F1"


def test_one_task_has_no_overall_row(cdb, pair):
    from core.analysis import comparison

    matches = comparison.matched_scores(
        cdb, TINY_CHAT_ID, pair["finetuned_model_id"], trained_task=TRAINED_TASK
    )[:1]
    items = {
        m["task"]: comparison.paired_items(cdb, m["base"]["id"], m["tuned"]["id"]) for m in matches
    }
    table = comparison.comparison_table(matches, items)
    assert "overall" not in set(table["metric"]) and set(table["task"]) == {TRAINED_TASK}
    assert comparison.headline(table, "other").task == TRAINED_TASK  # falls back to a task row


def test_comparison_table_is_empty_without_shared_items(cdb):
    from core.analysis import comparison

    table = comparison.comparison_table([], {})
    assert table.empty and "improvement" in table.columns
    assert comparison.headline(table) is None
    assert comparison.matched_scores(cdb, TINY_CHAT_ID, "no-such-model") == []


def test_confusion_matrices(cdb, pair):
    from core.analysis import comparison
    from core.store import scores as score_rows

    matrix = comparison.confusion_matrix(score_rows.get(cdb, pair["finetuned_score_id"]))
    assert matrix["labels"] == ["positive", "neutral", "negative"]
    assert sum(map(sum, matrix["matrix"])) == 200
    eps = cdb.execute("select id from scores where task = ? limit 1", [OTHER_TASK]).fetchone()[0]
    assert comparison.confusion_matrix(score_rows.get(cdb, eps)) is None


def test_training_facts_and_command(cdb, pair):
    from core.analysis import comparison
    from core.models import registry

    entry = registry.get_model(pair["finetuned_model_id"], cdb)
    facts = comparison.training_facts(entry)
    assert facts["train_seconds"] > 0 and facts["tokens_per_s"] > 0
    assert facts["peak_memory_mb"] > 0 and facts["steps"] == 4
    assert facts["method"] == "lora" and facts["trained_on_task"] == TRAINED_TASK
    assert facts["energy_kwh"] is None  # CPU: no NVML power readings
    assert facts["energy_note"] == "not measured: no NVIDIA GPU"
    measured = dataclasses.replace(entry, card={**entry.card, "energy_wh": 12.5})
    assert comparison.training_facts(measured)["energy_kwh"] == pytest.approx(0.0125)
    assert comparison.training_facts(measured)["energy_note"] is None
    command = comparison.finetune_command(entry)
    assert command.startswith(
        f"finboard finetune-compare --model {TINY_CHAT_ID} --task {TRAINED_TASK} --method lora"
    )
    assert "--set max_train_examples=32" in command and "--set log_every=1" in command


def test_training_curve_reads_the_job_that_trained_the_model(cdb, pair):
    from core.analysis import comparison
    from core.models import registry

    entry = registry.get_model(pair["finetuned_model_id"], cdb)
    assert entry.job_id == pair["job_id"]  # the model's row records its training job
    curve = comparison.training_curve(cdb, entry)
    assert [row["step"] for row in curve] == [1, 2, 3, 4]
    assert all(row["train_loss"] > 0 for row in curve)
    assert [row["step"] for row in curve if row["val_loss"] is not None] == [2, 4]
    assert comparison.training_curve(cdb, registry.get_model(TINY_CHAT_ID, cdb)) == []


def test_an_empty_store_has_no_pairs():
    from core import store
    from core.analysis import comparison

    bare = store.connect(":memory:")
    assert comparison.pairs(bare) == [] and comparison.latest_pair(bare) is None
    assert comparison.finetuned_by_base(bare) == {}


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_html_report_is_self_contained_and_complete(cdb, pair):
    from core.analysis import report
    from core.analysis.comparison import build_view

    tuned_id = pair["finetuned_model_id"]
    page = report.render_html_report(build_view(cdb, TINY_CHAT_ID, tuned_id))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    for needed in (
        TINY_CHAT_ID,
        tuned_id,
        "95% CI of the difference",
        "Overall",
        "Improvement",
        "Confusion matrices",
        "Training curve",
        "Items that flipped",
        "Reproducibility",
        "finboard finetune-compare",
        "<svg",
    ):
        assert needed in page, needed
    fingerprint = cdb.execute(
        "select split_fingerprint from scores where id = ?", [pair["base_score_id"]]
    ).fetchone()[0]
    weights = cdb.execute(
        "select weights_hash from scores where id = ?", [pair["finetuned_score_id"]]
    ).fetchone()[0]
    assert fingerprint in page and weights in page
    assert "not measured" in page  # energy on CPU
    assert report.report_filename(tuned_id).endswith(".html")


def test_html_report_escapes_user_text(cdb, pair):
    from core.analysis import report

    evil = '<script>alert("x")</script> & <b>bold</b>'
    cdb.execute(
        "update models set display_name = ? where id = ?", [evil, pair["finetuned_model_id"]]
    )
    cdb.conn.commit()
    from core.analysis.comparison import build_view

    page = report.render_html_report(build_view(cdb, TINY_CHAT_ID, pair["finetuned_model_id"]))
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold" in page
