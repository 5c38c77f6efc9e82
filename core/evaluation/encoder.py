"""Score an encoder by its classification head, and the majority-class baseline, like the LLMs.

    >>> loaded = load_encoder(get_model("<fine-tuned encoder id>"))               # doctest: +SKIP
    >>> evaluate_encoder(loaded, get_task("client_priority"), db=db)["score"]     # doctest: +SKIP

The same test items, metrics (accuracy, macro-F1, per-class precision / recall / F1, the
confusion matrix, bootstrap CIs) and score rows as ``core.evaluation.runner``, so encoders and
LLMs sit on one leaderboard. Each item is answered twice:

- in batches (``batch_size``, 32 by default): the answers, and the batched throughput
  (``items_per_s``);
- alone (batch size 1), as a service answers a single request: each item's ``latency_ms``, and
  so the score's single-request p50 / p95.

An untrained head is not a base model: the
baseline of an encoder fine-tune is ``majority_baseline``, which answers every test item with
the most frequent label of the train split, stored under the model id ``majority-class``.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

from core.evaluation import metrics as m
from core.evaluation.runner import (
    SUMMARY_KEYS,
    EvalOptions,
    ItemResult,
    ProgressCallback,
    reproduce_command,
    score_record,
    task_metrics,
)
from core.models.encoder import LoadedEncoder, cpu_threads, predict
from core.models.registry import BASELINE_ID, BASELINE_NAME
from core.store import Database
from core.store import scores as score_rows
from core.tasks.spec import TaskSpec, load_split

MAJORITY_ID, MAJORITY_NAME = BASELINE_ID, BASELINE_NAME
DEFAULT_BATCH = 32


def _item_results(
    spec: TaskSpec, golds: list[str], logprobs: list[list[float]], latency_ms: list[float]
) -> list[ItemResult]:
    results = []
    for gold, row, ms in zip(golds, logprobs, latency_ms):
        answer = spec.labels[max(range(len(row)), key=row.__getitem__)]
        raw = " ".join(f"{label}={lp:.3f}" for label, lp in zip(spec.labels, row))
        results.append(ItemResult(raw, answer, answer == gold, ms, uncalibrated=answer))
    return results


def _single_request_ms(loaded: LoadedEncoder, texts: list[str], task: str) -> list[float]:
    """Each text answered alone (batch size 1), timed end to end: tokenize, forward, argmax."""
    predict(loaded, texts[:1], task)  # warm-up: first-call allocations are not a request
    latency = []
    for text in texts:
        start = time.perf_counter()
        predict(loaded, [text], task)
        latency.append(1000 * (time.perf_counter() - start))
    return latency


def prediction_rows(split: Any, results: list[ItemResult]) -> list[dict[str, Any]]:
    return [
        {
            "item_id": item.id,
            "position": index,
            "prompt": item.fields.get("text", ""),
            "raw_output": result.raw_output,
            "parsed": result.parsed,
            "gold": item.answer,
            "correct": int(result.correct),
            "latency_ms": result.latency_ms,
        }
        for index, (item, result) in enumerate(zip(split.items, results))
    ]


def score_summary(score_id: int, score: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    primary = report[score["primary_metric"]]
    return {
        "score_id": score_id,
        "model": score["model_id"],
        **{key: score.get(key) for key in SUMMARY_KEYS},
        "score": primary["value"],
        "ci": primary["ci"],
        "metrics": {k: v for k, v in report.items() if k not in ("per_class", "confusion")},
    }


def evaluate_encoder(
    loaded: LoadedEncoder,
    spec: TaskSpec,
    *,
    db: Database,
    options: EvalOptions | None = None,
    progress: ProgressCallback | None = None,
    job_id: int | None = None,
) -> dict[str, Any]:
    """Score the encoder's head for ``spec`` on its test items; store the score, return a summary."""
    options = (options or EvalOptions()).check()
    split = load_split(spec, options.split).head(options.limit)
    if not split.items:
        raise ValueError(f"Task '{spec.name}' has no items in split '{options.split}'")
    texts = [item.fields.get("text", "") for item in split.items]
    batch_size = options.batch_size or DEFAULT_BATCH  # the batched pass; latency: one at a time
    with cpu_threads(loaded.device):
        start = time.perf_counter()
        logprobs: list[list[float]] = []
        for first in range(0, len(texts), batch_size):
            logprobs += predict(loaded, texts[first : first + batch_size], spec.name)
            if progress:
                progress(min(len(texts), first + batch_size), len(texts))
        seconds = time.perf_counter() - start
        latency = _single_request_ms(loaded, texts, spec.name)
    results = _item_results(spec, [i.answer for i in split.items], logprobs, latency)
    report = task_metrics(spec, split.items, results, options.seed)
    timing = m.latency_summary(latency)
    command = reproduce_command(
        loaded.entry.id, spec.name, options, loaded.dtype_name, batch_size, 0
    )
    score = score_record(
        loaded.entry.id,
        spec,
        split,
        report,
        options,
        {
            "weights_hash": loaded.weights_hash,
            "dtype": loaded.dtype_name,
            "device": loaded.device,
            "batch_size": batch_size,
            "command": command,
            "latency_p50_ms": timing["p50_ms"],
            "latency_p95_ms": timing["p95_ms"],
            "items_per_s": len(split) / seconds if seconds > 0 else None,
            "seconds": seconds,
            "job_id": job_id,
        },
    )
    score_id = score_rows.insert(db, score, prediction_rows(split, results))
    return score_summary(score_id, score, report)


