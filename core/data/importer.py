"""Import a user's CSV, TSV or JSON Lines file as :class:`Item` objects, checking every row.

Every problem is reported with the file name, the row and the column, and the whole file is
checked in one pass, so a user can fix all of it at once:

    >>> mapping = ColumnMapping(text="sentence", label="sentiment")
    >>> report = read_dataset("data.csv", "classification", mapping,
    ...                       labels=["negative", "neutral", "positive"])  # doctest: +SKIP
    >>> print(report.errors[0])  # doctest: +SKIP
    data.csv, row 7, field 'sentiment': unknown label 'postive' (expected one of: negative, ...)
    >>> items = import_dataset("data.csv", "classification", mapping)  # doctest: +SKIP

Row numbers are line numbers in the file, counted from 1, as a text editor shows them:

- CSV/TSV: the header is row 1 and the first data row is row 2, which is also the row number a
  spreadsheet shows. A record whose quoted cell holds a line break is numbered by the line it
  starts on (a spreadsheet would then count one row less for every later record).
- JSON Lines: row N is line N of the file.

An encoding error is reported on every line holding bytes that are not UTF-8 (the other
lines are still checked, so one pass lists every problem). Blank lines
(and CSV rows whose cells are all blank) are skipped and not counted in ``rows_read``. Errors
name the file by its base name, and ``field`` is the column (CSV) or key (JSONL) of the file,
not the role it is mapped to.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.data.items import SPLIT_NAMES, Item

KINDS = ("classification", "generation")
ROLES = {"classification": ("text", "label"), "generation": ("prompt", "answer")}
# file extension -> format; the formats are "csv", "tsv" and "jsonl".
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMATS = ("csv", "tsv", "jsonl")
MAX_ERRORS = 1000  # errors stored in a report; the rest are only counted
SHOWN_ERRORS = 20  # errors listed in a DatasetImportError message
COLUMN_SAMPLE = 50  # JSONL objects list_columns looks at
SUPPORTED = (
    "supported formats: .csv (comma-separated, with a header row), .tsv (tab-separated, with a "
    "header row), .jsonl or .ndjson (JSON Lines: one JSON object per line)"
)
RESAVE = "re-save the file as UTF-8 (in Excel: 'CSV UTF-8')"


@dataclass(frozen=True)
class ColumnMapping:
    """Which file columns (CSV) or keys (JSONL) feed which fields.

    Classification uses ``text`` and ``label``; generation uses ``prompt`` and ``answer``; the
    roles of the other kind are ignored. Without ``id``, items get the ids ``f"row-{row}"``.

        >>> ColumnMapping(text="sentence", label="sentiment", id="uid").label
        'sentiment'
    """

    text: str | None = None
    label: str | None = None
    prompt: str | None = None
    answer: str | None = None
    id: str | None = None
    split: str | None = None  # a column of train / validation / test (item.meta["split"])


@dataclass(frozen=True)
class RowError:
    """One problem in an imported file; ``row`` and ``field`` are None when it concerns no one.

    >>> str(RowError("data.csv", 7, "label", "empty value"))
    "data.csv, row 7, field 'label': empty value"
    """

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}"


@dataclass
class ImportReport:
    """The outcome of checking a file: its items when every row is valid, else its errors.

    ``rows_read`` counts the data rows (not the header, not blank lines). ``label_counts`` counts
    the valid rows per canonical label (every given label is listed, with 0 when unused); it is
    empty for generation. At most ``MAX_ERRORS`` errors are kept; ``errors_omitted`` counts the
    rest.

        >>> report = ImportReport("d.csv", "generation", 0, [], [], {})
        >>> report.ok
        True
    """

    file: str
    kind: str
    rows_read: int
    items: list[Item]
    errors: list[RowError]
    label_counts: dict[str, int]
    errors_omitted: int = 0

    @property
    def ok(self) -> bool:
        """True when the file has no error at all."""
        return not self.errors and not self.errors_omitted

    @property
    def error_count(self) -> int:
        """Every error found, stored or not."""
        return len(self.errors) + self.errors_omitted


class DatasetImportError(Exception):
    """Raised by :func:`import_dataset` when the file is invalid.

    ``.report`` holds every stored error; ``str()`` lists the first 20 and says how many more.

        >>> report = ImportReport("d.csv", "generation", 0, [], [RowError("d.csv", None, None,
        ...                       "the file is empty")], {})
        >>> print(DatasetImportError(report))
        d.csv cannot be imported (1 error):
          d.csv: the file is empty
    """

    def __init__(self, report: ImportReport):
        self.report = report
        total = report.error_count
        lines = [f"{report.file} cannot be imported ({total} error{'' if total == 1 else 's'}):"]
        lines += [f"  {error}" for error in report.errors[:SHOWN_ERRORS]]
        if total > SHOWN_ERRORS:
            lines.append(f"  ... and {total - SHOWN_ERRORS} more")
        super().__init__("\n".join(lines))


class _Errors:
    """Collects a file's errors, keeping the first MAX_ERRORS."""

    def __init__(self, file: str):
        self.file = file
        self.stored: list[RowError] = []
        self.omitted = 0

    def add(self, row: int | None, column: str | None, message: str) -> None:
        if len(self.stored) < MAX_ERRORS:
            self.stored.append(RowError(self.file, row, column, message))
        else:
            self.omitted += 1

    def __bool__(self) -> bool:
        return bool(self.stored) or self.omitted > 0


