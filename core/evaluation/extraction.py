"""Scoring of the review tasks' outputs: set answers parsed, and the metrics runner adds for
set tasks, rating tasks (within one star, RMSE) and summaries (ROUGE-L, fact coverage, terms).

    >>> from core.tasks.spec import get_task
    >>> parse_answer(get_task("review_features"), "The App, hidden fees and support.")
    'mobile app, customer service, hidden charges'

A set task's parsed answer is stored in its canonical form (``reviews.feature_list``: the
terms in vocabulary order, comma-separated; ``none`` for the empty set), so two answers naming
the same set are stored alike and paired statistics can read them back (``sets.split_terms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.data.items import Item
from core.evaluation import metrics as m
from core.evaluation import ratings, sets, summaries


def _canonical(terms: Sequence[str], vocabulary: Sequence[str]) -> str:
    named = [term for term in vocabulary if term in set(terms)]
    return ", ".join(named) if named else "none"


def parse_answer(spec: Any, text: str) -> str | None:
    """A set task's answer, parsed (``sets.parse_set``) and canonical; None if unparseable."""
    found = sets.parse_set(text, spec.labels, spec.synonyms)
    return None if found is None else _canonical(found, spec.labels)


def same_set(parsed: str | None, gold: str) -> bool:
    return parsed is not None and set(sets.split_terms(parsed)) == set(sets.split_terms(gold))


def set_report(spec: Any, items: Sequence[Item], parsed: Sequence[str | None], seed: int) -> dict:
    golds = [sets.split_terms(item.answer) for item in items]
    preds = [None if p is None else sets.split_terms(p) for p in parsed]
    return sets.set_metrics(golds, preds, spec.labels, seed)


def rating_report(golds: Sequence[str], preds: Sequence[str], seed: int) -> dict[str, Any]:
    return {
        "within1_accuracy": ratings.within_one(golds, preds, seed),
        "rmse": ratings.rmse(golds, preds, seed),
    }


def summary_values(items: Sequence[Item], outputs: Sequence[str | None]) -> dict[str, list[float]]:
    """Per-item ROUGE-L, fact coverage and domain-term precision (the latter two need the
    item's review meta: its features and rating; items without it are skipped)."""
    from core.data.review_import import feature_vocabulary

    vocabulary, synonyms = feature_vocabulary()
    values: dict[str, list[float]] = {
        "rouge_l": [],
        "fact_coverage": [],
        "domain_term_precision": [],
    }
    for item, output in zip(items, outputs):
        values["rouge_l"].append(summaries.rouge_l(output, item.answer))
        if "rating" not in item.meta or "features" not in item.meta:
            continue
        gold = list(item.meta["features"])  # type: ignore[call-overload]
        rating = int(item.meta["rating"])  # type: ignore[call-overload]
        values["fact_coverage"].append(
            summaries.fact_coverage(output, gold, rating, vocabulary, synonyms)
        )
        values["domain_term_precision"].append(
            summaries.term_precision(output, gold, vocabulary, synonyms)
        )
    return values


def summary_report(items: Sequence[Item], outputs: Sequence[str | None], seed: int) -> dict:
    return {
        name: m.mean_with_ci(values, seed)
        for name, values in summary_values(items, outputs).items()
        if values
    }
