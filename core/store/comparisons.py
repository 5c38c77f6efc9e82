"""Base-vs-fine-tuned pairs: each row points at two score rows measured on the same items.

>>> from core.store import connect
>>> db = connect(":memory:")
>>> pair_id = insert(db, base_model_id="b", finetuned_model_id="t", task="x",
...                  base_score_id=1, finetuned_score_id=2)
>>> [(row["base_score_id"], row["finetuned_score_id"]) for row in newest_first(db)]
[(1, 2)]
"""

from __future__ import annotations

from typing import Any

from core.store import Database, now_iso


def insert(
    db: Database,
    *,
    base_model_id: str,
    finetuned_model_id: str,
    task: str,
    base_score_id: int,
    finetuned_score_id: int,
    seconds: float | None = None,
    job_id: int | None = None,
) -> int:
    """Store one comparison; returns its id."""
    row = {
        "base_model_id": base_model_id,
        "finetuned_model_id": finetuned_model_id,
        "task": task,
        "base_score_id": base_score_id,
        "finetuned_score_id": finetuned_score_id,
        "seconds": seconds,
        "job_id": job_id,
        "created_at": now_iso(),
    }
    with db.conn:
        return int(db["comparisons"].insert(row).last_pk)


def newest_first(db: Database) -> list[dict[str, Any]]:
    """Every stored comparison, newest first."""
    return list(db.query("select * from comparisons order by id desc"))


def for_pair(db: Database, base_model_id: str, finetuned_model_id: str) -> list[dict[str, Any]]:
    """The comparisons stored for this pair of models, newest first."""
    return list(
        db.query(
            "select * from comparisons where base_model_id = ? and finetuned_model_id = ? "
            "order by id desc",
            [base_model_id, finetuned_model_id],
        )
    )
