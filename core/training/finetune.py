"""Fine-tune a base model on a task and register the result; fine-tune-and-compare in one call.

    >>> out = finetune_compare("smollm2-135m-instruct", "fin_sentiment", preset_config("quick"))  # doctest: +SKIP
    >>> out["base_score"], out["finetuned_score"]                                                   # doctest: +SKIP

``finetune_compare`` evaluates the base (reusing a stored score of the same weights, task
version and test split), trains, checks that the adapter really changes the model's outputs,
evaluates the fine-tuned model on exactly the same test items, and stores the pair.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from core import paths, store
from core.evaluation.runner import EvalOptions, evaluate
from core.models import LoadedModel, attach_adapter, load_model, weights_hash
from core.registry import ModelEntry, get_model, register_finetuned
from core.tasks import TaskSpec, get_task, load_split
from core.training.config import TrainConfig
from core.training.trainer import ProgressFn, Trainer, TrainResult

PhaseFn = Callable[[str], None]


class AdapterNotAppliedError(RuntimeError):
    """The fine-tuned model gives the same outputs as its base: the adapter did nothing."""


def new_model_id(base_id: str, task: str, method: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{base_id}-{task}-{method}-{stamp}"


def default_run_dir(model_id: str) -> Path:
    return paths.runs_dir() / model_id


def model_card(
    entry: ModelEntry,
    spec: TaskSpec,
    config: TrainConfig,
    result: TrainResult,
    energy_wh: float | None,
) -> dict[str, Any]:
    train = load_split(spec, "train")
    return {
        "base_model": entry.id,
        "base_model_name": entry.display_name,
        "method": config.method,
        "task": spec.name,
        "task_version": spec.version,
        "train_fingerprint": train.fingerprint,
        "train_examples": config.max_train_examples or len(train),
        "hyperparameters": config.to_dict(),
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
        "peak_memory_mb": result.peak_memory_mb,
        "tokens_per_s": result.tokens_per_s,
        "train_tokens": result.train_tokens,
        "steps": result.steps,
        "final_train_loss": result.final_train_loss,
        "final_val_loss": result.final_val_loss,
        "best_val_loss": result.best_val_loss,
        "status": result.status,
        "device": result.device,
        "dtype": result.dtype,
        "energy_wh": energy_wh,
        "notes": result.notes,
    }


def _card_markdown(model_id: str, card: dict[str, Any]) -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "not measured (no NVIDIA GPU)" if value is None else str(value)

    energy = card["energy_wh"]
    lines = [
        f"# {model_id}",
        "",
        f"A {card['method']} adapter for **{card['base_model_name']}** (`{card['base_model']}`), "
        f"trained on task `{card['task']}` v{card['task_version']} by the LLM Finance Leaderboard.",
        "",
        "| | |",
        "|---|---|",
        f"| Training data | {card['train_examples']} examples, split fingerprint `{card['train_fingerprint'][:16]}` |",
        f"| Trainable / total parameters | {card['trainable_params']:,} / {card['total_params']:,} ({100 * card['trainable_params'] / max(1, card['total_params']):.2f}%) |",
        f"| Steps | {card['steps']} ({card['status']}) |",
        f"| Training time | {card['train_seconds']:.1f} s ({card['wall_seconds']:.1f} s wall) on {card['device']} ({card['dtype']}) |",
        f"| Throughput | {card['tokens_per_s']:.0f} tokens/s |",
        f"| Peak memory | {card['peak_memory_mb']:.0f} MB |",
        f"| Final train / validation loss | {fmt(card['final_train_loss'])} / {fmt(card['final_val_loss'])} (best {fmt(card['best_val_loss'])}) |",
        f"| Energy | {fmt(energy) + ' Wh' if energy is not None else fmt(None)} |",
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(card["hyperparameters"], indent=2),
        "```",
    ]
    return "\n".join(lines) + "\n"


def finetune(
    model_id: str,
    task_name: str,
    config: TrainConfig,
    *,
    db: sqlite_utils.Database,
    run_dir: Path | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_from: Path | None = None,
    energy_wh: Callable[[], float | None] | None = None,
    new_id: str | None = None,
) -> tuple[ModelEntry | None, TrainResult]:
    """Train an adapter; on success write its directory and card and register the new model."""
    entry = get_model(model_id, db)
    if entry.is_finetuned:
        raise ValueError(
            f"'{model_id}' is already fine-tuned: choose its base model '{entry.base_model_id}'"
        )
    spec = get_task(task_name)
    new_id = new_id or new_model_id(entry.id, spec.name, config.method)
    run_dir = Path(run_dir or default_run_dir(new_id))
    trainer = Trainer(entry, spec, config, run_dir, progress=progress, should_stop=should_stop)
    result = trainer.run(resume_from=resume_from)
    if result.status == "cancelled":
        return None, result
    adapter_dir = paths.adapters_dir() / new_id
    shutil.rmtree(adapter_dir, ignore_errors=True)
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(result.adapter_dir, adapter_dir)
    card = model_card(entry, spec, config, result, energy_wh() if energy_wh else None)
    (adapter_dir / "README.md").write_text(_card_markdown(new_id, card))
    (adapter_dir / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    (adapter_dir / "training_result.json").write_text(json.dumps(result.to_dict(), indent=2))
    finetuned = ModelEntry(
        id=new_id,
        display_name=f"{entry.display_name} + {config.method} ({spec.name})",
        source=entry.source,
        params=entry.params,
        license=entry.license,
        instruct=entry.instruct,
        kind="finetuned",
        base_model_id=entry.id,
        method=config.method,
        trained_on_task=spec.name,
        adapter_path=str(adapter_dir),
        trainable_params=result.trainable_params,
        card=card,
    )
    register_finetuned(db, finetuned)
    return finetuned, result


def _probe_tokens(tokenizer: Any) -> list[str]:
    """A few dozen short single-token continuations to compare next-token distributions on."""
    texts = [tokenizer.decode([i]) for i in range(min(400, len(tokenizer)))]
    return [
        t for t in texts if t.strip() and len(tokenizer(t, add_special_tokens=False).input_ids) == 1
    ][:50]


def load_and_verify(
    base_entry: ModelEntry, tuned_entry: ModelEntry, spec: TaskSpec, tolerance: float = 1e-3
) -> tuple[LoadedModel, float]:
    """Load the base once, attach the adapter, and check it changes the outputs.

    Returns the fine-tuned model ready for evaluation and the largest change of a next-token
    log-probability on a few validation prompts. Raises AdapterNotAppliedError when nothing
    changed: the adapter was not applied or did not train (a known failure of other tools).
    """
    from core.evaluation.hf import HFLanguageModel
    from core.prompts import render

    loaded = load_model(base_entry)
    items = load_split(spec, "validation").items[:3] or load_split(spec, "test").items[:3]
    prompts = [render(spec, item, loaded.tokenizer, base_entry.instruct).prompt for item in items]
    probes = _probe_tokens(loaded.tokenizer)
    before = HFLanguageModel(loaded.model, loaded.tokenizer, loaded.device).choice_logprobs(
        prompts, probes
    )
    model, prefix_embeds = attach_adapter(
        tuned_entry, loaded.model, merge=not getattr(loaded.model, "is_loaded_in_4bit", False)
    )
    model.eval()
    after = HFLanguageModel(
        model, loaded.tokenizer, loaded.device, prefix_embeds=prefix_embeds
    ).choice_logprobs(prompts, probes)
    effect = max(abs(x - y) for row_a, row_b in zip(before, after) for x, y in zip(row_a, row_b))
    if effect < tolerance:
        raise AdapterNotAppliedError(
            f"The adapter of '{tuned_entry.id}' does not change the model's outputs (largest "
            f"log-probability change {effect:.2e}): it was not applied or did not train. "
            "Check the adapter directory and the training log."
        )
    tuned = LoadedModel(
        entry=tuned_entry, model=model, tokenizer=loaded.tokenizer, device=loaded.device, dtype=loaded.dtype,
        weights_hash=weights_hash(tuned_entry), prefix_embeds=prefix_embeds,
    )  # fmt: skip
    return tuned, effect


def stored_base_score(
    db: sqlite_utils.Database, entry: ModelEntry, spec: TaskSpec
) -> dict[str, Any] | None:
    """The newest full test-split score of the same weights, task version and split fingerprint."""
    fingerprint = load_split(spec, "test").fingerprint
    rows = list(
        db.query(
            "select * from scores where model_id = ? and task = ? and task_version = ? and split = 'test' "
            "and split_fingerprint = ? and weights_hash = ? and prompt_hash = ? and item_limit is null "
            "order by id desc limit 1",
            [entry.id, spec.name, spec.version, fingerprint, weights_hash(entry), spec.prompt_hash],
        )
    )
    return rows[0] if rows else None


def finetune_compare(
    model_id: str,
    task_name: str,
    config: TrainConfig,
    *,
    db: sqlite_utils.Database | None = None,
    progress: ProgressFn | None = None,
    phase: PhaseFn | None = None,
    eval_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    run_dir: Path | None = None,
    resume_from: Path | None = None,
    energy_wh: Callable[[], float | None] | None = None,
    job_id: int | None = None,
    new_id: str | None = None,
) -> dict[str, Any]:
    """Base score, fine-tune, verify the adapter, fine-tuned score on the same items; stored as a pair."""
    database = db if db is not None else store.connect()
    phase = phase or (lambda name: None)
    start = time.perf_counter()
    entry = get_model(model_id, database)
    spec = get_task(task_name)
    phase("evaluating base model")
    base_row = stored_base_score(database, entry, spec)
    if base_row is None:
        base_result = evaluate(
            entry.id,
            spec.name,
            options=EvalOptions(),
            db=database,
            progress=eval_progress,
            job_id=job_id,
        )
        base_score_id, base_score, base_ci = (
            base_result["score_id"],
            base_result["score"],
            base_result["ci"],
        )
    else:
        base_score_id, base_score, base_ci = (
            base_row["id"],
            base_row["primary_value"],
            [base_row["ci_low"], base_row["ci_high"]],
        )
    phase("training")
    tuned, result = finetune(
        entry.id, spec.name, config, db=database, run_dir=run_dir, progress=progress,
        should_stop=should_stop, resume_from=resume_from, energy_wh=energy_wh, new_id=new_id,
    )  # fmt: skip
    if tuned is None:
        return {"status": "cancelled", "checkpoint": result.checkpoint, "base_score": base_score}
    phase("checking the adapter")
    tuned_loaded, effect = load_and_verify(entry, tuned, spec)
    phase("evaluating fine-tuned model")
    tuned_result = evaluate(
        tuned.id,
        spec.name,
        options=EvalOptions(),
        db=database,
        progress=eval_progress,
        job_id=job_id,
        loaded=tuned_loaded,
    )
    seconds = time.perf_counter() - start
    database["comparisons"].insert(
        {"base_model_id": entry.id, "finetuned_model_id": tuned.id, "task": spec.name, "base_score_id": base_score_id,
         "finetuned_score_id": tuned_result["score_id"], "seconds": seconds, "job_id": job_id, "created_at": store.now_iso()}
    )  # fmt: skip
    return {
        "status": result.status,
        "task": spec.name,
        "primary_metric": spec.primary_metric,
        "base_model": entry.id,
        "finetuned_model": tuned.id,
        "base_score": base_score,
        "base_ci": base_ci,
        "finetuned_score": tuned_result["score"],
        "finetuned_ci": tuned_result["ci"],
        "improvement": tuned_result["score"] - base_score,
        "split_fingerprint": tuned_result["split_fingerprint"],
        "adapter_effect": effect,
        "train_seconds": result.train_seconds,
        "tokens_per_s": result.tokens_per_s,
        "peak_memory_mb": result.peak_memory_mb,
        "seconds": seconds,
    }
