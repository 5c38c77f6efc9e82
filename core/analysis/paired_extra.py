"""Paired bootstrap samples of the review metrics: within one star, RMSE, set P / R / F1, ROUGE-L.

    >>> import pandas as pd
    >>> items = pd.DataFrame({"gold": ["5", "3"], "base_parsed": ["1", "3"],
    ...                       "tuned_parsed": ["4", "3"]})
    >>> metric_samples("within1_accuracy", items)[0]
    0.5

Used by ``core.analysis.paired.metric_samples`` for the metrics it does not know itself; each
is computed from the stored predictions (parsed answers and gold), item by item, exactly as
the stored score computed it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.analysis import paired
from core.evaluation import sets
from core.evaluation.summaries import rouge_l


def _rating_errors(items: pd.DataFrame, side: str) -> np.ndarray:
    gold = items["gold"].map(paired._as_float).to_numpy()
    return items[f"{side}_parsed"].map(paired._as_float).to_numpy() - gold


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


def metric_samples(
    metric: str, items: pd.DataFrame, labels: list[str] | None = None, seed: int = 0
) -> Any:
    """(tuned - base, bootstrap samples) of one review metric on paired items, or None."""
    if items.empty:
        return None
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
