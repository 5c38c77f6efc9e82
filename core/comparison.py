"""Base vs fine-tuned on the same items: deltas with paired confidence intervals, flips, facts.

    >>> from core.store import connect
    >>> db = connect(":memory:")
    >>> pairs(db), latest_pair(db)
    ([], None)
    >>> result = paired_delta_ci([0, 0, 1, 1], [1, 0, 1, 1])
    >>> result["delta"]
    0.25

Both models of a comparison are scored on the same test items (equal split fingerprints), so
the uncertainty of a difference comes from a *paired* bootstrap: each resample draws item
indices once and applies them to both models. That interval is usually narrower than the two
scores' own intervals suggest, because most items are easy or hard for both models alike.

``comparison_table`` gives one row per (task, metric) plus an Overall row. Its
"Improvement" is fine-tuned minus base with the sign flipped for lower-is-better metrics
(unparseable rate, MAE), so a positive improvement always means the fine-tuned model is better;
the 95% CI is of that same quantity.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
import warnings
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd
import sqlite_utils

from core import registry
from core.evaluation import metrics as m

# metric key -> (label, higher is better)
METRIC_INFO: dict[str, tuple[str, bool]] = {
    "accuracy": ("Accuracy", True),
    "macro_f1": ("Macro-F1", True),
    "uncalibrated_accuracy": ("Accuracy before calibration", True),
    "unparseable_rate": ("Unparseable rate", False),
    "mae": ("Mean absolute error", False),
}
LOWER_IS_BETTER_HINTS = ("rate", "error", "mae", "loss", "latency")
OVERALL = "Overall"
TABLE_COLUMNS = [
    "Metric", "Task", "Base", "Fine-tuned", "Improvement", "95% CI of the difference",
    "metric", "higher_is_better", "primary", "verdict", "n_items", "base_score_id",
    "tuned_score_id", "base_ci", "tuned_ci",
]  # fmt: skip
NO_ENERGY = "not measured: no NVIDIA GPU"


# ---------------------------------------------------------------- which pairs exist


def _table_exists(db: sqlite_utils.Database, name: str) -> bool:
    return db[name].exists()


def display_names(db: sqlite_utils.Database) -> dict[str, str]:
    """Model id -> display name, for every model the registry (or the store) knows."""
    names: dict[str, str] = {}
    if _table_exists(db, "models"):
        names.update({r["id"]: r["display_name"] for r in db.query("select * from models")})
    with contextlib.suppress(registry.RegistryError):  # an unreadable config: ids will do
        names.update({e.id: e.display_name for e in registry.base_models()})
    return names


def pairs(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every stored base-vs-fine-tuned comparison, newest first, with both display names.

    >>> pairs(db)[0]["finetuned_name"]  # doctest: +SKIP
    'SmolLM2 135M Instruct + lora (fin_sentiment)'
    """
    if not _table_exists(db, "comparisons"):
        return []
    names = display_names(db)
    rows = [dict(r) for r in db.query("select * from comparisons order by id desc")]
    for row in rows:
        row["base_name"] = names.get(row["base_model_id"], row["base_model_id"])
        row["finetuned_name"] = names.get(row["finetuned_model_id"], row["finetuned_model_id"])
    return rows


