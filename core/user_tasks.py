"""Make a task from a user's CSV / JSONL file: validate it whole, then save file and task spec.

    >>> spec = create_task_from_file(                                      # doctest: +SKIP
    ...     "news.csv", name="my_news", kind="choice",
    ...     mapping=ColumnMapping(text="headline", label="tone"),
    ...     labels=["positive", "neutral", "negative"])

An invalid file raises ``DatasetImportError`` listing every bad row; nothing is written. A
valid one is copied into ``paths.user_data_dir()/datasets`` and a task YAML is written into
``paths.user_tasks_dir()``, after which the task is listed, evaluated and fine-tuned like a
built-in one.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict
from pathlib import Path

import yaml

from core import paths
from core.data.importer import EXTENSIONS, ColumnMapping, ImportReport, RowError, read_dataset
from core.tasks import (
    GENERATION_KINDS,
    TaskSpec,
    TaskSpecError,
    list_tasks,
    load_task_file,
    parse_task,
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,48}$")
DEFAULT_TEMPLATES = {"choice": "Text: {text}\nAnswer:", "rating": "Text: {text}\nRating:"}


def validate_file(
    path: str | Path, kind: str, mapping: ColumnMapping, labels: list[str] | None
) -> ImportReport:
    """The row-by-row validation report for a file under a task kind (nothing is stored)."""
    dataset_kind = "generation" if kind in GENERATION_KINDS else "classification"
    report = read_dataset(path, dataset_kind, mapping, labels=labels or None)
    if kind == "numeric" and report.ok:
        _check_numeric_answers(report, mapping)
    return report


def _check_numeric_answers(report: ImportReport, mapping: ColumnMapping) -> None:
    """Numeric tasks score answers as numbers: report every answer that is not a plain number."""
    for item in report.items:
        try:
            float(item.answer)
        except ValueError:
            row = re.fullmatch(r"row-(\d+)", item.id) if not (mapping.id or "").strip() else None
            where = "" if row else f"id {item.id!r}: "
            message = f"{where}answer {item.answer!r} is not a plain number (e.g. 2.67 or -4.2)"
            report.errors.append(
                RowError(report.file, int(row.group(1)) if row else None, mapping.answer, message)
            )
    if report.errors:
        report.items = []


def check_task_name(name: str) -> None:
    """TaskSpecError unless ``name`` is a valid task name no task uses yet."""
    if not NAME_PATTERN.match(name or ""):
        raise TaskSpecError(
            f"Task name '{name}': use 2-49 lower-case letters, digits and underscores, "
            "starting with a letter"
        )
    if any(spec.name == name for spec in list_tasks()):
        raise TaskSpecError(f"A task named '{name}' already exists; choose another name")


def create_task_from_file(
    path: str | Path,
    *,
    name: str,
    kind: str,
    mapping: ColumnMapping,
    labels: list[str] | None = None,
    instruction: str = "",
    template: str | None = None,
    description: str = "",
    split: dict[str, float] | None = None,
    seed: int = 0,
) -> TaskSpec:
    """Validate ``path`` whole; if it is clean, store it as task ``name`` and return its spec."""
    from core.data.importer import DatasetImportError

    source_path = Path(path)
    check_task_name(name)
    report = validate_file(source_path, kind, mapping, labels)
    if not report.ok:
        raise DatasetImportError(report)
    if kind not in GENERATION_KINDS and not labels:
        labels = sorted(report.label_counts)  # the labels the file uses
    datasets = paths.user_data_dir() / "datasets"
    suffix = source_path.suffix.lower() if source_path.suffix.lower() in EXTENSIONS else ".jsonl"
    data_copy = datasets / f"{name}{suffix}"
    spec_data = {
        "name": name,
        "version": 1,
        "description": description or f"User task from {source_path.name}",
        "kind": kind,
        "source": {
            "type": "file",
            "path": str(data_copy),
            "columns": {k: v for k, v in asdict(mapping).items() if v},
            "split": split or {"validation": 0.1, "test": 0.2},
            "seed": seed,
        },
        "instruction": instruction,
        "template": template
        or ("{prompt}" if kind in GENERATION_KINDS else DEFAULT_TEMPLATES[kind]),
    }
    if labels:
        spec_data["labels"] = list(labels)
    task_file = paths.user_tasks_dir() / f"{name}.yaml"
    parse_task(task_file, spec_data)  # a bad template or kind fails here, before any write
    datasets.mkdir(parents=True, exist_ok=True)
    task_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_path, data_copy)
    tmp = task_file.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(spec_data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(task_file)
    return load_task_file(task_file)
