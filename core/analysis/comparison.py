"""Base vs fine-tuned on the same items: one view model for the Comparison page and the report.

    >>> from core.store import connect
    >>> db = connect(":memory:")
    >>> pairs(db), latest_pair(db)
    ([], None)

``build_view(db, base_id, tuned_id)`` gathers everything both renderers show, computed once:

- ``table``: one row per (task, metric) plus an ``overall`` row (two or more tasks), keyed by machine names
  (``task``, ``metric``, ``base``, ``tuned``, ``improvement``, ``ci``, ``verdict`` ...); the
  renderers turn keys into labels (``paired.metric_label``). ``improvement`` is fine-tuned
  minus base with the sign flipped for lower-is-better metrics (unparseable rate, MAE), so a
  positive improvement always means the fine-tuned model is better; ``ci`` is the paired 95%
  interval of that same quantity.
- ``headline``: the primary metric of the task it was trained on (else the overall row).
- ``tasks``: per task, the two score rows, win / loss / tie, flipped items, confusion matrices.
- ``facts`` and ``curve``: the training record (card) and its loss curve (the job that
  trained the model, and the jobs it resumed).

Which scores are compared: the pair stored by the fine-tune-and-compare job (its score ids),
and for other tasks the newest scores of both models on the same items (equal split
fingerprints; the one on the most items first, so a ``--limit`` smoke test does not hide a
full comparison).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from core import format as fmt
from core.analysis import paired, paired_metrics, slices
from core.evaluation import baselines
from core.jobs import queue
from core.models import registry
from core.store import Database
from core.store import comparisons as comparison_rows
from core.store import scores as score_rows
from core.tasks.prompts import readable_prompt

TABLE_COLUMNS = [
    *("task", "metric", "base", "tuned", "improvement", "ci", "higher_is_better", "primary"),
    *("verdict", "n_items", "base_score_id", "tuned_score_id", "base_ci", "tuned_ci"),
]
VERDICTS = ("better", "worse", "no clear change", "no interval")


# ---------------------------------------------------------------- which pairs exist


def pairs(db: Database) -> list[dict[str, Any]]:
    """Every stored base-vs-fine-tuned comparison, newest first, with both display names."""
    names = registry.display_names(db)
    rows = comparison_rows.newest_first(db)
    for row in rows:
        row["base_name"] = names.get(row["base_model_id"], row["base_model_id"])
        row["finetuned_name"] = names.get(row["finetuned_model_id"], row["finetuned_model_id"])
    return rows


def latest_pair(db: Database) -> dict[str, Any] | None:
    """The newest comparison row (see ``pairs``), or None when there is none."""
    found = pairs(db)
    return found[0] if found else None


def finetuned_by_base(db: Database) -> dict[str, list[str]]:
    """Base model id -> its registered fine-tuned model ids, newest first.

    Only models whose base is still in the models config (``registry.finetuned_models``).
    """
    result: dict[str, list[str]] = {}
    for entry in registry.finetuned_models(db):
        result.setdefault(str(entry.base_model_id), []).append(entry.id)
    return result


def reference_models(db: Database, tuned_id: str) -> list[str]:
    """What a fine-tuned model is compared with: first its own reference (an LLM: its base; an
    encoder: the majority-class baseline, since an untrained head is no base model), then the
    fine-tunes of the other model kind on the same task (an encoder against an LLM fine-tune).
    """
    tuned = registry.get_model(tuned_id, db)
    first = registry.BASELINE_ID if tuned.model_kind == "encoder" else str(tuned.base_model_id)
    others = [
        entry.id
        for entry in registry.finetuned_models(db)
        if entry.trained_on_task == tuned.trained_on_task and entry.model_kind != tuned.model_kind
    ]
    return [first, *others]


# ---------------------------------------------------------------- the same items, side by side


def check_same_items(base: dict[str, Any], tuned: dict[str, Any]) -> None:
    """Raise ValueError unless two score rows were measured on the same items."""
    if base["split_fingerprint"] != tuned["split_fingerprint"]:
        raise ValueError(
            f"Score #{base['id']} ({base['model_id']} on {base['task']}, {base['n_items']} items) "
            f"and score #{tuned['id']} ({tuned['model_id']} on {tuned['task']}, "
            f"{tuned['n_items']} items) were measured on different items (split fingerprints "
            f"{str(base['split_fingerprint'])[:12]}… and {str(tuned['split_fingerprint'])[:12]}…). "
            "Evaluate both models on the same split with the same --limit (or none) and compare "
            "those scores."
        )


ITEM_COLUMNS = [
    "item_id",
    "position",
    "prompt",
    "gold",
    "base_parsed",
    "base_output",
    "base_correct",
    "tuned_parsed",
    "tuned_output",
    "tuned_correct",
]


def paired_items(db: Database, base_score_id: int, tuned_score_id: int) -> pd.DataFrame:
    """Both scores' per-item predictions joined on item_id, in item order.

    Raises ValueError when the two scores were not measured on the same items.
    """
    check_same_items(score_rows.get(db, base_score_id), score_rows.get(db, tuned_score_id))
    rows = score_rows.paired_predictions(db, base_score_id, tuned_score_id)
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def prompt_snippet(prompt: Any, length: int = 160) -> str:
    """The item part of a prompt on one line: its last paragraph, without chat markup.

    The instruction (and any few-shot examples) come first, separated by blank lines; the
    last paragraph holds the item itself. Longer snippets are cut at ``length`` with "…".

    >>> prompt_snippet("<|im_start|>user\\nClassify.\\n\\nSentence: Shares fell sharply.\\n"
    ...                "Sentiment:<|im_end|>\\n<|im_start|>assistant\\n")
    'Sentence: Shares fell sharply. Sentiment:'
    """
    text = readable_prompt(str(prompt or ""))
    last = text.split("\n\n")[-1]
    text = " ".join((last if len(last.strip()) >= 20 else text).split())
    return text if len(text) <= length else text[:length].rstrip() + "…"


def matched_scores(
    db: Database, base_model_id: str, tuned_model_id: str, trained_task: str | None = None
) -> list[dict[str, Any]]:
    """Per task both models were scored on, the two score rows measured on the same items.

    Returns ``[{"task": ..., "base": score_row, "tuned": score_row}]``: the task the model was
    fine-tuned on (``trained_task``) first, then the others by name. A pair stored by a fine-tune-and-compare job
    is used as stored; other tasks are matched by split fingerprint (most items, then newest).
    """
    stored = {}
    for pair in comparison_rows.for_pair(db, base_model_id, tuned_model_id):  # newest first
        if pair["task"] not in stored:
            base = score_rows.get(db, pair["base_score_id"])
            tuned = score_rows.get(db, pair["finetuned_score_id"])
            stored[pair["task"]] = {"task": pair["task"], "base": base, "tuned": tuned}
    rows = score_rows.for_models(db, [base_model_id, tuned_model_id], "test")
    result = []
    for task in sorted({r["task"] for r in rows} | set(stored)):
        if task in stored:
            result.append(stored[task])
            continue
        bases = [r for r in rows if r["task"] == task and r["model_id"] == base_model_id]
        tuneds = [r for r in rows if r["task"] == task and r["model_id"] == tuned_model_id]
        candidates = [
            (tuned["n_items"] or 0, tuned["id"], base, tuned)
            for tuned in tuneds
            for base in bases
            if base["split_fingerprint"] == tuned["split_fingerprint"]
        ]
        if candidates:
            best = max(candidates, key=lambda c: (c[0], c[1], c[2]["id"]))
            result.append({"task": task, "base": best[2], "tuned": best[3]})
    return sorted(result, key=lambda match: match["task"] != trained_task)  # stable: by name


# ---------------------------------------------------------------- the comparison table


def _metrics(score: dict[str, Any]) -> dict[str, Any]:
    return json.loads(score.get("metrics_json") or "{}")


def _scalar_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Metric -> value; an undefined metric (stored as null, e.g. MAE with no answer) is NaN."""
    return {
        name: math.nan if value["value"] is None else float(value["value"])
        for name, value in report.items()
        if isinstance(value, dict) and "value" in value
    }


