"""The numeric answer parser, tolerances, and metrics with bootstrap confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.evaluation import metrics as m
from core.evaluation.parsing import normalize_text, parse_number
from core.tasks.spec import Tolerance


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.67", 2.67),
        ("  2.67\n", 2.67),
        ("$2.67", 2.67),
        ("EPS is $2.67 per share", 2.67),
        ("$ 3", 3.0),
        ("1,234.5", 1234.5),
        ("1,234,567", 1234567.0),
        ("Revenue of $12,500 million", 12500.0),
        ("(0.45)", -0.45),
        ("($1.20)", -1.2),
        ("a loss of (0.45) per share", -0.45),
        ("-0.45", -0.45),
        ("\u22121.5", -1.5),  # unicode minus
        ("\u20133.2", -3.2),  # en dash used as a minus
        ("The answer is 3.2", 3.2),
        ("Net income 120 / shares 40 = 3.00", 3.0),
        ("Prior year EPS was 1.10. Answer: 2.05", 2.05),
        ("answer is 1 but the answer is 4", 4.0),
        ("EPS: 0.85", 0.85),
        ("Growth (%): 12.5", 12.5),
        ("growth: -4.2%", -4.2),
        ("12.5%", 12.5),
        ("-4.2 %", -4.2),
        ("The answer is 1,234.5%", 1234.5),
        (".5", 0.5),
        ("2.67 versus 2.10 last year", 2.67),  # the first number wins
        ("0", 0.0),
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "   ", "no idea", "N/A", "The answer is unclear", "$", "-", "()"]
)
def test_parse_number_none(text):
    assert parse_number(text) is None


def test_parse_number_marker_without_number_after_it():
    assert (
        parse_number("Revenue 5 million, answer:") is None
    )  # only the text after the marker counts


def test_normalize_text():
    assert normalize_text("  The  Federal Reserve. ") == "the federal reserve"
    assert normalize_text('"Buy!"') == "buy"


@pytest.mark.parametrize(
    ("tolerance", "predicted", "gold", "accepted"),
    [
        (Tolerance(), 1.0, 1.0, True),
        (Tolerance(), 1.0001, 1.0, False),
        (Tolerance(absolute=0.01), 2.675, 2.67, True),
        (Tolerance(absolute=0.01), 2.68, 2.67, True),  # exactly one cent away
        (Tolerance(absolute=0.01), 2.69, 2.67, False),
        (Tolerance(absolute=0.01), -2.67, 2.67, False),
        (Tolerance(absolute=0.1), 17.9, 18.0, True),
        (Tolerance(absolute=0.1), 17.85, 18.0, False),
        (Tolerance(relative=0.05), 105.0, 100.0, True),
        (Tolerance(relative=0.05), 106.0, 100.0, False),
        (Tolerance(relative=0.05), -95.0, -100.0, True),  # relative to |gold|
        (Tolerance(absolute=1.0, relative=0.05), 0.9, 0.0, True),  # the larger of the two
        (Tolerance(absolute=1.0, relative=0.05), 104.5, 100.0, True),
        (Tolerance(absolute=1.0, relative=0.05), 105.5, 100.0, False),
    ],
)
def test_tolerance_accepts(tolerance, predicted, gold, accepted):
    assert tolerance.accepts(predicted, gold) is accepted


# ---------------------------------------------------------------- classification

LABELS = ["a", "b", "c"]
GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


def test_classification_metrics_hand_computed():
    report = m.classification_metrics(GOLD, PRED, LABELS)
    assert report["accuracy"]["value"] == pytest.approx(4 / 6)
    # per class: a P=2/2 R=2/3 F1=0.8; b P=1/2 R=1/2 F1=0.5; c P=1/2 R=1/1 F1=2/3
    assert report["macro_f1"]["value"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    per_class = report["per_class"]
    assert per_class["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert per_class["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert per_class["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    # rows are gold labels, columns predicted labels
    assert report["confusion"] == {"labels": LABELS, "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}


def test_confusion_orientation_is_rows_gold_cols_pred():
    report = m.classification_metrics(["a", "a", "a"], ["b", "b", "c"], LABELS)
    assert report["confusion"]["matrix"] == [[0, 2, 1], [0, 0, 0], [0, 0, 0]]
    assert report["accuracy"]["value"] == 0.0
    assert report["per_class"]["a"]["support"] == 3
    assert report["per_class"]["b"]["support"] == 0
    assert report["per_class"]["b"]["precision"] == 0.0


def test_macro_f1_ignores_labels_absent_from_gold_and_predictions():
    with_extra = m.classification_metrics(GOLD, PRED, LABELS + ["d"])
    assert with_extra["macro_f1"]["value"] == pytest.approx(
        m.classification_metrics(GOLD, PRED, LABELS)["macro_f1"]["value"]
    )
    assert with_extra["per_class"]["d"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert len(with_extra["confusion"]["matrix"]) == 4


def test_perfect_and_constant_predictions():
    perfect = m.classification_metrics(GOLD, GOLD, LABELS)
    assert perfect["accuracy"] == {"value": 1.0, "ci": [1.0, 1.0]}
    assert perfect["macro_f1"]["value"] == 1.0
    constant = m.classification_metrics(GOLD, ["a"] * 6, LABELS)
    assert constant["accuracy"]["value"] == pytest.approx(0.5)
    # a: P=3/6 R=1 F1=2/3; b and c: 0 -> macro 2/9
    assert constant["macro_f1"]["value"] == pytest.approx(2 / 9)


# ---------------------------------------------------------------- confidence intervals


def _width(ci):
    return ci[1] - ci[0]


@pytest.mark.parametrize("seed", [0, 7])
def test_intervals_contain_the_estimate_and_narrow_with_more_items(seed):
    rng = np.random.default_rng(seed)
    small_gold = list(rng.choice(LABELS, 40))
    small_pred = [g if rng.random() < 0.7 else "a" for g in small_gold]
    big_gold = small_gold * 25
    big_pred = small_pred * 25
    small = m.classification_metrics(small_gold, small_pred, LABELS, seed)
    big = m.classification_metrics(big_gold, big_pred, LABELS, seed)
    for report in (small, big):
        for name in ("accuracy", "macro_f1"):
            low, high = report[name]["ci"]
            assert low <= report[name]["value"] <= high
            assert 0 <= low < high <= 1
    assert big["accuracy"]["value"] == pytest.approx(small["accuracy"]["value"])
    assert _width(big["accuracy"]["ci"]) < _width(small["accuracy"]["ci"]) / 3  # ~ 1/sqrt(25) = 1/5
    assert _width(big["macro_f1"]["ci"]) < _width(small["macro_f1"]["ci"]) / 3


def test_mean_with_ci():
    values = [0.0, 1.0] * 50
    result = m.mean_with_ci(values, seed=0)
    assert result["value"] == 0.5
    low, high = result["ci"]
    assert 0.35 < low < 0.5 < high < 0.65  # about +-1.96 * 0.05
    assert m.mean_with_ci(values, seed=0) == result  # seeded: identical twice
    assert m.mean_with_ci([3.0] * 10) == {"value": 3.0, "ci": [3.0, 3.0]}
    empty = m.mean_with_ci([])
    assert math.isnan(empty["value"]) and all(math.isnan(v) for v in empty["ci"])


def test_bootstrap_of_empty_is_nan():
    assert all(math.isnan(v) for v in m.bootstrap(lambda idx: 1.0, 0))


def test_resample_indices_shape_and_range():
    idx = m.resample_indices(7, seed=1, n_resamples=50)
    assert idx.shape == (50, 7)
    assert idx.min() >= 0 and idx.max() < 7


# ---------------------------------------------------------------- numeric metrics and latency


def test_numeric_metrics():
    golds = [1.0, 2.0, 3.0, 4.0]
    preds = [1.0, 2.5, None, None]
    correct = [True, False, False, False]
    report = m.numeric_metrics(golds, preds, correct)
    assert report["accuracy"]["value"] == 0.25
    assert report["unparseable_rate"]["value"] == 0.5
    assert report["mae"]["value"] == pytest.approx(
        0.25
    )  # over the parsed answers only: (0 + 0.5) / 2
    for name in ("accuracy", "unparseable_rate", "mae"):
        low, high = report[name]["ci"]
        assert low <= report[name]["value"] <= high


def test_numeric_metrics_all_unparseable():
    report = m.numeric_metrics([1.0, 2.0], [None, None], [False, False])
    assert report["unparseable_rate"]["value"] == 1.0
    assert report["accuracy"]["value"] == 0.0
    assert math.isnan(report["mae"]["value"])


def test_rating_mae():
    assert m.rating_mae(["1", "5", "3"], ["2", "5", "1"])["value"] == pytest.approx(1.0)


def test_latency_summary():
    summary = m.latency_summary([float(v) for v in range(1, 101)])
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)
    assert m.latency_summary([7.0]) == {"p50_ms": 7.0, "p95_ms": 7.0}
    empty = m.latency_summary([])
    assert math.isnan(empty["p50_ms"]) and math.isnan(empty["p95_ms"])
