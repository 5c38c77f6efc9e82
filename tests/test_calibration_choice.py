"""Calibration chosen per model and task on the validation split: both ways of the decision,
stored with both figures, and never decided on the test split."""

from __future__ import annotations

import json
import re

import pytest

from core.evaluation import calibration_choice
from core.evaluation.runner import EvalOptions, evaluate
from core.models.loading import load_model
from core.models.registry import get_model
from core.store import scores as score_rows
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")

SENTENCE = re.compile(r"Sentence: (.*)\nSentiment:", re.S)
CONTENT_FREE = {"N/A", "", "[MASK]"}


class ScriptedModel:
    """A ``LanguageModel`` whose label log-likelihoods depend on the item's split.

    Content-free prompts always like "positive" a lot. Items of a split in ``biased`` share
    that bias (so calibration removes it and helps); items of the other splits do not (so
    calibration wrongly penalises "positive" and hurts). Every item's gold label gets +2.
    """

    def __init__(self, gold: dict[str, tuple[str, str]], biased: set[str]) -> None:
        self.gold, self.biased = gold, biased

    def __call__(self, *args, **kwargs) -> ScriptedModel:  # stands in for HFLanguageModel(...)
        return self

    def _row(self, prompt: str, labels: list[str]) -> list[float]:
        text = SENTENCE.search(prompt).group(1)
        if text in CONTENT_FREE:
            return [6.0 if label == "positive" else 0.0 for label in labels]
        answer, split = self.gold[text]
        bias = 6.0 if split in self.biased else 0.0
        return [
            (bias if label == "positive" else 0.0) + (2.0 if label == answer else 0.0)
            for label in labels
        ]

    def choice_logprobs(self, contexts, continuations, on_batch=None):
        labels = [c.strip().lower() for c in continuations]
        if on_batch:
            on_batch(list(range(len(contexts))), 0.01)
        return [self._row(prompt, labels) for prompt in contexts]


def _evaluate_with(db, monkeypatch, biased: set[str]):
    spec = get_task("fin_sentiment")
    gold = {
        item.fields["text"]: (item.answer, split)
        for split in ("validation", "test")
        for item in load_split(spec, split).items
    }
    monkeypatch.setattr("core.evaluation.hf.HFLanguageModel", ScriptedModel(gold, biased))
    loaded = load_model(get_model("tiny-llama", db))
    result = evaluate(loaded, spec, db=db, options=EvalOptions(limit=60))
    row = score_rows.get(db, result["score_id"])
    return spec, row, json.loads(row["metrics_json"])


def _share_positive(spec, split: str, limit: int | None = None) -> float:
    items = load_split(spec, split).items[:limit]
    return sum(item.answer == "positive" for item in items) / len(items)


def test_calibration_that_lowers_validation_accuracy_is_not_the_primary_metric(db, monkeypatch):
    # On the test items calibration would help (they are biased): the choice must not see them.
    spec, row, metrics = _evaluate_with(db, monkeypatch, biased={"test"})
    choice = metrics["calibration_choice"]
    assert choice["calibrated"] is False
    assert choice["n_validation"] == len(load_split(spec, "validation").items)
    assert choice["validation_uncalibrated"] == 1.0
    assert choice["validation_calibrated"] == pytest.approx(1 - _share_positive(spec, "validation"))
    # the stored primary is the uncalibrated answer; the calibrated figure is stored beside it
    assert row["primary_value"] == metrics["uncalibrated_accuracy"]["value"]
    assert row["primary_value"] == pytest.approx(_share_positive(spec, "test", 60))
    assert metrics["calibrated_accuracy"]["value"] == 1.0
    answers = {p["parsed"] for p in score_rows.predictions(db, row["id"])}
    assert answers == {"positive"}  # the per-item answers follow the choice too
    assert calibration_choice.primary_label(metrics) == "uncalibrated"


def test_calibration_that_raises_validation_accuracy_is_the_primary_metric(db, monkeypatch):
    spec, row, metrics = _evaluate_with(db, monkeypatch, biased={"validation", "test"})
    choice = metrics["calibration_choice"]
    assert choice["calibrated"] is True
    assert choice["validation_calibrated"] == 1.0
    assert choice["validation_uncalibrated"] == pytest.approx(_share_positive(spec, "validation"))
    assert row["primary_value"] == metrics["calibrated_accuracy"]["value"] == 1.0
    assert metrics["uncalibrated_accuracy"]["value"] == pytest.approx(
        _share_positive(spec, "test", 60)
    )
    assert calibration_choice.primary_label(metrics) == "calibrated"


def test_choose_needs_the_same_items_both_ways():
    with pytest.raises(ValueError, match="same validation items"):
        calibration_choice.choose([True], [True, False])
