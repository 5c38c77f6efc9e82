"""A user's review file (CSV, TSV or JSONL) as review records, checked row by row, and as tasks.

    >>> review_cells("fees; Customer Support")
    ['fees', 'customer service']

Columns (named by the user): ``text`` (the review), ``rating`` (a whole number 1-5), optionally
``features`` (the features mentioned, separated by commas or semicolons, each a vocabulary name
or synonym of ``configs/tasks/review_features.yaml``, or empty / ``none`` for no feature), an
``id``, and any number of **slice columns** (a product line, a region, a channel) whose values
become robustness slices of every score on the task (empty cells: ``(blank)``).

Every problem is reported with the file, the row and the column, the whole file in one pass,
and nothing is stored while any remains (``core.data.importer``'s ``ImportReport`` and
``DatasetImportError``). Rows are read with ``importer.read_dataset`` (encoding, malformed
lines, duplicates, over-long text), so a review file gets every check any dataset gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from core import paths
from core.data import importer, reviews
from core.data.importer import ColumnMapping, DatasetImportError, ImportReport, RowError
from core.data.items import Item

RATINGS = ("1", "2", "3", "4", "5")
BLANK_SLICE = "(blank)"
REVIEW_VIEWS = ("rating", "features", "summary")  # the review tasks a file becomes
# view -> the built-in task its user task copies (kind, prompt, metrics, robustness)
BUILTIN_OF_VIEW = {view: f"review_{view}" for view in REVIEW_VIEWS}


class ReviewCellError(ValueError):
    """One bad cell; the caller adds the file, row and column."""


@lru_cache(maxsize=1)
def feature_vocabulary() -> tuple[tuple[str, ...], dict[str, str]]:
    """(vocabulary, synonyms) of the built-in ``review_features`` task: one source of truth."""
    raw = paths.read_yaml(paths.BUILTIN_TASKS_DIR / "review_features.yaml", ValueError, "Task")
    synonyms = {str(k).lower(): str(v) for k, v in (raw.get("synonyms") or {}).items()}
    return tuple(raw["labels"]), synonyms


def review_cells(cell: str) -> list[str]:
    """The features a features cell lists, in vocabulary order; ReviewCellError for an unknown one.

    Each entry (between commas or semicolons) must be a vocabulary name or one of its synonyms
    (case and surrounding spaces ignored): a cell is data, so it is not guessed at.
    """
    vocabulary, synonyms = feature_vocabulary()
    known = {name.lower(): name for name in vocabulary} | synonyms
    entries = [part.strip().lower() for part in cell.replace(";", ",").split(",")]
    entries = [entry for entry in entries if entry]
    if entries in ([], ["none"]):
        return []
    unknown = [entry for entry in entries if entry not in known]
    if unknown:
        raise ReviewCellError(
            f"unknown feature {unknown[0]!r} "
            f"(known: {', '.join(vocabulary)}, or a synonym such as 'customer support')"
        )
    found = {known[entry] for entry in entries}
    return [name for name in vocabulary if name in found]


def read_reviews(
    path: str | Path,
    *,
    text: str,
    rating: str,
    features: str | None = None,
    slices: Sequence[str] = (),
    id_column: str | None = None,
    max_chars: int = 4000,
) -> ImportReport:
    """Check every row of a review file and build its records (items with review meta)."""
    path = Path(path)
    mapping = ColumnMapping(text=text, label=rating, id=id_column)
    base = importer.read_dataset(path, "classification", mapping, list(RATINGS), max_chars)
    errors = list(base.errors)
    if base.errors and all(e.row is None for e in base.errors):
        return base  # the file itself is unusable (missing, empty, wrong header)
    columns = [features] if features else []
    columns += list(slices)
    extra = _cells(path, text, columns, id_column, errors)
    items = []
    for item in base.items:
        row = int(item.id[4:]) if item.id.startswith("row-") else None
        cells = extra.get(item.id, {})
        try:
            found = review_cells(cells.get(features, "")) if features else None
        except ReviewCellError as exc:
            errors.append(RowError(path.name, row, features, str(exc)))
            continue
        items.append(_record(item, found, {c: cells.get(c) or BLANK_SLICE for c in slices}))
    report = ImportReport(
        file=path.name,
        kind="reviews",
        rows_read=base.rows_read,
        items=[] if errors else items,
        errors=errors,
        label_counts=base.label_counts,
        errors_omitted=base.errors_omitted,
    )
    return report


def _cells(
    path: Path, text: str, columns: list[str], id_column: str | None, errors: list[RowError]
) -> dict[str, dict[str, str]]:
    """item id -> {column: cell} for the optional columns (blank cells allowed)."""
    import csv
    import io
    import json

    if not columns:
        return {}
    raw = path.read_bytes().decode("utf-8", errors="replace")
    found: dict[str, dict[str, str]] = {}
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                record = json.loads(line)
                key = str(record.get(id_column)) if id_column else f"row-{number}"
                found[key] = {c: str(record.get(c) or "") for c in columns}
        header = set().union(*(json.loads(x).keys() for x in raw.splitlines() if x.strip()))
    else:
        reader = csv.reader(io.StringIO(raw), delimiter="\t" if path.suffix == ".tsv" else ",")
        rows = list(reader)
        header = set(rows[0]) if rows else set()
        line = 1
        for cells in rows[1:]:
            line += 1
            record = dict(zip(rows[0], cells))
            key = record.get(id_column, "") if id_column else f"row-{line}"
            found[key] = {c: record.get(c, "") for c in columns}
            line += sum(cell.count("\n") for cell in cells)
    for column in columns:
        if column not in header:
            errors.append(RowError(path.name, None, column, "no such column in the file"))
    return found


def _record(item: Item, features: list[str] | None, slice_cells: dict[str, str]) -> Item:
    rating = int(item.answer)
    meta: dict[str, Any] = {
        "rating": rating,
        "sentiment": reviews.sentiment_of(rating),
        "recommend": reviews.recommendation_of(rating),
        "slices": dict(slice_cells),
    }
    if features is not None:
        meta["features"] = {name: 0 for name in features}  # a file gives no polarity
        meta["summary"] = (
            f"{rating}/5 stars. Mentions "
            + (reviews.feature_list(features) if features else "no feature")
            + "."
        )
    return Item(id=item.id, fields={"text": item.fields["text"]}, answer=item.answer, meta=meta)


def import_reviews(path: str | Path, **columns: Any) -> list[Item]:
    """:func:`read_reviews`, raising DatasetImportError when any row is invalid."""
    report = read_reviews(path, **columns)
    if not report.ok:
        raise DatasetImportError(report)
    return report.items


# ---------------------------------------------------------------- as a task source

Fail = Callable[[Path, str, str], Exception]


def parse_source(task_file: Path, raw: dict[str, Any], fail: Fail) -> dict[str, Any]:
    """Check a ``type: reviews_file`` task source (path, columns, view, split, seed)."""
    source = dict(raw)
    if not source.get("path"):
        raise fail(task_file, "source.path", "a reviews_file source needs the data file's path")
    data_path = Path(source["path"])
    source["path"] = str(data_path if data_path.is_absolute() else task_file.parent / data_path)
    columns = dict(source.get("columns") or {})
    missing = [role for role in ("text", "rating") if not columns.get(role)]
    if missing:
        raise fail(task_file, "source.columns", f"map the column(s) for: {', '.join(missing)}")
    if not isinstance(columns.get("slices") or [], list):
        raise fail(task_file, "source.columns.slices", "a list of column names")
    view = source.setdefault("view", "rating")
    if view not in REVIEW_VIEWS or (view != "rating" and not columns.get("features")):
        raise fail(
            task_file,
            "source.view",
            f"one of {REVIEW_VIEWS}; features and summary need a features column",
        )
    source["columns"] = columns
    source["split"] = {"validation": 0.1, "test": 0.2, **(source.get("split") or {})}
    source["seed"] = int(source.get("seed", 0))
    return source


def task_items(source: dict[str, Any]) -> list[Item]:
    """Every record of a reviews_file source, with the answer of its view."""
    columns = source["columns"]
    records = import_reviews(
        source["path"],
        text=columns["text"],
        rating=columns["rating"],
        features=columns.get("features"),
        slices=columns.get("slices") or (),
        id_column=columns.get("id"),
    )
    return reviews.view_items(records, source["view"])
