"""Importing user CSV/TSV/JSONL files: valid files become items, every bad row is reported."""

from __future__ import annotations

import json

import pytest

from core.data.importer import (
    MAX_ERRORS,
    ColumnMapping,
    DatasetImportError,
    ImportReport,
    RowError,
    import_dataset,
    list_columns,
    read_dataset,
)
from core.data.items import Item

LABELS = ["negative", "neutral", "positive"]
CLS = ColumnMapping(text="text", label="label")
GEN = ColumnMapping(prompt="question", answer="answer")


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(*rows: object) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def messages(report: ImportReport) -> list[str]:
    return [str(error) for error in report.errors]


def only_error(report: ImportReport) -> RowError:
    assert not report.ok
    assert report.items == []
    assert len(report.errors) == 1, messages(report)
    return report.errors[0]


# --- valid files -------------------------------------------------------------------------------


def test_valid_csv_imports_with_stripped_values_and_canonical_labels(tmp_path):
    path = write(
        tmp_path,
        "data.csv",
        "id,text,label\r\n"
        "a1,  Shares fell.  ,negative\r\n"
        'a2,"Profit rose,\r\nstrongly.", Positive \r\n'
        "a3,Flat quarter.,NEUTRAL\r\n",
    )
    report = read_dataset(path, "classification", ColumnMapping("text", "label", id="id"), LABELS)
    assert report.ok and report.errors == []
    assert report.file == "data.csv" and report.kind == "classification"
    assert report.rows_read == 3
    assert report.items == [
        Item(id="a1", fields={"text": "Shares fell."}, answer="negative"),
        Item(id="a2", fields={"text": "Profit rose,\r\nstrongly."}, answer="positive"),
        Item(id="a3", fields={"text": "Flat quarter."}, answer="neutral"),
    ]
    assert report.label_counts == {"negative": 1, "neutral": 1, "positive": 1}


def test_default_ids_are_the_line_where_each_csv_row_starts(tmp_path):
    path = write(
        tmp_path,
        "data.csv",
        'text,label\n"two\nlines",up\n\nthird,down\n',
    )
    items = import_dataset(path, "classification", CLS)
    # header line 1; the quoted cell spans lines 2-3; line 4 is blank; the next row is on line 5
    assert [item.id for item in items] == ["row-2", "row-5"]
    assert [item.answer for item in items] == ["up", "down"]


