"""Fine-tune and compare: base score, fine-tune, adapter check, fine-tuned score, stored as a pair.

    >>> plan = TrainPlan(base=get_model("smollm2-135m-instruct"), task=get_task("fin_sentiment"),
    ...                  config=preset_config("quick"), new_model_id="smollm2-demo",
    ...                  run_dir=Path("runs/smollm2-demo"))                    # doctest: +SKIP
    >>> out = finetune_compare(plan, db, Hooks())                              # doctest: +SKIP
    >>> out["base_score"], out["finetuned_score"]                              # doctest: +SKIP

One model is in memory at a time, and the base weights are loaded at most twice:

1. the base, as training needs it (``load_for_training``): LoRA and prompt tuning score the
   base with these very weights first (unless a score of the same weights, task version,
   prompt and test items is stored already), then train on them;
2. the fine-tuned model as users get it (base + the saved adapter, merged), for the adapter
   check and the fine-tuned score.

QLoRA trains on a 4-bit base, which is not the base a user would score: there the second
load (full precision) scores the base first, then takes the adapter.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import time
from collections.abc import Callable
from typing import Any

from core import parallel
from core.analysis import estimates
from core.analysis.gains import gain_summary
from core.data.finance_corpus import corpus_tasks, is_corpus
from core.evaluation.hf import HFLanguageModel
from core.evaluation.runner import EvalOptions, evaluate
from core.models import loading
from core.models.loading import LoadedModel
from core.models.registry import ModelEntry
from core.store import Database
from core.store import comparisons as comparison_rows
from core.store import scores as score_rows
from core.tasks.prompts import render
from core.tasks.spec import TaskSpec, get_task, list_tasks, load_split
from core.training.config import TrainConfig
from core.training.finetune import TrainPlan, train_and_register
from core.training.trainer import load_for_training
from core.workflows.hooks import Hooks

PHASES = (
    "loading the base model",
    "evaluating base model",
    "training",
    "checking the adapter",
    "evaluating fine-tuned model",
)


def phase_order(method: str) -> list[str]:
    """The phases in the order the recipe runs them: QLoRA scores its base after training."""
    if method == "qlora":
        return [PHASES[0], PHASES[2], PHASES[1], PHASES[3], PHASES[4]]
    return list(PHASES)


class AdapterNotAppliedError(RuntimeError):
    """The fine-tuned model gives the same outputs as its base: the adapter did nothing."""


# ---------------------------------------------------------------- the adapter check


class AdapterProbe:
    """Next-token log-probabilities on a few validation prompts, to see an adapter's effect."""

    def __init__(self, spec: TaskSpec, loaded: LoadedModel) -> None:
        items = load_split(spec, "validation").items[:3] or load_split(spec, "test").items[:3]
        instruct = loaded.entry.instruct
        self.prompts = [render(spec, item, loaded.tokenizer, instruct).prompt for item in items]
        self.tokens = _probe_tokens(loaded.tokenizer)

    def logprobs(self, loaded: LoadedModel) -> list[list[float]]:
        lm = HFLanguageModel(
            loaded.model, loaded.tokenizer, loaded.device, prefix_embeds=loaded.prefix_embeds
        )
        return lm.choice_logprobs(self.prompts, self.tokens)


def _probe_tokens(tokenizer: Any) -> list[str]:
    """A few dozen short single-token continuations to compare next-token distributions on."""
    texts = [tokenizer.decode([i]) for i in range(min(400, len(tokenizer)))]
    return [
        t for t in texts if t.strip() and len(tokenizer(t, add_special_tokens=False).input_ids) == 1
    ][:50]


def check_adapter(
    before: list[list[float]], after: list[list[float]], model_id: str, tolerance: float = 1e-3
) -> float:
    """The largest change of a probed log-probability; AdapterNotAppliedError when ~0.

    An adapter that was not applied, or did not train, is a known failure of other tools: the
    "fine-tuned" scores would silently be the base model's.
    """
    effect = max(abs(x - y) for row_a, row_b in zip(before, after) for x, y in zip(row_a, row_b))
    if effect < tolerance:
        raise AdapterNotAppliedError(
            f"The adapter of '{model_id}' does not change the model's outputs (largest "
            f"log-probability change {effect:.2e}): it was not applied or did not train. "
            "Check the adapter directory and the training log."
        )
    return effect


# ---------------------------------------------------------------- scores


