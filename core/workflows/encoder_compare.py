"""Fine-tune an encoder (one head per task) and compare it with the majority-class baseline.

    >>> plan = TrainPlan(base=get_model("minilm-l6"), task=get_task("client_priority"),
    ...                  config=preset_config("encoder"), new_model_id="minilm-demo",
    ...                  run_dir=Path("runs/minilm-demo"))                        # doctest: +SKIP
    >>> out = encoder_finetune_compare(plan, [plan.task], {}, db, Hooks())      # doctest: +SKIP
    >>> out["baseline"], out["improvement_ci"]                                   # doctest: +SKIP
    ('majority class', [0.41, 0.52])

The encoder counterpart of ``core.workflows.finetune_compare``, through the same job kinds,
progress rows, checkpoints, cancel, resume, card and registration. An untrained head answers
at random, so it is no base model to compare with: the baseline is the majority class of each
task's train split (``core.evaluation.encoder.majority_baseline``), scored on the same test
items; the comparison row pairs it with the fine-tuned encoder, and the improvement comes with
a paired bootstrap 95% interval over those items.

After training, the fine-tuned encoder is loaded back from its registered directory (as a
user gets it) and checked: its answers on a few validation texts equal the trained model's
in memory (the saved heads and adapter are complete), and, for LoRA and full fine-tuning, its
sentence vectors differ from the base encoder's (the adapter was applied).
"""

from __future__ import annotations

import dataclasses
import gc
import time
from typing import Any

import torch

from core.analysis.paired import paired_delta_ci
from core.evaluation.encoder import MAJORITY_NAME, evaluate_encoder, majority_baseline
from core.evaluation.runner import EvalOptions
from core.models.encoder import LoadedEncoder, load_encoder, mean_pool, predict, tokenize
from core.models.registry import ModelEntry, get_model, register_finetuned
from core.store import Database
from core.store import comparisons as comparison_rows
from core.store import scores as score_rows
from core.tasks.spec import TaskSpec, load_split
from core.training.encoder import EncoderTrainer, task_heads
from core.training.finetune import TrainPlan, check_trainable, clean_run_dir, register
from core.training.trainer import TrainResult
from core.workflows.hooks import Hooks

PHASES = (
    "loading the base model",
    "scoring the majority-class baseline",
    "training",
    "checking the fine-tuned encoder",
    "evaluating fine-tuned model",
)


class EncoderCheckError(RuntimeError):
    """The registered encoder does not answer as the trained one did, or its adapter did nothing."""


def _probe_texts(specs: list[TaskSpec]) -> list[str]:
    items = load_split(specs[0], "validation").items[:4] or load_split(specs[0], "test").items[:4]
    return [item.fields.get("text", "") for item in items]


@torch.inference_mode()
def sentence_vectors(loaded: LoadedEncoder, texts: list[str]) -> torch.Tensor:
    """The mean-pooled body outputs of ``texts`` (what the heads read)."""
    batch = tokenize(loaded.tokenizer, texts, loaded.device)
    hidden = loaded.model.body(**batch).last_hidden_state
    return mean_pool(hidden, batch["attention_mask"]).float()


def check_encoder(
    trained: dict[str, list[list[float]]],
    reloaded: LoadedEncoder,
    texts: list[str],
    base_vectors: torch.Tensor | None,
) -> float | None:
    """Raise EncoderCheckError unless the reloaded model answers as trained and (LoRA, full)
    its body moved; returns the largest change of a sentence-vector value (None: head only)."""
    for task, expected in trained.items():
        got = predict(reloaded, texts, task)
        gap = max(abs(a - b) for ra, rb in zip(expected, got) for a, b in zip(ra, rb))
        if gap > 1e-3:
            raise EncoderCheckError(
                f"'{reloaded.entry.id}' loaded from {reloaded.entry.adapter_path} answers "
                f"'{task}' differently from the trained model (log-probabilities differ by "
                f"{gap:.2e}): its saved heads or adapter are incomplete. Re-run the training."
            )
    if base_vectors is None:
        return None
    effect = float((sentence_vectors(reloaded, texts) - base_vectors).abs().max())
    if effect < 1e-4:
        raise EncoderCheckError(
            f"The adapter of '{reloaded.entry.id}' does not change the encoder's sentence "
            f"vectors (largest change {effect:.2e}): it was not applied or did not train."
        )
    return effect


def multitask_name(specs: list[TaskSpec]) -> str:
    return "+".join(spec.name for spec in specs)


def register_encoder(
    plan: TrainPlan,
    specs: list[TaskSpec],
    weights: dict[str, float],
    result: TrainResult,
    energy_wh: float | None,
    db: Database,
) -> ModelEntry:
    """Register like an LLM fine-tune (``finetune.register``); a multi-task model names all its
    tasks and their loss weights in its display name and card."""
    entry = register(plan, result, energy_wh, db)
    card = {**entry.card, "tasks": [s.name for s in specs], "task_weights": weights}
    card["model_kind"] = "encoder"
    name = entry.display_name
    if len(specs) > 1:
        name = f"{plan.base.display_name} + {plan.config.method} ({multitask_name(specs)})"
    entry = dataclasses.replace(entry, display_name=name, card=card, model_kind="encoder")
    register_finetuned(db, entry)
    return get_model(entry.id, db)


