"""core.costs: every function on hand-computed examples, and the edges (zero volume, API cheaper,
a volume one machine cannot serve, missing energy data, a broken price list)."""

from __future__ import annotations

import doctest
import json
import math

import pytest

from core import store
from core.analysis import costs
from core.store import scores as score_rows

# Round numbers so each expected value below can be checked by hand.
BOX = costs.HardwareProfile(
    id="box", label="Box", cost=1200.0, amortisation_months=24, power_watts=100.0, device="cpu"
)
GPU = costs.HardwareProfile(
    id="gpu", label="GPU box", cost=3000.0, amortisation_months=36, power_watts=400.0, device="cuda"
)
CHEAP = costs.ApiPrice("Cheap", input_per_1m=0.10, output_per_1m=0.20)
DEAR = costs.ApiPrice("Dear", input_per_1m=1.00, output_per_1m=2.00)


@pytest.fixture
def prices() -> costs.Prices:
    return costs.Prices(
        as_of="2025-01",
        source="test",
        currency="USD",
        currency_symbol="$",
        electricity_per_kwh=0.20,
        tokens_in=1000,
        tokens_out=100,
        requests_per_month=100_000,
        apis=(DEAR, CHEAP),
        hardware=(BOX, GPU),
    )


# ---------------------------------------------------------------- the price list


def test_default_prices_are_dated_and_complete():
    prices = costs.load_prices()
    assert prices.as_of == "2025-01"
    assert "check the vendor" in prices.source
    assert prices.api_names() == [
        "GPT-4o",
        "GPT-4o mini",
        "Claude 3.5 Sonnet",
        "Claude 3.5 Haiku",
        "Gemini 1.5 Flash",
    ]
    mini = prices.api("GPT-4o mini")
    assert (mini.input_per_1m, mini.output_per_1m, mini.vendor) == (0.15, 0.60, "OpenAI")
    assert [p.id for p in prices.hardware] == ["cpu_box", "gpu_24gb"]
    assert prices.profile_for_device("cpu").id == "cpu_box"
    assert prices.profile_for_device("cuda:0").id == "gpu_24gb"
    assert prices.profile_for_device(None).id == "cpu_box"
    assert prices.electricity_per_kwh == 0.15
    assert (prices.tokens_in, prices.tokens_out, prices.requests_per_month) == (400, 50, 100_000)


def test_every_config_field_has_help_text():
    for cls in (costs.Prices, costs.ApiPrice, costs.HardwareProfile):
        for field in cls.__dataclass_fields__:
            assert costs.field_help(cls, field), f"{cls.__name__}.{field} has no help"
    with pytest.raises(KeyError):
        costs.field_help(costs.Prices, "nope")


def test_unknown_names_say_what_is_known():
    prices = costs.load_prices()
    with pytest.raises(KeyError, match="GPT-4o mini"):
        prices.api("GPT-5")
    with pytest.raises(KeyError, match="cpu_box"):
        prices.hardware_profile("tpu")


def test_costs_config_env_var(tmp_path, monkeypatch):
    text = costs.costs_config_path().read_text().replace('as_of: "2025-01"', 'as_of: "2031-07"')
    moved = tmp_path / "mine.yaml"
    moved.write_text(text)
    monkeypatch.setenv("FINBOARD_COSTS_CONFIG", str(moved))
    assert costs.load_prices().as_of == "2031-07"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "not found"),
        ("apis: [oops", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("apis: []\nhardware: []", "at least one entry"),
        ("apis:\n  - {vendor: X}", "needs a `name`"),
        ("apis:\n  - {name: X, input_per_1m: -1, output_per_1m: 1}", "`input_per_1m` must be"),
        ("apis:\n  - {name: X, input_per_1m: 1, output_per_1m: cheap}", "`output_per_1m`"),
    ],
)
def test_broken_price_lists_are_refused_with_a_reason(tmp_path, text, message):
    path = tmp_path / "costs.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(costs.CostsConfigError, match=message):
        costs.load_prices(path)


