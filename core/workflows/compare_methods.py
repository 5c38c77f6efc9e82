"""Compare methods: LoRA, QLoRA and prompt tuning trained on the same data with the same
budget, one queued job each, side by side in one table and one chart of training curves.

    >>> group, job_ids = submit_comparison(db, "smollm2-135m-instruct", "fin_sentiment",
    ...                                    ["lora", "qlora", "prompt-tuning"], "quick")  # doctest: +SKIP
    >>> rows = methods_table(db, group)                                            # doctest: +SKIP

Each job (kind ``method_run``) trains one method, registers the model, scores it on the task's
test split and records what the table shows: trainable parameters (and percent of all),
training time, tokens/s, peak memory, adapter size on disk, final train and validation loss,
the task metric, inference speed, and for QLoRA the measured memory report
(``core.training.memory_report``). The same budget: every job gets the same preset and
settings (examples, epochs, batch size, sequence length, seed); only the method changes, plus
prompt tuning's own learning rate (from its preset) unless one is set explicitly, since
virtual tokens need a learning rate ~30x LoRA's to move at all.
"""

from __future__ import annotations

import gc
import uuid
from pathlib import Path
from typing import Any

from core.store import Database

KIND = "method_run"
METHODS = ("lora", "qlora", "prompt-tuning")
PHASES = ("loading the base model", "training", "evaluating fine-tuned model")


