"""Rating metrics beyond accuracy and MAE: within-one-star accuracy and RMSE, with 95% CIs.

    >>> within_one(["5", "3", "1"], ["4", "1", "1"])["value"]
    0.6666666666666666
    >>> round(rmse(["5", "3", "1"], ["4", "1", "1"])["value"], 4)
    1.291

Ratings are labels that are numbers ("1".."5"); a rating task's labels are scored by
log-likelihood, so every item has a predicted rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.evaluation import metrics as m


def _errors(golds: Sequence[str], preds: Sequence[str]) -> np.ndarray:
    return np.array([float(p) - float(g) for g, p in zip(golds, preds)], dtype=float)


def within_one(golds: Sequence[str], preds: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Share of items whose predicted rating is at most one star from the gold one."""
    return m.mean_with_ci((np.abs(_errors(golds, preds)) <= 1).astype(float), seed)


def rmse(golds: Sequence[str], preds: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Root mean squared rating error (its CI: the bootstrap of the root of the mean)."""
    squared = _errors(golds, preds) ** 2
    if squared.size == 0:
        return {"value": float("nan"), "ci": [float("nan"), float("nan")]}
    return {
        "value": float(np.sqrt(squared.mean())),
        "ci": m.percentile_interval(
            np.sqrt(squared[m.resample_indices(squared.size, seed)].mean(axis=1))
        ),
    }
