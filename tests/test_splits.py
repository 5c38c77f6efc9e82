"""Explicit splits as a new user brings them: split files, a split column, records, HF data."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import TINY_CHAT_ID, evaluate_ids
from jobs_support import run_job_here as _run

from core.cli import main
from core.data.importer import ColumnMapping, DatasetImportError
from core.tasks.prepared import create_prepared_task, task_report
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")

# Hand-written sentences, not the product's generators: what a user's own files look like.
TRAIN = [
    ("Shares of Acme rose 5% after record quarterly revenue.", "positive"),
    ("The bank cut its dividend as loan losses widened.", "negative"),
    ("Net income was flat compared with the prior year.", "neutral"),
    ("Profit margins improved on lower input costs.", "positive"),
    ("The retailer missed earnings estimates by a wide margin.", "negative"),
    ("Full-year revenue guidance was left unchanged.", "neutral"),
    ("Investors cheered the strong free cash flow report.", "positive"),
    ("The insurer warned of a second straight quarterly loss.", "negative"),
    ("The board will meet on Tuesday to review the budget.", "neutral"),
    ("Orders for new aircraft doubled from a year earlier.", "positive"),
    ("Credit rating agencies downgraded the utility's bonds.", "negative"),
    ("The company kept its share count steady this quarter.", "neutral"),
]
TEST = [
    ("The bank cut its dividend as loan losses widened.", "negative"),  # also in train: leakage
    ("Operating profit jumped on higher sales volumes.", "positive"),
    ("The stock was unchanged in quiet trading.", "neutral"),
    ("Quarterly revenue fell short and the shares slid.", "negative"),
]
QUICK = {"max_train_examples": 16, "batch_size": 4, "eval_every": 2, "dtype": "fp32"}


def write_csv(path, rows, header=("sentence", "sentiment")):
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def snapshot(home):
    return {p.relative_to(home): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def tasks_add(*args):
    return CliRunner().invoke(main, ["tasks", "add", *map(str, args)])


def test_new_user_train_and_test_files_fine_tuned_and_scored_on_exactly_the_test_rows(
    db, finboard_home, tmp_path
):
    from core.jobs import queue
    from core.store import scores

    train = write_csv(tmp_path / "my_train.csv", TRAIN)
    test = write_csv(tmp_path / "my_test.csv", TEST)
    result = tasks_add(
        "my_sentiment", "--train", train, "--test", test,
        "--text-column", "sentence", "--label-column", "sentiment",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the leakage check names the test row that is also in train
    assert "leakage: test test-row-2 = train train-row-3 (100%)" in result.output
    report = task_report("my_sentiment")
    assert [(leak["id"], leak["match_id"]) for leak in report["leakage"]] == [
        ("test-row-2", "train-row-3")
    ]
    spec = get_task("my_sentiment")
    test_split = load_split(spec, "test")
    assert [item.fields["text"] for item in test_split.items] == [text for text, _ in TEST]
    assert len(load_split(spec, "train")) + len(load_split(spec, "validation")) == len(TRAIN)

    job = queue.submit(
        db,
        "finetune_compare",
        {"model_id": TINY_CHAT_ID, "task": "my_sentiment", "preset": "quick", "overrides": QUICK},
    )
    assert _run(db, job) == "succeeded", queue.get(db, job)["error"]
    out = queue.get(db, job)["result"]
    assert out["split_fingerprint"] == test_split.fingerprint
    tuned_score = next(
        s for s in scores.for_model(db, out["finetuned_model"]) if s["task"] == "my_sentiment"
    )
    ids = [p["item_id"] for p in scores.predictions(db, tuned_score["id"])]
    assert sorted(ids) == sorted(item.id for item in test_split.items)
    assert [p["gold"] for p in scores.predictions(db, tuned_score["id"])] == [
        label for _, label in TEST
    ]


def test_drop_leakage_removes_the_shared_row_from_train_only(finboard_home, tmp_path):
    files = {
        "train": write_csv(tmp_path / "t.csv", TRAIN),
        "test": write_csv(tmp_path / "s.csv", TEST),
    }
    spec, report = create_prepared_task(
        "no_leak",
        kind="choice",
        files=files,
        mapping=ColumnMapping(text="sentence", label="sentiment"),
        drop_leakage=True,
    )
    assert report["rejected"]["leakage"] == 1
    kept_train = load_split(spec, "train").items + load_split(spec, "validation").items
    assert TEST[0][0] not in {item.fields["text"] for item in kept_train}
    assert len(load_split(spec, "test")) == len(TEST)
    assert report["raw"] == report["passed"] + sum(report["rejected"].values())


def test_split_column_file(finboard_home, tmp_path):
    rows = [(t, s, "train") for t, s in TRAIN] + [(t, s, "TEST") for t, s in TEST[1:]]
    path = write_csv(tmp_path / "all.csv", rows, ("sentence", "sentiment", "split"))
    result = tasks_add(
        "col_split", "--file", path, "--split-column", "split",
        "--text-column", "sentence", "--label-column", "sentiment",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = get_task("col_split")
    assert len(load_split(spec, "test")) == 3
    assert "leakage" not in result.output


@pytest.mark.parametrize(
    "case,expected",
    [
        ("split_value", "all.csv, row 3, field 'split': unknown split 'holdout'"),
        ("test_label", "s.csv, row 3, field 'sentiment': label 'mixed' is not in the train file"),
        ("missing_output", "eps.jsonl, row 2, field 'output': missing key 'output'"),
    ],
)
def test_bad_input_names_file_row_and_field_and_stores_nothing(
    finboard_home, tmp_path, case, expected
):
    if case == "split_value":
        rows = [(TRAIN[0][0], "positive", "train"), (TRAIN[1][0], "negative", "holdout")]
        path = write_csv(tmp_path / "all.csv", rows, ("sentence", "sentiment", "split"))
        args = ["--file", path, "--split-column", "split"]
    elif case == "test_label":
        test = write_csv(tmp_path / "s.csv", [TEST[1], ("Analysts were split.", "mixed")])
        args = ["--train", write_csv(tmp_path / "t.csv", TRAIN), "--test", test]
    else:
        path = tmp_path / "eps.jsonl"
        records = [
            {
                "instruction": "Extract the EPS.",
                "input": "Net income $10M, 5M shares",
                "output": "2.00",
            },
            {"instruction": "Extract the EPS.", "input": "Net income $12M, 4M shares"},
        ]
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        args = ["--train", path, "--kind", "text"]
    before = snapshot(finboard_home)
    columns = (
        ["--text-column", "sentence", "--label-column", "sentiment"]
        if case != "missing_output"
        else []
    )
    result = tasks_add("bad_task", *args, *columns)
    assert result.exit_code != 0
    assert expected in result.output, result.output
    assert "Traceback" not in result.output
    assert snapshot(finboard_home) == before


def test_a_test_only_file_is_evaluated_and_not_trained(db, finboard_home, tmp_path):
    from core.jobs import queue
    from core.jobs.kinds import JobError

    test = write_csv(tmp_path / "only_test.csv", TEST)
    result = tasks_add(
        "test_only", "--test", test, "--text-column", "sentence", "--label-column", "sentiment"
    )
    assert result.exit_code == 0, result.output
    scored = evaluate_ids(TINY_CHAT_ID, "test_only", db=db)
    assert scored["n_items"] == len(TEST)
    with pytest.raises(JobError, match="no train split"):
        queue.submit(
            db, "train", {"model_id": TINY_CHAT_ID, "task": "test_only", "preset": "quick"}
        )


def test_hugging_face_dataset_on_disk_imports_its_splits(finboard_home, tmp_path):
    import datasets

    parts = {
        "train": datasets.Dataset.from_dict(
            {"sentence": [t for t, _ in TRAIN], "sentiment": [s for _, s in TRAIN]}
        ),
        "test": datasets.Dataset.from_dict(
            {"sentence": [t for t, _ in TEST], "sentiment": [s for _, s in TEST]}
        ),
    }
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "hf_news"))
    result = tasks_add(
        "hf_news",
        "--file",
        tmp_path / "hf_news",
        "--text-column",
        "sentence",
        "--label-column",
        "sentiment",
    )
    assert result.exit_code == 0, result.output
    spec = get_task("hf_news")
    assert len(load_split(spec, "test")) == len(TEST)
    assert "leakage: test test-row-1 = " in result.output  # record numbers, from 1

    parts["train"].to_parquet(str(tmp_path / "bad.parquet"))
    bad = datasets.Dataset.from_dict({"sentence": ["Fine text."], "sentiment": [""]})
    bad.to_parquet(str(tmp_path / "bad_test.parquet"))
    result = tasks_add(
        "hf_bad", "--train", tmp_path / "bad.parquet", "--test", tmp_path / "bad_test.parquet",
        "--text-column", "sentence", "--label-column", "sentiment",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "row 1, field 'sentiment': empty label" in result.output


def test_unknown_split_file_names_raise(finboard_home, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        create_prepared_task(
            "x_task", kind="choice", files={"holdout": write_csv(tmp_path / "a.csv", TRAIN)},
            mapping=ColumnMapping(text="sentence", label="sentiment"),
        )  # fmt: skip
    with pytest.raises(DatasetImportError):
        create_prepared_task(
            "x_task", kind="choice", files={"train": write_csv(tmp_path / "b.csv", [("", "positive")])},
            mapping=ColumnMapping(text="sentence", label="sentiment"),
        )  # fmt: skip
