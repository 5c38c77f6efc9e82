"""Instruction records (Alpaca style) and chat records, read and checked row by row.

Two record shapes, one JSON object a line (``.jsonl``) or a JSON array of objects (``.json``):

- instruction: ``{"instruction": ..., "input": ..., "output": ...}``; ``input`` may be missing
  or empty. The prompt is the instruction, then a blank line and the input when there is one.
- chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}`` ending
  with an assistant turn: that last turn is the completion, every earlier turn the prompt.

    >>> record = {"instruction": "Extract the EPS.", "input": "Net income $150M, 50M shares",
    ...           "output": "EPS = $3.00"}
    >>> record_items([(1, record)], "x.jsonl")[0][0].fields["prompt"]
    'Extract the EPS.\\n\\nNet income $150M, 50M shares'

Every problem names the file, the row (the line of a ``.jsonl`` file, the position in a
``.json`` array, from 1) and the field, like the column importer (``core.data.importer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.data.importer import ImportReport, RowError, _control_character, _decode, _Errors
from core.data.items import Item

RECORD_FORMATS = ("instruction", "chat")
ROLES = ("system", "user", "assistant")
MAX_CHARS = 8000


def detect_format(records: list[tuple[int, Any]]) -> str | None:
    """``"chat"`` when the first object has ``messages``, ``"instruction"`` when it has
    ``instruction``, else None (a column file: text/label or prompt/answer).

    >>> detect_format([(1, {"messages": []})]), detect_format([(1, {"text": "a"})])
    ('chat', None)
    """
    first = next((value for _, value in records if isinstance(value, dict)), None)
    if first is None:
        return None
    if "messages" in first:
        return "chat"
    if "instruction" in first:
        return "instruction"
    return None


def read_records(path: str | Path) -> tuple[list[tuple[int, Any]], list[RowError]]:
    """(row, parsed JSON value) for each record of a .jsonl or .json file, and parse errors."""
    path = Path(path)
    errors = _Errors(path.name)
    text, bad_lines = _decode(path.read_bytes(), errors)
    if text is None:
        return [], errors.stored
    records: list[tuple[int, Any]] = []
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            errors.add(getattr(exc, "lineno", None), None, f"not valid JSON: {exc}")
            return [], errors.stored
        if not isinstance(value, list):
            errors.add(None, None, "a .json file must hold an array of records [{...}, ...]")
            return [], errors.stored
        return list(enumerate(value, start=1)), errors.stored
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or number in bad_lines:
            continue
        try:
            records.append((number, json.loads(line)))
        except ValueError as exc:
            errors.add(number, None, f"not valid JSON: {exc}")
    return records, errors.stored


def _text_field(record: dict, key: str, row: int, errors: _Errors, required: bool) -> str | None:
    """The stripped string at ``key``; an error (and None) when it is missing, empty or bad."""
    if key not in record or record[key] is None:
        if required:
            errors.add(row, key, f"missing key {key!r}")
        return None if required else ""
    value = record[key]
    if not isinstance(value, str):
        errors.add(row, key, f"expected a string, got {type(value).__name__}")
        return None
    value = value.strip()
    if required and not value:
        errors.add(row, key, f"empty {key}")
        return None
    if bad := _control_character(value):
        errors.add(row, key, f"{key} holds the control character {bad}")
        return None
    if len(value) > MAX_CHARS:
        errors.add(row, key, f"{key} is {len(value)} characters long; the limit is {MAX_CHARS}")
        return None
    return value


def instruction_item(record: dict, row: int, errors: _Errors) -> Item | None:
    """An instruction record as an item (prompt = instruction + input, answer = output)."""
    instruction = _text_field(record, "instruction", row, errors, required=True)
    given = _text_field(record, "input", row, errors, required=False)
    output = _text_field(record, "output", row, errors, required=True)
    if instruction is None or given is None or output is None:
        return None
    prompt = f"{instruction}\n\n{given}" if given else instruction
    meta = {"record": "instruction", "instruction": instruction, "input": given}
    return Item(
        id=str(record.get("id") or f"row-{row}"),
        fields={"prompt": prompt},
        answer=output,
        meta=meta,
    )


def chat_item(record: dict, row: int, errors: _Errors) -> Item | None:
    """A chat record as an item: the last (assistant) turn is the answer, the rest the prompt."""
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        errors.add(row, "messages", "expected a non-empty list of {role, content} turns")
        return None
    turns: list[dict[str, str]] = []
    for number, turn in enumerate(messages, start=1):
        where = f"messages[{number}]"
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            errors.add(row, where, f"each turn needs a role ({', '.join(ROLES)}) and content")
            return None
        content = _text_field(turn, "content", row, _Prefixed(errors, where), required=True)
        if content is None:
            return None
        turns.append({"role": turn["role"], "content": content})
    if turns[-1]["role"] != "assistant" or not any(t["role"] == "user" for t in turns):
        errors.add(row, "messages", "the last turn must be the assistant's, after a user turn")
        return None
    prompt_turns = turns[:-1]
    last_user = next(t["content"] for t in reversed(prompt_turns) if t["role"] == "user")
    meta = {"record": "chat", "messages": prompt_turns}
    item_id = str(record.get("id") or f"row-{row}")
    return Item(id=item_id, fields={"prompt": last_user}, answer=turns[-1]["content"], meta=meta)


class _Prefixed:
    """An error sink that names the field as ``messages[N].content``."""

    def __init__(self, errors: _Errors, prefix: str):
        self.errors, self.prefix = errors, prefix

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.errors.add(row, f"{self.prefix}.{column}", message)


BUILDERS = {"instruction": instruction_item, "chat": chat_item}


def record_items(
    records: list[tuple[int, Any]], file: str, record_format: str = "instruction"
) -> tuple[list[Item], list[RowError]]:
    """Items of every valid record, and the errors of the others (a record per row)."""
    if record_format not in BUILDERS:
        raise ValueError(f"record format must be one of {', '.join(RECORD_FORMATS)}")
    errors = _Errors(file)
    items: list[Item] = []
    seen: dict[tuple[str, str], int] = {}
    for row, value in records:
        if not isinstance(value, dict):
            errors.add(row, None, "expected a JSON object {...}")
            continue
        item = BUILDERS[record_format](value, row, errors)
        if item is None:
            continue
        key = (str(item.meta.get("messages") or item.fields["prompt"]), item.answer)
        first = seen.setdefault(key, row)
        if first != row:
            errors.add(row, None, f"duplicate of row {first} (same prompt and output)")
            continue
        items.append(item)
    return items, errors.stored


def read_record_file(path: str | Path, record_format: str | None = None) -> ImportReport:
    """Check every record of an instruction or chat file; the report holds items or errors."""
    path = Path(path)
    records, errors = read_records(path)
    record_format = record_format or detect_format(records) or "instruction"
    items, more = record_items(records, path.name, record_format)
    errors = errors + more
    if not records and not errors:
        errors = [RowError(path.name, None, None, "the file has no records")]
    return ImportReport(
        file=path.name,
        kind="generation",
        rows_read=len(records),
        items=[] if errors else items,
        errors=errors,
        label_counts={},
    )