def _own_ci(report: dict[str, Any], metric: str) -> list[float] | None:
    """A score's own 95% CI of ``metric`` as stored (not paired), or None."""
    ci = (report.get(metric) or {}).get("ci")
    return [float(ci[0]), float(ci[1])] if ci and None not in ci else None


def _mean_ci(intervals: list[list[float] | None]) -> list[float] | None:
    """The mean of interval bounds (the leaderboard's overall interval), None if any is missing."""
    if not intervals or any(ci is None for ci in intervals):
        return None
    return [
        float(np.mean([ci[0] for ci in intervals])),
        float(np.mean([ci[1] for ci in intervals])),
    ]


def verdict(ci: list[float] | None) -> str:
    """better / worse when the interval of the improvement excludes zero."""
    if ci is None:
        return "no interval"
    if ci[0] > 0:
        return "better"
    if ci[1] < 0:
        return "worse"
    return "no clear change"


def _task_rows(
    match: dict[str, Any], items: pd.DataFrame, seed: int
) -> tuple[list[dict[str, Any]], Any]:
    base, tuned = match["base"], match["tuned"]
    base_report, tuned_report = _metrics(base), _metrics(tuned)
    base_values, tuned_values = _scalar_metrics(base_report), _scalar_metrics(tuned_report)
    labels = (base_report.get("confusion") or {}).get("labels")
    primary = base["primary_metric"]
    names = [primary] + sorted(n for n in base_values if n in tuned_values and n != primary)
    rows, primary_samples = [], None
    for name in names:
        sign = 1.0 if paired.higher_is_better(name) else -1.0
        found = paired_metrics.metric_samples(name, items, labels, seed)
        samples = sign * found[1] + 0.0 if found is not None else None  # + 0.0: no -0.0
        ci = paired.interval(samples) if samples is not None and samples.size else None
        if name == primary:
            primary_samples = samples
        base_value = base_values.get(name, math.nan)
        tuned_value = tuned_values.get(name, math.nan)
        rows.append(
            {
                "task": match["task"],
                "metric": name,
                "base": base_value,
                "tuned": tuned_value,
                "improvement": sign * (tuned_value - base_value) + 0.0,
                "ci": ci,
                "higher_is_better": sign > 0,
                "primary": name == primary,
                "verdict": verdict(ci),
                "n_items": len(items) or base["n_items"],
                "base_score_id": base["id"],
                "tuned_score_id": tuned["id"],
                "base_ci": _own_ci(base_report, name),
                "tuned_ci": _own_ci(tuned_report, name),
            }
        )
    return rows, primary_samples