def train_encoder_and_register(
    plan: TrainPlan,
    specs: list[TaskSpec],
    weights: dict[str, float],
    db: Database,
    hooks: Hooks,
    loaded: LoadedEncoder | None = None,
) -> tuple[ModelEntry | None, TrainResult, LoadedEncoder]:
    """Train the heads (and adapter); on success register the model. (None, result) if cancelled."""
    check_trainable(plan.base)
    loaded = loaded or load_encoder(
        plan.base,
        heads=task_heads(specs),
        dtype=plan.config.dtype,
        seed=plan.config.seed,
        training=True,
    )
    trainer = EncoderTrainer(loaded, specs, weights, plan.config, plan.run_dir, hooks)
    result = trainer.run(resume_from=plan.resume_from)
    if result.status == "cancelled":
        return None, result, loaded
    entry = register_encoder(plan, specs, weights, result, hooks.energy_wh(), db)
    clean_run_dir(plan)
    return entry, result, loaded


def _compare_task(
    db: Database, spec: TaskSpec, baseline: dict[str, Any], tuned: dict[str, Any]
) -> dict[str, Any]:
    rows = score_rows.paired_predictions(db, baseline["score_id"], tuned["score_id"])
    delta = paired_delta_ci([r["base_correct"] for r in rows], [r["tuned_correct"] for r in rows])
    return {
        "task": spec.name,
        "primary_metric": spec.primary_metric,
        "majority_label": baseline["label"],
        "base_score": baseline["score"],
        "base_ci": baseline["ci"],
        "finetuned_score": tuned["score"],
        "finetuned_ci": tuned["ci"],
        "improvement": tuned["score"] - baseline["score"],
        "improvement_ci": delta["ci"],
        "macro_f1": tuned["metrics"].get("macro_f1", {}).get("value"),
        "latency_p50_ms": tuned["latency_p50_ms"],
        "latency_p95_ms": tuned["latency_p95_ms"],
        "items_per_s": tuned["items_per_s"],
        "n_items": tuned["n_items"],
        "split_fingerprint": tuned["split_fingerprint"],
    }


def encoder_finetune_compare(
    plan: TrainPlan,
    specs: list[TaskSpec],
    weights: dict[str, float],
    db: Database,
    hooks: Hooks | None = None,
) -> dict[str, Any]:
    """Majority baseline, fine-tune, check, fine-tuned score per task, stored as pairs."""
    hooks = hooks or Hooks()
    start = time.perf_counter()
    hooks.phase(PHASES[0])
    loaded = load_encoder(
        plan.base,
        heads=task_heads(specs),
        dtype=plan.config.dtype,
        seed=plan.config.seed,
        training=True,
    )
    texts = _probe_texts(specs)
    base_vectors = sentence_vectors(loaded, texts) if plan.config.method != "head" else None
    hooks.phase(PHASES[1])
    baselines = {spec.name: majority_baseline(spec, db=db, job_id=plan.job_id) for spec in specs}
    hooks.phase(PHASES[2])
    entry, result, trained = train_encoder_and_register(plan, specs, weights, db, hooks, loaded)
    if entry is None:
        return {"status": "cancelled", "checkpoint": result.checkpoint}
    trained_answers = {spec.name: predict(trained, texts, spec.name) for spec in specs}
    device, trained_dtype = trained.device, trained.dtype
    del trained, loaded  # one model in memory at a time
    gc.collect()
    hooks.phase(PHASES[3])
    # the check reloads in the dtype it trained in (answers equal to 1e-3); the scores use the
    # dtype a user's requests get (bf16 where native): a small model, loaded twice in a second
    reloaded = load_encoder(entry, device=device, dtype=trained_dtype)
    effect = check_encoder(trained_answers, reloaded, texts, base_vectors)
    del reloaded
    tuned = load_encoder(entry, device=device, dtype=plan.config.dtype)
    hooks.phase(PHASES[4])
    tasks = []
    for spec in specs:
        score = evaluate_encoder(
            tuned, spec, db=db, options=EvalOptions(), progress=hooks.eval_progress
        )
        comparison_rows.insert(
            db,
            base_model_id=baselines[spec.name]["model"],
            finetuned_model_id=entry.id,
            task=spec.name,
            base_score_id=baselines[spec.name]["score_id"],
            finetuned_score_id=score["score_id"],
            seconds=time.perf_counter() - start,
            job_id=plan.job_id,
        )
        tasks.append(_compare_task(db, spec, baselines[spec.name], score))
    first = tasks[0]
    return {
        **first,
        "status": result.status,
        "model_kind": "encoder",
        "baseline": "majority class",
        "base_model": baselines[specs[0].name]["model"],
        "base_model_name": MAJORITY_NAME,
        "encoder": plan.base.id,
        "finetuned_model": entry.id,
        "method": plan.config.method,
        "tasks": tasks,
        "adapter_effect": effect,
        **result.cost_figures(),
        "seconds": time.perf_counter() - start,
    }
