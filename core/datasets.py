"""Helpers behind the Datasets page: stage an upload, preview it, describe it, make tasks.

Staging and looking at a user's file (nothing here writes a task):

    >>> path = save_upload("My News.csv", b"headline,tone\\nShares rose,positive\\n")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'My_News.csv'
    >>> preview(path, ColumnMapping(text="headline", label="tone"), "choice")  # doctest: +SKIP
       row         text     label
    0    2  Shares rose  positive

Describing items (from a validation report, or a synthetic corpus):

    >>> label_balance([Item("a", {"text": "x"}, "up"), Item("b", {"text": "y"}, "up")])
    {'up': 2}
    >>> token_lengths([Item("a", {"text": "Shares rose sharply"}, "up")],
    ...               tokenizer=WHITESPACE).lengths
    [3]

A bigger or differently-seeded synthetic task, usable for evaluation and fine-tuning:

    >>> corpus = generate_synthetic_corpus("fin_sentiment", 7, {"train": 3, "test": 2})
    >>> {split: len(items) for split, items in corpus.items()}
    {'train': 3, 'test': 2}
    >>> spec = create_synthetic_task("sentiment_seed7", "fin_sentiment", 7,
    ...                              {"train": 2000, "validation": 200, "test": 500})  # doctest: +SKIP

Every write goes to a temporary name first and is renamed into place, so an error never leaves
a partial file behind.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core import paths
from core.data import synthetic
from core.data.importer import EXTENSIONS, ColumnMapping, list_columns
from core.data.items import SPLIT_NAMES, Item
from core.tasks import (
    GENERATION_KINDS,
    TaskSpec,
    TaskSpecError,
    load_split,
    load_task_file,
    parse_task,
)
from core.user_tasks import NAME_PATTERN, check_task_name

# One line per synthetic generator, for pickers and help text.
GENERATORS = {
    "eps_extraction": "Earnings snippets with distractors and mixed units → EPS "
    "(net income / diluted shares, two decimals).",
    "fin_sentiment": "One financial news sentence → positive / neutral / negative, "
    "with negation, hedging and mixed signals.",
    "revenue_analysis": "Revenue for two periods, possibly in different units → growth "
    "in percent (one decimal).",
}
MAX_SPLIT_SIZE = 5000  # items per split a synthetic corpus may have (generation stays < 1 s)
UPLOADS = "uploads"  # staging folder for uploaded files, under paths.user_data_dir()
SYNTHETIC = "synthetic"  # corpus files written by write_corpus_files, under user_data_dir()
WHITESPACE = "whitespace"  # pass as ``tokenizer`` to count whitespace-separated words
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# ---------------------------------------------------------------- uploads


def safe_filename(name: str) -> str:
    """A file name that is safe to create: base name only, odd characters replaced by ``_``.

    >>> safe_filename("../../etc/My News (v2).CSV")
    'My_News_v2.csv'
    """
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = _UNSAFE.sub("_", stem).strip("._")[:80] or "upload"
    suffix = _UNSAFE.sub("", suffix)[:10]
    return f"{stem}{suffix}"


def save_upload(name: str, data: bytes) -> Path:
    """Stage an uploaded file's bytes as ``user_data_dir()/uploads/<safe name>`` and return it.

    The uploads folder only holds staging copies: saving a task copies the file elsewhere
    (``user_data_dir()/datasets``), so a later upload of the same name never touches a saved
    task's data. The file appears whole (written to a temporary name, then renamed).
    """
    folder = paths.user_data_dir() / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_filename(name)
    _write_atomic(target, data)
    return target


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``target``, then rename it into place."""
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{target.name}")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- looking at a file


def roles_for(kind: str) -> tuple[str, str]:
    """The (input, answer) roles a task kind maps columns to.

    >>> roles_for("choice"), roles_for("numeric")
    (('text', 'label'), ('prompt', 'answer'))
    """
    return ("prompt", "answer") if kind in ("generation", *GENERATION_KINDS) else ("text", "label")


