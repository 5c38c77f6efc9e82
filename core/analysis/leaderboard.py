"""The leaderboard: every model's latest score on each task, ranked by overall score.

    >>> from core.store import connect
    >>> table = leaderboard(connect(":memory:"))
    >>> list(table.columns)[:4]
    ['rank', 'model_id', 'display_name', 'kind']

Only full test-split scores count: a ``--limit`` smoke test is listed apart (``smoke_tests``),
never ranked. The overall score is the mean of each task's primary metric; primary metrics are
all higher-is-better. Its interval is the mean of the tasks' interval bounds: wider (more
cautious) than a bootstrap interval of the mean would be.

Models are ranked on the same tasks: a model scored on every task of the table is
``complete`` and ranked with the other complete ones; one scored on fewer tasks is marked
partial (``tasks_scored``) and ranked apart, below them, among the partial ones, because a
mean over other tasks is not comparable. A model's rank is 1 + the number of models of its
group that are better beyond doubt (their overall interval lies wholly above its own), so
models whose intervals overlap share a rank instead of getting false ranks.
"""

from __future__ import annotations

import pandas as pd

from core.models import registry
from core.store import Database
from core.store import scores as score_rows

BASE_COLUMNS = [
    *("rank", "model_id", "display_name", "kind", "base_model_id", "method", "params"),
    *("trained_on_task", "overall", "overall_low", "overall_high", "tasks_scored", "complete"),
    "model_type",  # LLM / encoder (scored by its heads) / external / baseline
]


def latest_scores(db: Database, split: str = "test") -> pd.DataFrame:
    """The newest full-split score row for each (model, task) on ``split``."""
    return pd.DataFrame(score_rows.latest_per_model_task(db, split, full_only=True))


def smoke_tests(db: Database, split: str = "test") -> pd.DataFrame:
    """The newest ``--limit`` score of each (model, task): shown apart, never ranked."""
    rows = score_rows.latest_per_model_task(db, split, limited_only=True)
    return pd.DataFrame(rows)


def _model_info(db: Database) -> pd.DataFrame:
    rows = [
        {
            "model_id": e.id,
            "display_name": e.display_name,
            "kind": e.kind,
            "base_model_id": e.base_model_id,
            "method": e.method,
            "params": e.params,
            "trained_on_task": e.trained_on_task,
            "model_type": "encoder" if e.model_kind == "encoder" else "LLM",
        }
        for e in registry.list_models(db)
    ]
    return pd.DataFrame(rows, columns=[*BASE_COLUMNS[1:8], "model_type"])


def _name_pseudo_models(table: pd.DataFrame) -> pd.DataFrame:
    """Display name, kind and type of the baseline's and imported predictions' rows."""
    for index, model_id in table["model_id"].items():
        found = registry.pseudo_model(str(model_id))
        if found is not None:
            table.loc[index, ["display_name", "kind"]] = found
            table.loc[index, "model_type"] = found[1].split()[0]
    return table


def rank_with_ties(low: pd.Series, high: pd.Series) -> pd.Series:
    """1 + how many others have an interval wholly above this one."""
    return pd.Series([1 + int((low > h).sum()) for h in high], index=low.index)


def rank(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` ranked: complete rows among themselves first, then the partial ones apart.

    Call it again on a filtered table to rank the shown models among themselves.
    """
    if table.empty:
        return table
    table = table.copy()
    table["rank"] = 0
    for complete in (True, False):
        group = table["complete"] == complete
        if not group.any():
            continue
        table.loc[group, "rank"] = rank_with_ties(
            table.loc[group, "overall_low"], table.loc[group, "overall_high"]
        )
    order = ["complete", "rank", "overall"]
    return table.sort_values(order, ascending=[False, True, False]).reset_index(drop=True)


def leaderboard(db: Database, tasks: list[str] | None = None, split: str = "test") -> pd.DataFrame:
    """One row per scored model: per-task primary metric with its CI, overall, rank."""
    scores = latest_scores(db, split)
    if scores.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    if tasks:
        scores = scores[scores["task"].isin(tasks)]
    if scores.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    wide = scores.pivot(
        index="model_id", columns="task", values=["primary_value", "ci_low", "ci_high"]
    )
    table = pd.DataFrame(index=wide.index)
    for task in sorted(scores["task"].unique()):
        table[task] = wide["primary_value"][task]
        table[f"{task}_low"] = wide["ci_low"][task]
        table[f"{task}_high"] = wide["ci_high"][task]
    task_names = sorted(scores["task"].unique())
    table["overall"] = table[task_names].mean(axis=1)
    table["overall_low"] = table[[f"{t}_low" for t in task_names]].mean(axis=1)
    table["overall_high"] = table[[f"{t}_high" for t in task_names]].mean(axis=1)
    table["tasks_scored"] = table[task_names].notna().sum(axis=1)
    table["complete"] = table["tasks_scored"] == len(task_names)
    table = table.reset_index()
    info = _model_info(db)
    table = _name_pseudo_models(table.merge(info, on="model_id", how="left"))
    table["display_name"] = table["display_name"].fillna(table["model_id"])
    table["kind"] = table["kind"].fillna("unregistered")
    table = rank(table)
    extra = [c for c in table.columns if c not in BASE_COLUMNS]
    return table[BASE_COLUMNS + extra]


def task_columns(table: pd.DataFrame) -> list[str]:
    """The task names present in a leaderboard table."""
    return [c for c in table.columns if c not in BASE_COLUMNS and not c.endswith(("_low", "_high"))]


def score_details(db: Database, model_id: str) -> list[dict]:
    """Every stored score of a model, newest first (the reproducibility card)."""
    return score_rows.for_model(db, model_id)


def latest_score_id(db: Database) -> int:
    """The newest score id (0 for none): a cheap cache key that changes when a score lands."""
    return score_rows.latest_id(db)


def predictions(db: Database, score_id: int, wrong_only: bool = False) -> pd.DataFrame:
    """The per-item results of one score, in item order; only the wrong ones if asked."""
    return pd.DataFrame(score_rows.predictions(db, score_id, wrong_only))