@dataclass
class _Row:
    """One parsed data row: its values by column/key, or a structural error."""

    row: int
    values: dict[str, object] = field(default_factory=dict)
    error: str | None = None


def read_dataset(
    path: str | Path,
    kind: str,
    mapping: ColumnMapping,
    labels: Sequence[str] | None = None,
    max_chars: int = 4000,
    file_format: str | None = None,
) -> ImportReport:
    """Check every row of a CSV/TSV/JSONL file and build its items.

    Never raises for bad content: the problems are the report's ``errors`` (and its ``items`` are
    then empty). Raises FileNotFoundError for a missing file and ValueError for bad arguments
    (unknown ``kind`` or ``file_format``, a required role left unmapped, ``labels`` for
    generation or labels that differ only in case, ``max_chars`` < 1).

        >>> report = read_dataset("qa.jsonl", "generation",
        ...                       ColumnMapping(prompt="question", answer="answer"))  # doctest: +SKIP
        >>> report.ok, report.rows_read  # doctest: +SKIP
        (True, 120)
    """
    path = Path(path)
    roles = _required_roles(kind, mapping)
    canonical = _canonical_labels(kind, labels)
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    fmt = _check_format(file_format)
    if not path.is_file():
        if path.exists():
            raise IsADirectoryError(f"{path} is not a file")
        raise FileNotFoundError(f"no such file: {path}")

    errors = _Errors(path.name)
    label_counts = dict.fromkeys(canonical.values(), 0) if kind == "classification" else {}

    def report(rows_read: int = 0, items: list[Item] | None = None) -> ImportReport:
        return ImportReport(
            file=path.name,
            kind=kind,
            rows_read=rows_read,
            items=[] if errors else (items or []),
            errors=errors.stored,
            label_counts=label_counts,
            errors_omitted=errors.omitted,
        )

    fmt = fmt or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        suffix = path.suffix or "(no extension)"
        hint = " (for JSON Lines, rename it to .jsonl)" if path.suffix.lower() == ".json" else ""
        errors.add(None, None, f"unsupported file type {suffix}{hint}; {SUPPORTED}")
        return report()

    text, bad_lines = _decode(path.read_bytes(), errors)
    if text is None:
        return report()
    if not text.strip():
        errors.add(None, None, "the file is empty")
        return report()

    if fmt == "jsonl":
        rows = _jsonl_rows(text)
    else:
        wanted = list(dict.fromkeys(roles.values()))
        rows = _csv_rows(text, "\t" if fmt == "tsv" else ",", wanted, errors)
        if rows is None:  # a header problem: every row would fail the same way
            return report()

    input_role, answer_role = ROLES[kind]
    what = " and ".join(ROLES[kind])
    items: list[Item] = []
    seen_ids: dict[str, int] = {}
    seen_content: dict[tuple[str, ...], int] = {}
    first_rows: dict[str, int] = {}  # label -> the first row that uses it
    rows_read = 0
    for parsed in rows:
        rows_read += 1
        if parsed.row in bad_lines:  # reported already; its values are not what the file says
            continue
        if parsed.error is not None:
            errors.add(parsed.row, None, parsed.error)
            continue
        values, valid = _row_values(parsed, roles, canonical, max_chars, errors)
        item_id = values.get("id", f"row-{parsed.row}")
        if "id" in values:
            first = seen_ids.setdefault(item_id, parsed.row)
            if first != parsed.row:
                message = f"duplicate id {item_id!r} (rows {first} and {parsed.row})"
                errors.add(parsed.row, roles["id"], message)
                valid = False
        if not valid:
            continue
        # the same row in two splits is leakage, reported by core.data.quality, not an error
        content = (values[input_role], values[answer_role], values.get("split", ""))
        first = seen_content.setdefault(content, parsed.row)
        if first != parsed.row:
            errors.add(parsed.row, None, f"duplicate of row {first} (same {what})")
            continue
        if kind == "classification":
            label_counts[values["label"]] = label_counts.get(values["label"], 0) + 1
            first_rows.setdefault(values["label"], parsed.row)
        fields = {input_role: values[input_role]}
        meta = {"split": values["split"]} if "split" in values else {}
        items.append(Item(id=item_id, fields=fields, answer=values[answer_role], meta=meta))

    if kind == "classification" and not canonical:
        _check_label_spellings(label_counts, first_rows, roles["label"], errors)
    if rows_read == 0:
        if fmt == "jsonl":
            errors.add(None, None, "the file has no data rows")
        else:
            errors.add(None, None, "the file has a header row but no data rows")
    return report(rows_read, items)


