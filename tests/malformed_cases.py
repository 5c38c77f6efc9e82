"""Malformed and tricky dataset files, each with what importing it must do.

Shared by ``tests/test_malformed_files.py`` and ``bench/faults.py``. A case is a file (name and
bytes), how it is imported (task kind, column mapping, label list) and the expected outcome:
``Rejected`` with the row and field the error must name (None where the problem has no row or
field: an empty file, a wrong extension), or ``Accepted`` with the number of items.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABELS = ["positive", "neutral", "negative"]


@dataclass(frozen=True)
class Rejected:
    fragment: str  # a phrase the message must contain
    row: int | None = None
    field: str | None = None
    other_rows: tuple[int, ...] = ()  # further rows the same report must name


@dataclass(frozen=True)
class Accepted:
    items: int


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the file's name
    content: bytes
    expect: Rejected | Accepted
    kind: str = "choice"
    columns: dict[str, str] = field(default_factory=lambda: {"text": "text", "label": "label"})
    labels: tuple[str, ...] | None = None
    task_name: str | None = None  # default: made from the case id


def rows(n: int = 40, start: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct (text, label) rows."""
    return [
        (f"Company {i} reports quarter {i % 4 + 1} results, item {i}", LABELS[i % 3])
        for i in range(start, start + n)
    ]


def csv_bytes(body: list[tuple[str, ...]], header: str = "text,label", sep: str = ",") -> bytes:
    lines = [header] + [sep.join(f'"{c}"' if "," in c else c for c in row) for row in body]
    return ("\n".join(lines) + "\n").encode("utf-8")


def with_rows(replaced: dict[int, str], n: int = 40) -> bytes:
    """A valid CSV whose lines ``replaced`` names (file line numbers; the header is line 1)
    are replaced by the given text."""
    lines = csv_bytes(rows(n)).decode().splitlines()
    for number, line in replaced.items():
        lines[number - 1] = line
    return ("\n".join(lines) + "\n").encode("utf-8")


def with_row(number: int, line: str, n: int = 40) -> bytes:
    return with_rows({number: line}, n)


