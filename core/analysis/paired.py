"""Paired statistics of two models on the same items: deltas with bootstrap CIs, wins and flips.

    >>> paired_delta_ci([0, 0, 1, 1], [1, 0, 1, 1])["delta"]
    0.25
    >>> win_loss_tie(pd.DataFrame({"base_correct": [1, 0, 1, 0], "tuned_correct": [1, 1, 0, 0]}))
    {'win': 1, 'loss': 1, 'tie': 2, 'both_right': 1, 'both_wrong': 1, 'n': 4}

Both models of a comparison are scored on the same test items (equal split fingerprints), so
the uncertainty of a difference comes from a *paired* bootstrap: each resample draws item
indices once and applies them to both models. That interval is usually narrower than the two
scores' own intervals suggest, because most items are easy or hard for both models alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation import metrics as m

# metric key -> (label, higher is better)
METRIC_INFO: dict[str, tuple[str, bool]] = {
    "accuracy": ("Accuracy", True),
    "macro_f1": ("Macro-F1", True),
    "uncalibrated_accuracy": ("Accuracy before calibration", True),
    "calibrated_accuracy": ("Accuracy after calibration", True),
    "unparseable_rate": ("Unparseable rate", False),
    "mae": ("Mean absolute error", False),
    "within1_accuracy": ("Within-1 accuracy", True),
    "rmse": ("RMSE", False),
    "micro_f1": ("Micro-F1", True),
    "rouge_l": ("ROUGE-L", True),
    "overall": ("Overall (mean of primary metrics)", True),
}
LOWER_IS_BETTER_HINTS = ("rate", "error", "mae", "rmse", "loss", "latency")


def higher_is_better(metric: str) -> bool:
    """Whether a bigger value of ``metric`` is better (rates, errors and losses: lower is)."""
    if metric in METRIC_INFO:
        return METRIC_INFO[metric][1]
    return not any(hint in metric for hint in LOWER_IS_BETTER_HINTS)


def metric_label(metric: str) -> str:
    """A metric key as people read it: ``macro_f1`` -> ``Macro-F1``."""
    return METRIC_INFO.get(metric, (metric.replace("_", " ").capitalize(), True))[0]


def interval(samples: np.ndarray) -> list[float] | None:
    """The 95% percentile interval of the finite samples (None without any)."""
    finite = samples[np.isfinite(samples)]
    return m.percentile_interval(finite) if finite.size else None


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample with no parsed answer
        return np.nanmean(values, axis=-1)


def paired_mean_samples(
    base_values: Any, tuned_values: Any, seed: int = 0
) -> tuple[float, np.ndarray]:
    """(tuned mean - base mean, its bootstrap samples); NaN values (no answer) are skipped."""
    base = np.asarray(base_values, dtype=float)
    tuned = np.asarray(tuned_values, dtype=float)
    if base.shape != tuned.shape:
        raise ValueError("paired values need one base and one fine-tuned value per item")
    if base.size == 0:
        return float("nan"), np.array([])
    idx = m.resample_indices(base.size, seed)
    delta = float(_nanmean_rows(tuned) - _nanmean_rows(base))
    return delta, _nanmean_rows(tuned[idx]) - _nanmean_rows(base[idx])


def paired_delta_ci(base_correct: Any, tuned_correct: Any, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap 95% CI of tuned accuracy minus base accuracy over the same items.

    >>> paired_delta_ci([1, 0, 0, 1], [1, 1, 0, 1])["delta"]
    0.25

    Item indices are resampled once per resample and applied to both models.
    """
    delta, samples = paired_mean_samples(base_correct, tuned_correct, seed)
    ci = interval(samples) if samples.size else None
    return {"delta": delta, "ci": ci or [float("nan"), float("nan")]}


def paired_statistic_samples(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    base: np.ndarray,
    tuned: np.ndarray,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Like ``paired_mean_samples`` for any statistic(values, indices) (e.g. macro-F1)."""
    n = len(base)
    if n == 0:
        return float("nan"), np.array([])
    everything = np.arange(n)
    delta = statistic(tuned, everything) - statistic(base, everything)
    samples = [statistic(tuned, idx) - statistic(base, idx) for idx in m.resample_indices(n, seed)]
    return float(delta), np.array(samples, dtype=float)


def win_loss_tie(df: pd.DataFrame) -> dict[str, int]:
    """Items the fine-tuned model got right and the base wrong (win), the opposite (loss), same (tie).

    >>> win_loss_tie(pd.DataFrame({"base_correct": [1, 0, 1, 0], "tuned_correct": [1, 1, 0, 0]}))
    {'win': 1, 'loss': 1, 'tie': 2, 'both_right': 1, 'both_wrong': 1, 'n': 4}
    """
    base = df["base_correct"].astype(bool) if len(df) else pd.Series(dtype=bool)
    tuned = df["tuned_correct"].astype(bool) if len(df) else pd.Series(dtype=bool)
    win, loss = int((tuned & ~base).sum()), int((base & ~tuned).sum())
    both_right, both_wrong = int((tuned & base).sum()), int((~tuned & ~base).sum())
    return {
        "win": win,
        "loss": loss,
        "tie": both_right + both_wrong,
        "both_right": both_right,
        "both_wrong": both_wrong,
        "n": len(df),
    }


def flipped_items(df: pd.DataFrame) -> pd.DataFrame:
    """The items whose verdict changed; ``flip`` is "win" (now right) or "loss" (now wrong).

    >>> frame = pd.DataFrame({"item_id": ["a", "b"], "position": [0, 1], "prompt": ["p", "q"],
    ...     "gold": ["x", "y"], "base_parsed": ["x", "x"], "base_output": ["x", "x"],
    ...     "base_correct": [1, 0], "tuned_parsed": ["y", "y"], "tuned_output": ["y", "y"],
    ...     "tuned_correct": [0, 1]})
    >>> flipped_items(frame)[["item_id", "flip"]].values.tolist()
    [['a', 'loss'], ['b', 'win']]
    """
    columns = [
        "item_id",
        "position",
        "flip",
        "prompt",
        "gold",
        "base_answer",
        "tuned_answer",
        "base_output",
        "tuned_output",
    ]
    if df.empty:
        return pd.DataFrame(columns=columns)
    changed = df[df["base_correct"].astype(bool) != df["tuned_correct"].astype(bool)]
    return pd.DataFrame(
        {
            "item_id": changed["item_id"],
            "position": changed["position"],
            "flip": np.where(changed["tuned_correct"].astype(bool), "win", "loss"),
            "prompt": changed["prompt"],
            "gold": changed["gold"],
            "base_answer": changed["base_parsed"],
            "tuned_answer": changed["tuned_parsed"],
            "base_output": changed["base_output"],
            "tuned_output": changed["tuned_output"],
        },
        columns=columns,
    ).reset_index(drop=True)
