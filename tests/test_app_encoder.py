"""The pages with an encoder fine-tune in the store: the Comparison page compares it with the
majority-class baseline, the Leaderboard marks it, the Cost page serves it one request at a
time from its measured single-request latency."""

from __future__ import annotations

from pathlib import Path

from conftest import run_page, tables, texts
from encoder_support import TINY_ENCODER_ID
from test_encoder import FAST, encoder_db, tiny_encoder_dir  # noqa: F401 (fixtures)

from core.analysis import costs
from core.models.registry import get_model
from core.tasks.spec import get_task
from core.training.config import preset_config
from core.training.finetune import TrainPlan
from core.workflows.encoder_compare import encoder_finetune_compare

TASK = "fin_sentiment"


def test_pages_show_the_encoder_beside_its_baseline(encoder_db, tmp_path):  # noqa: F811
    db = encoder_db
    spec = get_task(TASK)
    plan = TrainPlan(
        get_model(TINY_ENCODER_ID, db),
        spec,
        preset_config("encoder", FAST),
        "tiny-bert-sentiment",
        Path(tmp_path / "run"),
    )
    out = encoder_finetune_compare(plan, [spec], {}, db)
    at = run_page("comparison")
    assert not at.exception
    assert at.selectbox(key="cmp_tuned").value == "tiny-bert-sentiment"
    assert at.selectbox(key="cmp_against").value == "majority-class"
    table = tables(at)[1]  # the open tab's metric-by-metric table, after the gains
    assert TASK in set(table["Task"])

    board = run_page("leaderboard")
    assert not board.exception
    shown = tables(board)[0]
    types = dict(zip(shown["Model"], shown["Type"]))
    assert types["Majority class (baseline)"] == "baseline"
    assert "encoder" in types.values()

    measured = costs.measured_throughput(db, "tiny-bert-sentiment")
    assert measured.single_request_p50_ms == out["latency_p50_ms"]
    page = run_page("cost_roi", **{"cost_model_0": "tiny-bert-sentiment"})
    assert not page.exception
    assert page.radio(key="cost_serving_0").value == "one at a time"
    assert "one request at a time (batch size 1)" in texts(page.markdown)


def test_the_run_page_offers_encoder_methods_and_explains_evaluation(encoder_db):  # noqa: F811
    at = run_page("launch")
    at.selectbox[0].set_value(TINY_ENCODER_ID).run()
    assert not at.exception
    assert "untrained one has no answers to score" in texts(at.info)
    at.radio[0].set_value("Also Fine-tune and Compare").run()
    assert not at.exception
    assert at.selectbox(key="launch_preset").value == "encoder"
    labels = ["LoRA", "Head only (encoder)", "Full fine-tune (encoder)"]
    assert at.selectbox(key="launch_method").options == labels  # no QLoRA, no prompt tuning
