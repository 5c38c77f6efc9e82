"""Predictions made elsewhere (a hosted API, say), imported as a CSV and scored like a model."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from core.analysis.leaderboard import leaderboard
from core.cli import main
from core.data.importer import DatasetImportError
from core.evaluation.external import import_predictions
from core.tasks.spec import get_task, load_split

TASK = "fin_sentiment"
OTHER = {"positive": "negative", "negative": "neutral", "neutral": "positive"}


def write_predictions(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prediction"])
        writer.writerows(rows)
    return path


def gold_rows(wrong_every: int = 4):
    """Every test item with its gold label, except every ``wrong_every``-th one made wrong."""
    items = load_split(get_task(TASK), "test").items
    return [
        [item.id, OTHER[item.answer] if index % wrong_every == 0 else item.answer.upper()]
        for index, item in enumerate(items)
    ]


def score_count(db) -> int:
    return db.execute("select count(*) from scores").fetchone()[0]


def test_imported_predictions_score_and_rank_beside_the_models(db, tmp_path):
    rows = gold_rows()
    path = write_predictions(tmp_path / "api.csv", rows)
    result = runner_json(db, ["--task", TASK, "--name", "gpt-4o-mini", "--file", str(path)])
    wrong = sum(1 for index in range(len(rows)) if index % 4 == 0)
    assert result["score"] == pytest.approx(1 - wrong / len(rows))  # "POSITIVE" counts as positive
    assert result["model"] == "external:gpt-4o-mini" and result["n_items"] == len(rows)
    table = leaderboard(db, tasks=[TASK])
    row = table[table["model_id"] == "external:gpt-4o-mini"].iloc[0]
    assert row["kind"] == "external predictions" and row["model_type"] == "external"
    assert row["display_name"] == "gpt-4o-mini (external predictions)" and row["rank"] == 1
    stored = db.execute(
        "select split_fingerprint from scores where model_id = 'external:gpt-4o-mini'"
    ).fetchone()[0]
    assert stored == load_split(get_task(TASK), "test").fingerprint  # the models' items


def runner_json(db, args):
    import json

    out = CliRunner().invoke(main, ["predictions", "import", *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_unknown_id_or_label_is_rejected_by_row_and_nothing_is_stored(db, tmp_path):
    rows = gold_rows()
    rows[1][0] = "fin_sentiment-test-99999"  # row 3 of the file (the header is row 1)
    rows[3][1] = "bullish"  # row 5
    rows[5][0] = rows[4][0]  # row 7 repeats row 6's id
    path = write_predictions(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetImportError) as caught:
        import_predictions(db, get_task(TASK), "bad-api", path)
    message = str(caught.value)
    assert "bad.csv, row 3, field 'item_id': unknown item id 'fin_sentiment-test-99999'" in message
    assert "bad.csv, row 5, field 'prediction': prediction 'bullish' is not one of" in message
    assert "row 7, field 'item_id': item id" in message and "given twice (rows 6 and 7)" in message
    assert "item(s) of the split have no prediction" in message  # the replaced ids
    assert score_count(db) == 0
    out = CliRunner().invoke(
        main, ["predictions", "import", "--task", TASK, "--name", "x", "--file", str(path)]
    )
    assert out.exit_code == 1 and "row 3" in out.output and score_count(db) == 0


def test_a_file_without_the_columns_names_them(db, tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("id,label\na,positive\n")
    with pytest.raises(DatasetImportError, match="row 1: the header has no column 'item_id'"):
        import_predictions(db, get_task(TASK), "api", path)
    with pytest.raises(ValueError, match="Bad name"):
        import_predictions(db, get_task(TASK), "my api!", path)