def test_zero_amortisation_months_is_refused(tmp_path):
    text = (
        costs.costs_config_path()
        .read_text()
        .replace("amortisation_months: 36  #", "amortisation_months: 0  #", 1)
    )
    path = tmp_path / "costs.yaml"
    path.write_text(text)
    with pytest.raises(costs.CostsConfigError, match="amortisation_months` must be at least 1"):
        costs.load_prices(path)


# ---------------------------------------------------------------- local and API months


def test_local_month_by_hand(prices):
    # 1,440,000 requests at 2 items/s = 720,000 s = 200 h; 200 h x 100 W = 20 kWh x $0.20 = $4;
    # hardware $1,200 / 24 months = $50; total $54.
    cost = costs.local_monthly_cost(1_440_000, 2.0, prices, hardware=BOX)
    assert cost["hours_needed"] == pytest.approx(200.0)
    assert cost["energy_kwh"] == pytest.approx(20.0)
    assert cost["electricity"] == pytest.approx(4.0)
    assert cost["hardware_monthly"] == pytest.approx(50.0)
    assert cost["total_monthly"] == pytest.approx(54.0)
    assert cost["running_monthly"] == pytest.approx(4.0)
    assert cost["utilisation"] == pytest.approx(200 / 730)
    assert (cost["sufficient"], cost["machines"], cost["hardware_upfront"]) == (True, 1, 1200.0)
    assert (cost["power_watts"], cost["power_source"]) == (100.0, "estimate")
    assert cost["per_request"] == pytest.approx(54 / 1_440_000)
    assert cost["amortisation_months"] == 24


def test_hardware_defaults_to_the_first_profile_and_accepts_an_id(prices):
    assert costs.local_monthly_cost(0, 1.0, prices)["hardware_id"] == "box"
    assert costs.local_monthly_cost(0, 1.0, prices, hardware="gpu")["hardware_monthly"] == (
        pytest.approx(3000 / 36)
    )


def test_measured_energy_sets_the_power_and_a_stated_wattage_overrides_it(prices):
    measured = costs.Throughput(
        model_id="m",
        items_per_s=2.0,
        latency_p50_ms=10.0,
        n_items=40,
        device="cuda",
        tasks=("t",),
        score_ids=(1,),
        measured_at="",
        energy_wh_per_item=0.01,
    )
    assert measured.power_watts == pytest.approx(72.0)  # 0.01 Wh x 2/s x 3600 s/h
    cost = costs.local_monthly_cost(1_440_000, measured, prices, hardware=BOX)
    assert cost["power_source"] == "measured"
    assert cost["electricity"] == pytest.approx(200 * 72 / 1000 * 0.20)  # $2.88
    stated = costs.local_monthly_cost(1_440_000, measured, prices, power_watts=50, hardware=BOX)
    assert (stated["power_watts"], stated["power_source"]) == (50.0, "estimate")
    assert stated["electricity"] == pytest.approx(2.0)


def test_zero_volume_costs_only_the_machine(prices):
    cost = costs.local_monthly_cost(0, 2.0, prices, hardware=BOX)
    assert cost["hours_needed"] == cost["electricity"] == cost["utilisation"] == 0
    assert cost["total_monthly"] == pytest.approx(50.0)
    assert (cost["sufficient"], cost["machines"], cost["per_request"]) == (True, 1, None)
    api = costs.api_monthly_cost(0, 1000, 100, DEAR)
    assert (api["total"], api["per_request"]) == (0, None)


