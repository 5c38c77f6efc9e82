"""Looking at data before using it: previews of a file, label balance, lengths, user tasks.

    >>> label_balance([Item("a", {"text": "x"}, "up"), Item("b", {"text": "y"}, "up")])
    {'up': 2}
    >>> token_lengths([Item("a", {"text": "Shares rose sharply"}, "up")],
    ...               tokenizer=WHITESPACE).lengths
    [3]
    >>> preview(path, ColumnMapping(text="headline", label="tone"), "choice")  # doctest: +SKIP
       row         text     label
    0    2  Shares rose  positive

Nothing here writes a file.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from core import paths
from core.data.importer import EXTENSIONS, ColumnMapping
from core.data.items import SPLIT_NAMES, Item
from core.tasks.spec import GENERATION_KINDS, TaskSpec, load_split, load_task_file

WHITESPACE = "whitespace"  # pass as ``tokenizer`` to count whitespace-separated words


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
    problems: dict[int, list[str]] | None = None,
) -> pd.DataFrame:
    """The first ``n`` rows of a file as a table: row, (id,) text, label (or prompt, answer), problem.

    ``kind`` is a task kind (choice / rating / numeric / text) or an importer kind
    (classification / generation). Row numbers are line numbers, as in validation reports.
    ``problems`` (row -> messages, from a validation report) marks the rows that cannot be
    used; without it, a row is marked when a mapped cell is empty, its label is not one of
    ``labels`` (when given) or, for numeric tasks, its answer is not a number (the full check
    is ``core.tasks.authoring.validate_file``).
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
        shown = {"row": row}
        if "id" in cells:
            shown["id"] = cells["id"]
        shown[input_role] = cells.get("input", "")
        shown[answer_role] = cells.get("answer", "")
        if problems is not None:
            shown["problem"] = "; ".join(problems.get(row, []))
        else:
            shown["problem"] = _quick_problem(cells, allowed, kind, input_role, answer_role)
        rows.append(shown)
        if len(rows) >= n:
            break
    order = ["row", *(["id"] if mapping.id else []), input_role, answer_role, "problem"]
    return pd.DataFrame(rows, columns=order)


def _quick_problem(
    cells: dict[str, str], allowed: set[str] | None, kind: str, input_role: str, answer_role: str
) -> str:
    if not cells.get("input"):
        return f"empty {input_role}"
    if not cells.get("answer"):
        return f"empty {answer_role}"
    if allowed is not None and cells["answer"].casefold() not in allowed:
        return f"unknown label {cells['answer']!r}"
    if kind == "numeric" and not _is_number(cells["answer"]):
        return f"answer {cells['answer']!r} is not a number"
    return ""


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
    ColumnMapping(text='headline', label='tone', prompt=None, answer=None, id='id', split=None)
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
    """Labels that look wrong, with why: near another, more common label, or rare.

    For files validated without a label list, where any label is accepted: a label close to
    a more common one is a likely typo; one used by at most 2 rows, or under 5% of them, while
    another is used at least 5 times as often, is an unexpected class (e.g. "bullish" in a
    positive / neutral / negative file).

        >>> suspicious_labels({"positive": 40, "postive": 1, "negative": 38, "neutral": 35})
        {'postive': "1 row; close to 'positive'"}
        >>> suspicious_labels({"positive": 40, "bullish": 2, "negative": 38, "neutral": 35})
        {'bullish': '2 rows (1.7% of the file): an unexpected label?'}
    """
    found: dict[str, str] = {}
    total = sum(counts.values()) or 1
    common = sorted(counts, key=lambda label: -counts[label])
    for label, count in counts.items():
        rows = f"{count} row{'' if count == 1 else 's'}"
        bigger = [other for other in common if counts[other] > count and other != label]
        near = difflib.get_close_matches(label.casefold(), [b.casefold() for b in bigger], 1, 0.75)
        if near:
            match = next(b for b in bigger if b.casefold() == near[0])
            found[label] = f"{rows}; close to {match!r}"
        elif bigger and count <= max(2, 0.05 * total) and counts[bigger[0]] >= 5 * count:
            found[label] = f"{rows} ({100 * count / total:.1f}% of the file): an unexpected label?"
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
    from core.models import loading, registry

    try:
        entry = registry.get_model(registry.default_model_id())
        directory = loading.prepared_directory(entry)
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
    if source["type"] == "prepared":
        return f"{source.get('records', 'classification')} split files: " + ", ".join(
            source["files"]
        )
    return f"file {Path(source['path']).name}"
