"""Writing task files: from a user's CSV / JSONL file, or from a synthetic generator.

    >>> spec = create_task_from_file(                                      # doctest: +SKIP
    ...     "news.csv", name="my_news", kind="choice",
    ...     mapping=ColumnMapping(text="headline", label="tone"),
    ...     labels=["positive", "neutral", "negative"])
    >>> spec = create_synthetic_task("sentiment_seed7", "fin_sentiment", 7,
    ...                              {"train": 2000, "validation": 200, "test": 500})  # doctest: +SKIP

An invalid file raises ``DatasetImportError`` listing every bad row; nothing is written. A
valid one is copied into ``paths.user_data_dir()/datasets`` and a task YAML is written into
``paths.user_tasks_dir()``, after which the task is listed, evaluated and fine-tuned like a
built-in one. Every file is written through one atomic writer (``write_task_file``): a
temporary name first, then a rename, so an error never leaves a partial file behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from core import paths
from core.data import corpora
from core.data.importer import (
    EXTENSIONS,
    ColumnMapping,
    DatasetImportError,
    ImportReport,
    RowError,
    read_dataset,
)
from core.data.items import SPLIT_NAMES, Item
from core.data.uploads import write_atomic
from core.tasks.spec import (
    DEFAULT_FILE_SPLIT,
    GENERATION_KINDS,
    TaskSpec,
    TaskSpecError,
    list_tasks,
    load_task_file,
    parse_task,
    split_of,
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,48}$")
DEFAULT_TEMPLATES = {"choice": "Text: {text}\nAnswer:", "rating": "Text: {text}\nRating:"}
SYNTHETIC = "synthetic"  # corpus files written by write_corpus_files, under user_data_dir()


def write_task_file(name: str, data: dict[str, Any]) -> TaskSpec:
    """Check a task mapping, write it as ``user_tasks_dir()/<name>.yaml`` atomically, load it."""
    task_file = paths.user_tasks_dir() / f"{name}.yaml"
    parse_task(task_file, data)  # a bad template or kind fails here, before any write
    task_file.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    write_atomic(task_file, text.encode("utf-8"))
    return load_task_file(task_file)


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


def check_split_sizes(
    file: str, items: list[Item], seed: int, fractions: dict[str, float]
) -> dict[str, int]:
    """The rows each split gets; TaskSpecError when one would be empty (nothing to score on).

    >>> check_split_sizes("tiny.csv", [Item(f"row-{i}", {}, "a") for i in range(3)], 0,
    ...                   {"validation": 0.1, "test": 0.2})
    Traceback (most recent call last):
    ...
    core.tasks.spec.TaskSpecError: tiny.csv: its 3 rows split into train 2, validation 0, test 1; ...
    """
    sizes = dict.fromkeys(SPLIT_NAMES, 0)
    for item in items:
        sizes[split_of(item.id, seed, fractions)] += 1
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        shown = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise TaskSpecError(
            f"{file}: its {len(items)} rows split into {shown}; every split needs at least "
            f"one row ({', '.join(empty)} would be empty). Add rows (a few dozen at least) or "
            "bring your own split files."
        )
    return sizes


def remove_task(name: str) -> list[Path]:
    """Delete user task ``name`` (its task file and its copy of the data); the removed paths.

    Built-in tasks cannot be removed. Scores measured on the task stay in the store (each
    records its task's name, version and items).
    """
    task_file = paths.user_tasks_dir() / f"{name}.yaml"
    if (paths.BUILTIN_TASKS_DIR / f"{name}.yaml").is_file():
        raise TaskSpecError(f"'{name}' is a built-in task: it cannot be removed")
    if not task_file.is_file():
        known = ", ".join(sorted(p.stem for p in paths.user_tasks_dir().glob("*.yaml")))
        raise TaskSpecError(f"No user task '{name}' (user tasks: {known or 'none'})")
    removed = [task_file]
    data = paths.user_data_dir() / "datasets"
    removed += [p for p in data.glob(f"{name}.*") if p.suffix.lower() in EXTENSIONS]
    removed += [p for p in [data / f"{name}.quality.json"] if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    if (data / name).is_dir():  # a task of split files (core.tasks.prepared)
        shutil.rmtree(data / name)
        removed.append(data / name)
    return removed


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
    source_path = Path(path)
    check_task_name(name)
    report = validate_file(source_path, kind, mapping, labels)
    if not report.ok:
        raise DatasetImportError(report)
    if kind not in GENERATION_KINDS and not labels:
        labels = sorted(report.label_counts)  # the labels the file uses
    fractions = {**DEFAULT_FILE_SPLIT, **(split or {})}
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
            "split": fractions,
            "seed": seed,
        },
        "instruction": instruction,
        "template": template
        or ("{prompt}" if kind in GENERATION_KINDS else DEFAULT_TEMPLATES[kind]),
    }
    if labels:
        spec_data["labels"] = list(labels)
    spec_data["source"]["report"] = str(datasets / f"{name}.quality.json")
    parse_task(paths.user_tasks_dir() / f"{name}.yaml", spec_data)  # fails before any write
    check_split_sizes(source_path.name, report.items, seed, fractions)
    datasets.mkdir(parents=True, exist_ok=True)
    write_atomic(data_copy, source_path.read_bytes())
    _write_quality_report(spec_data, report.items, kind, seed, fractions)
    return write_task_file(name, spec_data)


def _write_quality_report(
    spec_data: dict[str, Any], items: list[Item], kind: str, seed: int, fractions: dict
) -> None:
    """The quality pipeline's report on the file's splits (counted, nothing dropped)."""
    import json

    from core.data import quality

    by_split = {split: [] for split in SPLIT_NAMES}
    for item in items:
        by_split[split_of(item.id, seed, fractions)].append(item)
    _, found = quality.check_records(
        by_split, response_is_label=kind not in GENERATION_KINDS, mode="report"
    )
    target = Path(spec_data["source"]["report"])
    write_atomic(target, json.dumps(found.to_dict(), indent=1).encode("utf-8"))


def write_corpus_files(
    name: str,
    corpus: dict[str, list[Item]],
    *,
    generator: str | None = None,
    seed: int | None = None,
) -> Path:
    """Write ``<split>.jsonl`` per split and a README into ``user_data_dir()/synthetic/<name>``.

    The README records the generator, seed and sizes (the generator is read from the item ids
    when not given). The folder is built aside and renamed into place, replacing an older folder
    of that name only once the new one is complete.
    """
    if not NAME_PATTERN.match(name or ""):  # a folder name; the task may already exist
        raise TaskSpecError(f"Corpus name '{name}': use lower-case letters, digits and underscores")
    unknown = [split for split in corpus if split not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}; splits are {', '.join(SPLIT_NAMES)}")
    if generator is None:
        first = next((items[0] for items in corpus.values() if items), None)
        generator = first.id.split("-")[0] if first else "unknown"
    root = paths.user_data_dir() / SYNTHETIC
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        for split, items in corpus.items():
            (work / f"{split}.jsonl").write_bytes(corpora.corpus_jsonl(items))
        sizes = {split: len(items) for split, items in corpus.items()}
        readme = [
            f"# Synthetic corpus '{name}'",
            "",
            f"- generator: {generator}",
            f"- seed: {seed if seed is not None else 'unknown'}",
            f"- sizes: {', '.join(f'{split} {size}' for split, size in sizes.items())}",
            "",
            "One JSON object a line: id, text, answer, meta. Regenerate the same items with",
            f"`core.data.synthetic.generate_splits({generator!r}, {seed}, {sizes})`.",
        ]
        (work / "README.md").write_text("\n".join(readme) + "\n", encoding="utf-8")
        _swap_in(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _swap_in(work: Path, target: Path) -> None:
    """Rename the finished folder ``work`` to ``target``; an older ``target`` is kept on error."""
    if not target.exists():
        work.rename(target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=target.parent))
    target.rename(aside / target.name)
    try:
        work.rename(target)
    except BaseException:
        (aside / target.name).rename(target)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _builtin_spec_data(generator: str) -> dict[str, Any]:
    """The raw YAML mapping of the built-in task that uses ``generator``."""
    candidates = [paths.BUILTIN_TASKS_DIR / f"{generator}.yaml"]
    candidates += sorted(p for p in paths.BUILTIN_TASKS_DIR.glob("*.yaml") if p not in candidates)
    for path in candidates:
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        source = data.get("source") if isinstance(data, dict) else None
        if isinstance(source, dict) and source.get("generator") == generator:
            return data
    raise TaskSpecError(f"no built-in task uses the generator '{generator}'")


def create_synthetic_task(name: str, generator: str, seed: int, sizes: dict[str, int]) -> TaskSpec:
    """Write a user task ``name`` on the synthetic ``generator`` with this seed and these sizes.

    The prompt, labels, metrics, tolerance and generation settings are the built-in task's for
    that generator, so the new task scores like it, on other (or more) items. A split missing
    from ``sizes`` gets the built-in task's size. TaskSpecError for a bad or taken name,
    ValueError for an unknown generator or bad sizes; then nothing is written.
    """
    check_task_name(name)
    corpora.check_generator(generator)
    base = _builtin_spec_data(generator)
    sizes = corpora.check_sizes({**base["source"].get("sizes", {}), **sizes})
    seed = int(seed)
    corpora.generate_corpus(generator, seed, sizes)  # fails now, not at evaluation time
    described = ", ".join(f"{split} {size}" for split, size in sizes.items())
    data = {
        **base,
        "name": name,
        "version": 1,
        "description": f"{str(base.get('description', '')).strip()} "
        f"(Synthetic, seed {seed}; {described}; based on the built-in task '{base['name']}'.)",
        # the built-in's other source keys too (a review task's view and augmentation)
        "source": {
            **base["source"],
            **{"type": "synthetic", "generator": generator, "seed": seed, "sizes": sizes},
        },
    }
    return write_task_file(name, data)
