"""Robustness slices: every score's metrics per slice of its items, the largest gaps, verdicts.

    >>> from core.data.items import Item
    >>> item = Item("r1", {"text": "Great card."}, "5", {"slices": {"category": "credit_card"}})
    >>> item_slices(item, "rating")
    {'category': 'credit_card', 'length': 'short', 'class': '5'}

**Slice tags of an item** (``item_slices``), by dimension:

- from the data: ``item.meta["slices"]`` — the review generator's ``category``,
  ``edge_case`` and ``length``; a user file's mapped slice columns (``core.data.review_import``);
- computed: ``length`` — the length bucket of the item's text in model-independent tokens
  (``core.data.lengths``: short < 50, medium 50-200, long > 200), and ``class`` — the gold
  class: the gold label of choice and rating tasks, else the item's ``meta["sentiment"]`` when
  it has one.

**Per score** (``score_slices``), for every dimension and value: the item count and every
metric of the task on those items (each with its bootstrap CI). Then, on the primary metric
over the values with at least ``min_items`` items:

- ``class``: the *gap* between the best and the worst class, in points (x100); it passes when
  it is at most ``max_class_gap`` points (default 5);
- every other dimension: the *relative drop* from the best slice to the worst,
  (best - worst) / best; it passes when it is at most ``max_relative_drop`` (default 0.10).

Thresholds come from the task YAML's ``robustness`` mapping. A dimension with fewer than two
slices of ``min_items`` items has no verdict (``"too few items"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from core.data.items import Item
from core.data.lengths import count_tokens, length_bucket

THRESHOLDS = {"max_relative_drop": 0.10, "max_class_gap": 5.0, "min_items": 10.0}
CLASS_DIMENSION = "class"
DIMENSION_ORDER = ("category", "length", "class", "edge_case")


def gold_class(item: Item, kind: str) -> str | None:
    """The item's gold class: its label for choice / rating tasks, else its meta sentiment."""
    if kind in ("choice", "rating"):
        return item.answer
    sentiment = item.meta.get("sentiment")
    return str(sentiment) if sentiment is not None else None


def item_slices(item: Item, kind: str) -> dict[str, str]:
    """Dimension -> slice value of one item (see the module doc)."""
    tags = {str(k): str(v) for k, v in dict(item.meta.get("slices") or {}).items()}
    tags["length"] = length_bucket(count_tokens(" ".join(item.fields.values())))
    found = gold_class(item, kind)
    if found is not None:
        tags[CLASS_DIMENSION] = found
    return tags


def dimensions(tags: Sequence[dict[str, str]]) -> list[str]:
    """Every dimension present, the usual ones first in a fixed order."""
    present = {dim for row in tags for dim in row}
    known = [dim for dim in DIMENSION_ORDER if dim in present]
    return known + sorted(present - set(known))


def _value(metric: dict[str, Any] | None) -> float:
    if not metric or metric.get("value") is None:
        return math.nan
    return float(metric["value"])


def gap(values: dict[str, float], is_class: bool, thresholds: dict[str, float]) -> dict[str, Any]:
    """The largest drop (or class gap) among slice values, and its verdict.

    >>> gap({"a": 0.8, "b": 0.6}, False, THRESHOLDS)["verdict"]
    'fail'
    >>> gap({"1": 0.50, "2": 0.47}, True, THRESHOLDS)["gap"]
    3.0
    """
    finite = {k: v for k, v in values.items() if not math.isnan(v)}
    if len(finite) < 2:
        return {"verdict": "too few items", "best": None, "worst": None, "gap": None}
    best = max(finite, key=finite.__getitem__)
    worst = min(finite, key=finite.__getitem__)
    if is_class:
        size = round(100 * (finite[best] - finite[worst]), 6)
        limit, unit = thresholds["max_class_gap"], "points"
    else:
        size = (finite[best] - finite[worst]) / finite[best] if finite[best] > 0 else 0.0
        limit, unit = thresholds["max_relative_drop"], "relative drop"
    return {
        "best": best,
        "worst": worst,
        "gap": size,
        "unit": unit,
        "threshold": limit,
        "verdict": "pass" if size <= limit + 1e-12 else "fail",
    }


MetricFn = Callable[[list[Item], list[Any]], dict[str, Any]]


def score_slices(
    kind: str,
    primary: str,
    items: Sequence[Item],
    results: Sequence[Any],
    metric_fn: MetricFn,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Every metric per slice, the gaps and verdicts on ``primary``, and each item's tags.

    ``metric_fn(items, results)`` is the task's own metric function (``runner.task_metrics``
    bound to the spec), so a slice's figures are computed exactly as the whole score's.
    """
    limits = {**THRESHOLDS, **(thresholds or {})}
    tags = [item_slices(item, kind) for item in items]
    report: dict[str, Any] = {
        "primary_metric": primary,
        "thresholds": limits,
        "items": {item.id: row for item, row in zip(items, tags)},
        "dimensions": {},
    }
    for dim in dimensions(tags):
        slices: dict[str, Any] = {}
        for value in sorted({row[dim] for row in tags if dim in row}):
            chosen = [i for i, row in enumerate(tags) if row.get(dim) == value]
            metrics = metric_fn([items[i] for i in chosen], [results[i] for i in chosen])
            slices[value] = {
                "n": len(chosen),
                "metrics": {
                    k: v for k, v in metrics.items() if isinstance(v, dict) and "value" in v
                },
            }
        counted = {
            value: _value(entry["metrics"].get(primary))
            for value, entry in slices.items()
            if entry["n"] >= limits["min_items"]
        }
        report["dimensions"][dim] = {
            "slices": slices,
            "summary": gap(counted, dim == CLASS_DIMENSION, limits),
        }
    return report


def verdict_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per dimension: its largest gap, the threshold and pass / fail (for tables)."""
    rows = []
    for dim, entry in ((report or {}).get("dimensions") or {}).items():
        summary = entry["summary"]
        rows.append({"dimension": dim, **summary})
    return rows


def slice_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per (dimension, value) of a score: n, primary value and its CI (for tables)."""
    if not report:
        return []
    primary = report["primary_metric"]
    rows = []
    for dim, entry in report["dimensions"].items():
        for value, found in entry["slices"].items():
            metric = found["metrics"].get(primary) or {}
            rows.append(
                {
                    "dimension": dim,
                    "slice": value,
                    "n": found["n"],
                    "value": _value(metric),
                    "ci": metric.get("ci"),
                }
            )
    return rows
