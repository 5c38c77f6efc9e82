"""AppTest smoke tests of the Datasets page.

AppTest cannot drive ``st.file_uploader``, so the upload tests stage a file with
``core.uploads.save_upload`` and put its path where the uploader would:
``st.session_state["ds_staged_path"]``.
"""

from __future__ import annotations

import pytest
from conftest import run_page as run_app_page
from conftest import svg_charts, texts
from streamlit.testing.v1 import AppTest
from test_datasets import BAD_CSV, GOOD_CSV

from core.data import uploads
from core.tasks.spec import get_task, list_tasks, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache")


def run_page(**session: object) -> AppTest:
    return run_app_page("datasets", **session)


def test_empty_store_renders_both_tabs(finboard_home):
    at = run_page()
    assert not at.exception
    assert at.title[0].value == "Datasets"
    assert [t.label for t in at.tabs] == [
        "Upload your data",
        "Synthetic finance corpus",
        "Split files and records",
    ]
    assert "No tasks of your own yet" in texts(at.caption)
    assert not at.dataframe and not at.error

    at = run_page(ds_tab="Synthetic finance corpus")
    assert not at.exception
    assert at.selectbox(key="ds_syn_generator").value == "eps_extraction"
    assert [at.number_input(key=f"ds_syn_{s}").value for s in ("train", "validation", "test")] == [
        600,
        100,
        200,
    ]


def test_bad_csv_lists_row_numbered_errors_and_cannot_be_saved(finboard_home):
    staged = uploads.save_upload("bad.csv", BAD_CSV.encode())
    at = run_page(ds_staged_path=str(staged))
    assert not at.exception
    assert at.button(key="ds_save").disabled, "nothing to save before validation"
    at.text_input(key="ds_labels").input("positive, neutral, negative")
    at.button(key="ds_validate").click().run()
    assert not at.exception
    assert "3 problems in bad.csv" in texts(at.error)
    errors = at.table[0].value  # every problem, in a table that wraps long messages
    assert errors["Row"].tolist() == [3, 4, 6]
    assert errors["Field"].tolist() == ["tone", "headline", ""]
    assert "unknown label 'negtive'" in errors["Problem"].iloc[0]
    assert "duplicate of row 2" in errors["Problem"].iloc[2]
    assert at.button(key="ds_save").disabled
    preview = at.dataframe[0].value  # every row, the ones with a problem marked
    assert preview["row"].tolist() == [2, 3, 4, 5, 6]
    assert [row for row, problem in zip(preview["row"], preview["problem"]) if problem] == [3, 4, 6]
    assert not svg_charts(at), "no charts for a file that does not validate"
    assert not at.success


def test_good_csv_validates_previews_and_saves(finboard_home):
    staged = uploads.save_upload("good.csv", GOOD_CSV.encode())
    at = run_page(ds_staged_path=str(staged))
    assert at.selectbox(key="ds_col_text").value == "headline"
    assert at.selectbox(key="ds_col_id").value == "id"
    at.button(key="ds_validate").click().run()
    assert not at.exception
    assert "good.csv** is valid: all 30 rows can be used" in texts(at.success)
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["row", "id", "text", "label", "problem"]
    assert len(preview) == 20 and not preview["problem"].any()
    assert len(svg_charts(at)) == 2, "label balance + token lengths"
    assert not at.button(key="ds_save").disabled

    at.text_input(key="ds_task_name").input("my_headlines")
    at.text_area(key="ds_instruction").input("Classify the headline.")
    at.button(key="ds_save").click().run()
    assert not at.exception
    assert "Saved task **my_headlines**" in texts(at.success)
    assert "available in evaluation and fine-tuning" in texts(at.success)
    spec = get_task("my_headlines")
    assert spec.instruction == "Classify the headline." and spec.labels
    tasks = next(f.value for f in at.dataframe if "name" in f.value.columns)  # user tasks
    assert tasks["name"].tolist() == ["my_headlines"]
    assert tasks[["train", "validation", "test"]].sum(axis=1).tolist() == [30]


