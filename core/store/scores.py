"""Score rows and their per-item predictions: every read and write of ``scores``/``predictions``.

>>> from core.store import connect
>>> db = connect(":memory:")
>>> score_id = insert(db, {"model_id": "m", "task": "t", "split": "test", "n_items": 1,
...                        "primary_value": 1.0}, [{"item_id": "a", "position": 0, "correct": 1}])
>>> get(db, score_id)["model_id"], [p["item_id"] for p in predictions(db, score_id)]
('m', ['a'])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.store import Database


def insert(db: Database, score: dict[str, Any], predictions: Iterable[dict[str, Any]]) -> int:
    """Store one score row and its per-item predictions atomically; returns the score id."""
    with db.conn:
        score_id = db["scores"].insert(score).last_pk
        rows = [{**p, "score_id": score_id} for p in predictions]
        db["predictions"].insert_all(rows, batch_size=500)
    return int(score_id)


def get(db: Database, score_id: int) -> dict[str, Any]:
    """One score row; ValueError when there is none."""
    rows = list(db.query("select * from scores where id = ?", [score_id]))
    if not rows:
        raise ValueError(f"There is no score #{score_id} in the store.")
    return rows[0]


def latest_id(db: Database) -> int:
    """The newest score id (0 for none): a cheap cache key that changes when a score lands."""
    return int(db.execute("select coalesce(max(id), 0) from scores").fetchone()[0])


def for_model(db: Database, model_id: str) -> list[dict[str, Any]]:
    """Every stored score of a model, newest first."""
    return list(db.query("select * from scores where model_id = ? order by id desc", [model_id]))


def for_models(db: Database, model_ids: Sequence[str], split: str) -> list[dict[str, Any]]:
    """Every score of these models on ``split``, newest first."""
    marks = ", ".join("?" * len(model_ids))
    query = f"select * from scores where model_id in ({marks}) and split = ? order by id desc"
    return list(db.query(query, [*model_ids, split]))


def latest_per_model_task(
    db: Database, split: str, full_only: bool = False, limited_only: bool = False
) -> list[dict]:
    """The newest score row of each (model, task) on ``split``.

    ``full_only``: only scores of the whole split; ``limited_only``: only ``--limit`` ones.
    """
    where = "split = ?"
    if full_only:
        where += " and item_limit is null"
    if limited_only:
        where += " and item_limit is not null"
    query = f"""
        select * from scores where id in (
            select max(id) from scores where {where} group by model_id, task
        ) order by model_id, task
    """
    return list(db.query(query, [split]))


def find_reusable(
    db: Database,
    *,
    model_id: str,
    task: str,
    task_version: int,
    split_fingerprint: str,
    weights_hash: str,
    prompt_hash: str,
) -> dict[str, Any] | None:
    """The newest full test-split score measured exactly so (same weights, task, items, prompt)."""
    rows = list(
        db.query(
            "select * from scores where model_id = ? and task = ? and task_version = ? "
            "and split = 'test' and split_fingerprint = ? and weights_hash = ? "
            "and prompt_hash = ? and item_limit is null order by id desc limit 1",
            [model_id, task, task_version, split_fingerprint, weights_hash, prompt_hash],
        )
    )
    return rows[0] if rows else None


def has_full_score(
    db: Database, model_id: str, task: str, task_version: int, prompt_hash: str
) -> bool:
    """Whether a full test-split score of this model, task version and prompt is stored."""
    row = db.execute(
        "select 1 from scores where model_id = ? and task = ? and task_version = ? "
        "and prompt_hash = ? and split = 'test' and item_limit is null limit 1",
        [model_id, task, task_version, prompt_hash],
    ).fetchone()
    return row is not None


def latest_items_per_s(db: Database, model_id: str, task: str) -> float | None:
    """The newest measured evaluation speed of a model on a task."""
    row = db.execute(
        "select items_per_s from scores where model_id = ? and task = ? and items_per_s > 0 "
        "order by id desc limit 1",
        [model_id, task],
    ).fetchone()
    return float(row[0]) if row else None


def timed(db: Database, model_id: str) -> list[dict[str, Any]]:
    """A model's scores that measured a speed, newest first (what throughput figures use)."""
    return list(
        db.query(
            "select id, task, device, n_items, items_per_s, latency_p50_ms, latency_p95_ms, "
            "job_id, created_at from scores where model_id = ? and items_per_s > 0 "
            "and n_items > 0 order by id desc",
            [model_id],
        )
    )


def items_of_job(db: Database, job_id: int) -> int:
    """How many items a job's scores cover."""
    query = "select coalesce(sum(n_items), 0) from scores where job_id = ?"
    return int(db.execute(query, [job_id]).fetchone()[0])


def model_ids(db: Database) -> list[str]:
    """Every model id that has a score, in id order."""
    return [row[0] for row in db.execute("select distinct model_id from scores order by model_id")]


def predictions(db: Database, score_id: int, wrong_only: bool = False) -> list[dict[str, Any]]:
    """The per-item results of one score, in item order; only the wrong ones if asked."""
    where = "score_id = ?" + (" and correct = 0" if wrong_only else "")
    return list(db.query(f"select * from predictions where {where} order by position", [score_id]))


def prediction_sizes(db: Database, score_ids: Sequence[int]) -> tuple[float | None, float | None]:
    """The average prompt and output length in characters over these scores' items."""
    marks = ", ".join("?" * len(score_ids))
    row = db.execute(
        "select avg(length(prompt)), avg(length(coalesce(raw_output, ''))) from predictions "
        f"where score_id in ({marks})",
        list(score_ids),
    ).fetchone()
    return row[0], row[1]


def paired_predictions(db: Database, base_score_id: int, tuned_score_id: int) -> list[dict]:
    """Two scores' predictions joined on item id, in the first score's item order."""
    query = """
        select b.item_id, b.position, b.prompt, b.gold,
               b.parsed as base_parsed, b.raw_output as base_output, b.correct as base_correct,
               t.parsed as tuned_parsed, t.raw_output as tuned_output, t.correct as tuned_correct
        from predictions b join predictions t on t.item_id = b.item_id
        where b.score_id = ? and t.score_id = ?
        order by b.position
    """
    return list(db.query(query, [base_score_id, tuned_score_id]))
