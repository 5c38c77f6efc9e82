"""AppTest smoke tests of the Cost and ROI page, on a store filled by real runs of the tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_MODEL_ID, evaluated_store, store_copy_fixture, svg_charts, tables, texts
from conftest import metrics as shown_metrics
from conftest import run_page as run_app_page
from streamlit.testing.v1 import AppTest

LIMIT = 12


@pytest.fixture(scope="session")
def measured_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    """A store with both tiny models evaluated on fin_sentiment (real runs), built once."""
    return evaluated_store(tmp_path_factory, tiny_model_dirs, ("fin_sentiment",), LIMIT)


measured_db = store_copy_fixture("measured_store")  # this test's own copy


def run_page(**session: object) -> AppTest:
    return run_app_page("cost_roi", **session)


def metrics(at: AppTest) -> dict[str, str]:
    return {label: tile["value"] for label, tile in shown_metrics(at).items()}


def deltas(at: AppTest) -> dict[str, str | None]:
    return {label: tile["delta"] for label, tile in shown_metrics(at).items()}


def expected(db, requests: int, api: str | None = None):
    """What core computes for the tiny model with the default prices on its suggested machine."""
    from core.analysis import costs

    prices = costs.load_prices()
    throughput = costs.measured_throughput(db, TINY_MODEL_ID)
    hardware = prices.profile_for_device(throughput.device)
    result = costs.compare(requests, throughput, prices, hardware=hardware)
    focus = result.api(api) if api else result.cheapest_api()
    return result, focus, throughput


def test_measured_model_shows_costs_charts_and_the_sentence(measured_db):
    from core.analysis import costs

    at = run_page()
    assert not at.exception
    assert at.title[0].value == "Cost and ROI"
    assert at.selectbox(key="cost_model_0").value == TINY_MODEL_ID, "measured models come first"
    result, focus, throughput = expected(measured_db, 100_000)
    shown = metrics(at)
    assert shown["Local / month"] == costs.fmt_money(result.local["total_monthly"])
    assert shown["API / month"] == costs.fmt_money(focus["total"])
    notes = deltas(at)
    assert notes["API / month"] == focus["name"]
    assert at.selectbox(key="cost_focus_0").format_func(at.selectbox(key="cost_focus_0").value) == (
        f"Cheapest API ({focus['name']})"
    )
    assert notes["Break-even"] == "past 36-month life", "Gemini Flash is a few $ a month"
    assert shown["Break-even"] == f"{focus['break_even_months']:,.0f} mo"
    assert shown["24-month ROI"].endswith("%")
    page = texts(at.markdown)
    assert "Measured on **CPU**" in page and throughput.device == "cpu"
    assert (
        f"At 100,000 requests a month, running Tiny Llama ({TINY_MODEL_ID}) locally costs "
        f"{costs.fmt_money(result.local['total_monthly'])} a month vs "
        f"{costs.fmt_money(focus['total'])} for {focus['name']}"
    ) in page
    assert "Estimates, based on throughput measured" in texts(at.caption)
    assert "Defaults as of 2025-01" in texts(at.caption)
    assert len(svg_charts(at)) == 2
    assert at.selectbox(key="cost_hardware_0").value == "cpu_box", "measured on the CPU"


def test_use_measured_sizes_sets_the_token_counts(measured_db):
    from core.analysis import costs

    at = run_page()
    sizes = costs.measured_throughput(measured_db, TINY_MODEL_ID).approx_tokens()
    assert f"average about {sizes[0]:,} prompt and {sizes[1]:,} output tokens" in texts(at.caption)
    at.button(key="cost_use_sizes").click().run()
    assert not at.exception
    assert at.number_input(key="cost_tokens_in_0").value == sizes[0]
    assert at.number_input(key="cost_tokens_out_0").value == sizes[1]
    at.button(key="cost_reset_button").click().run()
    assert at.number_input(key="cost_tokens_in_1").value == 400, "reset restores the defaults"


def test_expensive_api_at_high_volume_breaks_even(measured_db):
    from core.analysis import costs

    at = run_page(cost_requests_0=200_000, cost_focus_0="GPT-4o")
    assert not at.exception
    result, focus, _ = expected(measured_db, 200_000, "GPT-4o")
    shown = metrics(at)
    assert shown["API / month"] == costs.fmt_money(focus["total"]) == "$300"
    assert shown["Break-even"] == f"{focus['break_even_months']:.1f} mo"
    assert shown["24-month ROI"] == f"{focus['roi_pct']:+,.0f}%"
    assert focus["roi_pct"] > 0
    assert deltas(at)["Break-even"] == "within 36-month life"
    assert "the hardware pays for itself in" in texts(at.markdown)


def test_volume_beyond_one_machine_is_flagged(measured_db):
    at = run_page(cost_requests_0=10_000_000_000)
    assert not at.exception
    assert "One machine cannot keep up" in texts(at.warning)


def test_zero_volume_renders(measured_db):
    at = run_page(cost_requests_0=0)
    assert not at.exception
    shown = metrics(at)
    assert shown["API / month"] == "$0"
    assert shown["Break-even"] == "Never"
    assert len(svg_charts(at)) == 2, "the machine's price still shows"


def test_empty_store_shows_guidance_and_uses_the_assumed_speed(db):
    at = run_page()
    assert not at.exception
    assert "No measured throughput yet: run an evaluation" in texts(at.info)
    assert "finboard eval --model smollm2-135m-instruct --task fin_sentiment" in texts(at.info)
    assumed = at.number_input(key="cost_assumed_rate_0")
    assert assumed.value == 5.0
    assert "Local / month" in metrics(at)
    assert "the assumed throughput" in texts(at.caption)
    assert "(At an assumed 5.00 items/s: evaluate it to know.)" in texts(at.markdown)
    assumed.set_value(50.0).run()
    assert not at.exception


def test_a_broken_price_list_says_so(db, tmp_path, monkeypatch):
    bad = tmp_path / "costs.yaml"
    bad.write_text("apis: []\nhardware: []\n")
    monkeypatch.setenv("FINBOARD_COSTS_CONFIG", str(bad))
    at = run_page()
    assert not at.exception
    assert "The price list could not be read" in texts(at.error)


def test_the_worked_out_numbers_are_built_when_opened(measured_db):
    def breakdown_rows(at) -> list[str]:
        return [i for d in at.dataframe if "item" in d.value.columns for i in d.value["item"]]

    closed = run_page()
    assert not closed.exception and breakdown_rows(closed) == []  # a lighter first load
    opened = run_page(cost_worked=True)
    assert not opened.exception
    assert "Machine-hours of work a month" in breakdown_rows(opened)


def test_prices_show_as_a_table_and_edits_outlive_the_editor(measured_db):
    import pandas as pd

    at = run_page()
    assert not at.exception
    assert not at.get("arrow_data_frame") and not at.dataframe  # no grid until editing
    shown = next(t for t in tables(at) if "Hosted model" in t.columns)
    first = shown["Hosted model"].iloc[0]
    at.toggle(key="cost_edit_prices_0").set_value(True).run()
    assert not at.exception
    draft = at.session_state["cost_prices_draft"]  # what the open editor shows
    assert list(draft["name"]) == list(shown["Hosted model"])
    # an edit in the grid (the widget's own work), then the editor is closed
    edited = draft.copy()
    edited.loc[0, "input_per_1m"] = 123.0
    edited = pd.concat(
        [
            edited,
            pd.DataFrame(
                [
                    {
                        "name": "In-house API",
                        "vendor": "us",
                        "input_per_1m": 1.0,
                        "output_per_1m": 2.0,
                    }
                ]
            ),
        ]
    )
    at.session_state["cost_prices_draft"] = edited.reset_index(drop=True)
    at.toggle(key="cost_edit_prices_0").set_value(False).run()
    assert not at.exception
    kept = next(t for t in tables(at) if "Hosted model" in t.columns)
    assert kept.loc[kept["Hosted model"] == first, "Input / 1M tokens"].iloc[0] == "$123.000"
    assert "In-house API" in set(kept["Hosted model"])
    at.button(key="cost_reset_button").click().run()  # reset: the config's prices again
    again = next(t for t in tables(at) if "Hosted model" in t.columns)
    assert list(again["Hosted model"]) == list(shown["Hosted model"])