def test_a_volume_one_machine_cannot_serve_is_flagged_and_costed(prices):
    # 2 items/s serve 2 x 3600 x 730 = 5,256,000 requests in a month's 730 hours.
    exact = costs.local_monthly_cost(5_256_000, 2.0, prices, hardware=BOX)
    assert exact["sufficient"] and exact["machines"] == 1
    assert exact["utilisation"] == pytest.approx(1.0)
    over = costs.local_monthly_cost(6_000_000, 2.0, prices, hardware=BOX)
    assert over["hours_needed"] == pytest.approx(833.333, rel=1e-4)
    assert over["sufficient"] is False
    assert over["utilisation"] == pytest.approx(833.333 / 730, rel=1e-4)
    assert over["machines"] == 2
    assert over["hardware_upfront"] == 2400.0
    assert over["hardware_monthly"] == pytest.approx(100.0)


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan])
def test_a_throughput_must_be_positive(prices, rate):
    with pytest.raises(ValueError, match="throughput"):
        costs.local_monthly_cost(100, rate, prices)


def test_negative_inputs_are_refused(prices):
    with pytest.raises(ValueError, match="requests_per_month"):
        costs.local_monthly_cost(-1, 2.0, prices)
    with pytest.raises(ValueError, match="tokens_in"):
        costs.api_monthly_cost(1, -5, 1, DEAR)
    with pytest.raises(ValueError, match="hardware_cost"):
        costs.break_even_months(-1, 0, 1)


def test_api_month_by_hand():
    # 100,000 requests x 1,000 tokens = 100M input tokens x $1/1M = $100;
    # 100,000 x 100 = 10M output tokens x $2/1M = $20.
    cost = costs.api_monthly_cost(100_000, 1000, 100, DEAR)
    assert cost["input"] == pytest.approx(100.0)
    assert cost["output"] == pytest.approx(20.0)
    assert cost["total"] == pytest.approx(120.0)
    assert cost["per_request"] == pytest.approx(0.0012)
    assert (cost["name"], cost["vendor"]) == ("Dear", "")


# ---------------------------------------------------------------- over time


def test_break_even_by_hand():
    assert costs.break_even_months(1200, 4, 124) == pytest.approx(10.0)  # 1200 / (124 - 4)
    assert costs.break_even_months(0, 4, 124) == 0.0  # nothing to pay off


@pytest.mark.parametrize(("running", "api"), [(4, 3), (4, 4), (0, 0)])
def test_no_break_even_when_the_api_costs_no_more(running, api):
    assert costs.break_even_months(1200, running, api) is None


def test_roi_by_hand():
    curve = costs.roi(24, hardware_cost=1200, local_monthly_running=4, api_monthly=124)
    assert curve.months == list(range(25))
    assert curve.local_cumulative[0] == 1200 and curve.api_cumulative[0] == 0
    assert curve.local_cumulative[-1] == pytest.approx(1296.0)  # 1200 + 24 x 4
    assert curve.api_cumulative[-1] == pytest.approx(2976.0)  # 24 x 124
    assert curve.savings[0] == -1200
    assert curve.savings[10] == pytest.approx(0.0), "even at month 10"
    assert curve.savings[-1] == pytest.approx(1680.0)
    assert curve.roi_pct == pytest.approx(100 * 1680 / 1296)  # 129.6%
    assert curve.break_even_months == pytest.approx(10.0)


def test_roi_when_the_api_is_cheaper_is_negative_and_never_breaks_even():
    curve = costs.roi(12, hardware_cost=1200, local_monthly_running=10, api_monthly=5)
    assert curve.break_even_months is None
    assert curve.roi_pct == pytest.approx(100 * (60 - 1320) / 1320)
    assert all(s < 0 for s in curve.savings)


def test_roi_edges():
    free = costs.roi(24, hardware_cost=0, local_monthly_running=0, api_monthly=0)
    assert free.roi_pct is None and free.break_even_months is None
    with pytest.raises(ValueError, match="months"):
        costs.roi(0, hardware_cost=1, local_monthly_running=0, api_monthly=1)