def _overall_row(rows: list[dict[str, Any]], samples: list[Any]) -> dict[str, Any]:
    primary = [r for r in rows if r["primary"]]
    ci = None
    if samples and all(s is not None and s.size for s in samples):
        ci = paired.interval(np.mean(np.vstack(samples), axis=0))
    return {
        "task": None,
        "metric": "overall",
        "base": float(np.mean([r["base"] for r in primary])),
        "tuned": float(np.mean([r["tuned"] for r in primary])),
        "improvement": float(np.mean([r["improvement"] for r in primary])),
        "ci": ci,
        "higher_is_better": True,
        "primary": True,
        "verdict": verdict(ci),
        "n_items": int(sum(r["n_items"] for r in primary)),
        "base_score_id": None,
        "tuned_score_id": None,
        "base_ci": _mean_ci([r["base_ci"] for r in primary]),
        "tuned_ci": _mean_ci([r["tuned_ci"] for r in primary]),
    }


def comparison_table(
    matches: list[dict[str, Any]], items: dict[str, pd.DataFrame], seed: int = 0
) -> pd.DataFrame:
    """Every metric of every matched task, plus an ``overall`` row (last); see the module doc.

    ``items``: task -> ``paired_items`` of its match. The overall row is there when two or more
    tasks are (with one it would repeat that task's row). Empty (with ``TABLE_COLUMNS``) when
    no task was scored on the same items for both models.
    """
    rows: list[dict[str, Any]] = []
    samples: list[Any] = []
    for match in matches:
        task_rows, primary_samples = _task_rows(match, items[match["task"]], seed)
        rows += task_rows
        samples.append(primary_samples)
    if not rows:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    if len(matches) > 1:
        rows.append(_overall_row(rows, samples))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"base_score_id": "Int64", "tuned_score_id": "Int64"})