# ---------------------------------------------------------------- the majority-class baseline


def majority_label(spec: TaskSpec) -> str:
    """The most frequent label of the train split (ties: the first in the task's label order)."""
    counts = Counter(item.answer for item in load_split(spec, "train").items)
    if not counts:
        raise ValueError(f"Task '{spec.name}' has no training items to take a majority from")
    return max(spec.labels, key=lambda label: (counts[label], -spec.labels.index(label)))


def majority_baseline(
    spec: TaskSpec,
    *,
    db: Database,
    options: EvalOptions | None = None,
    job_id: int | None = None,
) -> dict[str, Any]:
    """Score "always the train split's majority label" on the test items (reused when stored)."""
    options = (options or EvalOptions()).check()
    split = load_split(spec, options.split).head(options.limit)
    label = majority_label(spec)
    weights = f"majority:{label}"
    stored = score_rows.find_reusable(
        db,
        model_id=MAJORITY_ID,
        task=spec.name,
        task_version=spec.version,
        split_fingerprint=split.fingerprint,
        weights_hash=weights,
        prompt_hash=spec.prompt_hash,
    )
    if stored is not None and options.limit is None and split.name == "test":
        report = json.loads(stored["metrics_json"])
        return {**score_summary(int(stored["id"]), stored, report), "label": label}
    nan = math.nan
    results = [
        ItemResult(f"always {label}", label, label == item.answer, nan, uncalibrated=label)
        for item in split.items
    ]
    report = task_metrics(spec, split.items, results, options.seed)
    score = score_record(
        MAJORITY_ID,
        spec,
        split,
        report,
        options,
        {"weights_hash": weights, "command": f"majority class of {spec.name} train: {label}"},
    )
    for row in (predictions := prediction_rows(split, results)):
        row["latency_ms"] = None
    score_id = score_rows.insert(db, score, predictions)
    return {**score_summary(score_id, score, report), "label": label}


# ---------------------------------------------------------------- either kind of model


def loader_and_scorer(entry: Any) -> tuple[Any, Any]:
    """(load, evaluate) for ``entry``: ``load_encoder`` / ``evaluate_encoder`` for an encoder,
    ``load_model`` / ``runner.evaluate`` for an LLM; both pairs take the same arguments."""
    from core.models.encoder import is_encoder, load_encoder

    if is_encoder(entry):
        return load_encoder, evaluate_encoder
    from core.evaluation.runner import evaluate
    from core.models.loading import load_model

    return load_model, evaluate


def answerable(entry: Any, specs: list[TaskSpec]) -> list[TaskSpec]:
    """The tasks ``entry`` can answer: an encoder classifies, so only tasks with labels."""
    from core.models.encoder import is_encoder

    if not is_encoder(entry):
        return specs
    return [spec for spec in specs if not spec.is_generation and spec.labels]