def _check_label_spellings(
    counts: dict[str, int], first_rows: dict[str, int], column: str, errors: _Errors
) -> None:
    """Labels that differ only in case ('Positive', 'positive') would be two classes: refuse.

    With a label list, case is ignored and both map to the listed spelling; without one, the
    file must use one spelling per label.
    """
    spellings: dict[str, list[str]] = {}
    for label in counts:
        spellings.setdefault(label.casefold(), []).append(label)
    for variants in spellings.values():
        if len(variants) < 2:
            continue
        listed = " and ".join(
            f"{label!r} ({counts[label]} row{'' if counts[label] == 1 else 's'}, first row "
            f"{first_rows[label]})"
            for label in sorted(variants, key=lambda v: -counts[v])
        )
        errors.add(
            first_rows[min(variants, key=lambda v: counts[v])],
            column,
            f"labels {listed} differ only in case: use one spelling, or give the label list "
            "(--labels) so that case is ignored",
        )


def import_dataset(
    path: str | Path,
    kind: str,
    mapping: ColumnMapping,
    labels: Sequence[str] | None = None,
    max_chars: int = 4000,
    file_format: str | None = None,
) -> list[Item]:
    """:func:`read_dataset`, then raise DatasetImportError if any row is invalid.

    >>> items = import_dataset("data.csv", "classification",
    ...                        ColumnMapping(text="text", label="label"))  # doctest: +SKIP
    >>> items[0].id, items[0].fields, items[0].answer  # doctest: +SKIP
    ('row-2', {'text': 'Shares fell.'}, 'negative')
    """
    report = read_dataset(path, kind, mapping, labels, max_chars, file_format)
    if not report.ok:
        raise DatasetImportError(report)
    return report.items