def jsonl_bytes(records: list[object]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def records(n: int = 40) -> list[dict[str, str]]:
    return [{"text": text, "label": label} for text, label in rows(n)]


def jsonl_with_line(number: int, line: str, n: int = 40) -> bytes:
    lines = jsonl_bytes(records(n)).decode().splitlines()
    lines[number - 1] = line
    return ("\n".join(lines) + "\n").encode("utf-8")


GEN = {"prompt": "question", "answer": "answer"}


def qa_bytes(answers: list[str], name_sep: str = ",") -> bytes:
    body = [(f"What is item {i} worth in millions?", a) for i, a in enumerate(answers)]
    return csv_bytes(body, header=f"question{name_sep}answer", sep=name_sep)


BASE = csv_bytes(rows())
CASES: list[Case] = [
    # ------------------------------------------------ whole-file problems (no row)
    Case("empty", "empty.csv", b"", Rejected("the file is empty")),
    Case("whitespace-only", "blank.csv", b"  \n\n \t\n", Rejected("the file is empty")),
    Case("header-only", "header.csv", b"text,label\n", Rejected("header row but no data rows")),
    Case("no-text-column", "notext.csv", csv_bytes(rows(), "body,label"), Rejected("text")),
    Case(
        "no-label-column",
        "nolabel.csv",
        csv_bytes(rows(), "text,tone"),
        Rejected("label", field="label"),
    ),
    Case("duplicate-header", "dup.csv", csv_bytes(rows(), "text,label,text"), Rejected("text")),
    Case(
        "semicolon-separated",
        "euro.csv",
        csv_bytes(rows(), "text;label", sep=";"),
        Rejected("text"),
    ),
    Case("unsupported-xlsx", "book.xlsx", b"PK\x03\x04xl/workbook", Rejected("unsupported")),
    Case("json-not-jsonl", "data.json", jsonl_bytes([records()]), Rejected("rename it to .jsonl")),
    Case("no-extension", "data", BASE, Rejected("unsupported file type")),
    Case(
        "png-renamed-csv",
        "image.csv",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        Rejected("UTF-8"),
    ),
    Case(
        "utf16",
        "wide.csv",
        "\ufeff".encode("utf-16-le") + BASE.decode().encode("utf-16-le"),
        Rejected("UTF-16"),
    ),
    Case(
        "three-rows",
        "tiny.csv",
        csv_bytes(rows(3)),
        Rejected("every split needs at least one row"),
    ),
    Case(
        "case-only-labels",
        "cased.csv",
        csv_bytes([(t, lab.capitalize() if i % 2 else lab) for i, (t, lab) in enumerate(rows())]),
        Rejected("differ only in case", field="label"),
    ),
    # ------------------------------------------------ one bad row (file line numbers)
    Case("too-many-fields", "wide_row.csv", with_row(5, "A,positive,extra"), Rejected("", row=5)),
    Case("too-few-fields", "short_row.csv", with_row(6, "lonely text"), Rejected("", row=6)),
    Case(
        "unclosed-quote",
        "quote.csv",
        with_row(7, '"An open quote, positive'),
        Rejected("quote", row=7),
    ),
    Case("empty-label", "nolab.csv", with_row(8, "Some text,"), Rejected("empty", 8, "label")),
    Case("blank-text", "notxt.csv", with_row(9, "   ,positive"), Rejected("empty", 9, "text")),
    Case(
        "unknown-label",
        "typo.csv",
        with_row(10, "Shares rose,postive"),
        Rejected("postive", 10, "label"),
        labels=tuple(LABELS),
    ),
    Case(
        "duplicate-row",
        "twice.csv",
        with_row(12, '"Company 0 reports quarter 1 results, item 0",positive'),
        Rejected("duplicate of row 2", row=12),
    ),
    Case(
        "bad-utf8-byte",
        "latin.csv",
        with_row(9, "Cafe sales rose,positive").replace(b"Cafe", b"Caf\xe9"),
        Rejected("UTF-8", row=9),
    ),
    Case(
        "nul-byte",
        "nul.csv",
        with_row(11, "Revenue\x00 rose,positive"),
        Rejected("U+0000", 11, "text"),
    ),
    Case(
        "escape-byte",
        "esc.csv",
        with_row(14, "Profit\x1b[31m fell,negative"),
        Rejected("U+001B", 14, "text"),
    ),
    Case(
        "over-long-text",
        "long.csv",
        with_row(13, "x" * 5000 + ",positive"),
        Rejected("5000", 13, "text"),
    ),
    Case(
        "errors-on-several-rows",
        "many.csv",
        with_rows({3: "Text,", 20: "Other text,postive", 33: "Third,"}),
        Rejected("empty", 3, "label", other_rows=(20, 33)),
        labels=tuple(LABELS),
    ),
    # ------------------------------------------------ ids
    Case(
        "duplicate-ids",
        "ids.csv",
        csv_bytes([(f"id{i % 39}", t, lab) for i, (t, lab) in enumerate(rows())], "id,text,label"),
        Rejected("duplicate id", 41, "id"),
        columns={"text": "text", "label": "label", "id": "id"},
    ),
    Case(
        "empty-id",
        "noid.csv",
        csv_bytes(
            [("" if i == 4 else f"id{i}", t, lab) for i, (t, lab) in enumerate(rows())],
            "id,text,label",
        ),
        Rejected("empty", 6, "id"),
        columns={"text": "text", "label": "label", "id": "id"},
    ),
    # ------------------------------------------------ JSON Lines
    Case(
        "jsonl-bad-line",
        "bad.jsonl",
        jsonl_with_line(4, '{"text": "a", "label": '),
        Rejected("", row=4),
    ),
    Case(
        "jsonl-array-line",
        "arr.jsonl",
        jsonl_with_line(5, '["a", "positive"]'),
        Rejected("object", row=5),
    ),
    Case(
        "jsonl-missing-key",
        "key.jsonl",
        jsonl_with_line(6, '{"text": "Profit fell"}'),
        Rejected("", 6, "label"),
    ),
    Case(
        "jsonl-boolean-label",
        "bool.jsonl",
        jsonl_with_line(7, '{"text": "Up", "label": true}'),
        Rejected("boolean", 7, "label"),
    ),
    Case(
        "jsonl-null-label",
        "null.jsonl",
        jsonl_with_line(8, '{"text": "Up", "label": null}'),
        Rejected("", 8, "label"),
    ),
    Case(
        "jsonl-nested-text",
        "nest.jsonl",
        jsonl_with_line(9, '{"text": {"title": "Up"}, "label": "positive"}'),
        Rejected("", 9, "text"),
    ),
    Case(
        "jsonl-nan",
        "nan.jsonl",
        jsonl_with_line(10, '{"text": NaN, "label": "positive"}'),
        Rejected("", row=10),
    ),
    Case(
        "jsonl-pretty-printed",
        "pretty.jsonl",
        json.dumps(records(3), indent=2).encode(),
        Rejected("", row=1),
    ),
    Case(
        "jsonl-bad-utf8",
        "b.jsonl",
        jsonl_with_line(3, '{"text": "Cafe", "label": "neutral"}').replace(b"Cafe", b"Caf\xe9"),
        Rejected("UTF-8", row=3),
    ),
    # ------------------------------------------------ generation and numeric answers
    Case(
        "numeric-not-a-number",
        "worth.csv",
        qa_bytes([str(i * 1.5) if i != 5 else "about ten" for i in range(40)]),
        Rejected("not a plain number", 7, "answer"),
        kind="numeric",
        columns=GEN,
    ),
    Case(
        "numeric-thousands-separator",
        "worth2.csv",
        qa_bytes([str(i * 1.5) if i != 2 else "1,234.5" for i in range(40)]),
        Rejected("not a plain number", 4, "answer"),
        kind="numeric",
        columns=GEN,
    ),
    Case(
        "generation-empty-answer",
        "qa.csv",
        qa_bytes([f"answer {i}" if i != 9 else "" for i in range(40)]),
        Rejected("empty", 11, "answer"),
        kind="text",
        columns=GEN,
    ),
    Case(
        "generation-missing-answer-column",
        "qa2.csv",
        qa_bytes([f"a{i}" for i in range(40)]).replace(b"question,answer", b"question,reply", 1),
        Rejected("answer", field="answer"),
        kind="text",
        columns=GEN,
    ),
    # ------------------------------------------------ tricky but valid
    Case("crlf", "crlf.csv", BASE.replace(b"\n", b"\r\n"), Accepted(40)),
    Case("utf8-bom", "bom.csv", b"\xef\xbb\xbf" + BASE, Accepted(40)),
    Case(
        "quoted-newlines",
        "multi.csv",
        BASE.replace(b'"Company 3 reports', b'"Company 3\nreports', 1),
        Accepted(40),
    ),
    Case("trailing-blank-lines", "trail.csv", BASE + b"\n\n\n", Accepted(40)),
    Case(
        "tsv",
        "tabs.tsv",
        ("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows())).encode(),
        Accepted(40),
    ),
    Case(
        "padded-labels",
        "pad.csv",
        csv_bytes([(t, f"  {lab} ") for t, lab in rows()]),
        Accepted(40),
    ),
    Case(
        "unicode-text",
        "uni.csv",
        csv_bytes([(f"{t} 📈 利润 ربح", lab) for t, lab in rows()]),
        Accepted(40),
    ),
    Case(
        "formula-looking-text",
        "formula.csv",
        csv_bytes([(f"=HYPERLINK(x{i}) {t}", lab) for i, (t, lab) in enumerate(rows())]),
        Accepted(40),
    ),
    Case(
        "extra-columns-reordered",
        "extra.csv",
        csv_bytes([(lab, "n/a", t) for t, lab in rows()], "label,source,text"),
        Accepted(40),
    ),
    Case(
        "labels-case-mapped-by-list",
        "listed.csv",
        csv_bytes([(t, lab.upper()) for t, lab in rows()]),
        Accepted(40),
        labels=tuple(LABELS),
    ),
    Case(
        "jsonl-valid-blank-lines",
        "ok.jsonl",
        jsonl_bytes(records()).replace(b"}\n", b"}\n\n"),
        Accepted(40),
    ),
    Case(
        "jsonl-number-labels",
        "stars.jsonl",
        jsonl_bytes([{"text": t, "label": i % 3 + 1} for i, (t, _) in enumerate(rows())]),
        Accepted(40),
    ),
    Case("jsonl-bom", "bom.jsonl", b"\xef\xbb\xbf" + jsonl_bytes(records()), Accepted(40)),
    Case(
        "numeric-valid",
        "num.csv",
        qa_bytes([str(-i * 1.25) for i in range(40)]),
        Accepted(40),
        kind="numeric",
        columns=GEN,
    ),
    Case(
        "generation-valid",
        "gen.csv",
        qa_bytes([f"answer {i}" for i in range(40)]),
        Accepted(40),
        kind="text",
        columns=GEN,
    ),
    # ------------------------------------------------ the task name
    Case("name-path-traversal", "ok.csv", BASE, Rejected("name"), task_name="../escape"),
    Case("name-of-a-builtin", "ok.csv", BASE, Rejected("already"), task_name="fin_sentiment"),
]


# ---------------------------------------------------------------- running a case


def snapshot(home: Path) -> dict[str, str]:
    """A hash of every file under ``home`` (the store, user tasks, datasets, runs)."""
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


def import_case(case: Case, folder: Path) -> Any:
    """Write the case's file into ``folder`` and import it as a task (its spec, or raises)."""
    from core.data.importer import ColumnMapping
    from core.tasks import authoring

    source = folder / case.name
    source.write_bytes(case.content)
    return authoring.create_task_from_file(
        source,
        name=case.task_name or case.id.replace("-", "_"),
        kind=case.kind,
        mapping=ColumnMapping(**case.columns),
        labels=list(case.labels) if case.labels else None,
    )


def rejection_problems(case: Case, error: Exception) -> list[str]:
    """What a rejection's message or report fails to say (empty: it says all it must)."""
    expect = case.expect
    text = str(error)
    problems = []
    if expect.fragment.lower() not in text.lower():
        problems.append(f"the message does not say {expect.fragment!r}: {text}")
    if case.task_name is None and case.name not in text:
        problems.append(f"the message does not name the file {case.name}: {text}")
    from core.data.importer import DatasetImportError

    if isinstance(error, DatasetImportError):
        errors = error.report.errors
        for row in [r for r in (expect.row, *expect.other_rows) if r is not None]:
            if not any(e.row == row for e in errors):
                problems.append(f"no error names row {row}: {[str(e) for e in errors]}")
        if expect.field is not None and not any(e.field == expect.field for e in errors):
            problems.append(f"no error names field {expect.field!r}: {[str(e) for e in errors]}")
    elif expect.row is not None:
        problems.append(f"row {expect.row} expected in a row report, got {type(error).__name__}")
    return problems
