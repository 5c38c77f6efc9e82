"""Monitoring samples (GPU / CPU / RAM readings), tagged with the job that was running.

``ts`` is Unix time in seconds (a float), so energy integrates directly.

    >>> from core.store import connect
    >>> db = connect(":memory:")
    >>> insert(db, [{"ts": 1.0, "job_id": 3, "gpu_index": 0, "gpu_power_w": 100.0},
    ...             {"ts": 3.0, "job_id": 3, "gpu_index": 0, "gpu_power_w": 120.0}])
    2
    >>> power_readings(db, 3)
    [(0, 1.0, 100.0), (0, 3.0, 120.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.store import Database


def insert(db: Database, rows: Sequence[dict[str, Any]]) -> int:
    """Store monitoring samples; returns how many."""
    with db.conn:
        db["monitor_samples"].insert_all(rows)
    return len(rows)


def since(db: Database, ts: float) -> list[dict[str, Any]]:
    """Every sample taken at or after ``ts``, oldest first."""
    return list(db.query("select * from monitor_samples where ts >= ? order by ts", [ts]))


def for_job(db: Database, job_id: int) -> list[dict[str, Any]]:
    """Every sample taken while ``job_id`` ran, oldest first."""
    return list(db.query("select * from monitor_samples where job_id = ? order by ts", [job_id]))


def power_readings(db: Database, job_id: int) -> list[tuple[int, float, float]]:
    """(gpu index, ts, watts) of a job's samples that carry a power reading, by GPU then time."""
    rows = db.execute(
        "select gpu_index, ts, gpu_power_w from monitor_samples where job_id = ? "
        "and gpu_power_w is not null and ts is not null order by gpu_index, ts",
        [job_id],
    ).fetchall()
    return [tuple(row) for row in rows]


def latest_for_job(db: Database, job_id: int, newest: int = 64) -> list[dict[str, Any]]:
    """The newest sample of each GPU (one row without a GPU) taken while ``job_id`` ran.

    Read from the job's ``newest`` rows only (the index walked backwards), so a check between
    two optimizer steps costs the same after hours of samples; a sampling round writes one row
    per GPU, so up to ``newest`` GPUs are covered.
    """
    rows = db.query(
        "select * from monitor_samples where job_id = ? order by id desc limit ?", [job_id, newest]
    )
    latest: dict[Any, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["gpu_index"], row)
    return sorted(
        latest.values(), key=lambda row: (row["gpu_index"] is None, row["gpu_index"] or 0)
    )
