"""Task metrics with 95% bootstrap confidence intervals.

    >>> report = classification_metrics(["a", "b", "a"], ["a", "b", "b"], ["a", "b"])
    >>> round(report["accuracy"]["value"], 3)
    0.667

Each metric is ``{"value": v, "ci": [low, high]}``. Intervals are percentile bootstrap
intervals over items (1,000 resamples, seeded), so they say how much a score could move on
another sample of items of the same kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

N_RESAMPLES = 1000
CONFIDENCE = 0.95


def resample_indices(n_items: int, seed: int = 0, n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """A (n_resamples, n_items) matrix of bootstrap item indices."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_items, size=(n_resamples, n_items))


def percentile_interval(samples: np.ndarray) -> list[float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap(statistic: Callable[[np.ndarray], float], n_items: int, seed: int = 0) -> list[float]:
    """95% interval of ``statistic(indices)`` over bootstrap resamples of the items."""
    if n_items == 0:
        return [float("nan"), float("nan")]
    samples = np.array([statistic(idx) for idx in resample_indices(n_items, seed)])
    return percentile_interval(samples)


def mean_with_ci(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return {"value": float("nan"), "ci": [float("nan"), float("nan")]}
    means = array[resample_indices(array.size, seed)].mean(axis=1)
    return {"value": float(array.mean()), "ci": percentile_interval(means)}


def _confusion(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> np.ndarray:
    return np.bincount(gold * n_labels + pred, minlength=n_labels * n_labels).reshape(
        n_labels, n_labels
    )


def _per_class(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    true_pos = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros_like(true_pos), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
    return precision, recall, f1


def _macro_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the labels that occur in gold or predictions."""
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    f1 = _per_class(confusion)[2]
    return float(f1[present].mean()) if present.any() else 0.0


def _macro_f1_ci(gold: np.ndarray, pred: np.ndarray, n_labels: int, seed: int) -> list[float]:
    """``bootstrap`` of ``_macro_f1`` over the same resamples, every resample's confusion at
    once (one bincount instead of a Python loop: slices score many small subsets)."""
    if gold.size == 0:
        return [float("nan"), float("nan")]
    idx = resample_indices(gold.size, seed)
    cells = n_labels * n_labels
    codes = gold[idx] * n_labels + pred[idx] + cells * np.arange(len(idx))[:, None]
    confusion = np.bincount(codes.ravel(), minlength=cells * len(idx))
    confusion = confusion.reshape(len(idx), n_labels, n_labels)
    true_pos = np.diagonal(confusion, axis1=1, axis2=2).astype(float)
    predicted, actual = confusion.sum(axis=1), confusion.sum(axis=2)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros_like(true_pos), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
    present = (predicted + actual) > 0
    counted = present.sum(axis=1)
    samples = np.divide(
        (f1 * present).sum(axis=1), counted, out=np.zeros(len(idx)), where=counted > 0
    )
    return percentile_interval(samples)


def classification_metrics(
    golds: Sequence[str], preds: Sequence[str], labels: Sequence[str], seed: int = 0
) -> dict[str, Any]:
    """Accuracy, macro-F1 (both with CIs), per-class precision/recall/F1 and the confusion matrix."""
    index = {label: i for i, label in enumerate(labels)}
    gold = np.array([index[g] for g in golds], dtype=int)
    pred = np.array([index[p] for p in preds], dtype=int)
    n_labels = len(labels)
    confusion = _confusion(gold, pred, n_labels)
    precision, recall, f1 = _per_class(confusion)
    return {
        "accuracy": mean_with_ci((gold == pred).astype(float), seed),
        "macro_f1": {"value": _macro_f1(confusion), "ci": _macro_f1_ci(gold, pred, n_labels, seed)},
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(confusion[i].sum()),
            }
            for label, i in index.items()
        },
        "confusion": {"labels": list(labels), "matrix": confusion.tolist()},
    }


def numeric_metrics(
    golds: Sequence[float], preds: Sequence[float | None], correct: Sequence[bool], seed: int = 0
) -> dict[str, Any]:
    """Accuracy within tolerance, unparseable rate, and mean absolute error on parsed answers."""
    parsed = [(g, p) for g, p in zip(golds, preds) if p is not None]
    errors = [abs(p - g) for g, p in parsed]
    return {
        "accuracy": mean_with_ci([float(c) for c in correct], seed),
        "unparseable_rate": mean_with_ci([float(p is None) for p in preds], seed),
        "mae": mean_with_ci(errors, seed),
    }


def rating_mae(golds: Sequence[str], preds: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """Mean absolute distance between ordinal labels that are numbers (e.g. ratings 1-5)."""
    return mean_with_ci([abs(float(g) - float(p)) for g, p in zip(golds, preds)], seed)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"p50_ms": float("nan"), "p95_ms": float("nan")}
    p50, p95 = np.percentile(np.asarray(latencies_ms), [50, 95])
    return {"p50_ms": float(p50), "p95_ms": float(p95)}