def preview(
    path: str | Path,
    mapping: ColumnMapping,
    kind: str,
    n: int = 20,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The first ``n`` usable rows of a file as a table: row, (id,) text, label (or prompt, answer).

    ``kind`` is a task kind (choice / rating / numeric / text) or an importer kind
    (classification / generation). A row is shown when its mapped cells are filled in, its label
    is one of ``labels`` (when given) and, for numeric tasks, its answer is a number; the rest of
    the file may be invalid (the full check is ``core.user_tasks.validate_file``). Row numbers
    are line numbers, as in validation reports.
    """
    path = Path(path)
    input_role, answer_role = roles_for(kind)
    columns = {"input": getattr(mapping, input_role), "answer": getattr(mapping, answer_role)}
    if mapping.id:
        columns["id"] = mapping.id
    allowed = {label.strip().casefold() for label in labels} if labels else None
    rows: list[dict[str, Any]] = []
    for row, values in _raw_rows(path):
        cells = {role: _cell(values.get(column)) for role, column in columns.items() if column}
        if not cells.get("input") or not cells.get("answer"):
            continue
        if allowed is not None and cells["answer"].casefold() not in allowed:
            continue
        if kind == "numeric" and not _is_number(cells["answer"]):
            continue
        shown = {"row": row}
        if "id" in cells:
            shown["id"] = cells["id"]
        shown[input_role] = cells["input"]
        shown[answer_role] = cells["answer"]
        rows.append(shown)
        if len(rows) >= n:
            break
    order = ["row", *(["id"] if mapping.id else []), input_role, answer_role]
    return pd.DataFrame(rows, columns=order)


def _cell(value: object) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value).strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _raw_rows(path: Path):
    """(line number, values by column) for each non-blank row; unreadable rows are skipped."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        return
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    if fmt == "jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                value = json.loads(line, parse_int=str, parse_float=str)
            except ValueError:
                continue
            if isinstance(value, dict):
                yield number, value
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    header: list[str] | None = None
    line = 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
            elif len(cells) == len(header):
                yield start, dict(zip(header, cells))
    except csv.Error:
        return


def guess_mapping(columns: Sequence[str], kind: str) -> ColumnMapping:
    """A first guess of the column mapping from the column names (the user can change it).

    >>> guess_mapping(["id", "headline", "tone"], "choice")
    ColumnMapping(text='headline', label='tone', prompt=None, answer=None, id='id')
    """
    names = {column.casefold(): column for column in columns}
    hints = {
        "text": ("text", "sentence", "headline", "title", "content", "body", "input", "prompt"),
        "label": ("label", "sentiment", "tone", "class", "category", "answer", "target"),
        "prompt": ("prompt", "question", "text", "input", "snippet", "sentence"),
        "answer": ("answer", "target", "output", "value", "label", "eps", "growth"),
        "id": ("id", "uid", "row_id", "item_id"),
    }

    def pick(role: str, exclude: set[str]) -> str | None:
        for hint in hints[role]:
            if hint in names and names[hint] not in exclude:
                return names[hint]
        return None

    input_role, answer_role = roles_for(kind)
    ident = pick("id", set())
    used = {ident} - {None}

    def choose(role: str) -> str | None:
        column = pick(role, used) or next((c for c in columns if c not in used), None)
        used.add(column)
        return column

    first = choose(input_role)
    second = choose(answer_role)
    return ColumnMapping(**{input_role: first, answer_role: second, "id": ident})


# ---------------------------------------------------------------- describing items


def label_balance(items: Sequence[Item], labels: Sequence[str] | None = None) -> dict[str, int]:
    """Items per answer: ``labels`` first in their order (0 when unused), then the others by count.

    >>> label_balance([Item("a", {}, "neg"), Item("b", {}, "pos"), Item("c", {}, "pos")],
    ...               labels=["pos", "neutral", "neg"])
    {'pos': 2, 'neutral': 0, 'neg': 1}
    """
    counts = Counter(item.answer for item in items)
    balance = {label: counts.pop(label, 0) for label in labels or []}
    balance.update(dict(counts.most_common()))
    return balance


def suspicious_labels(counts: dict[str, int]) -> dict[str, str]:
    """Labels that look like typos, with why: near another, more common label, or used once.

    For files validated without a label list, where any label is accepted:

        >>> suspicious_labels({"positive": 40, "postive": 1, "negative": 38, "neutral": 35})
        {'postive': "1 row; close to 'positive'"}
    """
    found: dict[str, str] = {}
    common = sorted(counts, key=lambda label: -counts[label])
    for label, count in counts.items():
        rows = f"{count} row{'' if count == 1 else 's'}"
        bigger = [other for other in common if counts[other] > count and other != label]
        near = difflib.get_close_matches(label.casefold(), [b.casefold() for b in bigger], 1, 0.75)
        if near:
            match = next(b for b in bigger if b.casefold() == near[0])
            found[label] = f"{rows}; close to {match!r}"
        elif count == 1 and bigger and counts[bigger[0]] >= 5:
            found[label] = rows
    return found


@dataclass(frozen=True)
class TokenLengths:
    """Input lengths of some items, and what was counted.

    ``unit`` is ``"tokens"`` (a model's tokenizer) or ``"words"`` (whitespace split, when the
    default model is not prepared on this machine); ``counter`` says which, in words.
    """

    lengths: list[int]
    unit: str
    counter: str


def token_lengths(items: Sequence[Item], tokenizer: Any = None) -> TokenLengths:
    """The length of each item's input text (its fields joined by new lines, answer excluded).

    ``tokenizer``: a Hugging Face tokenizer, ``WHITESPACE`` for word counts, or None for the
    default model's tokenizer when that model is prepared (downloaded / de-quantized) on this
    machine, else word counts. Preparing a model is never started from here.
    """
    texts = ["\n".join(item.fields.values()) for item in items]
    name = "the given tokenizer"
    if tokenizer is None:
        found = default_tokenizer()
        if found is not None:
            name, tokenizer = found
    if tokenizer is None or tokenizer == WHITESPACE:
        return TokenLengths(
            [len(text.split()) for text in texts], "words", "whitespace-separated words"
        )
    if not texts:
        return TokenLengths([], "tokens", name)
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return TokenLengths([len(ids) for ids in encoded], "tokens", name)


def default_tokenizer() -> tuple[str, Any] | None:
    """(description, tokenizer) of the default model, or None when it is not prepared here."""
    from core import models, registry

    try:
        entry = registry.get_model(registry.default_model_id())
        directory = models.prepared_directory(entry)
    except Exception:  # a broken config or model is reported on the pages that use models
        return None
    if directory is None:
        return None
    tokenizer = _load_tokenizer(str(directory))
    if tokenizer is None:
        return None
    return f"{entry.display_name} tokenizer", tokenizer


@lru_cache(maxsize=4)
def _load_tokenizer(directory: str) -> Any:
    """The tokenizer saved in ``directory``, loaded once per process (None when it cannot be)."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(directory)
    except Exception:
        return None


# ---------------------------------------------------------------- synthetic corpora


def check_sizes(sizes: dict[str, int]) -> dict[str, int]:
    """``sizes`` in split order, after checking names and 0 <= size <= MAX_SPLIT_SIZE."""
    unknown = [name for name in sizes if name not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}; splits are {', '.join(SPLIT_NAMES)}")
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SPLIT_SIZE:
            raise ValueError(
                f"the {name} split must have 0 to {MAX_SPLIT_SIZE} items, not {size!r}"
            )
    if not any(sizes.values()):
        raise ValueError("ask for at least one item")
    return {name: sizes[name] for name in SPLIT_NAMES if name in sizes}


def _check_generator(generator: str) -> None:
    if generator not in synthetic.GENERATOR_NAMES:
        known = ", ".join(synthetic.GENERATOR_NAMES)
        raise ValueError(f"unknown generator {generator!r}; choose one of {known}")


def generate_synthetic_corpus(
    generator: str, seed: int, sizes: dict[str, int]
) -> dict[str, list[Item]]:
    """Seeded synthetic items per split (as ``synthetic.generate_splits``), in split order.

    ValueError for an unknown generator, an unknown split or a size outside 0..MAX_SPLIT_SIZE.
    """
    _check_generator(generator)
    return synthetic.generate_splits(generator, int(seed), check_sizes(sizes))


def item_record(item: Item) -> dict[str, Any]:
    """One item as a JSON-ready record: id, the item's fields (``text``), answer, meta."""
    return {"id": item.id, **item.fields, "answer": item.answer, "meta": item.meta}


def corpus_jsonl(items: Sequence[Item]) -> bytes:
    """Items as JSON Lines (UTF-8), one :func:`item_record` per line: for downloads."""
    lines = [json.dumps(item_record(item), ensure_ascii=False) for item in items]
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


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
            (work / f"{split}.jsonl").write_bytes(corpus_jsonl(items))
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
    _check_generator(generator)
    base = _builtin_spec_data(generator)
    sizes = check_sizes({**base["source"].get("sizes", {}), **sizes})
    seed = int(seed)
    generate_synthetic_corpus(generator, seed, sizes)  # fails now, not at evaluation time
    described = ", ".join(f"{split} {size}" for split, size in sizes.items())
    data = {
        **base,
        "name": name,
        "version": 1,
        "description": f"{str(base.get('description', '')).strip()} "
        f"(Synthetic, seed {seed}; {described}; based on the built-in task '{base['name']}'.)",
        "source": {"type": "synthetic", "generator": generator, "seed": seed, "sizes": sizes},
    }
    task_file = paths.user_tasks_dir() / f"{name}.yaml"
    parse_task(task_file, data)  # a bad spec fails here, before any write
    task_file.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    _write_atomic(task_file, text.encode("utf-8"))
    return load_task_file(task_file)


# ---------------------------------------------------------------- user tasks


def user_task_rows() -> list[dict[str, Any]]:
    """One row per user task file: name, kind, source, rows per split, test fingerprint, problem.

    A task that cannot be read or loaded gets its error in ``problem`` instead of failing all.
    """
    folder = paths.user_tasks_dir()
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        row: dict[str, Any] = {"name": path.stem, "kind": None, "source": None}
        row.update(dict.fromkeys(SPLIT_NAMES))
        row.update({"fingerprint": None, "problem": None})
        try:
            spec = load_task_file(path)
            row.update(name=spec.name, kind=spec.kind, source=_source_label(spec))
            splits = {split: load_split(spec, split) for split in SPLIT_NAMES}
            row.update({split: len(items) for split, items in splits.items()})
            row["fingerprint"] = splits["test"].fingerprint
        except Exception as exc:  # shown in the table; other tasks stay usable
            row["problem"] = str(exc).splitlines()[0]
        rows.append(row)
    return rows


def _source_label(spec: TaskSpec) -> str:
    source = spec.source
    if source["type"] == "synthetic":
        return f"synthetic {source['generator']} (seed {source['seed']})"
    return f"file {Path(source['path']).name}"


__all__ = [
    "GENERATORS",
    "MAX_SPLIT_SIZE",
    "WHITESPACE",
    "ColumnMapping",
    "TokenLengths",
    "check_sizes",
    "corpus_jsonl",
    "create_synthetic_task",
    "default_tokenizer",
    "generate_synthetic_corpus",
    "guess_mapping",
    "item_record",
    "label_balance",
    "list_columns",
    "preview",
    "roles_for",
    "suspicious_labels",
    "safe_filename",
    "save_upload",
    "token_lengths",
    "user_task_rows",
    "write_corpus_files",
]