def test_compare_puts_every_api_against_the_same_local_month(prices):
    result = costs.compare(1_440_000, 2.0, prices, hardware=BOX, months=24)
    assert result.local["total_monthly"] == pytest.approx(54.0)
    assert [a["name"] for a in result.apis] == ["Dear", "Cheap"]
    dear = result.api("Dear")
    assert dear["total"] == pytest.approx(1728.0)  # 1.44B in x $1 + 144M out x $2, per 1M
    assert dear["break_even_months"] == pytest.approx(1200 / (1728 - 4))
    assert dear["curve"].local_cumulative[-1] == pytest.approx(1200 + 24 * 4)
    assert result.cheapest_api()["name"] == "Cheap"
    with pytest.raises(KeyError):
        result.api("Nope")
    over = costs.compare(6_000_000, 2.0, prices, hardware=BOX)
    assert over.api("Dear")["curve"].local_cumulative[0] == 2400.0, "two machines bought"
    assert costs.compare(0, 1.0, prices, hardware=BOX).api("Cheap")["break_even_months"] is None


# ---------------------------------------------------------------- measured throughput


def _score(db, model_id, task, n_items, items_per_s, p50, device="cpu", job_id=None) -> int:
    row = {
        "model_id": model_id,
        "task": task,
        "split": "test",
        "n_items": n_items,
        "items_per_s": items_per_s,
        "latency_p50_ms": p50,
        "device": device,
        "job_id": job_id,
        "created_at": store.now_iso(),
    }
    predictions = [
        {"item_id": f"{task}-{i}", "position": i, "prompt": "p" * 400, "raw_output": "o" * 8}
        for i in range(n_items)
    ]
    return score_rows.insert(db, row, predictions)


def test_throughput_is_pooled_over_the_newest_score_of_each_task():
    db = store.connect(":memory:")
    assert costs.measured_throughput(db, "m") is None
    _score(db, "m", "a", 10, 1.0, 999.0)  # older run of task a: replaced below
    first = _score(db, "m", "a", 10, 5.0, 100.0)
    second = _score(db, "m", "b", 30, 10.0, 200.0)
    _score(db, "other", "a", 10, 99.0, 1.0)
    got = costs.measured_throughput(db, "m")
    assert got.items_per_s == pytest.approx(40 / (10 / 5 + 30 / 10))  # 8 items/s
    assert got.latency_p50_ms == pytest.approx((10 * 100 + 30 * 200) / 40)  # 175 ms
    assert (got.n_items, got.device, got.tasks) == (40, "cpu", ("a", "b"))
    assert got.score_ids == (first, second)
    assert got.energy_wh_per_item is None and got.power_watts is None
    assert got.approx_tokens() == (100, 2)  # 400 and 8 characters at 4 a token


def test_throughput_follows_the_newest_device():
    db = store.connect(":memory:")
    _score(db, "m", "a", 10, 5.0, 100.0, device="cpu")
    newest = _score(db, "m", "b", 20, 50.0, 10.0, device="cuda")
    got = costs.measured_throughput(db, "m")
    assert (got.device, got.score_ids, got.items_per_s) == ("cuda", (newest,), 50.0)


def _job(db, kind: str, result: dict) -> int:
    """A finished job row of ``kind`` with ``result`` (the jobs table is the queue's to write)."""
    return int(
        db["jobs"]
        .insert(
            {
                "kind": kind,
                "params_json": "{}",
                "state": "succeeded",
                "created_at": store.now_iso(),
                "result_json": json.dumps(result),
            }
        )
        .last_pk
    )


def test_energy_comes_from_eval_jobs_only():
    db = store.connect(":memory:")
    eval_job = _job(db, "eval", {"results": [], "energy_wh": 2.0})
    train_job = _job(db, "finetune_compare", {"energy_wh": 500.0})
    _score(db, "m", "a", 10, 5.0, 100.0, device="cuda", job_id=eval_job)
    _score(db, "m", "b", 30, 10.0, 200.0, device="cuda", job_id=eval_job)
    _score(db, "tuned", "a", 10, 5.0, 100.0, device="cuda", job_id=train_job)
    got = costs.measured_throughput(db, "m")
    assert got.energy_wh_per_item == pytest.approx(2.0 / 40)
    assert got.energy_source == "job result"
    assert got.power_watts == pytest.approx(2.0 / 40 * 8 * 3600)  # 1,440 W
    assert costs.measured_throughput(db, "tuned").energy_wh_per_item is None


