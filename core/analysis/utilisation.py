"""A run's resource figures from its monitoring samples: GPU utilisation, power, temperature,
CPU and RAM, and the time the resource guard held it.

    >>> rows = [{"ts": 1.0, "gpu_index": 0, "gpu_util": 90.0, "gpu_power_w": 300.0,
    ...          "gpu_temp_c": 70.0, "cpu_percent": 50.0, "ram_used_mb": 900.0},
    ...         {"ts": 3.0, "gpu_index": 0, "gpu_util": 60.0, "gpu_power_w": 200.0,
    ...          "gpu_temp_c": 75.0, "cpu_percent": 70.0, "ram_used_mb": 1000.0}]
    >>> figures = run_figures(rows, paused_s=4.0)
    >>> figures["gpu_util_mean"], figures["gpu_util_above_80_share"], figures["power_peak_w"]
    (75.0, 0.5, 300.0)
    >>> run_figures([{"ts": 1.0, "gpu_index": None, "cpu_percent": 80.0}])["gpu_util_mean"] is None
    True

- Utilisation: the mean over every GPU sample, and the share of those samples above 80 % (the
  samples are taken at a fixed interval, so a share of samples is a share of time).
- Power: the GPUs' summed draw at each sampling time; its mean and its peak.
- Temperature: the hottest reading of any GPU. CPU: mean use; RAM: the peak in use (both
  machine-wide, as psutil reads them: other programs count too).
GPU figures are None without GPU samples (a CPU run, or no NVML).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from statistics import fmean
from typing import Any

from core import format as fmt

BUSY_UTIL = 80.0  # % — the design brief's "> 80% GPU utilisation during training"

FIGURE_LABELS = {
    "gpu_util_mean": "GPU utilisation",
    "gpu_util_above_80_share": "Time above 80% GPU",
    "power_mean_w": "Mean power",
    "power_peak_w": "Peak power",
    "temp_peak_c": "Peak GPU temperature",
    "cpu_percent_mean": "Machine CPU use",
    "ram_peak_mb": "Peak machine RAM in use",
    "paused_s": "Paused by the guard",
}


def figure_text(key: str, value: float | None) -> str:
    """One figure as people read it.

    >>> figure_text("gpu_util_above_80_share", 0.625), figure_text("power_peak_w", 312.4)
    ('62%', '312 W')
    """
    if value is None:
        return fmt.MISSING
    if key == "gpu_util_above_80_share":
        return f"{value:.0%}"
    if key == "paused_s":
        return fmt.fmt_duration(value)
    if key == "ram_peak_mb":
        return fmt.fmt_mb(value)
    unit = {"power_mean_w": " W", "power_peak_w": " W", "temp_peak_c": " °C"}.get(key, "%")
    return f"{value:.0f}{unit}"


def figures_line(figures: dict[str, Any] | None) -> str:
    """The measured figures in one line ('' when none were measured).

    >>> figures_line({"gpu_util_mean": None, "cpu_percent_mean": 97.5, "paused_s": 0.0})
    'Machine CPU use 98% · Paused by the guard 0.0 s'
    """
    return " · ".join(
        f"{label} {figure_text(key, (figures or {}).get(key))}"
        for key, label in FIGURE_LABELS.items()
        if (figures or {}).get(key) is not None
    )


def _values(rows: Iterable[dict[str, Any]], column: str) -> list[float]:
    return [float(row[column]) for row in rows if row.get(column) is not None]


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def run_figures(samples: list[dict[str, Any]], paused_s: float = 0.0) -> dict[str, Any]:
    """The figures of a run from its samples (``core.store.samples.for_job``), see above."""
    gpu_rows = [row for row in samples if row.get("gpu_index") is not None]
    util = _values(gpu_rows, "gpu_util")
    power_at: dict[float, float] = defaultdict(float)
    for row in gpu_rows:
        if row.get("gpu_power_w") is not None:
            power_at[row["ts"]] += float(row["gpu_power_w"])
    temps = _values(gpu_rows, "gpu_temp_c")
    by_time = {row["ts"]: row for row in samples}.values()  # host fields repeat per GPU
    ram = _values(by_time, "ram_used_mb")
    return {
        "gpu_util_mean": _mean(util),
        "gpu_util_above_80_share": sum(v > BUSY_UTIL for v in util) / len(util) if util else None,
        "power_mean_w": _mean(list(power_at.values())),
        "power_peak_w": max(power_at.values()) if power_at else None,
        "temp_peak_c": max(temps) if temps else None,
        "cpu_percent_mean": _mean(_values(by_time, "cpu_percent")),
        "ram_peak_mb": max(ram) if ram else None,
        "paused_s": float(paused_s),
        "samples": len(by_time),
    }


def job_figures(db: Any, job_id: int) -> dict[str, Any]:
    """The figures of a job so far: its samples and the guard's pauses (every attempt)."""
    from core.jobs import queue
    from core.store import samples as sample_rows

    return run_figures(sample_rows.for_job(db, job_id), queue.paused_seconds(db, job_id))
