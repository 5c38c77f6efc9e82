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

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

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


# ---------------------------------------------------------------- base vs fine-tuned per slice


def stored(score: dict[str, Any]) -> dict[str, Any] | None:
    """A score row's slice report (None for scores stored before slices were)."""
    raw = score.get("slices_json")
    return json.loads(raw) if raw else None


def compare(
    base: dict[str, Any], tuned: dict[str, Any], items: Any, labels: list[str] | None, seed: int = 0
) -> dict[str, Any] | None:
    """Base vs fine-tuned per slice on the primary metric, with the paired 95% CI of the change.

    ``items``: the pair's ``comparison.paired_items``. Returns ``{"rows": [...], "verdicts":
    [...]}``: a row per (dimension, slice) with n, both values and own CIs, the change and its
    paired CI; a verdict row per dimension with both models' largest gap and pass / fail.
    None when either score has no slices.
    """
    from core.analysis import paired, paired_metrics

    base_report, tuned_report = stored(base), stored(tuned)
    if not base_report or not tuned_report:
        return None
    primary = tuned_report["primary_metric"]
    sign = 1.0 if paired.higher_is_better(primary) else -1.0
    tags = tuned_report["items"]
    rows = []
    for dim, entry in tuned_report["dimensions"].items():
        base_dim = base_report["dimensions"].get(dim, {"slices": {}})
        for value, found in entry["slices"].items():
            mask = [tags.get(item_id, {}).get(dim) == value for item_id in items["item_id"]]
            chosen = items[mask] if len(items) else items
            samples = paired_metrics.metric_samples(
                primary, chosen.reset_index(drop=True), labels, seed
            )
            ci = paired.interval(sign * samples[1]) if samples and samples[1].size else None
            base_metric = (base_dim["slices"].get(value) or {}).get("metrics", {}).get(primary)
            tuned_metric = found["metrics"].get(primary)
            rows.append(
                {
                    "dimension": dim,
                    "slice": value,
                    "n": found["n"],
                    "base": _value(base_metric),
                    "base_ci": (base_metric or {}).get("ci"),
                    "tuned": _value(tuned_metric),
                    "tuned_ci": (tuned_metric or {}).get("ci"),
                    "change": sign * (_value(tuned_metric) - _value(base_metric)),
                    "change_ci": ci,
                }
            )
    verdicts = []
    for dim, entry in tuned_report["dimensions"].items():
        base_summary = (base_report["dimensions"].get(dim) or {}).get("summary") or {}
        verdicts.append(
            {
                "dimension": dim,
                "unit": entry["summary"].get("unit") or base_summary.get("unit"),
                "threshold": entry["summary"].get("threshold"),
                "base_gap": base_summary.get("gap"),
                "base_worst": base_summary.get("worst"),
                "base_verdict": base_summary.get("verdict"),
                "tuned_gap": entry["summary"].get("gap"),
                "tuned_worst": entry["summary"].get("worst"),
                "tuned_verdict": entry["summary"].get("verdict"),
            }
        )
    return {"primary_metric": primary, "rows": rows, "verdicts": verdicts}


# ---------------------------------------------------------------- tables and charts to show


def _gap_text(gap_value: Any, unit: str | None) -> str:
    if gap_value is None:
        return "—"
    if unit == "points":
        return f"{gap_value:.1f} points"
    return f"{100 * gap_value:.1f}% drop"


def _limit_text(limit: Any, unit: str | None) -> str:
    if limit is None:
        return "—"
    return f"≤ {limit:g} points" if unit == "points" else f"≤ {100 * limit:g}% drop"


def verdict_table(verdicts: list[dict[str, Any]]) -> pd.DataFrame:
    """Per dimension: each model's largest gap (and its worst slice), the threshold, verdicts."""
    rows = []
    for row in verdicts:
        unit = row.get("unit")
        rows.append(
            {
                "Dimension": row["dimension"],
                "Threshold": _limit_text(row.get("threshold"), unit),
                "Base: largest gap": _gap_text(row.get("base_gap"), unit),
                "Base: worst slice": row.get("base_worst") or "—",
                "Base verdict": row.get("base_verdict") or "—",
                "Fine-tuned: largest gap": _gap_text(row.get("tuned_gap"), unit),
                "Fine-tuned: worst slice": row.get("tuned_worst") or "—",
                "Fine-tuned verdict": row.get("tuned_verdict") or "—",
            }
        )
    return pd.DataFrame(rows)