def test_label_counts_without_a_label_list_count_what_the_file_has(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\na,up\nb,down\nc,up\n")
    report = read_dataset(path, "classification", CLS)
    assert report.ok
    assert report.label_counts == {"up": 2, "down": 1}


def test_valid_jsonl_with_bom_imports_with_line_numbers_as_ids(tmp_path):
    body = (
        jsonl({"question": " What is 2+2? ", "answer": 4, "extra": [1]})
        + "\n"
        + jsonl({"question": "Define EBITDA.", "answer": "Earnings before ..."})
    )
    path = write(tmp_path, "qa.jsonl", b"\xef\xbb\xbf" + body.encode("utf-8"))
    report = read_dataset(path, "generation", GEN)
    assert report.ok, messages(report)
    assert report.rows_read == 2
    assert report.label_counts == {}
    assert report.items == [
        Item(id="row-1", fields={"prompt": "What is 2+2?"}, answer="4"),
        Item(id="row-3", fields={"prompt": "Define EBITDA."}, answer="Earnings before ..."),
    ]


def test_jsonl_id_key_and_ndjson_extension(tmp_path):
    path = write(
        tmp_path,
        "qa.ndjson",
        jsonl(
            {"uid": 7, "question": "q1", "answer": "a"},
            {"uid": "x", "question": "q2", "answer": "b"},
        ),
    )
    items = import_dataset(
        path, "generation", ColumnMapping(prompt="question", answer="answer", id="uid")
    )
    assert [item.id for item in items] == ["7", "x"]


def test_tsv_and_explicit_file_format(tmp_path):
    tsv = write(tmp_path, "data.tsv", "text\tlabel\nhello, world\tup\n")
    assert import_dataset(tsv, "classification", CLS) == [
        Item(id="row-2", fields={"text": "hello, world"}, answer="up")
    ]
    txt = write(tmp_path, "data.txt", jsonl({"text": "t", "label": "up"}))
    assert import_dataset(txt, "classification", CLS, file_format="jsonl")[0].answer == "up"


# --- bad input: whole file ---------------------------------------------------------------------


def test_unsupported_extension_rejects_the_whole_file(tmp_path):
    path = write(tmp_path, "data.xlsx", "text,label\na,up\n")
    error = only_error(read_dataset(path, "classification", CLS))
    assert error.row is None and error.field is None
    assert str(error).startswith("data.xlsx: unsupported file type .xlsx")
    assert ".csv" in error.message and ".jsonl" in error.message


def test_json_extension_is_unsupported_with_a_hint(tmp_path):
    path = write(tmp_path, "data.json", jsonl({"text": "a", "label": "up"}))
    report = read_dataset(path, "classification", CLS)
    assert report.rows_read == 0
    assert "rename it to .jsonl" in only_error(report).message


def test_bad_encoding_names_every_bad_line_and_the_rest_is_still_checked(tmp_path):
    content = (
        b"text,label\nfine,up\n"
        + "café,down\n".encode("cp1252")
        + b"\xff,up\n"
        + b",up\nfine,up\n"  # an empty text, and a duplicate of row 2
    )
    path = write(tmp_path, "latin.csv", content)
    report = read_dataset(path, "classification", CLS)
    found = [(e.row, e.field) for e in report.errors]
    assert found == [(3, None), (4, None), (5, "text"), (6, None)], report.errors
    assert str(report.errors[0]) == (
        "latin.csv, row 3: byte 0xe9 is not valid UTF-8; re-save the file as UTF-8 "
        "(in Excel: 'CSV UTF-8')"
    )
    assert "byte 0xff" in report.errors[1].message
    assert "duplicate of row 2" in report.errors[3].message
    assert report.items == [] and report.rows_read == 5


def test_bad_encoding_in_jsonl(tmp_path):
    path = write(tmp_path, "qa.jsonl", b'{"question": "q", "answer": "a"}\n{"question": "\x80"}\n')
    error = only_error(read_dataset(path, "generation", GEN))
    assert (error.file, error.row) == ("qa.jsonl", 2)
    assert "UTF-8" in str(error)


def test_utf16_file_is_rejected(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\na,up\n".encode("utf-16"))
    error = only_error(read_dataset(path, "classification", CLS))
    assert error.row == 1
    assert "UTF-16" in error.message and "re-save" in error.message


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.csv", "", "the file is empty"),
        ("data.csv", "\ufeff \n\n", "the file is empty"),
        ("data.csv", "text,label\n", "the file has a header row but no data rows"),
        ("data.csv", "text,label\n\n,\n", "the file has a header row but no data rows"),
        ("data.jsonl", "\n  \n", "the file is empty"),
    ],
)
def test_empty_file_or_no_data_rows(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    report = read_dataset(path, "classification", CLS)
    error = only_error(report)
    assert str(error) == f"{name}: {message}"
    assert report.rows_read == 0


def test_missing_csv_columns_give_one_error_each(tmp_path):
    path = write(tmp_path, "data.csv", "Sentence,sentiment\na,up\nb,down\n")
    report = read_dataset(path, "classification", ColumnMapping(text="sentence", label="label"))
    assert report.items == []
    assert [(e.file, e.row, e.field) for e in report.errors] == [
        ("data.csv", None, "sentence"),
        ("data.csv", None, "label"),
    ]
    assert str(report.errors[0]) == (
        "data.csv, field 'sentence': column not found in the header (did you mean 'Sentence'?); "
        "columns: 'Sentence', 'sentiment'"
    )


def test_duplicate_mapped_column_in_header(tmp_path):
    path = write(tmp_path, "data.csv", "text,label,text\na,up,b\n")
    error = only_error(read_dataset(path, "classification", CLS))
    assert str(error) == "data.csv, field 'text': the header has 2 columns of this name"


# --- bad input: rows ---------------------------------------------------------------------------


def test_jsonl_row_lacking_a_key(tmp_path):
    path = write(tmp_path, "qa.jsonl", jsonl({"question": "q1", "answer": "a"}, {"question": "q2"}))
    error = only_error(read_dataset(path, "generation", GEN))
    assert str(error) == "qa.jsonl, row 2, field 'answer': missing key 'answer'"


def test_malformed_jsonl_lines(tmp_path):
    path = write(
        tmp_path,
        "qa.jsonl",
        '{"question": "q", "answer": "a"}\n{"question": "q2", \n["q3", "a3"]\n"just text"\n',
    )
    report = read_dataset(path, "generation", GEN)
    assert report.items == [] and report.rows_read == 4
    assert [(e.file, e.row, e.field) for e in report.errors] == [
        ("qa.jsonl", 2, None),
        ("qa.jsonl", 3, None),
        ("qa.jsonl", 4, None),
    ]
    assert str(report.errors[0]).startswith("qa.jsonl, row 2: not valid JSON: ")
    assert str(report.errors[1]) == "qa.jsonl, row 3: expected a JSON object {...}, got an array"
    assert str(report.errors[2]) == "qa.jsonl, row 4: expected a JSON object {...}, got a string"


def test_jsonl_values_that_are_not_strings(tmp_path):
    path = write(
        tmp_path,
        "qa.jsonl",
        jsonl({"question": True, "answer": "a"}, {"question": "q", "answer": None})
        + '{"question": "q3", "answer": NaN}\n',
    )
    assert messages(read_dataset(path, "generation", GEN)) == [
        "qa.jsonl, row 1, field 'question': expected a string or a number, got a boolean",
        "qa.jsonl, row 2, field 'answer': empty answer",
        "qa.jsonl, row 3: not valid JSON: NaN is not allowed in JSON",
    ]


def test_csv_rows_with_the_wrong_number_of_fields(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\ngood,up\ntoo,many,fields\nfew\n")
    report = read_dataset(path, "classification", CLS)
    assert report.items == []
    assert messages(report) == [
        "data.csv, row 3: the row has 3 fields but the header has 2 columns",
        "data.csv, row 4: the row has 1 fields but the header has 2 columns",
    ]


def test_unclosed_quote_is_pointed_at(tmp_path):
    path = write(tmp_path, "data.csv", 'text,label\n"oops,up\nnext,down\n')
    error = only_error(read_dataset(path, "classification", CLS))
    assert error.row == 2
    assert "check for an unclosed quote" in error.message


@pytest.mark.parametrize("value", ["", "   ", '"  \t "'])
def test_empty_required_field_csv(tmp_path, value):
    path = write(tmp_path, "data.csv", f"text,label\nfine,up\n{value},down\n")
    error = only_error(read_dataset(path, "classification", CLS))
    assert str(error) == "data.csv, row 3, field 'text': empty text"


def test_empty_required_field_jsonl(tmp_path):
    path = write(tmp_path, "qa.jsonl", jsonl({"question": "q", "answer": " "}))
    error = only_error(read_dataset(path, "generation", GEN))
    assert (error.file, error.row, error.field) == ("qa.jsonl", 1, "answer")
    assert str(error) == "qa.jsonl, row 1, field 'answer': empty answer"


def test_unknown_label_lists_the_expected_labels(tmp_path):
    path = write(
        tmp_path, "data.csv", "text,sentiment\na,Negative\nb,neutral\nc,positive\nd,postive\n"
    )
    report = read_dataset(
        path, "classification", ColumnMapping(text="text", label="sentiment"), LABELS
    )
    error = only_error(report)
    assert str(error) == (
        "data.csv, row 5, field 'sentiment': unknown label 'postive' "
        "(expected one of: negative, neutral, positive); did you mean 'positive'?"
    )
    # the valid rows are still counted, under their canonical label
    assert report.label_counts == {"negative": 1, "neutral": 1, "positive": 1}


def test_duplicate_ids_name_both_rows(tmp_path):
    path = write(tmp_path, "data.csv", "uid,text,label\nk1,a,up\nk2,b,up\nk1,c,down\n")
    report = read_dataset(path, "classification", ColumnMapping("text", "label", id="uid"))
    error = only_error(report)
    assert str(error) == "data.csv, row 4, field 'uid': duplicate id 'k1' (rows 2 and 4)"


def test_empty_id_is_an_error(tmp_path):
    path = write(tmp_path, "data.csv", "uid,text,label\n,a,up\n")
    error = only_error(
        read_dataset(path, "classification", ColumnMapping("text", "label", id="uid"))
    )
    assert str(error) == "data.csv, row 2, field 'uid': empty id"


def test_duplicate_rows_name_the_earlier_row(tmp_path):
    path = write(
        tmp_path, "data.csv", "text,label\nShares fell.,negative\nx,up\n Shares fell. ,Negative\n"
    )
    error = only_error(read_dataset(path, "classification", CLS, LABELS + ["up"]))
    assert str(error) == "data.csv, row 4: duplicate of row 2 (same text and label)"


def test_duplicate_generation_rows(tmp_path):
    rows = [{"question": "q", "answer": "a"}, {"question": "q", "answer": "b"}] * 2
    report = read_dataset(write(tmp_path, "qa.jsonl", jsonl(*rows)), "generation", GEN)
    assert messages(report) == [
        "qa.jsonl, row 3: duplicate of row 1 (same prompt and answer)",
        "qa.jsonl, row 4: duplicate of row 2 (same prompt and answer)",
    ]


def test_over_long_values_report_length_and_limit(tmp_path):
    path = write(tmp_path, "data.csv", f"text,label\n{'x' * 11},up\n{'y' * 10},up\n")
    error = only_error(read_dataset(path, "classification", CLS, max_chars=10))
    assert (
        str(error) == "data.csv, row 2, field 'text': text is 11 characters long; the limit is 10"
    )


def test_generation_answer_is_any_non_empty_string(tmp_path):
    path = write(
        tmp_path,
        "qa.csv",
        'question,answer\nq1,"multi\nline answer"\nq2,-3.5e2\nq3,"  "\n',
    )
    report = read_dataset(path, "generation", GEN)
    assert messages(report) == ["qa.csv, row 5, field 'answer': empty answer"]
    fixed = write(tmp_path, "qa2.csv", 'question,answer\nq1,"multi\nline answer"\nq2,-3.5e2\n')
    assert [item.answer for item in import_dataset(fixed, "generation", GEN)] == [
        "multi\nline answer",
        "-3.5e2",
    ]


def test_all_errors_of_a_file_are_reported_in_one_pass(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\n,up\nb,\nc,d,e\nok,up\n")
    report = read_dataset(path, "classification", CLS)
    assert [(e.row, e.field) for e in report.errors] == [(2, "text"), (3, "label"), (4, None)]
    assert report.rows_read == 4 and report.items == []


def test_stored_errors_are_capped_and_the_rest_counted(tmp_path):
    bad = 1500
    path = write(tmp_path, "data.csv", "text,label\n" + ",up\n" * bad)
    report = read_dataset(path, "classification", CLS)
    assert len(report.errors) == MAX_ERRORS
    assert report.errors_omitted == bad - MAX_ERRORS
    assert report.error_count == bad and not report.ok
    assert report.errors[-1].row == MAX_ERRORS + 1
    message = str(DatasetImportError(report))
    assert message.startswith(f"data.csv cannot be imported ({bad} errors):")
    assert message.count("field 'text': empty text") == 20
    assert message.endswith(f"... and {bad - 20} more")


# --- import_dataset, arguments, list_columns ---------------------------------------------------


def test_import_dataset_raises_with_the_report(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\na,up\nb,sideways\n")
    with pytest.raises(DatasetImportError) as caught:
        import_dataset(path, "classification", CLS, ["up", "down"])
    report = caught.value.report
    assert report.items == [] and report.rows_read == 2
    assert str(caught.value) == (
        "data.csv cannot be imported (1 error):\n"
        "  data.csv, row 3, field 'label': unknown label 'sideways' (expected one of: up, down)"
    )


def test_import_dataset_returns_the_items_of_a_valid_file(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\na,up\n")
    assert import_dataset(path, "classification", CLS) == [
        Item(id="row-2", fields={"text": "a"}, answer="up")
    ]


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "nope.csv", "classification", CLS)
    with pytest.raises(FileNotFoundError):
        list_columns(tmp_path / "nope.csv")


def test_bad_arguments_raise_value_error(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\na,up\n")
    with pytest.raises(ValueError, match="kind must be one of"):
        read_dataset(path, "regression", CLS)
    with pytest.raises(ValueError, match="'label'"):
        read_dataset(path, "classification", ColumnMapping(text="text"))
    with pytest.raises(ValueError, match="'prompt'"):
        read_dataset(path, "generation", CLS)
    with pytest.raises(ValueError, match="differ only in case"):
        read_dataset(path, "classification", CLS, ["up", "Up"])
    with pytest.raises(ValueError, match="file_format"):
        read_dataset(path, "classification", CLS, file_format="xlsx")
    with pytest.raises(ValueError, match="max_chars"):
        read_dataset(path, "classification", CLS, max_chars=0)


def test_list_columns_csv_and_tsv(tmp_path):
    csv_path = write(tmp_path, "data.csv", "\ufeff id , text,label\n1,a,up\n")
    assert list_columns(csv_path) == ["id", "text", "label"]
    tsv_path = write(tmp_path, "data.tsv", "\nprompt\tanswer\tnote\n")
    assert list_columns(tsv_path) == ["prompt", "answer", "note"]
    assert list_columns(write(tmp_path, "empty.csv", "")) == []


def test_list_columns_jsonl_is_the_union_of_the_first_50_objects(tmp_path):
    rows = [{"question": "q", "answer": "a"}, {"answer": "b", "source": "x"}]
    rows += [{"question": "q"}] * 48 + [{"late_key": 1}]
    path = write(tmp_path, "qa.jsonl", "not json\n[1, 2]\n" + jsonl(*rows))
    assert list_columns(path) == ["question", "answer", "source"]
    assert list_columns(path, file_format="jsonl") == ["question", "answer", "source"]


def test_list_columns_rejects_an_unsupported_format(tmp_path):
    with pytest.raises(ValueError, match="unsupported file type"):
        list_columns(write(tmp_path, "data.xlsx", "x"))


def test_row_error_str_forms():
    assert str(RowError("d.csv", 7, "label", "m")) == "d.csv, row 7, field 'label': m"
    assert str(RowError("d.csv", 7, None, "m")) == "d.csv, row 7: m"
    assert str(RowError("d.csv", None, "label", "m")) == "d.csv, field 'label': m"
    assert str(RowError("d.csv", None, None, "m")) == "d.csv: m"