def method_overrides(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings of one method's job: the shared ones, the method, prompt tuning's lr."""
    from core.training.config import preset_config

    chosen = {**overrides, "method": method}
    if method == "prompt-tuning" and "learning_rate" not in overrides:
        chosen["learning_rate"] = preset_config("prompt-tuning").learning_rate
    return chosen


def submit_comparison(
    db: Database,
    model_id: str,
    task: str,
    methods: list[str],
    preset: str | None = "quick",
    overrides: dict[str, Any] | None = None,
) -> tuple[str, list[int]]:
    """Queue one ``method_run`` job per method (all checked first); returns (group, job ids)."""
    from core.jobs import queue

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Methods must be some of {', '.join(METHODS)}, not {unknown or methods}")
    group = uuid.uuid4().hex[:12]
    requests = [
        {
            "model_id": model_id,
            "task": task,
            "preset": preset,
            "overrides": method_overrides(method, overrides or {}),
            "compare_group": group,
        }
        for method in dict.fromkeys(methods)
    ]
    for request in requests:  # every request is checked before any job is written
        queue.validate(db, KIND, request)
    return group, [queue.submit(db, KIND, request) for request in requests]


# ---------------------------------------------------------------- the job kind


def validate_method_run(db: Database, params: dict[str, Any]) -> dict[str, Any]:
    """A training request plus the comparison it belongs to."""
    from core.jobs.kinds import JobError, validate_training

    group = params.get("compare_group")
    if not isinstance(group, str) or not group:
        raise JobError("A method-comparison run needs its comparison group")
    stored = validate_training(db, {k: v for k, v in params.items() if k != "compare_group"})
    return {**stored, "compare_group": group}


def adapter_bytes(adapter_dir: str | Path) -> int:
    """The adapter weights on disk (``adapter_model.*``), in bytes."""
    return sum(p.stat().st_size for p in Path(adapter_dir).glob("adapter_model.*"))


def run_method(ctx: Any) -> dict[str, Any]:
    """Train one method, register it, score it on the test split, measure what the table shows."""
    from core.evaluation.runner import EvalOptions, evaluate
    from core.jobs.kinds import JobCancelled, train_plan
    from core.models.loading import load_model
    from core.training.finetune import train_and_register
    from core.training.trainer import load_for_training

    plan = train_plan(ctx)
    ctx.phase(PHASES[0])
    loaded = load_for_training(plan.base, plan.config)
    device = loaded.device
    ctx.phase(PHASES[1])
    entry, result = train_and_register(plan, ctx.db, ctx, loaded=loaded)
    if entry is None:
        raise JobCancelled(result.checkpoint)
    del loaded
    gc.collect()
    memory = None
    if plan.config.method == "qlora":
        from core.training.memory_report import qlora_report

        memory = qlora_report(plan.base.id, device, plan.config.dtype, result.peak_memory_mb)
    ctx.phase(PHASES[2])
    tuned = load_model(entry, device=device)  # as users get it: full-precision base + adapter
    score = evaluate(
        tuned,
        plan.task,
        db=ctx.db,
        options=EvalOptions(),
        progress=ctx.eval_progress,
        job_id=ctx.job_id,
    )
    return {
        "method": plan.config.method,
        "model_id": entry.id,
        "task": plan.task.name,
        "learning_rate": plan.config.learning_rate,
        **result.cost_figures(),
        "adapter_bytes": adapter_bytes(entry.adapter_path),
        "final_train_loss": result.final_train_loss,
        "final_val_loss": result.final_val_loss,
        "metric": score["primary_metric"],
        "score": score["score"],
        "ci": score["ci"],
        "score_id": score["score_id"],
        "items_per_s": score["items_per_s"],
        "latency_p50_ms": score["latency_p50_ms"],
        "device": result.device,
        "dtype": result.dtype,
        "memory_report": memory,
        "energy_wh": ctx.energy_wh(),
    }


# ---------------------------------------------------------------- the table and the curves


def group_jobs(db: Database, group: str | None = None) -> list[dict[str, Any]]:
    """The jobs of one comparison (default: the newest), oldest first."""
    from core.jobs import queue

    runs = [j for j in queue.list_jobs(db, limit=500) if j["kind"] == KIND]
    if not runs:
        return []
    group = group or runs[0]["params"].get("compare_group")
    return sorted((j for j in runs if j["params"].get("compare_group") == group), key=_job_id)


def _job_id(job: dict[str, Any]) -> int:
    return int(job["id"])


def group_labels(db: Database) -> dict[str, str]:
    """Every comparison group, newest first, with a label people tell it apart by: base, task,
    methods and when it was queued (one read of the jobs for all of them)."""
    from core.jobs import queue
    from core.training.config import method_label

    by_group: dict[str, list[dict[str, Any]]] = {}
    for job in queue.list_jobs(db, limit=500):  # newest first
        if job["kind"] == KIND and job["params"].get("compare_group"):
            by_group.setdefault(job["params"]["compare_group"], []).append(job)
    labels = {}
    for group, jobs in by_group.items():
        jobs.sort(key=_job_id)
        methods = ", ".join(
            method_label((j["params"].get("config") or {}).get("method")) for j in jobs
        )
        first = jobs[0]
        when = str(first.get("created_at") or "")[:16]
        labels[group] = (
            f"{first['params'].get('model_id')} on {first['params'].get('task')} · {methods} · {when}"
        )
    return labels


def methods_table(db: Database, group: str | None = None) -> list[dict[str, Any]]:
    """One row per method of the comparison: its job's state and (when done) its figures."""
    rows = []
    for job in group_jobs(db, group):
        config = job["params"].get("config") or {}
        row = {"job_id": job["id"], "state": job["state"], "method": config.get("method")}
        if job["state"] == "succeeded" and isinstance(job.get("result"), dict):
            row.update(job["result"])
        elif job["state"] == "failed":
            row["error"] = job.get("error")
        rows.append(row)
    return rows


def curves(db: Database, group: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Method -> its training curve (train / validation loss by step)."""
    from core.jobs import queue

    found = {}
    for job in group_jobs(db, group):
        method = (job["params"].get("config") or {}).get("method") or f"job {job['id']}"
        found[method] = queue.training_curve(db, job["id"])
    return found


TABLE_HEADERS = [
    *("method", "state", "trainable", "% of all", "train time", "tokens/s", "peak memory"),
    *("adapter", "train loss", "val loss", "test metric", "items/s", "4-bit base saving"),
]


def text_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The table as text (CLI and page)."""
    from core import format as fmt
    from core.training.config import method_label

    def number(value: Any, pattern: str) -> str:
        return fmt.MISSING if value is None else pattern.format(value)

    out = []
    for row in rows:
        memory = row.get("memory_report") or {}
        saving = memory.get("reduction_percent")
        out.append(
            [
                method_label(row.get("method")),
                row["state"],
                fmt.fmt_params(row.get("trainable_params")),
                number(row.get("trainable_percent"), "{:.3f}%"),
                fmt.fmt_duration(row.get("train_seconds")),
                number(row.get("tokens_per_s"), "{:,.0f}"),
                fmt.fmt_mb(row.get("peak_memory_mb")),
                adapter_size(row.get("adapter_bytes")),
                number(row.get("final_train_loss"), "{:.3f}"),
                number(row.get("final_val_loss"), "{:.3f}"),
                number(row.get("score"), "{:.3f}")
                + (f" {row['metric']}" if "metric" in row else ""),
                number(row.get("items_per_s"), "{:.1f}"),
                number(saving, "{:.1f}%") if row.get("method") == "qlora" else "",
            ]
        )
    return out


def adapter_size(size: int | None) -> str:
    """Bytes on disk as KiB below a MiB (a prompt's few virtual tokens), MiB above."""
    from core import format as fmt

    if not size:
        return fmt.MISSING
    return f"{size / 2**10:,.0f} KiB" if size < 2**20 else f"{size / 2**20:,.1f} MiB"
