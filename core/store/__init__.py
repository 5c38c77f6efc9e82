"""The SQLite store: open it, and the only place that writes SQL.

    >>> db = connect(":memory:")
    >>> from core.store import scores
    >>> scores.latest_id(db)
    0

One module per table family reads and writes its tables: ``scores`` (scores and per-item
predictions), ``comparisons``, ``models`` (fine-tuned models), ``samples`` (monitoring). The
jobs tables belong to ``core.jobs.queue``. ``schema`` creates and migrates every table.
Everything else calls these functions and never writes SQL itself.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from core import paths
from core.store.schema import migrate

Database = sqlite_utils.Database  # the connection type every store function takes
BUSY_TIMEOUT_MS = 15_000


class StoreError(Exception):
    """A store file that cannot be used (not SQLite, unreadable); the message says which."""


def connect(path: str | Path | None = None) -> Database:
    """Open (creating and migrating if needed) the store at ``path`` or ``paths.db_path()``."""
    target = paths.db_path() if path is None else path
    if str(target) != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(target) != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "locked" in str(exc):
            raise
        raise StoreError(
            f"{target} is not a usable SQLite store ({exc}). Point --db / FINBOARD_DB at "
            "a leaderboard store, or at a new file name to create one."
        ) from exc
    return db


def file_of(db: Database) -> str | None:
    """The file behind ``db`` (None for an in-memory store)."""
    for _, name, path in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return path or None
    return None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (at any depth) replaced by None.

    >>> finite({"ci": [float("nan"), 0.5], "n": 3})
    {'ci': [None, 0.5], 'n': 3}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def to_json(value: Any) -> str:
    """Strict JSON for a stored column: a value that is not a finite number is written as null.

    SQLite's JSON functions reject ``NaN`` and ``Infinity``, so one such value in a column
    would break every query that reads it; requests with such numbers are refused before they
    get here (``core.training.config``), and an undefined metric is stored as null.

    >>> to_json({"b": 1, "a": [1.5], "mae": float("nan")})
    '{"a": [1.5], "b": 1, "mae": null}'
    """
    return json.dumps(finite(value), sort_keys=True, default=str, allow_nan=False)
