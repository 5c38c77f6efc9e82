"""The brief's comparison table: per task and Overall, base / fine-tuned / improvement in points
and percent with paired CIs, and the gain per training hour and per kWh.

    >>> row = gain_row({"task": "t", "metric": "accuracy", "base": 0.5, "tuned": 0.6,
    ...                 "improvement": 0.1, "ci": [0.05, 0.15], "base_ci": None,
    ...                 "tuned_ci": None, "verdict": "better", "n_items": 10})
    >>> round(row["improvement_points"], 6), round(row["improvement_percent"], 6), row["ci_points"]
    (10.0, 20.0, [5.0, 15.0])
    >>> per_resource(10.0, 1800.0, None)
    {'gain_per_hour': 20.0, 'gain_per_kwh': None, 'energy_kwh': None, 'energy': 'not measured'}

Points are the improvement x 100 for metrics between 0 and 1 (accuracy), the raw difference
otherwise; percent is relative to the base (None when the base is 0). Energy is kWh when
measured and "not measured" otherwise, never 0; so is the gain per kWh.
"""

from __future__ import annotations

import math
from typing import Any

from core import format as fmt
from core.analysis import comparison
from core.store import Database


def _scale(base: float, tuned: float) -> float:
    bounded = all(0 <= v <= 1 for v in (base, tuned) if not math.isnan(v))
    return 100.0 if bounded else 1.0


def _finite(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def gain_row(row: dict[str, Any]) -> dict[str, Any]:
    """One primary-metric (or overall) row of ``comparison.comparison_table``, in points and %."""
    base, tuned, improvement = float(row["base"]), float(row["tuned"]), float(row["improvement"])
    scale = _scale(base, tuned)
    ci = row["ci"]
    return {
        "task": "Overall" if row["metric"] == "overall" else row["task"],
        "metric": row["metric"],
        "base": _finite(base),
        "tuned": _finite(tuned),
        "base_ci": row["base_ci"],
        "tuned_ci": row["tuned_ci"],
        "improvement": _finite(improvement),
        "improvement_points": _finite(improvement * scale),
        "improvement_percent": _finite(100 * improvement / abs(base)) if base else None,
        "ci": ci,
        "ci_points": [ci[0] * scale, ci[1] * scale] if ci else None,
        "verdict": row["verdict"],
        "n_items": int(row["n_items"]),
    }


def per_resource(points: float | None, train_seconds: float | None, energy_wh: float | None):
    """The gain per training hour and per kWh; energy 'not measured' (never 0) without a reading."""
    hours = train_seconds / 3600 if train_seconds else None
    kwh = energy_wh / 1000 if energy_wh else None
    return {
        "gain_per_hour": points / hours if points is not None and hours else None,
        "gain_per_kwh": points / kwh if points is not None and kwh else None,
        "energy_kwh": kwh,
        "energy": fmt.fmt_energy(kwh),
    }


def gain_summary(
    db: Database,
    base_model_id: str,
    tuned_model_id: str,
    train_seconds: float | None,
    energy_wh: float | None,
    trained_task: str | None = None,
) -> dict[str, Any]:
    """Per task (trained task first) and Overall, with the training time, energy and gains."""
    matches = comparison.matched_scores(db, base_model_id, tuned_model_id, trained_task)
    items = {
        m["task"]: comparison.paired_items(db, m["base"]["id"], m["tuned"]["id"]) for m in matches
    }
    return summary_from_table(comparison.comparison_table(matches, items), train_seconds, energy_wh)


def summary_from_table(
    table: Any, train_seconds: float | None, energy_wh: float | None
) -> dict[str, Any]:
    """``gain_summary`` from a ``comparison.comparison_table`` (the Comparison page has one)."""
    primary = table[table["primary"] & (table["metric"] != "overall")]
    tasks = [gain_row(row) for row in primary.to_dict("records")]
    overall_rows = table[table["metric"] == "overall"].to_dict("records")
    overall = gain_row(overall_rows[0]) if overall_rows else (tasks[0] if tasks else None)
    headline = overall["improvement_points"] if overall else None
    return {
        "tasks": tasks,
        "overall": overall,
        "train_seconds": train_seconds,
        "train_time": fmt.fmt_duration(train_seconds),
        **per_resource(headline, train_seconds, energy_wh),
    }


def gain_table_rows(summary: dict[str, Any]) -> list[list[str]]:
    """The summary as text rows (CLI and page): task, base, fine-tuned, points, percent, CI."""
    rows = []
    overall = summary["overall"]
    for row in summary["tasks"] + (
        [overall] if overall and overall not in summary["tasks"] else []
    ):
        ci = row["ci_points"]
        rows.append(
            [
                row["task"],
                row["metric"],
                fmt.fmt_score(row["base"]),
                fmt.fmt_score(row["tuned"]),
                fmt.fmt_signed(row["improvement_points"], 1),
                "—"
                if row["improvement_percent"] is None
                else f"{row['improvement_percent']:+.1f}%",
                f"[{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "—",
                row["verdict"],
            ]
        )
    return rows


GAIN_HEADERS = ["task", "metric", "base", "fine-tuned", "points", "percent", "95% CI", "verdict"]


def resource_line(summary: dict[str, Any]) -> str:
    """Training time, energy and the overall gain per hour and per kWh, in words."""
    per_kwh = summary.get("gain_per_kwh")
    return (
        f"Training time {summary['train_time']} · energy {summary['energy']} · overall gain "
        f"{fmt.fmt_signed(summary.get('gain_per_hour'), 1)} points per training hour · "
        + (f"{fmt.fmt_signed(per_kwh, 1)} points per kWh" if per_kwh else "per kWh: not measured")
    )