def list_columns(path: str | Path, file_format: str | None = None) -> list[str]:
    """The column names of a CSV/TSV header, or the keys of the first 50 JSONL objects.

    For a column-mapping picker: names come in file order without repeats, bytes that are not
    UTF-8 are replaced (``read_dataset`` reports them), and lines that are not JSON objects are
    skipped. An empty file gives ``[]``. Raises FileNotFoundError for a missing file and
    ValueError for an unsupported format.

        >>> list_columns("data.csv")  # doctest: +SKIP
        ['id', 'text', 'label']
    """
    path = Path(path)
    fmt = _check_format(file_format) or EXTENSIONS.get(path.suffix.lower())
    if not path.is_file():
        if path.exists():
            raise IsADirectoryError(f"{path} is not a file")
        raise FileNotFoundError(f"no such file: {path}")
    if fmt is None:
        raise ValueError(f"{path.name}: unsupported file type {path.suffix!r}; {SUPPORTED}")
    names: dict[str, None] = {}
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        if fmt == "jsonl":
            objects = 0
            for line in handle:
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    names.update(dict.fromkeys(value))
                    objects += 1
                    if objects >= COLUMN_SAMPLE:
                        break
        else:
            reader = csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",")
            try:
                header = next((row for row in reader if any(cell.strip() for cell in row)), [])
            except csv.Error as exc:
                raise ValueError(f"{path.name}: cannot read the header: {exc}") from exc
            names.update(dict.fromkeys(cell.strip() for cell in header))
    return list(names)


def _required_roles(kind: str, mapping: ColumnMapping) -> dict[str, str]:
    """role -> column for the roles this kind uses (id included when mapped)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    needed = ROLES[kind]
    roles: dict[str, str] = {}
    for role in (*needed, "id", "split"):
        column = getattr(mapping, role)
        if column is not None and column.strip():
            roles[role] = column.strip()
        elif role not in ("id", "split"):
            raise ValueError(f"a {kind} dataset needs a column mapped to {role!r}")
    return roles


def _canonical_labels(kind: str, labels: Sequence[str] | None) -> dict[str, str]:
    """casefolded label -> canonical label; empty when any label is accepted."""
    if labels is None:
        return {}
    if kind != "classification":
        raise ValueError("labels only apply to classification datasets")
    if isinstance(labels, str):
        raise ValueError("labels must be a sequence of strings, not one string")
    canonical: dict[str, str] = {}
    for label in labels:
        key = label.strip().casefold()
        if not key:
            raise ValueError("labels must not be empty strings")
        if key in canonical:
            raise ValueError(f"labels {canonical[key]!r} and {label!r} differ only in case")
        canonical[key] = label.strip()
    if not canonical:
        raise ValueError("labels must not be empty; pass None to accept any label")
    return canonical


def _check_format(file_format: str | None) -> str | None:
    if file_format is None:
        return None
    fmt = file_format.lower().lstrip(".")
    fmt = "jsonl" if fmt == "ndjson" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(FORMATS)}; got {file_format!r}")
    return fmt


def _decode(data: bytes, errors: _Errors) -> tuple[str | None, set[int]]:
    """The file's text (UTF-8, an optional BOM dropped) and the lines that are not UTF-8.

    Each line with bytes that are not UTF-8 is reported on its own (and its bytes replaced),
    so the rest of the file is still checked in the same pass. A UTF-16 file gives None.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        errors.add(1, None, f"the file is UTF-16 encoded, not UTF-8; {RESAVE}")
        return None, set()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8"), set()
    except UnicodeDecodeError:
        pass
    bad_lines = set()
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_lines.add(number)
            byte = exc.object[exc.start : exc.start + 1].hex()
            errors.add(number, None, f"byte 0x{byte} is not valid UTF-8; {RESAVE}")
    return data.decode("utf-8", errors="replace"), bad_lines


def _jsonl_rows(text: str) -> Iterator[_Row]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_int=str, parse_float=str, parse_constant=_no_constant)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            column = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            yield _Row(number, error=f"not valid JSON: {reason}{column}")
            continue
        if not isinstance(value, dict):
            yield _Row(number, error=f"expected a JSON object {{...}}, got {_json_type(value)}")
            continue
        yield _Row(number, values=value)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed in JSON")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"  # numbers were parsed as strings; they are accepted where this is asked


_Record = tuple[int, list[str], str | None]  # (start line, cells, parse error)


