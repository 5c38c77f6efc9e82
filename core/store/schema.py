"""The store's schema: every table, created and migrated here, in one ordered list.

``PRAGMA user_version`` holds the schema version; each entry of ``MIGRATIONS`` moves the
store one version up. ``migrate`` runs them inside ``BEGIN IMMEDIATE``, so several processes
opening a fresh store at once take turns instead of creating the same table twice.

    >>> import sqlite_utils
    >>> db = sqlite_utils.Database(memory=True)
    >>> migrate(db) == len(MIGRATIONS)
    True
    >>> sorted(t for t in db.table_names() if t in ("scores", "predictions"))
    ['predictions', 'scores']
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


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


def _v4_model_jobs(db: sqlite_utils.Database) -> None:
    """A fine-tuned model's row records the job that trained it (found once from its params)."""
    db["models"].add_column("job_id", int)
    db.execute(
        "update models set job_id = (select max(jobs.id) from jobs where jobs.state = 'succeeded' "
        "and json_valid(jobs.params_json) "
        "and json_extract(jobs.params_json, '$.new_model_id') = models.id)"
    )


def _v5_model_reservations(db: sqlite_utils.Database) -> None:
    """Fine-tuned model ids, reserved by the job that will train them: unique by construction."""
    db["model_reservations"].create(
        {"model_id": str, "job_id": int, "created_at": str}, pk="model_id"
    )
    db.execute(
        "insert or ignore into model_reservations (model_id, job_id, created_at) "
        "select json_extract(params_json, '$.new_model_id'), min(id), min(created_at) from jobs "
        "where json_valid(params_json) and json_extract(params_json, '$.new_model_id') is not null "
        "group by json_extract(params_json, '$.new_model_id')"
    )


def _v6_progress_and_calibration(db: sqlite_utils.Database) -> None:
    """A job's whole-job ETA and phase plan; a calibrated item's calibrated label scores."""
    db["jobs"].add_column("eta_s", float)
    db["jobs"].add_column("plan_json", str)
    db["predictions"].add_column("calibrated", str)


def _v7_process_identity(db: sqlite_utils.Database) -> None:
    """A running job's process start time: a pid alone may belong to another program later."""
    db["jobs"].add_column("pid_started", float)


def _v8_job_devices(db: sqlite_utils.Database) -> None:
    """What a job was given to run on ("cuda:0,1", "cpu", "cpu x2"): several jobs share the
    machine's GPUs, and a job still running from a stopped worker holds the ones recorded."""
    db["jobs"].add_column("devices", str)


def _v9_guard_and_retries(db: sqlite_utils.Database) -> None:
    """The resource guard's events of a job (pauses, resumes, shrinks, with their seconds) and
    a job's attempts: an out-of-memory retry keeps the job's id, queued again at ``retry_at``
    (Unix time) with its history in ``attempts_json``."""
    db["jobs"].add_column("attempts_json", str)
    db["jobs"].add_column("retry_at", float)
    db["job_events"].create(
        {
            "id": int,
            "job_id": int,
            "ts": float,
            "kind": str,  # pause | resume | shrink | retry
            "message": str,
            "seconds": float,  # a resume: how long the pause lasted
        },
        pk="id",
        foreign_keys=[("job_id", "jobs", "id")],
    )
    db["job_events"].create_index(["job_id"])


def _v10_score_slices(db: sqlite_utils.Database) -> None:
    """A score's metrics per robustness slice, its gaps and verdicts (core/analysis/slices)."""
    db["scores"].add_column("slices_json", str)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1_scores,
    _v2_comparisons,
    _v3_jobs,
    _v4_model_jobs,
    _v5_model_reservations,
    _v6_progress_and_calibration,
    _v7_process_identity,
    _v8_job_devices,
    _v9_guard_and_retries,
    _v10_score_slices,
]


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the store up to the newest schema; returns the version reached.

    The version is read again inside an immediate (write-locking) transaction, so a second
    process that opened the same fresh file waits for the first and then finds nothing to do.
    """
    if db.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
        return len(MIGRATIONS)
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
