"""Explicit splits: one file per split, or a ``split`` column, checked and stored as items.

A task made this way has a ``prepared`` source: one JSON Lines file of checked items per
split (``{"id", "fields", "answer", "meta"}`` a line), written by ``write_prepared`` and read by
``load_prepared_split``. A split with no file is empty, so a task with only a test file can be
evaluated (not trained).

    >>> from core.data.items import Item
    >>> carve_validation([Item(f"train-row-{i}", {}, "a") for i in range(40)], 0, 0.1)[1][0].id
    'train-row-2'

Reading split files (``read_split_files``) goes through the same row-level validation as a
single file (``core.data.importer``, or ``core.data.instructions`` for instruction and chat
records); ids get the split's name in front (``test-row-5``), so a score's fingerprint says
which file its rows came from. Labels of the validation / test files that the train file lacks
are an error: a model cannot learn a label it never sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.data import importer, instructions
from core.data.importer import ColumnMapping, ImportReport, RowError
from core.data.items import SPLIT_NAMES, Item

RECORD_KINDS = ("classification", "generation", "instruction", "chat")


def parse_prepared_source(
    task_file: Path, source: dict[str, Any], fail: Callable[[Path, str, str], Exception]
) -> dict[str, Any]:
    """Check a ``prepared`` task source: ``files`` maps split names to item files."""
    files = source.get("files")
    if not isinstance(files, dict) or not files:
        raise fail(task_file, "source.files", "map split names (train, validation, test) to files")
    unknown = [name for name in files if name not in SPLIT_NAMES]
    if unknown:
        raise fail(task_file, "source.files", f"unknown split {unknown[0]!r}; use {SPLIT_NAMES}")
    resolved = {}
    for split, name in files.items():
        path = Path(str(name))
        resolved[split] = str(path if path.is_absolute() else (task_file.parent / path).resolve())
    if source.get("records", "classification") not in RECORD_KINDS:
        raise fail(task_file, "source.records", f"one of {', '.join(RECORD_KINDS)}")
    return {**source, "files": resolved}


def load_prepared_split(source: dict[str, Any], split: str) -> list[Item]:
    """The items stored for ``split`` (none when the task has no file for it)."""
    name = source["files"].get(split)
    if name is None:
        return []
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"the {split} file of this task is gone: {path}")
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            value = json.loads(line)
            items.append(
                Item(value["id"], value["fields"], value["answer"], value.get("meta") or {})
            )
    return items


def items_jsonl(items: list[Item]) -> bytes:
    """Items as the prepared files store them."""
    lines = [
        json.dumps(
            {"id": i.id, "fields": i.fields, "answer": i.answer, "meta": i.meta},
            ensure_ascii=False,
        )
        for i in items
    ]
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


def _with_split_ids(items: list[Item], split: str, keep_ids: bool) -> list[Item]:
    if keep_ids:
        return items
    return [Item(f"{split}-{i.id}", i.fields, i.answer, i.meta) for i in items]


def read_file(
    path: Path,
    records: str,
    mapping: ColumnMapping | None,
    labels: list[str] | None,
) -> ImportReport:
    """Check one file: instruction / chat records, or a column file of the records' kind."""
    if records in instructions.RECORD_FORMATS:
        return instructions.read_record_file(path, records)
    if mapping is None:
        raise ValueError("a column file needs a column mapping")
    return importer.read_dataset(path, records, mapping, labels=labels or None)


def read_split_files(
    files: dict[str, Path],
    records: str,
    mapping: ColumnMapping | None = None,
    labels: list[str] | None = None,
) -> tuple[dict[str, list[Item]], list[ImportReport]]:
    """(items by split, every file's report) for one file per split.

    Nothing is returned for a split whose file has errors; the caller refuses the whole task
    when any report is not ``ok`` (see ``label_errors`` too).
    """
    unknown = [split for split in files if split not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}; splits are {', '.join(SPLIT_NAMES)}")
    reports, splits = [], {}
    keep_ids = bool(mapping is not None and mapping.id)
    for split, path in files.items():
        report = read_file(Path(path), records, mapping, labels)
        reports.append(report)
        if report.ok:
            splits[split] = _with_split_ids(report.items, split, keep_ids)
    return splits, reports


def split_by_column(items: list[Item]) -> dict[str, list[Item]]:
    """Items grouped by the split their ``split`` column named (``item.meta['split']``)."""
    grouped: dict[str, list[Item]] = {}
    for item in items:
        meta = {k: v for k, v in item.meta.items() if k != "split"}
        grouped.setdefault(item.meta["split"], []).append(
            Item(item.id, item.fields, item.answer, meta)
        )
    return grouped


def split_by_hash(
    items: list[Item], seed: int, fractions: dict[str, float]
) -> dict[str, list[Item]]:
    """Items split by a hash of their id, as a single file's rows are (``split_of``)."""
    from core.tasks.spec import split_of

    grouped: dict[str, list[Item]] = {split: [] for split in SPLIT_NAMES}
    for item in items:
        grouped[split_of(item.id, seed, fractions)].append(item)
    return grouped


def label_errors(
    splits: dict[str, list[Item]], files: dict[str, str], column: str | None
) -> list[RowError]:
    """An error for every validation / test row whose label the train split never uses."""
    train = splits.get("train")
    if not train:
        return []
    known = {item.answer for item in train}
    errors = []
    for split in ("validation", "test"):
        for item in splits.get(split, []):
            if item.answer not in known:
                row = _row_number(item.id)
                errors.append(
                    RowError(
                        files.get(split, split),
                        row,
                        column,
                        f"label {item.answer!r} is not in the train file (its labels: "
                        f"{', '.join(sorted(known))}); the model could never learn it",
                    )
                )
    return errors


def _row_number(item_id: str) -> int | None:
    tail = item_id.rsplit("row-", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


def carve_validation(
    train: list[Item], seed: int, fraction: float
) -> tuple[list[Item], list[Item]]:
    """(train, validation): the rows a hash of their id puts in validation, taken out of train.

    The same hash as a single file's split (``core.tasks.spec.split_of``), so adding rows to
    the train file never moves the others.
    """
    from core.tasks.spec import split_of

    fractions = {"test": 0.0, "validation": fraction}
    validation = [item for item in train if split_of(item.id, seed, fractions) == "validation"]
    chosen = {item.id for item in validation}
    return [item for item in train if item.id not in chosen], validation


def write_prepared(folder: Path, splits: dict[str, list[Item]]) -> dict[str, str]:
    """Write ``<split>.jsonl`` per split into ``folder``; the split -> file map for the task."""
    from core.data.uploads import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split in SPLIT_NAMES:
        if split in splits:
            target = folder / f"{split}.jsonl"
            write_atomic(target, items_jsonl(splits[split]))
            written[split] = str(target)
    return written