def stored_base_score(
    db: Database, entry: ModelEntry, spec: TaskSpec, weights_hash: str
) -> dict[str, Any] | None:
    """The newest full test-split score of the same weights, task version, prompt and items."""
    return score_rows.find_reusable(
        db,
        model_id=entry.id,
        task=spec.name,
        task_version=spec.version,
        split_fingerprint=load_split(spec, "test").fingerprint,
        weights_hash=weights_hash,
        prompt_hash=spec.prompt_hash,
    )


def _score_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "score_id": result["score_id"],
        "score": result["score"],
        "ci": result["ci"],
        "seconds": result.get("seconds"),
    }


def _row_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "score_id": row["id"],
        "score": row["primary_value"],
        "ci": [row["ci_low"], row["ci_high"]],
        "seconds": row.get("seconds"),
    }


def base_eval_seconds(base_scores: dict[str, dict[str, Any]]) -> float | None:
    """How long the base evaluations took (run now, or as stored with reused scores); None
    when there were none or one's time is unknown."""
    seconds = [score.get("seconds") for score in base_scores.values()]
    if not seconds or not all(isinstance(s, (int, float)) for s in seconds):
        return None
    return float(sum(seconds))


# The fine-tuned evaluation scores the same items with the LoRA merged: about the base's time
# (0.77-0.9x on SmolLM2, bench/quick_real.py and the finance corpus; it was 1.8x while the
# merged head's strided input made matmul copy its weight), with a margin. After training come
# also the tuned model's load, the adapter check and registration.
TUNED_EVAL_FACTOR = 1.1
AFTER_TRAINING_S = 15.0
# Training keeps at least this share of the budget, even where the evaluations leave less: on
# a slow host (the base's evaluations 184 s of the quick preset's 420) training got 8.6 s and
# the "fine-tune" scored 12 points below its base, a worse outcome than a job over its budget.
MIN_TRAIN_SHARE = 0.3


def training_budget_s(config: TrainConfig, elapsed_s: float, eval_s: float | None) -> float | None:
    """The seconds training may take so the whole job fits ``max_minutes`` (None: no budget).

    ``elapsed_s``: the job's time so far; ``eval_s``: the base evaluations' time, which the
    fine-tuned ones will take again. Without it (a QLoRA run scores its base after training)
    the fine-tuned evaluation is assumed to take a quarter of what is left. Training never gets
    less than ``MIN_TRAIN_SHARE`` of the budget (the job then runs over it, and says so).
    """
    if not config.max_minutes:
        return None
    left = 60.0 * config.max_minutes - elapsed_s - AFTER_TRAINING_S
    after = TUNED_EVAL_FACTOR * eval_s if eval_s is not None else 0.25 * left
    if config.method == "qlora" and eval_s is not None:
        after *= 2  # its base is scored after training too
    floor = MIN_TRAIN_SHARE * 60.0 * config.max_minutes
    return max(floor, left - after)


def with_training_budget(plan: TrainPlan, elapsed_s: float, eval_s: float | None) -> TrainPlan:
    """The plan with the seconds training may take so the whole job fits ``max_minutes``."""
    budget = training_budget_s(plan.config, elapsed_s, eval_s)
    return plan if budget is None else dataclasses.replace(plan, train_budget_s=budget)


def over_budget_note(
    max_minutes: float, seconds: float, train_budget_s: float | None
) -> str | None:
    """Why the job took longer than its budget, when it did (else None)."""
    if not max_minutes or seconds <= 60.0 * max_minutes:
        return None
    floor = MIN_TRAIN_SHARE * 60.0 * max_minutes
    why = (
        f"; the evaluations left training less than its floor of {floor:.0f} s "
        f"({MIN_TRAIN_SHARE:.0%} of the budget), which it kept so the fine-tune is a real one"
        if train_budget_s is not None and train_budget_s <= floor
        else ""
    )
    return f"the job took {seconds / 60:.1f} min of a {max_minutes:g} min budget{why}"


def scored_tasks(db: Database | None, base: ModelEntry, trained: TaskSpec) -> list[TaskSpec]:
    """Every task a fine-tune is scored on: the trained one (a corpus: its tasks) first, then
    every other built-in task and every task the base has a full test score on, so
    regressions show and the fine-tune's leaderboard overall covers its base's tasks."""
    names = corpus_tasks(trained) if is_corpus(trained.name) else [trained.name]
    names += [spec.name for spec in list_tasks() if spec.in_default_suite]
    if db is not None:
        names += [row["task"] for row in score_rows.for_models(db, [base.id], "test")]
    known = {spec.name for spec in list_tasks()}
    return [get_task(name) for name in dict.fromkeys(names) if name in known]