def _csv_rows(
    text: str, delimiter: str, wanted: list[str], errors: _Errors
) -> Iterator[_Row] | None:
    """The data rows of a CSV/TSV text; None (errors reported) when the header is unusable."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = _csv_records(reader)
    header_row = None
    for record in records:
        start, cells, problem = record
        if problem is not None:
            errors.add(start, None, problem)
            return None
        if any(cell.strip() for cell in cells):
            header_row = [cell.strip() for cell in cells]
            break
    if header_row is None:  # only blank lines: the caller reports the empty file
        return iter(())
    missing = False
    for column in wanted:
        count = header_row.count(column)
        if count == 0:
            missing = True
            near = difflib.get_close_matches(column, header_row, n=1, cutoff=0.6)
            near += [name for name in header_row if name.casefold() == column.casefold()]
            hint = f" (did you mean {near[-1]!r}?)" if near else ""
            listed = ", ".join(repr(name) for name in header_row)
            errors.add(None, column, f"column not found in the header{hint}; columns: {listed}")
        elif count > 1:
            missing = True
            errors.add(None, column, f"the header has {count} columns of this name")
    if missing:
        return None
    return _csv_data(records, header_row)


def _csv_records(reader: Iterator[list[str]]) -> Iterator[_Record]:
    """(start line, cells, parse error) per CSV record; stops after a parse error."""
    line = 0
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, [], f"cannot parse the CSV from here on: {exc}"
            return
        line = reader.line_num  # type: ignore[attr-defined]
        yield start, cells, None


def _csv_data(records: Iterator[_Record], header: list[str]) -> Iterator[_Row]:
    width = len(header)
    for start, cells, problem in records:
        if problem is not None:
            yield _Row(start, error=problem)
            return
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            message = f"the row has {len(cells)} fields but the header has {width} columns"
            yield _Row(start, error=message + _span_hint(start, cells))
            continue
        yield _Row(start, values=dict(zip(header, cells, strict=True)))


def _span_hint(start: int, cells: list[str]) -> str:
    breaks = sum(cell.count("\n") + cell.count("\r") - cell.count("\r\n") for cell in cells)
    if breaks == 0:
        return ""
    return f" (the row runs over lines {start}-{start + breaks}; check for an unclosed quote)"


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not tab, newline or return


def _control_character(value: str) -> str | None:
    """The first control character in ``value`` as U+XXXX (tab and line breaks are fine).

    >>> _control_character("Revenue\\x00 rose"), _control_character("two\\tcolumns")
    ('U+0000', None)
    """
    found = CONTROL.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def _row_values(
    parsed: _Row,
    columns: dict[str, str],
    canonical: dict[str, str],
    max_chars: int,
    errors: _Errors,
) -> tuple[dict[str, str], bool]:
    """role -> stripped (canonical, for labels) value of a row's valid values; False on errors."""
    values: dict[str, str] = {}
    ok = True
    for role, column in columns.items():
        if column not in parsed.values:
            errors.add(parsed.row, column, f"missing key {column!r}")
            ok = False
            continue
        raw = parsed.values[column]
        if raw is not None and not isinstance(raw, str):
            errors.add(parsed.row, column, f"expected a string or a number, got {_json_type(raw)}")
            ok = False
            continue
        value = (raw or "").strip()
        if not value:
            errors.add(parsed.row, column, f"empty {role}")
            ok = False
        elif bad := _control_character(value):
            errors.add(
                parsed.row,
                column,
                f"{role} holds the control character {bad} (a binary or damaged file?)",
            )
            ok = False
        elif len(value) > max_chars:
            errors.add(
                parsed.row,
                column,
                f"{role} is {len(value)} characters long; the limit is {max_chars}",
            )
            ok = False
        elif role == "label" and canonical:
            label = canonical.get(value.casefold())
            if label is None:
                expected = ", ".join(canonical.values())
                near = difflib.get_close_matches(value, list(canonical.values()), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                errors.add(
                    parsed.row,
                    column,
                    f"unknown label {value!r} (expected one of: {expected}){hint}",
                )
                ok = False
            else:
                values[role] = label
        elif role == "split" and value.casefold() not in SPLIT_NAMES:
            errors.add(
                parsed.row,
                column,
                f"unknown split {value!r} (expected one of: {', '.join(SPLIT_NAMES)})",
            )
            ok = False
        elif role == "split":
            values[role] = value.casefold()
        else:
            values[role] = value
    return values, ok
