"""A user's CSV with several label columns: one task per column, on the same items."""

from __future__ import annotations

import csv

import pytest

from core.data import synthetic
from core.data.importer import DatasetImportError
from core.data.multitask import import_multitask
from core.tasks.spec import list_tasks
from core.training.encoder import multitask_examples


def write_messages(path, n: int = 60, blank_sentiment_every: int = 5):
    items = synthetic.generate_splits("client_messages", 1, {"train": n})["train"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["message", "sentiment", "priority"])
        for index, item in enumerate(items):
            sentiment = "" if index % blank_sentiment_every == 0 else item.meta["sentiment"]
            writer.writerow([item.fields["text"], sentiment, item.meta["priority"]])
    return path


def test_label_columns_become_tasks_on_the_same_items(finboard_home, tmp_path):
    path = write_messages(tmp_path / "support.csv")
    specs = import_multitask(
        path, name="support", text_column="message", label_columns=["sentiment", "priority"]
    )
    assert [s.name for s in specs] == ["support_sentiment", "support_priority"]
    assert set(specs[1].labels) <= {"low", "medium", "high", "urgent"}
    examples = multitask_examples(specs, "train") + multitask_examples(specs, "test")
    examples += multitask_examples(specs, "validation")
    assert len(examples) == 60  # joined by row id across the two tasks
    unlabelled = [e for e in examples if "support_sentiment" not in e.labels]
    assert len(unlabelled) == 12 and all("support_priority" in e.labels for e in unlabelled)


def test_a_row_without_any_label_is_named_and_nothing_is_stored(finboard_home, tmp_path):
    path = write_messages(tmp_path / "bad.csv")
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",,"  # row 4: both labels empty
    path.write_text("\n".join(lines) + "\n")
    before = {s.name for s in list_tasks()}
    with pytest.raises(DatasetImportError, match=r"bad.csv, row 4: no label in any"):
        import_multitask(
            path, name="support", text_column="message", label_columns=["sentiment", "priority"]
        )
    assert {s.name for s in list_tasks()} == before