class SeriesProgress:
    """One phase's progress over several evaluations in a row.

    Each task's share of the phase is its expected time (``estimates.evaluation_seconds``:
    measured items/s of earlier scores where there are any), so the bar moves through the whole
    phase instead of filling on the first task, often the smallest, and then standing still.
    """

    def __init__(self, hooks: Hooks, weights: list[float]) -> None:
        self.hooks = hooks
        self.weights = [max(1e-6, weight) for weight in weights]  # none zero: a total to divide by
        self.total = sum(self.weights)

    def of_task(self, index: int) -> Callable[[int, int], None]:
        """The ``progress`` callback for the ``index``-th evaluation of the series."""
        before = sum(self.weights[:index])

        def report(done: int, total: int) -> None:
            share = self.weights[index] * min(1.0, done / max(1, total))
            self.hooks.eval_progress(before + share, self.total)

        return report


def _series(
    hooks: Hooks, entry: ModelEntry, specs: list[TaskSpec], db: Database, reuse_stored: bool
) -> SeriesProgress:
    """The progress of ``entry``'s evaluations of ``specs`` (its earlier speeds as weights)."""
    weights = estimates.evaluation_seconds(entry, specs, estimates.hardware(), db)
    if reuse_stored:
        weights = estimates.base_evaluation_seconds(entry, specs, db, weights)
    return SeriesProgress(hooks, weights)


def _base_scores(
    db: Database, loaded: LoadedModel, specs: list[TaskSpec], hooks: Hooks, scoring: dict
) -> dict[str, dict[str, Any]]:
    """Per task, the base's stored score of these very weights, else a new one."""
    series = _series(hooks, loaded.entry, specs, db, reuse_stored=True)
    found = {}
    for index, spec in enumerate(specs):
        stored = stored_base_score(db, loaded.entry, spec, loaded.weights_hash)
        if stored:
            found[spec.name] = _row_summary(stored)
            hooks.note(
                f"task {index + 1}/{len(specs)} {spec.name}: the base's stored score of these "
                "weights is reused"
            )
            continue
        result = evaluate(loaded, spec, progress=series.of_task(index), **scoring)
        found[spec.name] = _score_summary(result)
        hooks.note(scored_line("base", spec, result, index, len(specs)))
    return found


def scored_line(which: str, spec: TaskSpec, result: dict[str, Any], index: int, count: int) -> str:
    """The log line of one finished evaluation of a series, e.g. ``task 2/4 fin_sentiment: base
    accuracy 0.485 (200 items, 22 s)``."""
    return (
        f"task {index + 1}/{count} {spec.name}: {which} {result['primary_metric']} "
        f"{result['score']:.3f} ({result['n_items']} items, {result['seconds']:.0f} s)"
    )


def _tuned_scores(
    db: Database,
    tuned: LoadedModel,
    base: ModelEntry,
    specs: list[TaskSpec],
    hooks: Hooks,
    scoring: dict,
) -> dict[str, dict[str, Any]]:
    """The fine-tuned model's score of each task; each weighs the base's time on it."""
    series = _series(hooks, base, specs, db, reuse_stored=False)
    found = {}
    for index, spec in enumerate(specs):
        found[spec.name] = evaluate(tuned, spec, progress=series.of_task(index), **scoring)
        hooks.note(scored_line("fine-tuned", spec, found[spec.name], index, len(specs)))
    return found


# ---------------------------------------------------------------- the recipe


def release_memory() -> None:
    """Free what Python no longer references and hand the heap's free pages back to the OS
    (glibc's ``malloc_trim``), so the next phase does not pile on the last one's leftovers."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PhaseClock:
    """Passes each phase on to the hooks and remembers when it began, for the result's timings."""

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.starts: list[tuple[str, float]] = []

    def enter(self, phase: str) -> None:
        self.starts.append((phase, time.perf_counter()))
        self.hooks.phase(phase)

    def durations(self) -> dict[str, float]:
        """Seconds per phase: each lasts until the next begins (the last until now)."""
        ends = [at for _, at in self.starts[1:]] + [time.perf_counter()]
        seconds: dict[str, float] = {}
        for (phase, began), ended in zip(self.starts, ends):
            seconds[phase] = round(seconds.get(phase, 0.0) + ended - began, 2)
        return seconds


