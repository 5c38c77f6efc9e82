"""Tasks from split files, a split column, instruction / chat records or a Hugging Face dataset.

    >>> spec, report = create_prepared_task(                                  # doctest: +SKIP
    ...     "my_news", kind="choice", files={"train": "train.csv", "test": "test.csv"},
    ...     mapping=ColumnMapping(text="sentence", label="label"))
    >>> report["leakage"][0]["id"]                                            # doctest: +SKIP
    'test-row-4'

Every file is checked row by row first (any error: ``DatasetImportError`` naming file, row and
field, and nothing is written); then the quality pipeline (``core.data.quality``) runs and its
report is stored beside the task's data as ``quality.json``. By default the report only
counts (``mode="report"``: a user's own rows are kept); ``filter=True`` drops every rejected
row. Leaked train rows are dropped when ``drop_leakage`` is set. Without a validation file, a
tenth of train (by a hash of the row id) becomes validation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from core import paths
from core.data import instructions, quality, splits
from core.data.importer import ColumnMapping, DatasetImportError, ImportReport, RowError
from core.data.items import Item
from core.data.uploads import write_atomic
from core.evaluation.parsing import parse_number
from core.tasks.authoring import DEFAULT_TEMPLATES, check_task_name, write_task_file
from core.tasks.spec import (
    DEFAULT_FILE_SPLIT,
    GENERATION_KINDS,
    TaskSpec,
    TaskSpecError,
    load_task_file,
)

REPORT_FILE = "quality.json"
VALIDATION_FRACTION = 0.1


def record_kind(path: Path, kind: str | None, records: str | None) -> str:
    """What a file holds: ``instruction`` / ``chat`` records, or kind-matching columns."""
    if records and records != "auto":
        if records not in splits.RECORD_KINDS:
            raise ValueError(f"records must be auto or one of {', '.join(splits.RECORD_KINDS)}")
        return records
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        found, _ = instructions.read_records(path)
        detected = instructions.detect_format(found[:20])
        if detected:
            return detected
    return "generation" if kind in GENERATION_KINDS else "classification"


def _raise_errors(reports: list[ImportReport], errors: list[RowError]) -> None:
    errors = [e for report in reports for e in report.errors] + errors
    if errors:
        names = ", ".join(dict.fromkeys(report.file for report in reports))
        combined = ImportReport(
            names, "generation", sum(r.rows_read for r in reports), [], errors, {}
        )
        raise DatasetImportError(combined)


def numeric_answers(
    split_items: dict[str, list[Item]], files: dict[str, str], field: str
) -> tuple[dict[str, list[Item]], list[RowError]]:
    """Numeric tasks: each answer becomes its parsed number; the full text stays the completion."""
    errors: list[RowError] = []
    out: dict[str, list[Item]] = {}
    for split, items in split_items.items():
        out[split] = []
        for item in items:
            value = parse_number(item.answer)
            if value is None:
                message = f"{item.answer[:60]!r} holds no number to score (a numeric task)"
                errors.append(
                    RowError(files.get(split, split), splits._row_number(item.id), field, message)
                )
                continue
            meta = {**item.meta, "completion": item.answer}
            out[split].append(Item(item.id, item.fields, f"{value:g}", meta))
    return out, errors


def _token_counter() -> quality.TokenCounter | None:
    from core.tasks.inspect import default_tokenizer

    found = default_tokenizer()
    if found is None:
        return None
    tokenizer = found[1]
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)


def expand_hf(sources: dict[str, Path]) -> dict[str, Path]:
    """Hugging Face datasets on disk replaced by their JSON Lines export (a dict: its splits)."""
    from core.data.hf_disk import export_splits, is_hf_source

    out: dict[str, Path] = {}
    for split, path in sources.items():
        if not is_hf_source(path):
            out[split] = path
            continue
        exported = export_splits(path)
        if split == "all":
            out.update(exported)
        elif len(exported) == 1:
            out[split] = next(iter(exported.values()))
        else:
            raise ValueError(f"{path}: holds splits {sorted(exported)}; give it as --file")
    return out


def read_inputs(
    *,
    kind: str | None,
    files: dict[str, str | Path] | None,
    file: str | Path | None,
    mapping: ColumnMapping | None,
    labels: list[str] | None,
    records: str | None,
    seed: int = 0,
) -> tuple[dict[str, list[Item]], str, dict[str, str]]:
    """(items by split, record kind, file name by split), or DatasetImportError."""
    if bool(files) == bool(file):
        raise ValueError("give either one file per split or one file with a split column")
    sources = expand_hf({s: Path(p) for s, p in (files or {"all": file}).items()})
    first = next(iter(sources.values()))
    for path in sources.values():
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    rkind = record_kind(first, kind, records)
    names = {split: path.name for split, path in sources.items()}
    if "all" in sources:
        report = splits.read_file(sources["all"], rkind, mapping, labels)
        _raise_errors([report], [])
        if mapping is not None and mapping.split:
            grouped = splits.split_by_column(report.items)
        else:  # no split column: the default split by a hash of the row id
            grouped = splits.split_by_hash(report.items, seed, DEFAULT_FILE_SPLIT)
        return grouped, rkind, dict.fromkeys(grouped, names["all"])
    found, reports = splits.read_split_files(sources, rkind, mapping, labels)
    _raise_errors(reports, [])
    return found, rkind, names


def create_prepared_task(
    name: str,
    *,
    kind: str | None,
    files: dict[str, str | Path] | None = None,
    file: str | Path | None = None,
    mapping: ColumnMapping | None = None,
    labels: list[str] | None = None,
    records: str | None = "auto",
    instruction: str = "",
    template: str | None = None,
    description: str = "",
    quality_overrides: dict[str, Any] | None = None,
    filter: bool = False,
    drop_leakage: bool = False,
    seed: int = 0,
) -> tuple[TaskSpec, dict[str, Any]]:
    """Check, clean (by choice) and store the splits as task ``name``; (its spec, its report)."""
    check_task_name(name)
    overrides = {**(quality_overrides or {}), **({"drop_leakage": True} if drop_leakage else {})}
    thresholds = quality.load_thresholds(overrides)
    by_split, rkind, names = read_inputs(
        kind=kind,
        files=files,
        file=file,
        mapping=mapping,
        labels=labels,
        records=records,
        seed=seed,
    )
    is_records = rkind in instructions.RECORD_FORMATS
    kind = kind or ("text" if is_records else "choice")
    if is_records and kind not in GENERATION_KINDS:
        raise TaskSpecError(f"{rkind} records make a text or numeric task, not a {kind} task")
    errors: list[RowError] = []
    if kind in ("choice", "rating"):
        errors = splits.label_errors(by_split, names, mapping.label if mapping else None)
    elif kind == "numeric":
        field = "output" if rkind == "instruction" else "messages" if is_records else mapping.answer
        by_split, errors = numeric_answers(by_split, names, field)
    _raise_errors([], errors)
    if "validation" not in by_split and by_split.get("train"):
        by_split["train"], by_split["validation"] = splits.carve_validation(
            by_split["train"], seed, VALIDATION_FRACTION
        )
    kept, report = quality.check_records(
        by_split,
        response_is_label=kind in ("choice", "rating"),
        thresholds=thresholds,
        count_tokens=_token_counter(),
        mode="filter" if filter else "report",
    )
    if kind in ("choice", "rating") and not labels:
        labels = sorted({item.answer for items in kept.values() for item in items})
    spec_data = _spec_data(
        name, kind, rkind, kept, names, labels, instruction, template, description
    )
    spec_data["quality"] = {k: v for k, v in overrides.items()}
    return store_prepared(name, spec_data, kept, report.to_dict())


def _spec_data(
    name: str,
    kind: str,
    rkind: str,
    kept: dict[str, list[Item]],
    names: dict[str, str],
    labels: list[str] | None,
    instruction: str,
    template: str | None,
    description: str,
) -> dict[str, Any]:
    shown = ", ".join(f"{split} {names.get(split, 'carved from train')}" for split in kept)
    data: dict[str, Any] = {
        "name": name,
        "version": 1,
        "description": description or f"User task ({rkind} records): {shown}",
        "kind": kind,
        "source": {"type": "prepared", "records": rkind, "files": {}},
        "instruction": instruction,
        "template": template
        or ("{prompt}" if kind in GENERATION_KINDS else DEFAULT_TEMPLATES[kind]),
    }
    if labels:
        data["labels"] = list(labels)
    if rkind in instructions.RECORD_FORMATS:
        words = [
            len(str(i.meta.get("completion") or i.answer).split()) for v in kept.values() for i in v
        ]
        data["generation"] = {
            "max_new_tokens": min(256, 2 * max(words or [8]) + 8),
            "stop": ["\n\n"],
        }
    if kind == "numeric":
        data["tolerance"] = {"absolute": 0.01, "relative": 0.0}
    return data


def store_prepared(
    name: str, spec_data: dict[str, Any], kept: dict[str, list[Item]], report: dict[str, Any]
) -> tuple[TaskSpec, dict[str, Any]]:
    """Write the split files and the report into ``datasets/<name>/``, then the task file.

    The task file is checked before anything is written; a failure afterwards removes the folder.
    """
    from core.tasks.spec import parse_task

    folder = paths.user_data_dir() / "datasets" / name
    placeholder = {s: str(folder / f"{s}.jsonl") for s in kept}
    spec_data["source"]["files"] = placeholder
    spec_data["source"]["report"] = str(folder / REPORT_FILE)
    parse_task(paths.user_tasks_dir() / f"{name}.yaml", spec_data)  # fails before any write
    if folder.exists():
        shutil.rmtree(folder)  # a leftover of a removed task of this name
    try:
        splits.write_prepared(folder, kept)
        write_atomic(folder / REPORT_FILE, json.dumps(report, indent=1).encode("utf-8"))
        spec = write_task_file(name, spec_data)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return spec, report


def stored_report(spec: TaskSpec) -> dict[str, Any] | None:
    """The quality report stored with a task's data, or None when it has none."""
    where = spec.source.get("report")
    if not where or not Path(where).is_file():
        return None
    return json.loads(Path(where).read_text(encoding="utf-8"))


def task_report(name: str) -> dict[str, Any] | None:
    """The stored quality report of the user task ``name``."""
    return stored_report(load_task_file(paths.user_tasks_dir() / f"{name}.yaml"))
