"""The review tasks: generator ground truth, metrics on hand-computed examples, the features
parser, slices, augmentation, baselines and a user's review file (good and bad)."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pandas as pd
import pytest

from core.analysis import paired_metrics, slices
from core.data import augment, review_import, reviews
from core.data.importer import DatasetImportError
from core.data.items import Item
from core.data.lengths import count_tokens, length_bucket
from core.evaluation import ratings, sets, summaries
from core.evaluation.baselines import baseline_score, keyword_features, lexicon_rating
from core.tasks.spec import TaskSpecError, get_task, list_tasks, load_split

VOCAB = list(reviews.FEATURES)


def synonyms() -> dict[str, str]:
    return get_task("review_features").synonyms


# ---------------------------------------------------------------- the generator


@pytest.fixture(scope="module")
def records() -> list[Item]:
    return load_split(get_task("review_rating"), "train").items


def test_ratings_follow_the_composition_rules(records):
    for item in records:
        meta = item.meta
        polarities = list(meta["features"].values())
        rating = meta["rating"]
        assert item.answer == str(rating)
        if rating == 5:
            assert set(polarities) == {1}
        if rating == 1:
            assert set(polarities) == {-1}
        if rating == 4:
            assert polarities.count(1) >= 1 and polarities.count(-1) <= 1 and 0 not in polarities
        if rating == 2:
            assert polarities.count(-1) >= 1 and polarities.count(1) <= 1 and 0 not in polarities
        if rating == 3:
            assert polarities.count(1) == polarities.count(-1)
        assert meta["sentiment"] == reviews.sentiment_of(rating)
        assert set(meta["features"]) <= set(reviews._CATEGORY_FEATURES[meta["category"]])
        assert meta["summary"] == reviews.summary_text(rating, meta["features"])


def test_slice_tags_are_exact_and_spread(records):
    for item in records:
        tags = item.meta["slices"]
        assert tags["length"] == length_bucket(count_tokens(item.fields["text"]))
        assert tags["category"] == item.meta["category"]
        expected = next((t for t in reviews.EDGE_CASES if t in item.meta["tags"]), "plain")
        assert tags["edge_case"] == expected
    counts = pd.Series([i.meta["slices"]["length"] for i in records]).value_counts()
    assert set(counts.index) == {"short", "medium", "long"} and counts.min() >= 50
    edges = {i.meta["slices"]["edge_case"] for i in records}
    assert edges == {"plain", "sarcasm", "negation", "mixed", "ambiguous"}


def test_sarcasm_and_negation_sentences_carry_their_meaning():
    rng = random.Random(3)
    sarcastic = reviews._feature_sentence(rng, "mobile app", "sarcasm")
    assert sarcastic.startswith(("Oh great", "Love how"))
    negated = reviews._feature_sentence(random.Random(1), "fees", "negated_praise")
    assert " not " in negated or "never" in negated


def test_one_record_serves_every_review_task():
    rating, features = (
        load_split(get_task(t), "test") for t in ("review_rating", "review_features")
    )
    assert [i.id for i in rating.items] == [i.id for i in features.items]
    first = features.items[0]
    assert first.answer == reviews.feature_list(first.meta["features"])
    assert rating.items[0].answer == str(first.meta["rating"])


# ---------------------------------------------------------------- metrics, by hand


def test_set_f1_micro_and_macro_by_hand():
    # item 1: gold {a, b}, pred {a}: tp a, fn b; item 2: gold {a}, pred {a, c}: tp a, fp c
    report = sets.set_metrics([["a", "b"], ["a"]], [["a"], ["a", "c"]], ["a", "b", "c"])
    # micro: tp 2, fp 1, fn 1 -> P = R = F1 = 2/3
    for name in ("micro_precision", "micro_recall", "micro_f1"):
        assert report[name]["value"] == pytest.approx(2 / 3)
    # macro: a (P 1, R 1), b (P 0, R 0), c (P 0, R 0) -> F1 = 1/3
    assert report["macro_f1"]["value"] == pytest.approx(1 / 3)
    assert report["macro_precision"]["value"] == pytest.approx(1 / 3)
    assert report["accuracy"]["value"] == 0.0
    assert report["per_term"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    low, high = report["micro_f1"]["ci"]
    assert 0 <= low <= 2 / 3 <= high <= 1


def test_unparseable_counts_as_the_empty_set():
    report = sets.set_metrics([["a"], ["b"]], [None, ["b"]], ["a", "b"])
    assert report["micro_recall"]["value"] == 0.5
    assert report["micro_precision"]["value"] == 1.0
    assert report["unparseable_rate"]["value"] == 0.5


def test_within_one_and_rmse_by_hand():
    golds, preds = ["5", "3", "1", "2"], ["4", "1", "1", "5"]  # errors -1, -2, 0, +3
    assert ratings.within_one(golds, preds)["value"] == 0.5
    assert ratings.rmse(golds, preds)["value"] == pytest.approx(math.sqrt((1 + 4 + 0 + 9) / 4))


def test_rouge_l_by_hand():
    # LCS of "a b c d" and "a c" is "a c": P = 2/4, R = 2/2, F1 = 2PR/(P+R) = 2/3
    assert summaries.rouge_l("a b c d", "a c") == pytest.approx(2 / 3)
    assert summaries.rouge_l("The fees are LOW.", "fees are very low") == pytest.approx(0.75)
    assert summaries.rouge_l("x y", "a b") == 0.0
    assert summaries.rouge_l(None, "a") == 0.0


def test_fact_coverage_and_term_precision():
    vocab, syn = VOCAB, synonyms()
    text = "4 stars. Likes the app; hates the fees and the rewards."
    # facts: fees yes, mobile app yes (synonym 'app'), security no, rating 4 yes -> 3/4
    assert summaries.fact_coverage(text, ["fees", "mobile app", "security"], 4, vocab, syn) == 0.75
    # names fees, mobile app, rewards; the review mentions two of them
    assert summaries.term_precision(text, ["fees", "mobile app"], vocab, syn) == pytest.approx(
        2 / 3
    )


# ---------------------------------------------------------------- the features parser


@pytest.mark.parametrize(
    "output, expected",
    [
        ("Features: Fees, the App & customer support.", ["fees", "mobile app", "customer service"]),
        ("- Fees\n- Hidden fees\n- APR", ["fees", "interest rate", "hidden charges"]),
        ("fees and interest rates.", ["fees", "interest rate"]),
        ("FEES!!!", ["fees"]),
        ("fees\nSecurity is also discussed at length", ["fees"]),  # first line only
        ("The review talks about low fees and slow claims", ["fees", "claims process"]),
        ("None", []),
        ("I don't know", None),
        ("", None),
        ("fees, fees, Fees", ["fees"]),
        ('"mobile app"; "rewards program"', ["mobile app", "rewards"]),
    ],
)
def test_features_parser_on_tricky_outputs(output, expected):
    assert sets.parse_set(output, VOCAB, synonyms()) == expected


def test_longest_form_wins_and_is_not_matched_twice():
    assert sets.find_terms("hidden fees", VOCAB, synonyms()) == ["hidden charges"]


# ---------------------------------------------------------------- slices


def test_slice_assignment():
    item = Item("x", {"text": "word " * 60}, "4", {"slices": {"category": "mortgage"}})
    assert slices.item_slices(item, "rating") == {
        "category": "mortgage",
        "length": "medium",
        "class": "4",
    }
    generated = Item("y", {"text": "Fine."}, "fees", {"sentiment": "negative"})
    assert slices.item_slices(generated, "set") == {"length": "short", "class": "negative"}
    assert slices.item_slices(Item("z", {"text": "1.5"}, "1.5"), "numeric") == {"length": "short"}


def test_gaps_and_verdicts_against_thresholds():
    limits = {**slices.THRESHOLDS, "max_relative_drop": 0.2}
    drop = slices.gap({"a": 0.80, "b": 0.70, "c": 0.75}, False, limits)
    assert drop["best"] == "a" and drop["worst"] == "b"
    assert drop["gap"] == pytest.approx(0.125) and drop["verdict"] == "pass"
    classes = slices.gap({"1": 0.62, "2": 0.55}, True, slices.THRESHOLDS)
    assert classes["gap"] == pytest.approx(7.0) and classes["verdict"] == "fail"
    assert slices.gap({"only": 0.5}, False, limits)["verdict"] == "too few items"


def test_score_slices_compute_each_slice_like_the_whole():
    spec = get_task("review_rating")
    items = load_split(spec, "test").items[:40]
    from core.evaluation.runner import ItemResult, task_metrics

    results = [ItemResult("", "3", item.answer == "3", 0.0) for item in items]
    report = slices.score_slices(
        spec.kind,
        "accuracy",
        items,
        results,
        lambda i, r: task_metrics(spec, i, r),
        {**spec.robustness, "min_items": 1},
    )
    three = report["dimensions"]["class"]["slices"]["3"]
    assert three["metrics"]["accuracy"]["value"] == 1.0
    assert report["dimensions"]["class"]["summary"]["gap"] == pytest.approx(100.0)
    assert report["dimensions"]["class"]["summary"]["verdict"] == "fail"
    assert set(report["dimensions"]) == {"category", "length", "class", "edge_case"}
    assert sum(s["n"] for s in report["dimensions"]["category"]["slices"].values()) == 40


def test_robustness_thresholds_come_from_the_task_file(tmp_path):
    from core.tasks.spec import load_task_file

    text = (
        get_task("review_rating").path.read_text().replace("max_class_gap: 5 ", "max_class_gap: 8 ")
    )
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert load_task_file(path).robustness["max_class_gap"] == 8
    path.write_text(text.replace("min_items: 10", "min_items: -1"))
    with pytest.raises(TaskSpecError, match="robustness"):
        load_task_file(path)


# ---------------------------------------------------------------- paired statistics


def test_paired_review_metrics():
    items = pd.DataFrame(
        {
            "gold": ["5", "3", "1"],
            "base_parsed": ["1", "3", "4"],
            "tuned_parsed": ["4", "3", "2"],
        }
    )
    delta, samples = paired_metrics.metric_samples("within1_accuracy", items)
    assert delta == pytest.approx(2 / 3) and samples.size == 1000
    features = pd.DataFrame(
        {
            "gold": ["fees, mobile app", "rewards"],
            "base_parsed": [None, "fees"],
            "tuned_parsed": ["fees, mobile app", "rewards"],
        }
    )
    delta, _ = paired_metrics.metric_samples("micro_f1", features, None)
    assert delta == pytest.approx(1.0)  # base: tp 0 -> F1 0; tuned: all right -> F1 1


# ---------------------------------------------------------------- augmentation and baselines


def test_five_hundred_reviews_make_2500_training_examples():
    spec = get_task("review_features")
    train = load_split(spec, "train").items
    pairs = augment.expand(spec, train)
    assert len(train) == 500 and len(pairs) == 2500
    rows = augment.expansion_rows(spec, train[0])
    assert [r["view"] for r in rows] == [
        "rating",
        "features",
        "summary",
        "sentiment",
        "recommendation",
    ]
    assert rows[1]["answer"] == reviews.feature_list(train[0].meta["features"])
    # the rating view uses the review_rating task's own prompt (what the task scores)
    assert rows[0]["prompt"].startswith(get_task("review_rating").instruction)


def test_baselines_on_the_same_items():
    assert lexicon_rating("Absolutely terrible. Customer service is rude.") == "1"
    assert keyword_features("The APR is high but the app is fast.") == "interest rate, mobile app"
    found = baseline_score(get_task("review_features"))
    assert found["n_items"] == len(load_split(get_task("review_features"), "test"))
    f1 = found["metrics"]["micro_f1"]["value"]
    assert 0.3 < f1 < 0.95  # paraphrases: keywords miss some features, never all
    assert "category" in found["slices"]["dimensions"]


# ---------------------------------------------------------------- a user's review file


def write_reviews(path: Path, n: int = 60, edit=None) -> Path:
    from core.data import synthetic

    items = synthetic.generate_splits("reviews", 9, {"test": n})["test"]
    rows = [["review", "stars", "features", "region"]]
    for index, item in enumerate(items):
        region = "north" if index % 2 else "south"
        rows.append(
            [
                item.fields["text"],
                str(item.meta["rating"]),
                "; ".join(item.meta["features"]),
                region,
            ]
        )
    if edit:
        edit(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_user_review_file_with_a_slice_column(finboard_home, tmp_path):
    path = write_reviews(tmp_path / "bank.csv")
    specs = review_import.create_review_tasks(
        path, name="bank", text="review", rating="stars", features="features", slices=["region"]
    )
    assert [s.name for s in specs] == ["bank_rating", "bank_features", "bank_summary"]
    assert {"bank_rating", "bank_features"} <= {s.name for s in list_tasks()}
    test = load_split(get_task("bank_rating"), "test")
    assert {i.meta["slices"]["region"] for i in test.items} <= {"north", "south"}
    found = baseline_score(get_task("bank_features"))
    assert set(found["slices"]["dimensions"]) == {"length", "class", "region"}
    assert get_task("bank_features").kind == "set"


def _bad_rating(rows):
    rows[3][1] = "6"


def _bad_feature(rows):
    rows[5][2] = "fees; teleportation"


@pytest.mark.parametrize(
    "edit, row, field, words",
    [
        (_bad_rating, 4, "stars", "unknown label '6'"),
        (_bad_feature, 6, "features", "teleportation"),
    ],
)
def test_bad_review_files_are_rejected_with_file_row_and_field(
    finboard_home, tmp_path, edit, row, field, words
):
    path = write_reviews(tmp_path / "bad.csv", edit=edit)
    with pytest.raises(DatasetImportError) as caught:
        review_import.create_review_tasks(
            path, name="bad", text="review", rating="stars", features="features", slices=["region"]
        )
    error = caught.value.report.errors[0]
    assert (error.file, error.row, error.field) == ("bad.csv", row, field)
    assert words in str(caught.value) and f"bad.csv, row {row}, field '{field}'" in str(
        caught.value
    )
    assert not any(s.name.startswith("bad_") for s in list_tasks())  # nothing stored
    assert not (finboard_home / "data").exists() or not list((finboard_home / "data").rglob("bad*"))


def test_a_missing_slice_column_is_named(tmp_path):
    path = write_reviews(tmp_path / "r.csv", n=12)
    report = review_import.read_reviews(path, text="review", rating="stars", slices=["channel"])
    assert [str(e) for e in report.errors] == ["r.csv, field 'channel': no such column in the file"]
