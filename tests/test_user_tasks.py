"""Tasks made from a user's file: validated whole, saved only when clean, then used like built-ins."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import evaluate_ids

from core import paths, store
from core.cli import main
from core.data.importer import ColumnMapping, DatasetImportError
from core.data.items import SPLIT_NAMES
from core.evaluation.runner import EvalOptions
from core.tasks.authoring import create_task_from_file
from core.tasks.spec import TaskSpecError, get_task, list_tasks, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")

LABELS = ["positive", "neutral", "negative"]
MAPPING = ColumnMapping(text="headline", label="tone")


def write_csv(path, rows, header=("headline", "tone")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def good_rows(n: int = 40):
    return [
        [f"Company {i} reports results for quarter {i % 4 + 1}", LABELS[i % 3]] for i in range(n)
    ]


def snapshot(home):
    """Every file under the home folder (the store included) with its bytes."""
    return {p.relative_to(home): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def test_valid_csv_becomes_a_usable_task(db, finboard_home, tmp_path):
    source = write_csv(tmp_path / "news.csv", good_rows())
    spec = create_task_from_file(
        source,
        name="my_news",
        kind="choice",
        mapping=MAPPING,
        labels=LABELS,
        instruction="Classify the headline.",
        template="Headline: {text}\nTone:",
    )
    assert spec.name == "my_news" and spec.kind == "choice"
    assert spec.labels == LABELS
    assert not spec.builtin
    assert spec.path == paths.user_tasks_dir() / "my_news.yaml"
    copy = paths.user_data_dir() / "datasets" / "my_news.csv"
    assert (
        copy.read_bytes() == source.read_bytes()
    )  # the data is kept: the task survives the original
    source.unlink()

    assert "my_news" in [s.name for s in list_tasks()]
    assert get_task("my_news") == spec
    splits = {s: load_split(spec, s) for s in SPLIT_NAMES}
    assert sum(len(s) for s in splits.values()) == 40
    assert len(splits["test"]) > 0
    assert splits["test"].fingerprint == load_split(get_task("my_news"), "test").fingerprint
    item = splits["test"].items[0]
    assert item.id.startswith("row-") and item.answer in LABELS

    result = evaluate_ids(
        "tiny-llama",
        "my_news",
        options=EvalOptions(dtype="fp32", device="cpu", batch_size=4),
        db=db,
    )
    assert result["task"] == "my_news"
    assert result["n_items"] == len(splits["test"])
    assert 0 <= result["score"] <= 1
    assert db["predictions"].count == len(splits["test"])
    prompts = [p["prompt"] for p in db["predictions"].rows]
    assert all(
        p.startswith("Classify the headline.\n\nHeadline: ") and p.endswith("\nTone:")
        for p in prompts
    )


def test_labels_default_to_those_in_the_file(finboard_home, tmp_path):
    source = write_csv(tmp_path / "news.csv", good_rows(30))
    spec = create_task_from_file(source, name="inferred", kind="choice", mapping=MAPPING)
    assert sorted(spec.labels) == sorted(LABELS)
    assert spec.template == "Text: {text}\nAnswer:"


def test_generation_task_from_jsonl(finboard_home, tmp_path):
    source = tmp_path / "qa.jsonl"
    source.write_text(
        "".join(f'{{"q": "What is {i} plus {i}?", "a": "{2 * i}"}}\n' for i in range(30))
    )
    spec = create_task_from_file(
        source, name="sums", kind="numeric", mapping=ColumnMapping(prompt="q", answer="a")
    )
    assert spec.is_generation and spec.template == "{prompt}"
    items = [i for s in SPLIT_NAMES for i in load_split(spec, s).items]
    assert sorted(float(i.answer) for i in items) == [2.0 * i for i in range(30)]


def test_numeric_task_with_a_non_numeric_answer_is_rejected(finboard_home, tmp_path):
    source = tmp_path / "qa.jsonl"
    answers = ["1.5", "2", "n/a", "-0.25", "$3.10"]
    source.write_text(
        "".join(f'{{"q": "Question {i}?", "a": "{a}"}}\n' for i, a in enumerate(answers))
    )
    before = snapshot(finboard_home)
    with pytest.raises(DatasetImportError) as info:
        create_task_from_file(
            source, name="qa", kind="numeric", mapping=ColumnMapping(prompt="q", answer="a")
        )
    errors = info.value.report.errors
    assert [(e.row, e.field) for e in errors] == [(3, "a"), (5, "a")]  # JSONL row N is line N
    assert "qa.jsonl, row 3, field 'a': answer 'n/a' is not a plain number" in str(info.value)
    assert_nothing_written(finboard_home, before)


def test_numeric_check_names_the_id_when_the_file_has_ids(finboard_home, tmp_path):
    source = write_csv(
        tmp_path / "qa.csv",
        [["q1", "What is EPS?", "2.67"], ["q2", "Growth?", "about 5"]]
        + [[f"q{i}", f"What is {i} plus {i}?", str(2 * i)] for i in range(3, 40)],
        header=("uid", "question", "answer"),
    )
    with pytest.raises(
        DatasetImportError, match=r"qa\.csv, field 'answer': id 'q2': answer 'about 5'"
    ):
        create_task_from_file(
            source,
            name="qa",
            kind="numeric",
            mapping=ColumnMapping(prompt="question", answer="answer", id="uid"),
        )
    # a text task accepts any answer
    spec = create_task_from_file(
        source,
        name="qa_text",
        kind="text",
        mapping=ColumnMapping(prompt="question", answer="answer", id="uid"),
    )
    assert spec.kind == "text"


def assert_nothing_written(home, before):
    assert snapshot(home) == before
    assert not paths.user_tasks_dir().exists() or not any(paths.user_tasks_dir().iterdir())
    datasets = paths.user_data_dir() / "datasets"
    assert not datasets.exists() or not any(datasets.iterdir())


def test_unknown_label_on_row_3_writes_nothing(db, finboard_home, tmp_path):
    rows = good_rows(10)
    rows[1][1] = "postive"  # CSV row 3: header is row 1
    source = write_csv(tmp_path / "bad_news.csv", rows)
    before = snapshot(finboard_home)
    with pytest.raises(DatasetImportError) as info:
        create_task_from_file(
            source, name="bad_news", kind="choice", mapping=MAPPING, labels=LABELS
        )
    message = str(info.value)
    assert "bad_news.csv, row 3, field 'tone': unknown label 'postive'" in message
    assert "did you mean 'positive'" in message
    assert [e.row for e in info.value.report.errors] == [3]
    assert_nothing_written(finboard_home, before)
    assert "bad_news" not in [s.name for s in list_tasks()]
    assert db["scores"].count == 0


def test_every_bad_row_is_reported_at_once(finboard_home, tmp_path):
    rows = good_rows(10)
    rows[1][1] = "bullish"
    rows[4][0] = "   "
    source = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetImportError) as info:
        create_task_from_file(source, name="bad", kind="choice", mapping=MAPPING, labels=LABELS)
    assert {(e.row, e.field) for e in info.value.report.errors} == {(3, "tone"), (6, "headline")}


def test_bad_encoding_writes_nothing(finboard_home, tmp_path):
    text = "headline,tone\nGood quarter,positive\nCaf\xe9 chain misses,negative\n"
    source = tmp_path / "latin1.csv"
    source.write_bytes(text.encode("latin-1"))
    before = snapshot(finboard_home)
    with pytest.raises(DatasetImportError) as info:
        create_task_from_file(source, name="latin", kind="choice", mapping=MAPPING, labels=LABELS)
    message = str(info.value)
    assert "latin1.csv, row 3" in message
    assert "UTF-8" in message
    assert_nothing_written(finboard_home, before)


def test_missing_column_writes_nothing(finboard_home, tmp_path):
    source = write_csv(tmp_path / "cols.csv", good_rows(30), header=("title", "tone"))
    before = snapshot(finboard_home)
    with pytest.raises(DatasetImportError, match=r"cols\.csv, field 'headline': column not found"):
        create_task_from_file(source, name="cols", kind="choice", mapping=MAPPING, labels=LABELS)
    assert_nothing_written(finboard_home, before)


def test_bad_template_writes_nothing(finboard_home, tmp_path):
    source = write_csv(tmp_path / "news.csv", good_rows(30))
    before = snapshot(finboard_home)
    with pytest.raises(TaskSpecError, match="template"):
        create_task_from_file(
            source, name="tmpl", kind="choice", mapping=MAPPING, template="Headline: {headline}"
        )
    assert_nothing_written(finboard_home, before)


def test_single_label_file_is_rejected_before_writing(finboard_home, tmp_path):
    source = write_csv(tmp_path / "one.csv", [[f"Headline {i}", "positive"] for i in range(5)])
    before = snapshot(finboard_home)
    with pytest.raises(TaskSpecError, match="labels"):
        create_task_from_file(source, name="one_label", kind="choice", mapping=MAPPING)
    assert_nothing_written(finboard_home, before)


def test_duplicate_task_name_is_rejected(finboard_home, tmp_path):
    source = write_csv(tmp_path / "news.csv", good_rows(30))
    create_task_from_file(source, name="dup_news", kind="choice", mapping=MAPPING, labels=LABELS)
    before = snapshot(finboard_home)
    with pytest.raises(TaskSpecError, match="already exists"):
        create_task_from_file(
            source, name="dup_news", kind="choice", mapping=MAPPING, labels=LABELS
        )
    with pytest.raises(TaskSpecError, match="already exists"):
        create_task_from_file(
            source, name="fin_sentiment", kind="choice", mapping=MAPPING, labels=LABELS
        )
    assert snapshot(finboard_home) == before


@pytest.mark.parametrize("name", ["Bad-Name", "x", "1news", "my news", "../escape", "news.csv", ""])
def test_bad_task_name_is_rejected(finboard_home, tmp_path, name):
    source = write_csv(tmp_path / "news.csv", good_rows(30))
    before = snapshot(finboard_home)
    with pytest.raises(TaskSpecError, match="Task name"):
        create_task_from_file(source, name=name, kind="choice", mapping=MAPPING, labels=LABELS)
    assert_nothing_written(finboard_home, before)


# ---------------------------------------------------------------- the CLI path


def tasks_add(name: str, source: Path, *options: str):
    """``finboard tasks add NAME --file SOURCE`` with the headline / tone columns mapped."""
    command = ["tasks", "add", name, "--file", str(source)]
    command += ["--text-column", "headline", "--label-column", "tone", *options]
    return CliRunner().invoke(main, command)


def test_cli_tasks_add_bad_file(finboard_home, tmp_path):
    rows = good_rows(10)
    rows[1][1] = "postive"
    source = write_csv(tmp_path / "bad_news.csv", rows)
    before = snapshot(finboard_home)
    result = tasks_add("cli_news", source, "--labels", "positive,neutral,negative")
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "row 3" in result.output
    assert "unknown label 'postive'" in result.output
    assert_nothing_written(finboard_home, before)


def test_cli_tasks_add_good_file_then_listed(finboard_home, tmp_path):
    source = write_csv(tmp_path / "news.csv", good_rows(30))
    labels, template = "positive, neutral, negative", "Headline: {text}\nTone:"
    result = tasks_add("cli_news", source, "--labels", labels, "--template", template)
    assert result.exit_code == 0, result.output
    assert "Task 'cli_news' saved" in result.output
    spec = get_task("cli_news")
    assert spec.labels == LABELS
    assert spec.template == "Headline: {text}\nTone:"
    listing = CliRunner().invoke(main, ["tasks"])
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if line.startswith("cli_news "))
    assert "user" in row.split()
    assert store.connect()["scores"].count == 0


def test_cli_tasks_add_missing_file_is_a_usage_error(finboard_home, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "tasks",
            "add",
            "x_news",
            "--file",
            str(tmp_path / "absent.csv"),
            "--text-column",
            "a",
            "--label-column",
            "b",
        ],
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