@dataclass(frozen=True)
class Headline:
    """The one number a manager reads first: the gain on the primary metric."""

    task: str | None  # None: the overall row
    metric: str
    base: float
    tuned: float
    improvement: float
    ci: list[float] | None
    points: float  # the improvement in points (x100) for metrics between 0 and 1
    points_ci: list[float] | None
    unit: str  # "points" or ""
    verdict: str
    n_items: int


def headline(table: pd.DataFrame, task: str | None = None) -> Headline | None:
    """The primary-metric row of ``task`` (else the overall row, else the first task's)."""
    if table.empty:
        return None
    candidates = [
        table[(table["task"] == task) & table["primary"]] if task else table.iloc[0:0],
        table[table["metric"] == "overall"],
        table[table["primary"]],
    ]
    row = next(found for found in candidates if not found.empty).iloc[0]
    bounded = all(0 <= v <= 1 for v in (row["base"], row["tuned"]) if not math.isnan(v))
    scale = 100.0 if bounded else 1.0
    ci = row["ci"]
    return Headline(
        task=None if row["metric"] == "overall" else row["task"],
        metric=row["metric"],
        base=float(row["base"]),
        tuned=float(row["tuned"]),
        improvement=float(row["improvement"]),
        ci=ci,
        points=float(row["improvement"]) * scale,
        points_ci=[ci[0] * scale, ci[1] * scale] if ci else None,
        unit="points" if bounded else "",
        verdict=row["verdict"],
        n_items=int(row["n_items"]),
    )


def headline_sentence(head: Headline) -> str:
    """The headline in words, e.g. "improves accuracy on t by +40.5 points (95% CI ...)"."""
    unit = f" {head.unit}" if head.unit else ""
    gain = f"{fmt.fmt_signed(head.points, 1)}{unit}"
    span = ""
    if head.points_ci:
        low, high = (fmt.fmt_signed(bound, 1) for bound in head.points_ci)
        span = f" (95% CI {low} to {high})"
    where = paired.metric_label(head.metric).lower()
    if head.task:
        where += f" on {head.task}"
    if head.verdict == "better":
        return f"improves {where} by {gain}{span}: beyond chance."
    if head.verdict == "worse":
        return f"lowers {where} by {gain}{span}: beyond chance."
    return f"changes {where} by {gain}{span}: within noise, the interval includes zero."


# ---------------------------------------------------------------- per-task details


def _confusion_labels(score: dict[str, Any]) -> list[str] | None:
    return (_metrics(score).get("confusion") or {}).get("labels")


def confusion_matrix(score: dict[str, Any]) -> dict[str, Any] | None:
    """``{"labels": [...], "matrix": [[...]]}`` of a score row (rows gold), or None.

    Only choice and rating tasks store a confusion matrix.
    """
    confusion = _metrics(score).get("confusion")
    if not confusion or not confusion.get("labels"):
        return None
    return {"labels": list(confusion["labels"]), "matrix": confusion["matrix"]}


@dataclass(frozen=True)
class TaskDetail:
    """One task of a comparison, item by item."""

    task: str
    base_score: dict[str, Any]
    tuned_score: dict[str, Any]
    tally: dict[str, int]  # win / loss / tie counts
    flips: pd.DataFrame  # paired.flipped_items
    base_confusion: dict[str, Any] | None
    tuned_confusion: dict[str, Any] | None
    slices: dict[str, Any] | None = None  # slices.compare: per-slice change, gaps, verdicts
    baseline: dict[str, Any] | None = None  # baselines.baseline_score on the same items


# ---------------------------------------------------------------- the training record


NO_ENERGY = "not measured: no NVIDIA GPU"


