"""Paired bootstrap samples of each stored metric, recomputed item by item from the predictions.

    >>> import pandas as pd
    >>> items = pd.DataFrame({"gold": ["5", "3"], "base_parsed": ["1", "3"],
    ...                       "tuned_parsed": ["4", "3"]})
    >>> metric_samples("within1_accuracy", items)[0]
    0.5

``metric_samples`` gives (tuned - base, bootstrap samples) of one metric, computed from the
stored parsed answers, raw outputs and gold exactly as the stored score computed it (the same
metric functions), with the paired resampling of ``core.analysis.paired``; None where the
stored predictions cannot give the metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import paired
from core.evaluation import metrics as m
from core.evaluation import sets
from core.evaluation.summaries import rouge_l


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _macro_f1_statistic(gold: pd.Series, labels: list[str]) -> Callable | None:
    index = {label: i for i, label in enumerate(labels)}
    if not set(gold) <= set(index):
        return None
    gold_idx = np.array([index[g] for g in gold], dtype=int)

    def statistic(pred: np.ndarray, idx: np.ndarray) -> float:
        # m._confusion / m._macro_f1 are the very functions that made the stored macro-F1
        return m._macro_f1(m._confusion(gold_idx[idx], pred[idx], len(labels)))

    return statistic


def _raw_choice(raw: Any, labels: list[str]) -> str | None:
    """The label with the highest raw log-likelihood in a choice task's stored raw output.

    >>> _raw_choice("up=-1.5 down=-0.25", ["up", "down"])
    'down'
    """
    scores = {}
    for part in str(raw or "").split(" "):
        label, _, value = part.rpartition("=")
        scores[label] = _as_float(value)
    if set(scores) != set(labels) or any(math.isnan(v) for v in scores.values()):
        return None
    return max(labels, key=scores.__getitem__)


def metric_samples(
    metric: str, items: pd.DataFrame, labels: list[str] | None = None, seed: int = 0
) -> tuple[float, np.ndarray] | None:
    """(tuned - base, bootstrap samples) of one metric on paired items; None if not derivable."""
    if items.empty:
        return None
    if metric == "accuracy":
        return paired.paired_mean_samples(items["base_correct"], items["tuned_correct"], seed)
    if metric == "unparseable_rate":
        return paired.paired_mean_samples(
            items["base_parsed"].isna(), items["tuned_parsed"].isna(), seed
        )
    if metric == "mae":
        gold = items["gold"].map(_as_float).to_numpy()
        base = np.abs(items["base_parsed"].map(_as_float).to_numpy() - gold)
        tuned = np.abs(items["tuned_parsed"].map(_as_float).to_numpy() - gold)
        return paired.paired_mean_samples(base, tuned, seed)
    if metric == "uncalibrated_accuracy" and labels:
        base = [_raw_choice(raw, labels) for raw in items["base_output"]]
        tuned = [_raw_choice(raw, labels) for raw in items["tuned_output"]]
        if None in base or None in tuned:
            return None
        gold = items["gold"].tolist()
        return paired.paired_mean_samples(
            [b == g for b, g in zip(base, gold)], [t == g for t, g in zip(tuned, gold)], seed
        )
    if metric == "macro_f1" and labels:
        statistic = _macro_f1_statistic(items["gold"], labels)
        index = {label: i for i, label in enumerate(labels)}
        answers = pd.concat([items["base_parsed"], items["tuned_parsed"]])
        if statistic is None or not set(answers) <= set(index):
            return None
        base = np.array([index[p] for p in items["base_parsed"]], dtype=int)
        tuned = np.array([index[p] for p in items["tuned_parsed"]], dtype=int)
        return paired.paired_statistic_samples(statistic, base, tuned, seed)
    return _review_metric_samples(metric, items, labels, seed)


def _rating_errors(items: pd.DataFrame, side: str) -> np.ndarray:
    gold = items["gold"].map(_as_float).to_numpy()
    return items[f"{side}_parsed"].map(_as_float).to_numpy() - gold


def _set_counts(items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' (items, terms, 3) counts over one shared vocabulary."""
    golds = [sets.split_terms(g) for g in items["gold"]]
    preds = {
        side: [None if pd.isna(p) else sets.split_terms(p) for p in items[f"{side}_parsed"]]
        for side in ("base", "tuned")
    }
    named = golds + [p or [] for side in preds.values() for p in side]
    vocabulary = sorted({term for row in named for term in row})
    return sets._counts(golds, preds["base"], vocabulary), sets._counts(
        golds, preds["tuned"], vocabulary
    )


def _review_metric_samples(
    metric: str, items: pd.DataFrame, labels: list[str] | None, seed: int
) -> tuple[float, np.ndarray] | None:
    """The review tasks' metrics: within one star, RMSE, set P / R / F1, ROUGE-L."""
    if metric == "within1_accuracy":
        base, tuned = (np.abs(_rating_errors(items, s)) <= 1 for s in ("base", "tuned"))
        return paired.paired_mean_samples(base.astype(float), tuned.astype(float), seed)
    if metric == "rmse":
        squared = {s: _rating_errors(items, s) ** 2 for s in ("base", "tuned")}
        return paired.paired_statistic_samples(
            lambda values, idx: float(np.sqrt(np.nanmean(values[idx]))),
            squared["base"],
            squared["tuned"],
            seed,
        )
    if metric in sets.SET_STATISTICS and labels is None:  # set tasks store no confusion
        average, which = sets.SET_STATISTICS[metric]
        base, tuned = _set_counts(items)
        return paired.paired_statistic_samples(
            lambda counts, idx: float(average(counts[idx].sum(axis=0))[which]), base, tuned, seed
        )
    if metric == "rouge_l":
        base = [rouge_l(o, g) for o, g in zip(items["base_parsed"], items["gold"])]
        tuned = [rouge_l(o, g) for o, g in zip(items["tuned_parsed"], items["gold"])]
        return paired.paired_mean_samples(base, tuned, seed)
    return None
