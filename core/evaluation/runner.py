"""Run one task on one loaded model and store the score with everything needed to reproduce it.

    >>> loaded = load_model(get_model("smollm2-135m-instruct"))                      # doctest: +SKIP
    >>> result = evaluate(loaded, get_task("fin_sentiment"), db=db,
    ...                   options=EvalOptions(limit=20))                               # doctest: +SKIP
    >>> result["primary_metric"], result["score"]                                      # doctest: +SKIP
    ('accuracy', 0.55)

The caller resolves the model and task ids and loads the model (the CLI, a job); this module
takes the loaded model and the spec. The pieces are separate so tests can drive them with a
fake model: ``build_prompts`` → ``score_items`` (through the ``LanguageModel`` interface) →
``task_metrics`` → ``core.store.scores``.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import math
import platform
import shlex
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import core
from core import parallel, store
from core.analysis import slices
from core.data.items import Item, Split
from core.evaluation import calibration_choice, extraction
from core.evaluation import metrics as m
from core.evaluation.calibration_choice import CalibrationChoice
from core.evaluation.interface import BatchCallback, LanguageModel
from core.evaluation.loss import completion_loss, scores_loss
from core.evaluation.parsing import normalize_text, parse_number
from core.models.loading import LoadedModel
from core.store import Database
from core.store import scores as score_rows
from core.tasks.prompts import choice_continuations, pick_shots, render
from core.tasks.spec import TaskSpec, load_split

ProgressCallback = Callable[[int, int], None]  # (items done, items total)


@dataclass(frozen=True)
class EvalOptions:
    split: str = "test"
    limit: int | None = None
    batch_size: int | None = None
    num_shots: int | None = None  # None: the task's default
    seed: int = 0
    dtype: str | None = None  # None/"auto": the best for the device
    device: str | None = None

    def problems(self) -> list[str]:
        """What is wrong with these options (empty when nothing is).

        >>> EvalOptions(limit=-5, batch_size=0).problems()
        ['limit must be a whole number of at least 1, not -5', 'batch_size must be a whole number of at least 1, not 0']
        """
        found = []
        if self.split not in ("train", "validation", "test"):
            found.append(f"split must be train, validation or test, not {self.split!r}")
        for name, least in (("limit", 1), ("batch_size", 1), ("num_shots", 0), ("seed", 0)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                found.append(f"{name} must be a whole number of at least {least}, not {value!r}")
        return found

    def check(self) -> EvalOptions:
        """These options, or ValueError listing their problems."""
        if self.problems():
            raise ValueError("Bad evaluation options: " + "; ".join(self.problems()))
        return self


@dataclass
class ItemResult:
    raw_output: str
    parsed: str | None
    correct: bool
    latency_ms: float
    uncalibrated: str | None = None  # calibrated choice tasks: the raw argmax label
    calibrated: str | None = None  # calibrated choice tasks: each label's calibrated probability
    calibrated_label: str | None = None  # calibrated choice tasks: the calibrated argmax label


# The stored score's fields that evaluate() also returns in its summary.
SUMMARY_KEYS = (
    *("task", "task_version", "split", "split_fingerprint", "n_items", "primary_metric"),
    *("items_per_s", "latency_p50_ms", "latency_p95_ms", "seconds", "dtype", "device", "command"),
)


def default_batch_size(device: str) -> int:
    return 64 if device == "cuda" else 16


# ---------------------------------------------------------------- prompts and scoring


def build_prompts(
    spec: TaskSpec, items: list[Item], tokenizer: Any, instruct: bool, shots: list[Item]
) -> list[str]:
    return [render(spec, item, tokenizer, instruct, shots).prompt for item in items]


class _LatencyRecorder:
    """Collects amortized per-request latency (batch wall time / batch size) and reports progress.

    Requests past ``items`` (calibration prompts) are timed but not counted as items done.
    """

    def __init__(self, items: int, requests: int, progress: ProgressCallback | None) -> None:
        self.latency_ms = [0.0] * requests
        self.items = items
        self.done = 0
        self.progress = progress

    def __call__(self, indices: list[int], seconds: float) -> None:
        for index in indices:
            self.latency_ms[index] = 1000 * seconds / max(1, len(indices))
        self.done += sum(1 for index in indices if index < self.items)
        if self.progress:
            self.progress(self.done, self.items)


def _is_correct(spec: TaskSpec, parsed: str | None, gold: str) -> bool:
    if parsed is None:
        return False
    if spec.kind == "numeric":
        return spec.tolerance.accepts(float(parsed), float(gold))
    if spec.kind == "text":
        return normalize_text(parsed) == normalize_text(gold)
    if spec.kind == "set":
        return extraction.same_set(parsed, gold)
    return parsed == gold


CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


def content_free_prompts(
    spec: TaskSpec, tokenizer: Any, instruct: bool, shots: list[Item]
) -> list[str]:
    """Prompts whose item text carries no content, for contextual calibration (else none)."""
    if spec.calibration != "contextual":
        return []
    fields = {name for _, name, _, _ in string.Formatter().parse(spec.template) if name}
    blanks = [
        Item("content-free", {name: value for name in fields}, spec.labels[0])
        for value in CONTENT_FREE_INPUTS
    ]
    return build_prompts(spec, blanks, tokenizer, instruct, shots)


def _normalize(row: list[float]) -> list[float]:
    total = _logsumexp(row)
    return [value - total for value in row]


def calibrate(logprobs: list[list[float]], content_free: list[list[float]]) -> list[list[float]]:
    """log p(label | x) - log mean p_cf(label), each normalized over the labels."""
    mean_cf = [
        sum(math.exp(v) for v in column) / len(content_free)
        for column in zip(*map(_normalize, content_free))
    ]
    return [[v - math.log(p) for v, p in zip(_normalize(row), mean_cf)] for row in logprobs]


def score_shared(
    world: parallel.World,
    lm: LanguageModel,
    spec: TaskSpec,
    items: list[Item],
    prompts: list[str],
    continuations: list[list[str]],
    progress: ProgressCallback | None = None,
    calibration_prompts: list[str] | None = None,
    use_calibration: bool = True,
) -> list[ItemResult] | None:
    """``score_items`` with the items shared out over the data-parallel ranks.

    Each rank scores every ``size``-th item (and, itself, the few calibration prompts, so
    every rank calibrates alike); rank 0 gets every result back in the items' order, the
    other ranks None. In one process this is ``score_items``.
    """
    if not world.distributed:
        return score_items(
            lm, spec, items, prompts, continuations, progress, calibration_prompts, use_calibration
        )
    mine = world.share(range(len(items)))
    results = score_items(
        lm,
        spec,
        [items[i] for i in mine],
        [prompts[i] for i in mine],
        continuations,
        progress,
        calibration_prompts,
        use_calibration,
    )
    gathered = world.gather(list(zip(mine, results)))
    if gathered is None:
        return None
    ordered = dict(pair for rank_results in gathered for pair in rank_results)
    return [ordered[index] for index in range(len(items))]


def choose_calibration(
    world: parallel.World,
    lm: LanguageModel,
    spec: TaskSpec,
    loaded: LoadedModel,
    shots: list[Item],
    continuations: list[list[str]],
    content_free: list[str],
) -> CalibrationChoice:
    """Score the validation split both ways (one pass) and keep the better way (every rank)."""
    items = load_split(spec, "validation").items
    prompts = build_prompts(spec, items, loaded.tokenizer, loaded.entry.instruct, shots)
    results = score_shared(world, lm, spec, items, prompts, continuations, None, content_free)
    choice = None
    if results is not None:
        choice = calibration_choice.choose(
            [r.calibrated_label == item.answer for r, item in zip(results, items)],
            [r.uncalibrated == item.answer for r, item in zip(results, items)],
        )
    return world.share_from_main(choice)


def _argmax_label(spec: TaskSpec, row: list[float]) -> str:
    return spec.labels[max(range(len(row)), key=row.__getitem__)]


def score_items(
    lm: LanguageModel,
    spec: TaskSpec,
    items: list[Item],
    prompts: list[str],
    continuations: list[list[str]],
    progress: ProgressCallback | None = None,
    calibration_prompts: list[str] | None = None,
    use_calibration: bool = True,
) -> list[ItemResult]:
    """Ask the model, parse each answer, and mark it right or wrong.

    For calibrated choice tasks, ``calibration_prompts`` (see ``content_free_prompts``) are
    scored alongside and the label is chosen from the calibrated scores; ``raw_output`` keeps
    the raw log-likelihoods, ``uncalibrated`` the label they alone would pick and
    ``calibrated`` each label's calibrated probability. ``use_calibration`` False (chosen on
    the validation split, see ``calibration_choice``) answers with the raw label instead.
    """
    if spec.is_generation:
        return _score_generation(
            lm, spec, items, prompts, _LatencyRecorder(len(prompts), len(prompts), progress)
        )
    extra = calibration_prompts or []
    recorder = _LatencyRecorder(len(prompts), len(prompts) + len(extra), progress)
    scored = label_logprobs(lm, prompts + extra, continuations, recorder)
    logprobs, content_free = scored[: len(prompts)], scored[len(prompts) :]
    decided = calibrate(logprobs, content_free) if content_free else logprobs
    results = []
    for index, item in enumerate(items):
        raw = " ".join(f"{label}={lp:.3f}" for label, lp in zip(spec.labels, logprobs[index]))
        uncalibrated = _argmax_label(spec, logprobs[index])
        calibrated_label = _argmax_label(spec, decided[index])
        answer = calibrated_label if use_calibration else uncalibrated
        shares = None
        if content_free:  # the calibrated label probabilities
            probabilities = [math.exp(v) for v in _normalize(decided[index])]
            shares = " ".join(f"{label}={p:.3f}" for label, p in zip(spec.labels, probabilities))
        results.append(
            ItemResult(
                raw,
                answer,
                answer == item.answer,
                recorder.latency_ms[index],
                uncalibrated,
                shares,
                calibrated_label if content_free else None,
            )
        )
    return results


def _score_generation(
    lm: LanguageModel,
    spec: TaskSpec,
    items: list[Item],
    prompts: list[str],
    recorder: _LatencyRecorder,
) -> list[ItemResult]:
    outputs = lm.generate(prompts, spec.stop, spec.max_new_tokens, on_batch=recorder)
    results = []
    for index, (item, text) in enumerate(zip(items, outputs)):
        if spec.kind == "numeric":
            number = parse_number(text)
            parsed = None if number is None else repr(number)
        elif spec.kind == "set":
            parsed = extraction.parse_answer(spec, text)
        else:
            parsed = text.strip() or None
        results.append(
            ItemResult(
                text, parsed, _is_correct(spec, parsed, item.answer), recorder.latency_ms[index]
            )
        )
    return results


def label_logprobs(
    lm: LanguageModel, prompts: list[str], forms: list[list[str]], on_batch: BatchCallback
) -> list[list[float]]:
    """Log-likelihood of each label: log-sum-exp over the label's surface forms."""
    flat = [form for label_forms in forms for form in label_forms]
    per_form = lm.choice_logprobs(prompts, flat, on_batch=on_batch)
    bounds = list(itertools.accumulate(len(f) for f in forms))
    return [
        [_logsumexp(row[end - len(f) : end]) for f, end in zip(forms, bounds)] for row in per_form
    ]


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def task_metrics(
    spec: TaskSpec, items: list[Item], results: list[ItemResult], seed: int = 0
) -> dict[str, Any]:
    """Every metric the task asks for, each with a 95% bootstrap CI."""
    golds = [item.answer for item in items]
    if spec.is_generation:
        preds = [
            float(r.parsed) if spec.kind == "numeric" and r.parsed is not None else None
            for r in results
        ]
        if spec.kind == "numeric":
            report = m.numeric_metrics(
                [float(g) for g in golds], preds, [r.correct for r in results], seed
            )
        elif spec.kind == "set":
            report = extraction.set_report(spec, items, [r.parsed for r in results], seed)
        else:
            report = {
                "accuracy": m.mean_with_ci([float(r.correct) for r in results], seed),
                "unparseable_rate": m.mean_with_ci(
                    [float(r.parsed is None) for r in results], seed
                ),
            }
            report.update(extraction.summary_report(items, [r.parsed for r in results], seed))
    else:
        report = m.classification_metrics(golds, [r.parsed for r in results], spec.labels, seed)
        if spec.calibration != "none":
            raw_correct = [float(r.uncalibrated == g) for r, g in zip(results, golds)]
            report["uncalibrated_accuracy"] = m.mean_with_ci(raw_correct, seed)
            if all(r.calibrated_label is not None for r in results):
                calibrated = [float(r.calibrated_label == g) for r, g in zip(results, golds)]
                report["calibrated_accuracy"] = m.mean_with_ci(calibrated, seed)
        if spec.kind == "rating":
            report["mae"] = m.rating_mae(golds, [r.parsed for r in results], seed)
            report.update(extraction.rating_report(golds, [r.parsed for r in results], seed))
    keep = set(spec.metrics) | {"per_class", "confusion", "uncalibrated_accuracy", "per_term"}
    keep.add("calibrated_accuracy")
    return {name: value for name, value in report.items() if name in keep}


