"""The demo: fill the leaderboard with real runs, all actually computed.

    >>> job_ids = submit_demo(db)          # doctest: +SKIP

Queues, on the durable job queue: every embedded model on every built-in task, then one quick
LoRA fine-tune of the default model on ``fin_sentiment`` with its comparison. A worker runs
them in order; ``finboard demo`` follows them with progress bars, the app shows them live.
"""

from __future__ import annotations

from core.jobs import queue
from core.models import registry
from core.store import Database
from core.tasks.spec import list_tasks

DEMO_TASK = "fin_sentiment"
DEMO_PRESET = "quick"


def demo_plan() -> list[tuple[str, dict]]:
    """(kind, params) of every demo job, in the order they run."""
    builtin = [spec.name for spec in list_tasks() if spec.in_default_suite]
    plan: list[tuple[str, dict]] = [
        ("eval", {"model_id": entry.id, "tasks": builtin})
        for entry in registry.base_models()
        if entry.source.kind == "gguf_package"
    ]
    plan.append(
        (
            "finetune_compare",
            {
                "model_id": registry.default_model_id(),
                "task": DEMO_TASK,
                "method": "lora",
                "preset": DEMO_PRESET,
            },
        )
    )
    return plan


def submit_demo(db: Database) -> list[int]:
    """Queue the demo jobs (each validated first); returns their ids."""
    return [queue.submit(db, kind, params) for kind, params in demo_plan()]
