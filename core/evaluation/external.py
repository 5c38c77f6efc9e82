"""Predictions made elsewhere (e.g. a hosted API run by the user), scored like a model.

    >>> summary = import_predictions(db, get_task("fin_sentiment"), "gpt-4o-mini",
    ...                              "preds.csv")                                 # doctest: +SKIP
    >>> summary["model"], summary["n_items"]                                       # doctest: +SKIP
    ('external:gpt-4o-mini', 200)

The file is a CSV with a header row and two columns: the item id (``item_id``) and the
prediction (``prediction``; other names with ``id_column`` / ``prediction_column``). It must
hold exactly one prediction for every item of the task's split (the test split by default),
so the score is on the same items as the local models' and ranks beside them. Every row is
checked in one pass; a problem is reported as ``file, row N, field 'F': ...`` (row 1 is the
header): an empty or unknown id, an id given twice, a label outside the task's set (choice
tasks), a value that is no number (numeric tasks); items without a prediction are listed
too. With any problem nothing is stored. The score is stored under the model id
``external:<name>`` and shown on the leaderboard marked "external predictions".
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from pathlib import Path
from typing import Any

from core.data.importer import DatasetImportError, ImportReport, RowError
from core.evaluation.encoder import prediction_rows, score_summary
from core.evaluation.parsing import parse_number
from core.evaluation.runner import (
    EvalOptions,
    ItemResult,
    _is_correct,
    score_record,
    task_metrics,
)
from core.models.registry import EXTERNAL_PREFIX
from core.store import Database
from core.store import scores as score_rows
from core.tasks.spec import TaskSpec, load_split

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHOWN_MISSING = 10  # ids of items without a prediction named in the message


def external_model_id(name: str) -> str:
    """``external:<name>``; ValueError for a name that is not a short plain word.

    >>> external_model_id("gpt-4o-mini")
    'external:gpt-4o-mini'
    """
    if not NAME_PATTERN.match(name or ""):
        raise ValueError(
            f"Bad name {name!r} for external predictions: use 1-64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. gpt-4o-mini)"
        )
    return EXTERNAL_PREFIX + name


def _canonical(spec: TaskSpec, value: str) -> str | None:
    """The task's spelling of a prediction, or None when it is not an answer the task allows."""
    if spec.labels:
        by_lower = {label.lower(): label for label in spec.labels}
        return by_lower.get(value.strip().lower())
    if spec.kind == "numeric":
        number = parse_number(value)
        return None if number is None else repr(number)
    return value.strip() or None


def _expected(spec: TaskSpec) -> str:
    if spec.labels:
        return f"one of: {', '.join(spec.labels)}"
    return "a number" if spec.kind == "numeric" else "a non-empty answer"


def read_predictions(
    path: Path,
    spec: TaskSpec,
    split_items: dict[str, Any],
    id_column: str,
    prediction_column: str,
) -> tuple[dict[str, str], list[RowError], int]:
    """(item id -> canonical prediction, every problem found, data rows read)."""
    name = path.name
    errors: list[RowError] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return {}, [RowError(name, None, None, f"not UTF-8 text ({exc.reason})")], 0
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in (id_column, prediction_column) if c not in header]
    if missing:
        found = ", ".join(header) or "none"
        message = f"the header has no column {', '.join(map(repr, missing))} (columns: {found})"
        return {}, [RowError(name, 1, None, message)], 0
    found_predictions: dict[str, str] = {}
    first_row: dict[str, int] = {}
    rows = 0
    for row in reader:
        number = reader.line_num
        if not any((cell or "").strip() for cell in row.values() if isinstance(cell, str)):
            continue  # a blank line
        rows += 1
        item_id = (row.get(id_column) or "").strip()
        value = row.get(prediction_column) or ""
        if not item_id:
            errors.append(RowError(name, number, id_column, "empty item id"))
            continue
        if item_id not in split_items:
            message = f"unknown item id {item_id!r}: not in the {spec.name} split scored"
            errors.append(RowError(name, number, id_column, message))
            continue
        if item_id in first_row:
            message = f"item id {item_id!r} given twice (rows {first_row[item_id]} and {number})"
            errors.append(RowError(name, number, id_column, message))
            continue
        first_row[item_id] = number
        answer = _canonical(spec, value)
        if answer is None:
            message = f"prediction {value!r} is not {_expected(spec)}"
            errors.append(RowError(name, number, prediction_column, message))
            continue
        found_predictions[item_id] = answer
    without = [i for i in split_items if i not in first_row]
    if without and rows:
        shown = ", ".join(without[:SHOWN_MISSING]) + (
            " ..." if len(without) > SHOWN_MISSING else ""
        )
        message = f"{len(without)} item(s) of the split have no prediction: {shown}"
        errors.append(RowError(name, None, id_column, message))
    if not rows:
        errors.append(RowError(name, None, None, "the file has a header row but no data rows"))
    return found_predictions, errors, rows


def import_predictions(
    db: Database,
    spec: TaskSpec,
    name: str,
    path: str | Path,
    *,
    id_column: str = "item_id",
    prediction_column: str = "prediction",
    split: str = "test",
) -> dict[str, Any]:
    """Check the file, score its predictions on the split's items, store them; a summary.

    DatasetImportError (every problem, by row) when anything is wrong; nothing is stored then.
    """
    model_id = external_model_id(name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    the_split = load_split(spec, split)
    items = {item.id: item for item in the_split.items}
    predictions, errors, rows = read_predictions(path, spec, items, id_column, prediction_column)
    if errors:
        raise DatasetImportError(ImportReport(path.name, "predictions", rows, [], errors, {}))
    results = [
        ItemResult(
            raw_output=predictions[item.id],
            parsed=predictions[item.id],
            correct=_is_correct(spec, predictions[item.id], item.answer),
            latency_ms=math.nan,
            uncalibrated=predictions[item.id],
        )
        for item in the_split.items
    ]
    options = EvalOptions(split=split)
    report = task_metrics(spec, the_split.items, results, options.seed)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    command = f"finboard predictions import --task {spec.name} --name {name} --file {path.name}"
    score = score_record(
        model_id,
        spec,
        the_split,
        report,
        options,
        {"weights_hash": f"file:{digest}", "command": command, "device": "external"},
    )
    stored = prediction_rows(the_split, results)
    for row in stored:
        row["latency_ms"] = None
    score_id = score_rows.insert(db, score, stored)
    return score_summary(score_id, score, report)