def latest_pair(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The newest comparison row (see ``pairs``), or None when there is none."""
    found = pairs(db)
    return found[0] if found else None


def finetuned_by_base(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """Base model id -> its registered fine-tuned model ids, newest first.

    >>> finetuned_by_base(db)  # doctest: +SKIP
    {'smollm2-135m-instruct': ['smollm2-135m-instruct-fin_sentiment-lora-20250101-120000']}

    Only models whose base is still in the models config (``registry.finetuned_models``).
    """
    if not _table_exists(db, "models"):
        return {}
    result: dict[str, list[str]] = {}
    for entry in registry.finetuned_models(db):
        result.setdefault(str(entry.base_model_id), []).append(entry.id)
    return result


# ---------------------------------------------------------------- the same items, side by side


def _score(db: sqlite_utils.Database, score_id: int) -> dict[str, Any]:
    rows = list(db.query("select * from scores where id = ?", [score_id]))
    if not rows:
        raise ValueError(f"There is no score #{score_id} in the store.")
    return rows[0]


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


def paired_items(
    db: sqlite_utils.Database, base_score_id: int, tuned_score_id: int
) -> pd.DataFrame:
    """Both scores' per-item predictions joined on item_id, in item order.

    >>> frame = paired_items(db, 2, 3)  # doctest: +SKIP
    >>> list(frame.columns)[:5]          # doctest: +SKIP
    ['item_id', 'position', 'prompt', 'gold', 'base_parsed']

    Raises ValueError when the two scores were not measured on the same items.
    """
    check_same_items(_score(db, base_score_id), _score(db, tuned_score_id))
    query = """
        select b.item_id, b.position, b.prompt, b.gold,
               b.parsed as base_parsed, b.raw_output as base_output, b.correct as base_correct,
               t.parsed as tuned_parsed, t.raw_output as tuned_output, t.correct as tuned_correct
        from predictions b join predictions t on t.item_id = b.item_id
        where b.score_id = ? and t.score_id = ?
        order by b.position
    """
    columns = ["item_id", "position", "prompt", "gold", "base_parsed", "base_output",
               "base_correct", "tuned_parsed", "tuned_output", "tuned_correct"]  # fmt: skip
    rows = list(db.query(query, [base_score_id, tuned_score_id]))
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------- paired bootstrap


def _interval(samples: np.ndarray) -> list[float] | None:
    finite = samples[np.isfinite(samples)]
    return m.percentile_interval(finite) if finite.size else None


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample with no parsed answer
        return np.nanmean(values, axis=-1)


def paired_mean_samples(
    base_values: Any, tuned_values: Any, seed: int = 0
) -> tuple[float, np.ndarray]:
    """(tuned mean - base mean, its bootstrap samples); NaN values (no answer) are skipped."""
    base = np.asarray(base_values, dtype=float)
    tuned = np.asarray(tuned_values, dtype=float)
    if base.shape != tuned.shape:
        raise ValueError("paired values need one base and one fine-tuned value per item")
    if base.size == 0:
        return float("nan"), np.array([])
    idx = m.resample_indices(base.size, seed)
    delta = float(_nanmean_rows(tuned) - _nanmean_rows(base))
    return delta, _nanmean_rows(tuned[idx]) - _nanmean_rows(base[idx])


def paired_delta_ci(base_correct: Any, tuned_correct: Any, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap 95% CI of tuned accuracy minus base accuracy over the same items.

    >>> paired_delta_ci([1, 0, 0, 1], [1, 1, 0, 1])["delta"]
    0.25

    Item indices are resampled once per resample and applied to both models.
    """
    delta, samples = paired_mean_samples(base_correct, tuned_correct, seed)
    ci = _interval(samples) if samples.size else None
    return {"delta": delta, "ci": ci or [float("nan"), float("nan")]}


def paired_statistic_samples(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    base: np.ndarray,
    tuned: np.ndarray,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Like ``paired_mean_samples`` for any statistic(values, indices) (e.g. macro-F1)."""
    n = len(base)
    if n == 0:
        return float("nan"), np.array([])
    everything = np.arange(n)
    delta = statistic(tuned, everything) - statistic(base, everything)
    samples = [statistic(tuned, idx) - statistic(base, idx) for idx in m.resample_indices(n, seed)]
    return float(delta), np.array(samples, dtype=float)


# ---------------------------------------------------------------- wins, losses, flips


def win_loss_tie(df: pd.DataFrame) -> dict[str, int]:
    """Items the fine-tuned model got right and the base wrong (win), the opposite (loss), same (tie).

    >>> win_loss_tie(pd.DataFrame({"base_correct": [1, 0, 1, 0], "tuned_correct": [1, 1, 0, 0]}))
    {'win': 1, 'loss': 1, 'tie': 2, 'both_right': 1, 'both_wrong': 1, 'n': 4}
    """
    base = df["base_correct"].astype(bool) if len(df) else pd.Series(dtype=bool)
    tuned = df["tuned_correct"].astype(bool) if len(df) else pd.Series(dtype=bool)
    win, loss = int((tuned & ~base).sum()), int((base & ~tuned).sum())
    both_right, both_wrong = int((tuned & base).sum()), int((~tuned & ~base).sum())
    return {
        "win": win,
        "loss": loss,
        "tie": both_right + both_wrong,
        "both_right": both_right,
        "both_wrong": both_wrong,
        "n": len(df),
    }


def flipped_items(df: pd.DataFrame) -> pd.DataFrame:
    """The items whose verdict changed; ``flip`` is "win" (now right) or "loss" (now wrong).

    >>> frame = pd.DataFrame({"item_id": ["a", "b"], "position": [0, 1], "prompt": ["p", "q"],
    ...     "gold": ["x", "y"], "base_parsed": ["x", "x"], "base_output": ["x", "x"],
    ...     "base_correct": [1, 0], "tuned_parsed": ["y", "y"], "tuned_output": ["y", "y"],
    ...     "tuned_correct": [0, 1]})
    >>> flipped_items(frame)[["item_id", "flip"]].values.tolist()
    [['a', 'loss'], ['b', 'win']]
    """
    columns = ["item_id", "position", "flip", "prompt", "gold", "base_answer", "tuned_answer",
               "base_output", "tuned_output"]  # fmt: skip
    if df.empty:
        return pd.DataFrame(columns=columns)
    changed = df[df["base_correct"].astype(bool) != df["tuned_correct"].astype(bool)]
    return pd.DataFrame(
        {
            "item_id": changed["item_id"],
            "position": changed["position"],
            "flip": np.where(changed["tuned_correct"].astype(bool), "win", "loss"),
            "prompt": changed["prompt"],
            "gold": changed["gold"],
            "base_answer": changed["base_parsed"],
            "tuned_answer": changed["tuned_parsed"],
            "base_output": changed["base_output"],
            "tuned_output": changed["tuned_output"],
        },
        columns=columns,
    ).reset_index(drop=True)


CHAT_MARKUP = re.compile(r"<\|[^|<>]{1,40}\|>|</?s>")


def prompt_snippet(prompt: Any, length: int = 160) -> str:
    """The item part of a prompt on one line: its last paragraph, without chat markup.

    The instruction (and any few-shot examples) come first, separated by blank lines; the
    last paragraph holds the item itself. Longer snippets are cut at ``length`` with "…".

    >>> prompt_snippet("<|user|>Classify.\\n\\nSentence: Shares fell sharply.\\nSentiment:<|end|>")
    'Sentence: Shares fell sharply. Sentiment:'
    """
    text = CHAT_MARKUP.sub(" ", str(prompt or "")).strip()
    last = re.split(r"\n\s*\n", text)[-1]
    text = " ".join((last if len(last.strip()) >= 20 else text).split())
    return text if len(text) <= length else text[:length].rstrip() + "…"


# ---------------------------------------------------------------- the comparison table


def higher_is_better(metric: str) -> bool:
    """Whether a bigger value of ``metric`` is better (rates, errors and losses: lower is)."""
    if metric in METRIC_INFO:
        return METRIC_INFO[metric][1]
    return not any(hint in metric for hint in LOWER_IS_BETTER_HINTS)


def metric_label(metric: str) -> str:
    return METRIC_INFO.get(metric, (metric.replace("_", " ").capitalize(), True))[0]


def matched_scores(
    db: sqlite_utils.Database, base_model_id: str, tuned_model_id: str, split: str = "test"
) -> list[dict[str, Any]]:
    """Per task both models were scored on, the two score rows measured on the same items.

    Returns ``[{"task": ..., "base": score_row, "tuned": score_row}]``: the task the model was
    fine-tuned on first, then the others by name. Among
    the pairs with equal split fingerprints the one on the most items wins, then the newest
    (so a quick ``--limit`` run does not hide a full comparison).
    """
    rows = list(
        db.query(
            "select * from scores where model_id in (?, ?) and split = ? order by id desc",
            [base_model_id, tuned_model_id, split],
        )
    )
    result = []
    for task in sorted({r["task"] for r in rows}):
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
    trained = _trained_on_task(db, tuned_model_id)
    return sorted(result, key=lambda match: match["task"] != trained)  # stable: by name after


def _metrics(score: dict[str, Any]) -> dict[str, Any]:
    return json.loads(score.get("metrics_json") or "{}")


def _scalar_metrics(report: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value["value"])
        for name, value in report.items()
        if isinstance(value, dict) and "value" in value and value["value"] is not None
    }


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _macro_f1_statistic(gold: pd.Series, labels: list[str]) -> Callable | None:
    index = {label: i for i, label in enumerate(labels)}
    if not set(gold) <= set(index):
        return None
    gold_idx = np.array([index[g] for g in gold], dtype=int)

    def statistic(pred: np.ndarray, idx: np.ndarray) -> float:
        # m._confusion / m._macro_f1 are the very functions that made the stored macro-F1
        return m._macro_f1(m._confusion(gold_idx[idx], pred[idx], len(labels)))

    return statistic


def _raw_choice(raw: Any, labels: list[str]) -> str | None:
    """The label with the highest raw log-likelihood in a choice task's stored raw output.

    >>> _raw_choice("up=-1.5 down=-0.25", ["up", "down"])
    'down'
    """
    scores = {}
    for part in str(raw or "").split(" "):
        label, _, value = part.rpartition("=")
        scores[label] = _as_float(value)
    if set(scores) != set(labels) or any(math.isnan(v) for v in scores.values()):
        return None
    return max(labels, key=scores.__getitem__)


def metric_samples(
    metric: str, items: pd.DataFrame, labels: list[str] | None, seed: int = 0
) -> tuple[float, np.ndarray] | None:
    """(tuned - base, bootstrap samples) of one metric on paired items; None if not derivable."""
    if items.empty:
        return None
    if metric == "accuracy":
        return paired_mean_samples(items["base_correct"], items["tuned_correct"], seed)
    if metric == "unparseable_rate":
        return paired_mean_samples(items["base_parsed"].isna(), items["tuned_parsed"].isna(), seed)
    if metric == "mae":
        gold = items["gold"].map(_as_float).to_numpy()
        base = np.abs(items["base_parsed"].map(_as_float).to_numpy() - gold)
        tuned = np.abs(items["tuned_parsed"].map(_as_float).to_numpy() - gold)
        return paired_mean_samples(base, tuned, seed)
    if metric == "uncalibrated_accuracy" and labels:
        base = [_raw_choice(raw, labels) for raw in items["base_output"]]
        tuned = [_raw_choice(raw, labels) for raw in items["tuned_output"]]
        if None in base or None in tuned:
            return None
        gold = items["gold"].tolist()
        return paired_mean_samples(
            [b == g for b, g in zip(base, gold)], [t == g for t, g in zip(tuned, gold)], seed
        )
    if metric == "macro_f1" and labels:
        statistic = _macro_f1_statistic(items["gold"], labels)
        index = {label: i for i, label in enumerate(labels)}
        answers = pd.concat([items["base_parsed"], items["tuned_parsed"]])
        if statistic is None or not set(answers) <= set(index):
            return None
        base = np.array([index[p] for p in items["base_parsed"]], dtype=int)
        tuned = np.array([index[p] for p in items["tuned_parsed"]], dtype=int)
        return paired_statistic_samples(statistic, base, tuned, seed)
    return None


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


def _verdict(ci: list[float] | None) -> str:
    if ci is None:
        return "no interval"
    if ci[0] > 0:
        return "better"
    if ci[1] < 0:
        return "worse"
    return "no clear change"


def _task_rows(db: sqlite_utils.Database, match: dict[str, Any], seed: int) -> tuple[list, Any]:
    base, tuned = match["base"], match["tuned"]
    base_report, tuned_report = _metrics(base), _metrics(tuned)
    base_values, tuned_values = _scalar_metrics(base_report), _scalar_metrics(tuned_report)
    items = paired_items(db, base["id"], tuned["id"])
    labels = (base_report.get("confusion") or {}).get("labels")
    primary = base["primary_metric"]
    names = [primary] + sorted(n for n in base_values if n in tuned_values and n != primary)
    rows, primary_samples = [], None
    for name in names:
        sign = 1.0 if higher_is_better(name) else -1.0
        found = metric_samples(name, items, labels, seed)
        samples = sign * found[1] + 0.0 if found is not None else None  # + 0.0: no -0.0
        ci = _interval(samples) if samples is not None and samples.size else None
        if name == primary:
            primary_samples = samples
        rows.append(
            {
                "Metric": metric_label(name),
                "Task": match["task"],
                "Base": base_values.get(name, float("nan")),
                "Fine-tuned": tuned_values.get(name, float("nan")),
                "Improvement": sign
                * (tuned_values.get(name, math.nan) - base_values.get(name, math.nan))
                + 0.0,
                "95% CI of the difference": ci,
                "metric": name,
                "higher_is_better": sign > 0,
                "primary": name == primary,
                "verdict": _verdict(ci),
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
        ci = _interval(np.mean(np.vstack(samples), axis=0))
    return {
        "Metric": f"{OVERALL} (mean of primary metrics)",
        "Task": f"all {len(primary)} task{'s' if len(primary) != 1 else ''}",
        "Base": float(np.mean([r["Base"] for r in primary])),
        "Fine-tuned": float(np.mean([r["Fine-tuned"] for r in primary])),
        "Improvement": float(np.mean([r["Improvement"] for r in primary])),
        "95% CI of the difference": ci,
        "metric": "overall",
        "higher_is_better": True,
        "primary": True,
        "verdict": _verdict(ci),
        "n_items": int(sum(r["n_items"] for r in primary)),
        "base_score_id": None,
        "tuned_score_id": None,
        "base_ci": _mean_ci([r["base_ci"] for r in primary]),
        "tuned_ci": _mean_ci([r["tuned_ci"] for r in primary]),
    }


def _trained_on_task(db: sqlite_utils.Database, model_id: str) -> str | None:
    if not _table_exists(db, "models"):
        return None
    row = db.execute("select trained_on_task from models where id = ?", [model_id]).fetchone()
    return row[0] if row else None


def comparison_table(
    db: sqlite_utils.Database, base_model_id: str, tuned_model_id: str, seed: int = 0
) -> pd.DataFrame:
    """Every metric of every task both models were scored on, plus an Overall row (last).

    Tasks come in ``matched_scores`` order (the one it was fine-tuned on first), each with its
    primary metric first.

    >>> table = comparison_table(db, "smollm2-135m-instruct", tuned_id)  # doctest: +SKIP
    >>> table[["Metric", "Task", "Base", "Fine-tuned", "Improvement"]]  # doctest: +SKIP

    Columns: Metric / Task / Base / Fine-tuned / Improvement / "95% CI of the difference"
    ([low, high] or None), then ``metric`` (the key), ``higher_is_better``, ``primary``,
    ``verdict`` ("better" / "worse" / "no clear change": whether the CI excludes 0),
    ``n_items`` and both score ids. Empty (with those columns) when no task was scored on the
    same items for both models.
    """
    rows: list[dict[str, Any]] = []
    samples: list[Any] = []
    for match in matched_scores(db, base_model_id, tuned_model_id):
        task_rows, primary_samples = _task_rows(db, match, seed)
        rows += task_rows
        samples.append(primary_samples)
    if not rows:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    rows.append(_overall_row(rows, samples))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"base_score_id": "Int64", "tuned_score_id": "Int64"})


def headline(table: pd.DataFrame, task: str | None = None) -> dict[str, Any] | None:
    """The primary-metric row of ``task`` (else the Overall row), with the gain in points.

    Metrics between 0 and 1 are shown in points (x100): +4.5 points of accuracy.
    """
    if table.empty:
        return None
    chosen = table[(table["Task"] == task) & table["primary"]] if task else table.iloc[0:0]
    row = (chosen if not chosen.empty else table[table["metric"] == "overall"]).iloc[0]
    bounded = all(0 <= v <= 1 for v in (row["Base"], row["Fine-tuned"]) if not math.isnan(v))
    scale = 100.0 if bounded else 1.0
    ci = row["95% CI of the difference"]
    return {
        "task": row["Task"],
        "metric": row["Metric"],
        "base": float(row["Base"]),
        "tuned": float(row["Fine-tuned"]),
        "improvement": float(row["Improvement"]),
        "ci": ci,
        "points": float(row["Improvement"]) * scale,
        "points_ci": [ci[0] * scale, ci[1] * scale] if ci else None,
        "unit": "points" if bounded else "",
        "verdict": row["verdict"],
    }


# ---------------------------------------------------------------- per-score details


def confusion_matrices(db: sqlite_utils.Database, score_id: int) -> dict[str, Any] | None:
    """``{"labels": [...], "matrix": [[...]]}`` (rows: gold, columns: predicted), or None.

    Only choice and rating tasks store a confusion matrix.
    """
    confusion = _metrics(_score(db, score_id)).get("confusion")
    if not confusion or not confusion.get("labels"):
        return None
    return {"labels": list(confusion["labels"]), "matrix": confusion["matrix"]}


def training_facts(entry: registry.ModelEntry) -> dict[str, Any]:
    """The training record of a fine-tuned model, from its card (missing facts are None).

    >>> facts = training_facts(get_model(tuned_id, db))  # doctest: +SKIP
    >>> facts["train_seconds"], facts["energy_kwh"], facts["energy_note"]  # doctest: +SKIP
    (10.2, None, 'not measured: no NVIDIA GPU')
    """
    card = entry.card or {}
    energy_wh = card.get("energy_wh")
    keys = ("train_seconds", "wall_seconds", "tokens_per_s", "peak_memory_mb", "train_tokens",
            "steps", "status", "final_train_loss", "final_val_loss", "best_val_loss",
            "train_examples", "total_params", "device", "dtype", "task", "hyperparameters")  # fmt: skip
    facts = {key: card.get(key) for key in keys}
    facts.update(
        method=entry.method or card.get("method"),
        trainable_params=entry.trainable_params or card.get("trainable_params"),
        trained_on_task=entry.trained_on_task or card.get("task"),
        adapter_path=entry.adapter_path,
        energy_wh=energy_wh,
        energy_kwh=energy_wh / 1000 if energy_wh is not None else None,
        energy_note=None if energy_wh is not None else NO_ENERGY,
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


def training_curve(db: sqlite_utils.Database, model_id: str) -> list[dict[str, Any]]:
    """Train / validation loss by step of the job(s) that trained ``model_id``; [] if unknown.

    Jobs are found by ``params_json.new_model_id``; when a job was resumed by a later one, the
    later job's row wins for a step both logged. ``val_loss`` is kept only on the steps where
    it was measured (progress rows repeat the last one). Stores without job tables give [].

    >>> [(r["step"], r["train_loss"], r["val_loss"]) for r in training_curve(db, tuned_id)]  # doctest: +SKIP
    [(1, 6.47, None), (2, 6.38, 6.37), (3, 6.40, None), (4, 6.32, 6.26)]
    """
    if not (_table_exists(db, "jobs") and _table_exists(db, "job_progress")):
        return []
    jobs = [
        row["id"]
        for row in db.query(
            "select id from jobs where json_extract(params_json, '$.new_model_id') = ? order by id",
            [model_id],
        )
    ]
    by_step: dict[int, dict[str, Any]] = {}
    for job_id in jobs:
        for row in db.query(
            "select step, total_steps, epoch, train_loss, val_loss, learning_rate, tokens_per_s, "
            "elapsed_s from job_progress where job_id = ? order by id",
            [job_id],
        ):
            by_step[int(row["step"])] = {**row, "job_id": job_id}
    curve = [by_step[step] for step in sorted(by_step)]
    previous = None
    for row in curve:
        measured = row["val_loss"]
        if measured == previous:
            row["val_loss"] = None
        previous = measured
    return curve