def training_facts(entry: registry.ModelEntry) -> dict[str, Any]:
    """The training record of a fine-tuned model, from its card (missing facts are None)."""
    card = entry.card or {}
    energy_wh = card.get("energy_wh")
    keys = (
        "train_seconds",
        "wall_seconds",
        "tokens_per_s",
        "peak_memory_mb",
        "train_tokens",
        "steps",
        "status",
        "final_train_loss",
        "final_val_loss",
        "best_val_loss",
        "train_examples",
        "total_params",
        "device",
        "dtype",
        "task",
        "hyperparameters",
    )
    facts = {key: card.get(key) for key in keys}
    facts.update(
        method=entry.method or card.get("method"),
        trainable_params=entry.trainable_params or card.get("trainable_params"),
        trained_on_task=entry.trained_on_task or card.get("task"),
        adapter_path=entry.adapter_path,
        energy_wh=energy_wh,
        energy_kwh=energy_wh / 1000 if energy_wh is not None else None,
        energy_note=None if energy_wh is not None else NO_ENERGY,
        resources=card.get("resources"),  # utilisation figures (core.analysis.utilisation)
    )
    return facts


def finetune_command(entry: registry.ModelEntry) -> str | None:
    """The ``finboard finetune-compare`` command that trains the same adapter again.

    Every setting that differs from the defaults is passed with ``--set``.
    """
    from core.training.config import TrainConfig

    if not entry.is_finetuned or not entry.base_model_id or not entry.trained_on_task:
        return None
    hyper = (entry.card or {}).get("hyperparameters") or {}
    defaults = TrainConfig().to_dict()
    known = {f.name for f in fields(TrainConfig)}
    parts = ["finboard", "finetune-compare", "--model", entry.base_model_id]
    parts += ["--task", entry.trained_on_task, "--method", hyper.get("method") or entry.method]
    for key in sorted(known & set(hyper) - {"method"}):
        if hyper[key] != defaults[key]:
            value = str(hyper[key]).lower() if isinstance(hyper[key], bool) else hyper[key]
            parts += ["--set", f"{key}={value}"]
    return shlex.join(str(p) for p in parts)


def training_curve(db: Database, entry: registry.ModelEntry) -> list[dict[str, Any]]:
    """Train / validation loss by step of the job that trained ``entry`` ([] if unknown)."""
    return queue.training_curve(db, entry.job_id) if entry.job_id else []


# ---------------------------------------------------------------- the view model


@dataclass(frozen=True)
class ComparisonView:
    """Everything the Comparison page and the HTML report show about one pair."""

    base_id: str
    base_name: str
    tuned: registry.ModelEntry
    table: pd.DataFrame
    headline: Headline | None
    tasks: list[TaskDetail] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    finetune_command: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def tuned_name(self) -> str:
        return self.tuned.display_name

    @property
    def empty(self) -> bool:
        return self.table.empty


def build_view(
    db: Database, base_model_id: str, tuned_model_id: str, seed: int = 0
) -> ComparisonView:
    """The comparison of ``tuned_model_id`` with ``base_model_id`` (see the module docstring)."""
    tuned = registry.get_model(tuned_model_id, db)
    names = registry.display_names(db)
    matches = matched_scores(db, base_model_id, tuned_model_id, tuned.trained_on_task)
    items = {m["task"]: paired_items(db, m["base"]["id"], m["tuned"]["id"]) for m in matches}
    table = comparison_table(matches, items, seed)
    details = [
        TaskDetail(
            task=m["task"],
            base_score=m["base"],
            tuned_score=m["tuned"],
            tally=paired.win_loss_tie(items[m["task"]]),
            flips=paired.flipped_items(items[m["task"]]),
            base_confusion=confusion_matrix(m["base"]),
            tuned_confusion=confusion_matrix(m["tuned"]),
            slices=slices.compare(
                m["base"], m["tuned"], items[m["task"]], _confusion_labels(m["base"]), seed
            ),
            baseline=baselines.for_score(m["tuned"], seed),
        )
        for m in matches
    ]
    versions = json.loads(matches[0]["tuned"].get("versions_json") or "{}") if matches else {}
    return ComparisonView(
        base_id=base_model_id,
        base_name=names.get(base_model_id, base_model_id),
        tuned=tuned,
        table=table,
        headline=headline(table, tuned.trained_on_task),
        tasks=details,
        facts=training_facts(tuned),
        curve=training_curve(db, tuned),
        finetune_command=finetune_command(tuned),
        versions=versions,
    )
