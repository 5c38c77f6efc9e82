"""AppTest smoke tests of the Compare page, on the store of test_comparison.py (a real tiny
fine-tune-and-compare job) and on an empty store."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    TINY_CHAT_ID,
    code_blocks,
    metrics,
    store_copy_fixture,
    svg_charts,
    tables,
    texts,
)
from conftest import run_page as run_app_page
from streamlit.testing.v1 import AppTest
from test_comparison import OTHER_TASK, TRAINED_TASK, compared_store_path

SECTIONS = ["Every metric", "Item by item", "Training", "Reproducibility"]  # the page's tabs


@pytest.fixture(scope="session")
def compared_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    return compared_store_path(tmp_path_factory, tiny_model_dirs)  # built once per session


cdb = store_copy_fixture("compared_store")  # this test's own copy


def run_page(**session: object) -> AppTest:
    return run_app_page("comparison", **session)


def test_page_compares_the_latest_pair(cdb):
    from core.analysis import comparison

    pair = comparison.latest_pair(cdb)
    at = run_page()
    assert not at.exception
    assert at.title[0].value == "Base vs fine-tuned"
    assert at.selectbox(key="cmp_base").value == TINY_CHAT_ID
    assert at.selectbox(key="cmp_tuned").value == pair["finetuned_model_id"]
    gains_table = tables(at)[0]  # the brief's table: one row per task plus Overall
    assert {TRAINED_TASK, OTHER_TASK} <= set(gains_table.iloc[:, 0])
    labels = metrics(at)
    assert {"Training time", "Energy", "Tokens/s", "Peak memory"} <= set(labels)
    assert "no NVIDIA GPU" in str(labels["Energy"]["delta"])
    assert "GPU utilisation" not in labels  # a CPU run: the energy tile says there is no GPU
    assert len(labels) <= 6, "the headline tiles fit one row at 1280 px"
    assert at.get("download_button"), "the report can be downloaded"
    assert at.get("download_button")[0].proto.label == "Download report"
    # the first load draws the gains, the two charts and the open tab only: every metric
    assert len(svg_charts(at)) == 2
    assert [t.label for t in at.tabs] == SECTIONS
    table = tables(at)[1]
    assert list(table.columns[:5]) == ["Metric", "Task", "Base", "Fine-tuned", "Improvement"]
    assert "95% CI of the difference" in table.columns
    assert {TRAINED_TASK, OTHER_TASK} <= set(table["Task"])
    assert table["Metric"].iloc[-1].startswith("Overall")
    assert table["Improvement"].str.match(r"^[+-]\d\.\d{3}$|^—$").all(), table["Improvement"]
    assert table["95% CI of the difference"].iloc[0].startswith("[")


def test_the_item_by_item_tab_draws_flips_matrices_and_slices(cdb):
    at = run_page(cmp_section="Item by item")
    assert not at.exception
    assert {"Wins", "Losses", "Ties", "Items"} <= set(metrics(at))
    # grouped bars, differences, two confusion matrices, the slices
    assert len(svg_charts(at)) == 5
    tab_labels = [t.label for t in at.tabs]
    assert any(t.startswith("Now right (") for t in tab_labels)
    assert any(t.startswith("Now wrong (") for t in tab_labels)
    assert "within noise" in texts(at.markdown) or "beyond chance" in texts(at.markdown)
    assert not any("training curve" in chart for chart in svg_charts(at))  # a closed tab


def test_the_training_tab_draws_the_curve(cdb):
    at = run_page(cmp_section="Training")
    assert not at.exception
    assert any("training curve" in chart for chart in svg_charts(at))
    assert "trainable parameters" in texts(at.markdown)


def test_the_other_task_has_no_confusion_matrix(cdb):
    at = run_page(cmp_task=OTHER_TASK, cmp_section="Item by item")
    assert not at.exception
    assert len(svg_charts(at)) == 3  # bars, differences, slices (length)
    from core.tasks.spec import get_task, load_split

    items = metrics(at)["Items"]
    # the fine-tune-and-compare job scored the other task on its whole test split too
    assert items["value"] == str(len(load_split(get_task(OTHER_TASK), "test").items))


def test_a_finetuned_model_without_shared_scores_explains_what_to_do(cdb):
    from core.analysis import comparison
    from core.models import registry

    pair = comparison.latest_pair(cdb)
    entry = registry.get_model(pair["finetuned_model_id"], cdb)
    registry.register_finetuned(
        cdb, registry.ModelEntry(**{**entry.__dict__, "id": "tiny-unscored"})
    )
    at = run_page(cmp_tuned="tiny-unscored")
    assert not at.exception
    assert at.selectbox(key="cmp_tuned").value == "tiny-unscored"
    assert "no scores on the same test items" in texts(at.warning)
    assert f"finboard eval --model tiny-unscored --task {TRAINED_TASK}" in "\n".join(
        code_blocks(at)
    )
    assert not tables(at) and not svg_charts(at)
    # two fine-tuned models share a display name: the picker tells them apart by id
    options = at.selectbox(key="cmp_tuned").options
    assert len(set(options)) == 2


def test_empty_store_explains_how_to_make_a_finetuned_model(db):
    at = run_page()
    assert not at.exception
    assert "No fine-tuned models yet" in texts(at.info)
    assert "Also Fine-tune and Compare" in texts(at.info)
    assert (
        "finboard finetune-compare --model smollm2-135m-instruct --task fin_sentiment "
        "--method lora --preset quick" in "\n".join(code_blocks(at))
    )
    assert not tables(at) and not svg_charts(at) and not at.get("download_button")


def test_the_run_s_gpu_figures_stand_next_to_its_energy(cdb):
    import json

    from core.analysis import comparison

    tuned = comparison.latest_pair(cdb)["finetuned_model_id"]
    (card,) = cdb.execute("select card_json from models where id = ?", [tuned]).fetchone()
    figures = {
        "gpu_util_mean": 91.0,
        "gpu_util_above_80_share": 0.875,
        "power_mean_w": 402.0,
        "power_peak_w": 447.0,
        "temp_peak_c": 78.0,
        "paused_s": 30.0,
    }
    card = {**json.loads(card), "resources": figures}
    with cdb.conn:
        cdb.execute("update models set card_json = ? where id = ?", [json.dumps(card), tuned])
    at = run_page()
    assert not at.exception
    shown = metrics(at)
    gpu = shown["GPU utilisation"]
    assert gpu["value"] == "91%" and "88% of the time above 80%" in str(gpu["delta"])
    assert "mean 402 W, peak 447 W, 78 °C" in str(shown["Energy"]["delta"])
    assert "paused 30 s by the guard" in str(shown["Training time"]["delta"])
