"""The SQLite store: schema, migrations and the few writes every module shares.

    >>> db = connect(":memory:")
    >>> sorted(t for t in db.table_names() if t in ("scores", "predictions"))
    ['predictions', 'scores']

Every table is created and migrated here, in one place. ``PRAGMA user_version`` holds the
schema version; each entry of ``MIGRATIONS`` moves the store one version up.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from core import paths

BUSY_TIMEOUT_MS = 15_000


def _v1_scores(db: sqlite_utils.Database) -> None:
    db["models"].create(
        {
            "id": str,
            "display_name": str,
            "kind": str,  # "finetuned" (base models live in models_config.yaml)
            "base_model_id": str,
            "method": str,
            "trained_on_task": str,
            "adapter_path": str,
            "params": int,
            "trainable_params": int,
            "license": str,
            "instruct": int,
            "card_json": str,
            "created_at": str,
        },
        pk="id",
    )
    db["scores"].create(
        {
            "id": int,
            "model_id": str,
            "task": str,
            "task_version": int,
            "split": str,
            "split_fingerprint": str,
            "n_items": int,
            "primary_metric": str,
            "primary_value": float,
            "ci_low": float,
            "ci_high": float,
            "metrics_json": str,
            "weights_hash": str,
            "prompt_hash": str,
            "num_shots": int,
            "seed": int,
            "dtype": str,
            "device": str,
            "batch_size": int,
            "item_limit": int,
            "versions_json": str,
            "command": str,
            "latency_p50_ms": float,
            "latency_p95_ms": float,
            "items_per_s": float,
            "seconds": float,
            "job_id": int,
            "created_at": str,
        },
        pk="id",
    )
    db["scores"].create_index(["model_id", "task"])
    db["predictions"].create(
        {
            "score_id": int,
            "item_id": str,
            "position": int,
            "prompt": str,
            "raw_output": str,
            "parsed": str,
            "gold": str,
            "correct": int,
            "latency_ms": float,
        },
        pk=("score_id", "item_id"),
        foreign_keys=[("score_id", "scores", "id")],
    )


def _v2_comparisons(db: sqlite_utils.Database) -> None:
    """Base vs fine-tuned pairs, each pointing at two score rows on the same test items."""
    db["comparisons"].create(
        {
            "id": int,
            "base_model_id": str,
            "finetuned_model_id": str,
            "task": str,
            "base_score_id": int,
            "finetuned_score_id": int,
            "seconds": float,
            "job_id": int,
            "created_at": str,
        },
        pk="id",
    )


def _v3_jobs(db: sqlite_utils.Database) -> None:
    """Background jobs (see core/jobs), their training progress, and monitoring samples.

    ``monitor_samples.ts`` is Unix time in seconds (a float), so energy integrates directly.
    """
    db["jobs"].create(
        {
            "id": int,
            "kind": str,  # "eval" | "train" | "finetune_compare"
            "params_json": str,
            "state": str,  # queued | running | succeeded | failed | cancelled
            "phase": str,
            "progress": float,  # 0..1 within the current phase
            "created_at": str,
            "started_at": str,
            "finished_at": str,
            "heartbeat_at": str,
            "pid": int,
            "log_path": str,
            "run_dir": str,
            "error": str,  # a readable one-line reason when failed
            "result_json": str,
            "cancel_requested": int,
            "resumed_from_job": int,
            "checkpoint": str,
        },
        pk="id",
        not_null={"kind", "params_json", "state", "created_at"},
        defaults={"state": "queued", "progress": 0.0, "cancel_requested": 0},
    )
    db["jobs"].create_index(["state"])
    db["job_progress"].create(
        {
            "id": int,
            "job_id": int,
            "step": int,
            "total_steps": int,
            "epoch": float,
            "train_loss": float,
            "val_loss": float,
            "learning_rate": float,
            "tokens_per_s": float,
            "elapsed_s": float,
            "eta_s": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("job_id", "jobs", "id")],
    )
    db["job_progress"].create_index(["job_id"])
    db["monitor_samples"].create(
        {
            "id": int,
            "ts": float,
            "job_id": int,
            "gpu_index": int,
            "gpu_name": str,
            "gpu_util": float,
            "gpu_mem_used_mb": float,
            "gpu_mem_total_mb": float,
            "gpu_temp_c": float,
            "gpu_power_w": float,
            "cpu_percent": float,
            "ram_used_mb": float,
            "ram_total_mb": float,
        },
        pk="id",
    )
    db["monitor_samples"].create_index(["job_id"])
    db["monitor_samples"].create_index(["ts"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_scores,
    _v2_comparisons,
    _v3_jobs,
]


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the store up to the newest schema; returns the version reached."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with db.conn:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)


def connect(path: str | Path | None = None) -> sqlite_utils.Database:
    """Open (creating and migrating if needed) the store at ``path`` or ``paths.db_path()``."""
    target = paths.db_path() if path is None else path
    if str(target) != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if str(target) != ":memory:":
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA foreign_keys = ON")
    migrate(db)
    return db


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def insert_score(
    db: sqlite_utils.Database, score: dict[str, Any], predictions: Iterable[dict[str, Any]]
) -> int:
    """Store one score row and its per-item predictions atomically; returns the score id."""
    with db.conn:
        score_id = db["scores"].insert(score).last_pk
        rows = [{**p, "score_id": score_id} for p in predictions]
        db["predictions"].insert_all(rows, batch_size=500)
    return int(score_id)