def test_synthetic_tab_generates_and_saves_a_task(finboard_home):
    at = run_page(ds_tab="Synthetic finance corpus")
    at.selectbox(key="ds_syn_generator").set_value("fin_sentiment")
    at.number_input(key="ds_syn_seed").set_value(7)
    for split, size in (("train", 60), ("validation", 10), ("test", 30)):
        at.number_input(key=f"ds_syn_{split}").set_value(size)
    at.button(key="ds_syn_generate").click().run()
    assert not at.exception
    preview = at.dataframe[0].value
    assert preview["split"].tolist() == ["train"] * 3 + ["validation"] * 3 + ["test"] * 3
    assert set(preview["answer"]) <= {"positive", "neutral", "negative"}
    assert len(svg_charts(at)) == 1
    assert len(at.get("download_button")) == 3

    at.text_input(key="ds_syn_name").input("sentiment_seed7")
    at.button(key="ds_syn_save").click().run()
    assert not at.exception
    assert "Saved task **sentiment_seed7**" in texts(at.success)
    assert "sentiment_seed7" in [spec.name for spec in list_tasks()]
    spec = get_task("sentiment_seed7")
    assert spec.source["sizes"] == {"train": 60, "validation": 10, "test": 30}
    assert spec.source["seed"] == 7

    at.button(key="ds_syn_save").click().run()  # the same name again
    assert not at.exception
    assert "already exists" in texts(at.error)


def test_labels_that_look_like_typos_are_pointed_out(finboard_home):
    staged = uploads.save_upload("typo.csv", (GOOD_CSV + "h99,Shares jumped,postive\n").encode())
    at = run_page(ds_staged_path=str(staged))
    at.button(key="ds_validate").click().run()
    assert not at.exception
    assert "is valid: all 31 rows" in texts(at.success)
    assert "**postive** (1 row; close to 'positive')" in texts(at.warning)
    at.text_input(key="ds_labels").input("positive, neutral, negative")
    at.button(key="ds_validate").click().run()
    assert "1 problem in typo.csv" in texts(at.error)
    assert at.table[0].value["Row"].tolist() == [32]


def test_a_task_s_quality_report_shows_as_table_and_chart_with_a_record_preview(
    finboard_home, tmp_path
):
    from conftest import code_blocks
    from test_splits import TEST, TRAIN, write_csv

    from core.data.importer import ColumnMapping
    from core.tasks.prepared import create_prepared_task

    files = {
        "train": write_csv(tmp_path / "t.csv", TRAIN),
        "test": write_csv(tmp_path / "s.csv", TEST),
    }
    create_prepared_task(
        "q_news",
        kind="choice",
        files=files,
        mapping=ColumnMapping(text="sentence", label="sentiment"),
    )
    at = run_page()
    assert not at.exception
    assert "Quality reports" in [h.value for h in at.subheader]
    frames = [frame.value for frame in at.dataframe]
    table = next(f for f in frames if "reason" in f.columns)
    assert list(table["reason"][:2]) == ["raw", "kept"] and table["records"][0] == 16
    assert any("quality report" in chart for chart in svg_charts(at))
    assert "leakage" in texts(at.warning)
    leaks = next(f for f in frames if "match_id" in f.columns)
    assert leaks["id"].tolist() == ["test-row-2"]
    preview = code_blocks(at)[-1]
    assert preview.startswith("Text: ") and "Answer:\u27e6 " in preview  # the loss is marked


def test_review_corpus_shows_its_augmentation(finboard_home):
    at = run_page(ds_tab="Synthetic finance corpus")
    at.selectbox(key="ds_syn_generator").set_value("reviews")
    for split, size in (("train", 500), ("validation", 10), ("test", 20)):
        at.number_input(key=f"ds_syn_{split}").set_value(size)
    at.button(key="ds_syn_generate").click().run()
    assert not at.exception
    assert "500 train reviews → **2,500 training examples**" in texts(at.markdown)
    expanded = next(d.value for d in at.dataframe if "view" in d.value.columns)
    assert expanded["view"].tolist() == [
        "rating",
        "features",
        "summary",
        "sentiment",
        "recommendation",
    ]
    at.text_input(key="ds_syn_name").input("my_reviews")
    at.button(key="ds_syn_save").click().run()
    spec = get_task("my_reviews")
    assert spec.source["view"] and spec.source["augment"]  # the built-in's view is kept
    assert load_split(spec, "test").items[0].answer  # answers of that view
