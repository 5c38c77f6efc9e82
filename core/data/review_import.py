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
    extra = _cells(path, columns, id_column, errors)
    found_features: dict[str, list[str]] = {}
    for key, (row, cells) in extra.items():  # every row's features, even where rating is bad
        if not features:
            break
        try:
            found_features[key] = review_cells(cells.get(features, ""))
        except ReviewCellError as exc:
            errors.append(RowError(path.name, row, features, str(exc)))
    items = [
        _record(
            item,
            found_features.get(item.id, []) if features else None,
            {c: extra.get(item.id, (0, {}))[1].get(c) or BLANK_SLICE for c in slices},
        )
        for item in base.items
    ]
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
    path: Path, columns: list[str], id_column: str | None, errors: list[RowError]
) -> dict[str, tuple[int, dict[str, str]]]:
    """item id -> (row, {column: cell}) for the optional columns (blank cells allowed)."""
    import csv
    import io
    import json

    if not columns:
        return {}
    raw = path.read_bytes().decode("utf-8", errors="replace")
    found: dict[str, tuple[int, dict[str, str]]] = {}
    header: set[str] = set()
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(raw.splitlines(), start=1):
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                continue  # a malformed line: read_dataset reports it
            if isinstance(record, dict):
                header |= set(record)
                key = str(record.get(id_column)) if id_column else f"row-{number}"
                found[key] = (number, {c: str(record.get(c) or "") for c in columns})
    else:
        reader = csv.reader(io.StringIO(raw), delimiter="\t" if path.suffix == ".tsv" else ",")
        rows = list(reader)
        header = set(rows[0]) if rows else set()
        line = 1
        for cells in rows[1:]:
            line += 1
            record = dict(zip(rows[0], cells))
            key = record.get(id_column, "") if id_column else f"row-{line}"
            found[key] = (line, {c: record.get(c, "") for c in columns})
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


def create_review_tasks(
    path: str | Path,
    *,
    name: str,
    text: str,
    rating: str,
    features: str | None = None,
    slices: Sequence[str] = (),
    id_column: str | None = None,
    seed: int = 0,
) -> list[Any]:
    """Validate a review file whole and, if clean, save it as the tasks ``<name>_rating`` (and,
    with a features column, ``<name>_features`` and ``<name>_summary``); their specs.

    Each task copies its built-in ``review_*`` task (kind, prompt, metrics, robustness, the
    augmentation views) over a ``reviews_file`` source: the file is copied once into the user
    data folder. Nothing is written when any row or any task name is bad.
    """
    from core.data.uploads import write_atomic
    from core.tasks import authoring
    from core.tasks.spec import get_task, parse_task

    source_path = Path(path)
    report = read_reviews(
        source_path, text=text, rating=rating, features=features, slices=slices, id_column=id_column
    )
    if not report.ok:
        raise DatasetImportError(report)
    views = [view for view in REVIEW_VIEWS if features or view == "rating"]
    names = {view: f"{name}_{view}" for view in views}
    for task_name in names.values():
        authoring.check_task_name(task_name)
    suffix = source_path.suffix.lower() if source_path.suffix.lower() in importer.EXTENSIONS else ""
    data_copy = paths.user_data_dir() / "datasets" / f"{name}_reviews{suffix}"
    columns = {"text": text, "rating": rating, "features": features, "id": id_column}
    columns = {role: column for role, column in columns.items() if column}
    columns["slices"] = list(slices)
    tasks = {}
    for view in views:
        builtin = get_task(BUILTIN_OF_VIEW[view])
        raw = paths.read_yaml(builtin.path, ValueError, "Task")
        augment = [v for v in raw["source"].get("augment") or [] if features or v != "features"]
        augment = [v for v in augment if features or v != "summary"]
        raw.update(
            name=names[view],
            description=f"{builtin.description} From {source_path.name}.",
            source={
                "type": "reviews_file",
                "path": str(data_copy),
                "columns": columns,
                "view": view,
                "seed": seed,
                "augment": augment,
            },
        )
        parse_task(paths.user_tasks_dir() / f"{names[view]}.yaml", raw)  # fails before writes
        tasks[view] = raw
    authoring.check_split_sizes(
        source_path.name, report.items, seed, {"validation": 0.1, "test": 0.2}
    )
    data_copy.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(data_copy, source_path.read_bytes())
    return [authoring.write_task_file(names[view], tasks[view]) for view in views]
