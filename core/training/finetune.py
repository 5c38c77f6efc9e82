"""Fine-tune a base model on a task and register the result (no evaluation here).

    >>> plan = TrainPlan(base=get_model("smollm2-135m-instruct"), task=get_task("fin_sentiment"),
    ...                  config=preset_config("quick"), new_model_id="smollm2-demo",
    ...                  run_dir=Path("runs/smollm2-demo"))                           # doctest: +SKIP
    >>> entry, result = train_and_register(plan, db)                                  # doctest: +SKIP

A successful run copies the adapter to ``adapters/<model id>/`` with its card, training config
and result, registers the model (with the job that trained it) and removes the run's
checkpoints unless ``keep_checkpoints_after_success`` says to keep them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from core import paths
from core.models.loading import LoadedModel
from core.models.registry import ModelEntry, register_finetuned
from core.store import Database
from core.tasks.spec import TaskSpec
from core.training.card import card_markdown, model_card
from core.training.config import TrainConfig
from core.training.trainer import Trainer, TrainHooks, TrainResult, load_for_training


@dataclass(frozen=True)
class TrainPlan:
    """Everything one fine-tune needs, resolved: the base, the task, the settings, where to write."""

    base: ModelEntry
    task: TaskSpec
    config: TrainConfig
    new_model_id: str
    run_dir: Path
    resume_from: Path | None = None
    job_id: int | None = None
    train_budget_s: float | None = None  # seconds training may take (default: max_minutes)


class FinetuneHooks(TrainHooks, Protocol):
    """The trainer's hooks plus the energy the job has used so far (Wh; None unmeasured)."""

    def energy_wh(self) -> float | None: ...


def new_model_id(base_id: str, task: str, method: str) -> str:
    """A readable id for a new fine-tuned model: base, task, method and a UTC timestamp."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{base_id}-{task}-{method}-{stamp}"


def default_run_dir(model_id: str) -> Path:
    return paths.runs_dir() / model_id


def check_trainable(base: ModelEntry) -> None:
    """ValueError unless ``base`` is a base model (fine-tunes are trained from their base)."""
    if base.is_finetuned:
        raise ValueError(
            f"'{base.id}' is already fine-tuned: choose its base model '{base.base_model_id}'"
        )


def train_and_register(
    plan: TrainPlan,
    db: Database,
    hooks: FinetuneHooks | None = None,
    loaded: LoadedModel | None = None,
) -> tuple[ModelEntry | None, TrainResult]:
    """Train an adapter; on success write its directory and card and register the new model.

    ``loaded``: the base weights from ``load_for_training`` if the caller has them already
    (they are wrapped for training in place). Returns (None, result) when cancelled.
    """
    check_trainable(plan.base)
    loaded = loaded or load_for_training(plan.base, plan.config)
    trainer = Trainer(
        loaded, plan.task, plan.config, plan.run_dir, hooks, budget_s=plan.train_budget_s
    )
    result = trainer.run(resume_from=plan.resume_from)
    if result.status == "cancelled":
        return None, result
    world = trainer.world
    entry = None
    if world.is_main:  # one process writes the adapter folder and the registry entry
        energy = hooks.energy_wh() if hooks is not None and hasattr(hooks, "energy_wh") else None
        figures = getattr(hooks, "resource_figures", None)  # a job's utilisation figures
        entry = register(plan, result, energy, db, figures() if figures else None)
        clean_run_dir(plan)
    return world.share_from_main(entry), result


def register(
    plan: TrainPlan,
    result: TrainResult,
    energy_wh: float | None,
    db: Database,
    resources: dict[str, Any] | None = None,
) -> ModelEntry:
    """Copy the adapter into ``adapters/``, write its card and register the model.

    ``resources``: the run's utilisation figures (``core.analysis.utilisation``), if measured.
    """
    adapter_dir = paths.adapters_dir() / plan.new_model_id
    shutil.rmtree(adapter_dir, ignore_errors=True)
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(result.adapter_dir, adapter_dir)
    card = model_card(plan.base, plan.task, plan.config, result, energy_wh)
    if resources is not None:
        card["resources"] = resources
    (adapter_dir / "README.md").write_text(card_markdown(plan.new_model_id, card))
    (adapter_dir / "training_config.json").write_text(json.dumps(plan.config.to_dict(), indent=2))
    (adapter_dir / "training_result.json").write_text(json.dumps(result.to_dict(), indent=2))
    base = plan.base
    entry = ModelEntry(
        id=plan.new_model_id,
        display_name=f"{base.display_name} + {plan.config.method} ({plan.task.name})",
        source=base.source,
        params=base.params,
        license=base.license,
        instruct=base.instruct,
        kind="finetuned",
        base_model_id=base.id,
        method=plan.config.method,
        trained_on_task=plan.task.name,
        adapter_path=str(adapter_dir),
        trainable_params=result.trainable_params,
        card=card,
        job_id=plan.job_id,
    )
    register_finetuned(db, entry)
    return entry


def clean_run_dir(plan: TrainPlan) -> None:
    """After a success: drop the run's copy of the adapter and, unless kept, its checkpoints."""
    shutil.rmtree(plan.run_dir / "adapter", ignore_errors=True)
    if not plan.config.keep_checkpoints_after_success:
        shutil.rmtree(plan.run_dir / "checkpoints", ignore_errors=True)


def result_summary(entry: ModelEntry, result: TrainResult, energy_wh: Any) -> dict[str, Any]:
    """What a train job stores as its result."""
    return {
        **result.to_dict(),
        "adapter_dir": entry.adapter_path,
        "model_id": entry.id,
        "energy_wh": energy_wh,
    }