def finetune_compare(plan: TrainPlan, db: Database, hooks: Hooks | None = None) -> dict[str, Any]:
    """Base score, fine-tune, verify the adapter, fine-tuned score on the same items; a pair."""
    hooks = hooks or Hooks()
    start = time.perf_counter()
    clock = PhaseClock(hooks)
    base, spec, config = plan.base, plan.task, plan.config
    scoring = {"db": db, "options": EvalOptions(), "job_id": plan.job_id}
    tasks = scored_tasks(db, base, spec)
    clock.enter(PHASES[0])
    training_base = load_for_training(base, config)
    base_scores, before = {}, None
    if config.method != "qlora":  # these weights are the base a user scores
        clock.enter(PHASES[1])
        base_scores = _base_scores(db, training_base, tasks, hooks, scoring)
        before = AdapterProbe(spec, training_base).logprobs(training_base)
    release_memory()
    clock.enter(PHASES[2])
    plan = with_training_budget(plan, time.perf_counter() - start, base_eval_seconds(base_scores))
    tuned_entry, result = train_and_register(plan, db, hooks, loaded=training_base)
    device, dtype = training_base.device, training_base.dtype
    del training_base  # one model in memory at a time
    release_memory()
    if tuned_entry is None:
        return {"status": "cancelled", "checkpoint": result.checkpoint, "base_scores": base_scores}
    if config.method == "qlora":
        full_base = loading.load_model(base)
        clock.enter(PHASES[1])
        base_scores = _base_scores(db, full_base, tasks, hooks, scoring)
        before = AdapterProbe(spec, full_base).logprobs(full_base)
        tuned = loading.with_adapter(full_base, tuned_entry)
    else:  # the same device and dtype as the base was scored in
        tuned = loading.load_model(tuned_entry, device=device, dtype=dtype)
    clock.enter(PHASES[3])
    effect = check_adapter(before, AdapterProbe(spec, tuned).logprobs(tuned), tuned_entry.id)
    clock.enter(PHASES[4])
    tuned_scores = _tuned_scores(db, tuned, base, tasks, hooks, scoring)
    seconds = time.perf_counter() - start
    overrun = over_budget_note(config.max_minutes, seconds, plan.train_budget_s)
    if not parallel.current().is_main:  # the other ranks of a data-parallel job only compute
        return {"status": result.status, "finetuned_model": tuned_entry.id}
    for task in reversed(tasks):  # the trained task's pair last: the newest, the one shown first
        comparison_rows.insert(
            db,
            base_model_id=base.id,
            finetuned_model_id=tuned_entry.id,
            task=task.name,
            base_score_id=base_scores[task.name]["score_id"],
            finetuned_score_id=tuned_scores[task.name]["score_id"],
            seconds=seconds,
            job_id=plan.job_id,
        )
    energy = hooks.energy_wh() if hasattr(hooks, "energy_wh") else None
    gains = gain_summary(db, base.id, tuned_entry.id, result.train_seconds, energy, spec.name)
    # the headline: the trained task's primary metric (a corpus: the overall over its tasks)
    first = gains["overall"] if is_corpus(spec.name) else gains["tasks"][0]
    base_score = {"score": first["base"], "ci": first["base_ci"]}
    tuned_score = {
        "score": first["tuned"],
        "ci": first["tuned_ci"],
        "split_fingerprint": tuned_scores[tasks[0].name]["split_fingerprint"],
    }
    return {
        **gains,
        "status": result.status,
        "task": spec.name,
        "primary_metric": "overall" if is_corpus(spec.name) else spec.primary_metric,
        "base_model": base.id,
        "finetuned_model": tuned_entry.id,
        "base_score": base_score["score"],
        "base_ci": base_score["ci"],
        "finetuned_score": tuned_score["score"],
        "finetuned_ci": tuned_score["ci"],
        "improvement": tuned_score["score"] - base_score["score"],
        "split_fingerprint": tuned_score["split_fingerprint"],
        "adapter_effect": effect,
        "train_seconds": result.train_seconds,
        "tokens_per_s": result.tokens_per_s,
        "peak_memory_mb": result.peak_memory_mb,
        "training_notes": result.notes + ([overrun] if overrun else []),  # what the budget did
        "seconds": seconds,
        "energy_wh": energy,
        "phase_seconds": clock.durations(),
    }