def test_energy_falls_back_to_the_jobs_monitor_samples():
    db = store.connect(":memory:")
    job = _job(db, "eval", {"results": []})
    db["monitor_samples"].insert_all(
        [
            {"ts": 0.0, "job_id": job, "gpu_index": 0, "gpu_power_w": 100.0},
            {"ts": 36.0, "job_id": job, "gpu_index": 0, "gpu_power_w": 100.0},
        ]
    )  # 100 W for 36 s = 1 Wh
    _score(db, "m", "a", 20, 5.0, 100.0, device="cuda", job_id=job)
    got = costs.measured_throughput(db, "m")
    assert got.energy_wh_per_item == pytest.approx(1.0 / 20)
    assert got.energy_source == "monitor samples"


def test_a_score_whose_job_is_gone_still_gives_throughput():
    db = store.connect(":memory:")
    score_rows.insert(
        db,
        {
            "model_id": "m",
            "task": "a",
            "n_items": 10,
            "items_per_s": 5.0,
            "split": "test",
            "latency_p50_ms": 20.0,
            "device": "cpu",
            "job_id": 7,
            "created_at": "2025-01-01",
        },
        [{"item_id": "x", "position": 0, "prompt": "abcd", "raw_output": ""}],
    )
    got = costs.measured_throughput(db, "m")
    assert got.items_per_s == 5.0 and got.energy_wh_per_item is None
    assert got.approx_tokens() == (1, 1)


# ---------------------------------------------------------------- words


def test_money_and_months_formatting():
    assert costs.fmt_money(1234.5) == "$1,234"
    assert costs.fmt_money(42.871) == "$42.87"
    assert costs.fmt_money(0) == "$0"
    assert costs.fmt_money(0.004) == "<$0.01"
    assert costs.fmt_money(-3.5, "€") == "-€3.50"
    assert costs.fmt_money(None) == costs.fmt_money(math.nan) == "—"
    assert costs.fmt_months(0.2) == "less than a month"
    assert costs.fmt_months(2.04) == "2 months"
    assert costs.fmt_months(9.96) == "10 months"
    assert costs.fmt_months(12_345.4) == "12,345 months"
    assert costs.fmt_months(float("inf")) == "never"


def test_summary_sentence_in_each_case(prices):
    pays = costs.compare(1_440_000, 2.0, prices, hardware=BOX)
    assert costs.summary_sentence(pays, "SmolLM2", "Dear") == (
        "At 1,440,000 requests a month, running SmolLM2 locally costs $54.00 a month vs "
        "$1,728 for Dear; the hardware pays for itself in less than a month."
    )
    cheaper = costs.compare(1000, 0.01, prices, hardware=BOX)  # $0.56 of power vs $0.12 of API
    assert costs.summary_sentence(cheaper, "SmolLM2", "Cheap").endswith(
        "Cheap stays cheaper, so the hardware never pays for itself at this volume."
    )
    slow = costs.compare(10_000, 2.0, prices, hardware=BOX)  # Dear: $12 a month
    assert "longer than the 24 months it is written off over" in costs.summary_sentence(
        slow, "M", "Dear"
    )
    free = dataclasses_replace(BOX, cost=0.0)
    text = costs.summary_sentence(costs.compare(10_000, 2.0, prices, hardware=free), "M", "Dear")
    assert "with no hardware to buy, running locally saves" in text
    over = costs.compare(6_000_000, 2.0, prices, hardware=BOX)
    assert costs.summary_sentence(over, "M", "Dear").endswith(
        "One machine cannot keep up with this volume at this speed (833 hours of work a month), "
        "so the local cost assumes 2 machines."
    )


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_the_module_docstrings_are_true():
    result = doctest.testmod(costs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
