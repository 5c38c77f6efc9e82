"""Fine-tuned model rows (base models live in configs/models_config.yaml).

>>> from core.store import connect
>>> db = connect(":memory:")
>>> upsert(db, {"id": "m-1", "display_name": "M", "kind": "finetuned", "base_model_id": "b",
...             "method": "lora", "card_json": "{}", "job_id": 4})
>>> get(db, "m-1")["job_id"], get(db, "nope")
(4, None)
"""

from __future__ import annotations

from typing import Any

from core.store import Database, now_iso


def upsert(db: Database, row: dict[str, Any]) -> None:
    """Add (or replace) one fine-tuned model row; ``created_at`` is stamped now."""
    with db.conn:
        db["models"].upsert({**row, "created_at": now_iso()}, pk="id")


def get(db: Database, model_id: str) -> dict[str, Any] | None:
    """The row of ``model_id``, or None."""
    rows = list(db.query("select * from models where id = ?", [model_id]))
    return rows[0] if rows else None


def finetuned(db: Database) -> list[dict[str, Any]]:
    """Every fine-tuned model row, newest first."""
    return list(db.query("select * from models where kind = 'finetuned' order by created_at desc"))


def ids_like(db: Database, prefix: str) -> set[str]:
    """The model ids that start with ``prefix``."""
    rows = db.execute("select id from models where id like ? escape '\\'", [_like(prefix)])
    return {row[0] for row in rows}


def cards(db: Database, base_model_id: str, method: str) -> list[str]:
    """The card JSON of every model fine-tuned from ``base_model_id`` with ``method``, newest first."""
    rows = db.execute(
        "select card_json from models where base_model_id = ? and method = ? "
        "order by created_at desc",
        [base_model_id, method],
    )
    return [row[0] or "{}" for row in rows]


def _like(prefix: str) -> str:
    """A LIKE pattern matching ``prefix`` literally, then anything."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