def score_verdict_table(report: dict[str, Any] | None) -> pd.DataFrame:
    """One score's verdicts per dimension (the leaderboard's detail view)."""
    rows = []
    for row in verdict_rows(report):
        unit = row.get("unit")
        rows.append(
            {
                "Dimension": row["dimension"],
                "Largest gap": _gap_text(row.get("gap"), unit),
                "Best slice": row.get("best") or "—",
                "Worst slice": row.get("worst") or "—",
                "Threshold": _limit_text(row.get("threshold"), unit),
                "Verdict": row["verdict"],
            }
        )
    return pd.DataFrame(rows)


def _ci_text(ci: Any) -> str:
    if not ci or None in ci or any(math.isnan(float(x)) for x in ci):
        return "—"
    return f"{ci[0]:.3f} – {ci[1]:.3f}"


def comparison_slice_table(found: dict[str, Any]) -> pd.DataFrame:
    """Per (dimension, slice): n, base and fine-tuned with their CIs, the change and its CI."""
    return pd.DataFrame(
        [
            {
                "Dimension": row["dimension"],
                "Slice": row["slice"],
                "Items": row["n"],
                "Base": row["base"],
                "Base 95% CI": _ci_text(row["base_ci"]),
                "Fine-tuned": row["tuned"],
                "Fine-tuned 95% CI": _ci_text(row["tuned_ci"]),
                "Change": row["change"],
                "Change 95% CI (paired)": _ci_text(row["change_ci"]),
            }
            for row in found["rows"]
        ]
    )


def score_slice_table(report: dict[str, Any] | None) -> pd.DataFrame:
    """One score's primary metric per (dimension, slice) with its CI."""
    return pd.DataFrame(
        [
            {
                "Dimension": row["dimension"],
                "Slice": row["slice"],
                "Items": row["n"],
                "Value": row["value"],
                "95% CI": _ci_text(row["ci"]),
            }
            for row in slice_rows(report)
        ]
    )


def comparison_chart(found: dict[str, Any], colors: tuple[str, str]) -> str:
    """Grouped bars: base vs fine-tuned per slice, with each one's 95% CI."""
    from core.analysis import paired, svg

    rows = found["rows"]
    categories = [f"{row['dimension']}: {row['slice']}" for row in rows]
    series = [
        ("base", colors[0], [row["base"] for row in rows], [row["base_ci"] for row in rows]),
        (
            "fine-tuned",
            colors[1],
            [row["tuned"] for row in rows],
            [row["tuned_ci"] for row in rows],
        ),
    ]
    return svg.svg_grouped_bars(categories, series, paired.metric_label(found["primary_metric"]))


def score_chart(report: dict[str, Any], color: str) -> str:
    """Horizontal bars: a score's primary metric per slice, with its 95% CI."""
    from core.analysis import paired, svg

    rows = [
        (f"{row['dimension']}: {row['slice']} (n={row['n']})", row["value"], row["ci"], color)
        for row in slice_rows(report)
    ]
    return svg.svg_hbars(rows, paired.metric_label(report["primary_metric"]), title="slices")


def baseline_table(detail: Any) -> pd.DataFrame | None:
    """Base, fine-tuned and the rule-based baseline side by side on every shared metric."""
    if not detail.baseline:
        return None
    base = json.loads(detail.base_score.get("metrics_json") or "{}")
    tuned = json.loads(detail.tuned_score.get("metrics_json") or "{}")
    rule = detail.baseline["metrics"]
    rows = []
    for name, found in rule.items():
        if not isinstance(found, dict) or "value" not in found or name not in tuned:
            continue
        rows.append(
            {
                "Metric": name,
                "Base": (base.get(name) or {}).get("value"),
                "Fine-tuned": tuned[name]["value"],
                detail.baseline["name"]: found["value"],
                "Baseline 95% CI": _ci_text(found["ci"]),
            }
        )
    return pd.DataFrame(rows)
