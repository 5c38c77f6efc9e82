"""A user's CSV with several label columns, imported as a multi-task dataset.

    >>> specs = import_multitask("messages.csv", name="support", text_column="message",
    ...                          label_columns=["sentiment", "priority"])     # doctest: +SKIP
    >>> [spec.name for spec in specs]                                       # doctest: +SKIP
    ['support_sentiment', 'support_priority']

Each label column becomes a choice task of its own (``<name>_<column>``), all on the same
items: every row keeps one id (the ``id_column``, else ``row-<line>``) in every task, so the
tasks' splits agree (a row's split follows from its id) and an encoder trains them jointly,
one head each (``finboard finetune-compare --task support_sentiment,support_priority``). A
row may leave some label cells empty (that task has no label for it), but not all of them.
The header and every row are checked first (file, row and field named); then each task is
stored with ``core.tasks.authoring.create_task_from_file``. If any task cannot be stored, the
ones stored before it are removed: nothing changes.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

from core.data.importer import ColumnMapping, DatasetImportError, ImportReport, RowError
from core.tasks import authoring
from core.tasks.spec import TaskSpec


def _column_task_name(name: str, column: str) -> str:
    return f"{name}_{re.sub(r'[^a-z0-9]+', '_', column.lower()).strip('_')}"


def read_rows(
    path: Path, text_column: str, label_columns: list[str], id_column: str | None
) -> tuple[list[dict[str, str]], list[RowError]]:
    """The rows as {"id", "text", <label column>...}; every problem found, by row."""
    file = path.name
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(
        io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""), delimiter=delimiter
    )
    wanted = [text_column, *label_columns, *([id_column] if id_column else [])]
    missing = [c for c in wanted if c not in (reader.fieldnames or [])]
    if missing:
        found = ", ".join(reader.fieldnames or []) or "none"
        message = f"the header has no column {', '.join(map(repr, missing))} (columns: {found})"
        return [], [RowError(file, 1, None, message)]
    rows, errors, seen = [], [], {}
    for record in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        item_id = (record.get(id_column) or "").strip() if id_column else f"row-{line}"
        text = (record.get(text_column) or "").strip()
        labels = {c: (record.get(c) or "").strip() for c in label_columns}
        if not item_id:
            errors.append(RowError(file, line, id_column, "empty id"))
        elif item_id in seen:
            message = f"duplicate id {item_id!r} (rows {seen[item_id]} and {line})"
            errors.append(RowError(file, line, id_column, message))
        seen.setdefault(item_id, line)
        if not text:
            errors.append(RowError(file, line, text_column, "empty text"))
        if not any(labels.values()):
            message = f"no label in any of the label columns ({', '.join(label_columns)})"
            errors.append(RowError(file, line, None, message))
        rows.append({"id": item_id, "text": text, **labels})
    if not rows:
        errors.append(RowError(file, None, None, "the file has a header row but no data rows"))
    return rows, errors


def import_multitask(
    path: str | Path,
    *,
    name: str,
    text_column: str,
    label_columns: list[str],
    id_column: str | None = None,
    seed: int = 0,
) -> list[TaskSpec]:
    """One choice task per label column, on the same items; DatasetImportError by row."""
    path = Path(path)
    if len(label_columns) < 2:
        raise ValueError("A multi-task dataset needs at least two --label-column")
    names = [_column_task_name(name, column) for column in label_columns]
    for task_name in names:
        authoring.check_task_name(task_name)
    rows, errors = read_rows(path, text_column, label_columns, id_column)
    if errors:
        raise DatasetImportError(
            ImportReport(path.name, "classification", len(rows), [], errors, {})
        )
    created: list[TaskSpec] = []
    try:
        with tempfile.TemporaryDirectory() as work:
            for task_name, column in zip(names, label_columns):
                part = Path(work) / f"{task_name}.csv"
                with part.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["id", "text", "label"])
                    writer.writerows([r["id"], r["text"], r[column]] for r in rows if r[column])
                created.append(
                    authoring.create_task_from_file(
                        part,
                        name=task_name,
                        kind="choice",
                        mapping=ColumnMapping(text="text", label="label", id="id"),
                        description=f"Column '{column}' of {path.name} (multi-task dataset "
                        f"{name}: {', '.join(names)})",
                        seed=seed,
                    )
                )
    except Exception:
        for spec in created:  # all or nothing
            authoring.remove_task(spec.name)
        raise
    return created