# ---------------------------------------------------------------- reproducibility record


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "finboard": core.__version__}
    for name in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def reproduce_command(
    model_id: str, task: str, options: EvalOptions, dtype: str, batch_size: int, shots: int
) -> str:
    parts = ["finboard", "eval", "--model", model_id, "--task", task, "--split", options.split]
    parts += [
        "--shots",
        str(shots),
        "--seed",
        str(options.seed),
        "--dtype",
        dtype,
        "--batch-size",
        str(batch_size),
    ]
    if options.limit is not None:
        parts += ["--limit", str(options.limit)]
    if options.device:
        parts += ["--device", options.device]
    return shlex.join(parts)


# ---------------------------------------------------------------- the whole run


def score_record(
    model_id: str,
    spec: TaskSpec,
    split: Any,
    report: dict[str, Any],
    options: EvalOptions,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """A score row: the columns every scorer writes (``evaluate``, encoders, imported
    predictions); ``extra`` adds or overrides the rest (dtype, device, timings, ...)."""
    primary = report[spec.primary_metric]
    return {
        "model_id": model_id,
        "task": spec.name,
        "task_version": spec.version,
        "split": split.name,
        "split_fingerprint": split.fingerprint,
        "n_items": len(split),
        "primary_metric": spec.primary_metric,
        "primary_value": primary["value"],
        "ci_low": primary["ci"][0],
        "ci_high": primary["ci"][1],
        "metrics_json": store.to_json(report),
        "prompt_hash": spec.prompt_hash,
        "num_shots": 0,
        "seed": options.seed,
        "item_limit": options.limit,
        "versions_json": store.to_json(package_versions()),
        "created_at": store.now_iso(),
        **extra,
    }


def evaluate(
    loaded: LoadedModel,
    spec: TaskSpec,
    *,
    db: Database,
    options: EvalOptions = EvalOptions(),
    progress: ProgressCallback | None = None,
    job_id: int | None = None,
) -> dict[str, Any]:
    """Evaluate the loaded model on ``spec``, store the score and predictions, return a summary.

    Under a data-parallel launch every rank calls this: the items are shared out
    (``score_shared``), rank 0 computes the metrics and stores the one score row, and every
    rank returns rank 0's summary.
    """
    from core.evaluation.hf import HFLanguageModel

    world = parallel.current()
    entry = loaded.entry
    options.check()
    split: Split = load_split(spec, options.split).head(options.limit)
    if not split.items:
        raise ValueError(f"Task '{spec.name}' has no items in split '{options.split}'")
    batch_size = options.batch_size or default_batch_size(loaded.device)
    num_shots = spec.num_shots if options.num_shots is None else options.num_shots
    shots = pick_shots(spec, load_split(spec, "train").items, options.seed, num_shots)
    prompts = build_prompts(spec, split.items, loaded.tokenizer, entry.instruct, shots)
    continuations = (
        choice_continuations(spec, loaded.tokenizer, entry.instruct)
        if not spec.is_generation
        else []
    )
    content_free = content_free_prompts(spec, loaded.tokenizer, entry.instruct, shots)
    lm = HFLanguageModel(
        loaded.model,
        loaded.tokenizer,
        loaded.device,
        batch_size,
        prefix_embeds=loaded.prefix_embeds,
    )

    start = time.perf_counter()
    choice = None
    if content_free:  # calibrate or not: decided on the validation split, never on the test one
        choice = choose_calibration(world, lm, spec, loaded, shots, continuations, content_free)
    results = score_shared(
        world,
        lm,
        spec,
        split.items,
        prompts,
        continuations,
        progress,
        content_free,
        use_calibration=choice is None or choice.apply(),
    )
    seconds = time.perf_counter() - start
    if results is None:  # another rank: rank 0 stores the score
        return world.share_from_main(None)
    report = task_metrics(spec, split.items, results, options.seed)
    if scores_loss(spec) and loaded.prefix_embeds is None:  # instruction / chat corpora
        report["completion_loss"] = completion_loss(loaded, spec, split.items, options.seed)
    by_slice = slices.score_slices(
        spec.kind,
        spec.primary_metric,
        split.items,
        results,
        lambda items, found: task_metrics(spec, items, found, options.seed),
        spec.robustness,
    )
    if choice is not None:
        report["calibration_choice"] = choice.to_dict()
    latency = m.latency_summary([r.latency_ms for r in results])
    primary = report[spec.primary_metric]
    score = score_record(
        entry.id,
        spec,
        split,
        report,
        options,
        {
            "slices_json": store.to_json(by_slice),
            "weights_hash": loaded.weights_hash,
            "num_shots": len(shots),
            "dtype": loaded.dtype_name,
            "device": loaded.device,
            "batch_size": batch_size,
            "command": reproduce_command(
                entry.id, spec.name, options, loaded.dtype_name, batch_size, len(shots)
            ),
            "latency_p50_ms": latency["p50_ms"],
            "latency_p95_ms": latency["p95_ms"],
            "items_per_s": len(split) / seconds if seconds > 0 else None,
            "seconds": seconds,
            "job_id": job_id,
        },
    )
    predictions = [
        {
            "item_id": item.id,
            "position": index,
            "prompt": prompt,
            "raw_output": result.raw_output,
            "parsed": result.parsed,
            "gold": item.answer,
            "correct": int(result.correct),
            "latency_ms": result.latency_ms,
            "calibrated": result.calibrated,
        }
        for index, (item, prompt, result) in enumerate(zip(split.items, prompts, results))
    ]
    score_id = score_rows.insert(db, score, predictions)
    summary = {
        "score_id": score_id,
        "model": entry.id,
        **{key: score[key] for key in SUMMARY_KEYS},
        "score": primary["value"],
        "ci": primary["ci"],
        "metrics": {k: v for k, v in report.items() if k not in ("per_class", "confusion")},
    }
    return world.share_from_main(summary)
