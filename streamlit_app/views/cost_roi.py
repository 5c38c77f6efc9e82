"""Cost and ROI: a month of answering requests locally vs a hosted API, and when the machine pays off.

Thin page: default prices come from ``core.costs.load_prices`` (configs/costs.yaml), a model's
speed from ``core.costs.measured_throughput`` (its stored scores), and every number from
``core.costs.compare``; this file only collects the assumptions, formats and renders.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from core import format as fmt
from core.analysis import costs, svg
from core.analysis import leaderboard as lb
from core.models import registry
from core.store import scores as score_rows
from streamlit_app import charts, common

LOCAL_COLOR = fmt.PALETTE["base"]
API_COLORS = list(fmt.PALETTE["series"][1:])
CHEAPEST = "Cheapest API"
DEFAULT_ASSUMED_RATE = 5.0  # items/s assumed for a model that was never evaluated
PRICES_STALE_MONTHS = 6  # older default prices get a notice
GRID = fmt.PALETTE["grid"]


# ---------------------------------------------------------------- cached reads through core


@st.cache_data(ttl=30, show_spinner=False)
def load_defaults(config_path: str) -> costs.Prices:
    return costs.load_prices(config_path)


@st.cache_data(ttl=5, show_spinner=False, max_entries=64)
def load_throughput(path: str, latest_id: int, model_id: str) -> costs.Throughput | None:
    """A model's measured speed; ``latest_id`` only keys the cache."""
    return costs.measured_throughput(common.open_db(path), model_id)


@st.cache_data(ttl=5, show_spinner=False, max_entries=16)
def model_options(path: str, latest_id: int) -> dict[str, str]:
    """Model id -> display name: measured models first, then the rest of the registry."""
    db = common.open_db(path)
    names = {entry.id: entry.display_name for entry in registry.list_models(db)}
    for model_id in score_rows.model_ids(db):
        names.setdefault(model_id, model_id)
    measured = {m for m in names if costs.measured_throughput(db, m) is not None}
    order = sorted(names, key=lambda m: m not in measured)  # stable: config order within each
    return {m: names[m] for m in order}


# ---------------------------------------------------------------- pieces of the page


def money(value: float | None, prices: costs.Prices) -> str:
    return fmt.fmt_money(value, prices.currency_symbol)


def fmt_items_per_s(value: float) -> str:
    return f"{value:,.2f} items/s" if value < 10 else f"{value:,.1f} items/s"


def fmt_break_even(months: float | None) -> str:
    """The break-even tile's value: ``4.5 mo``, ``17 mo``, ``< 1 mo`` or ``Never``."""
    if months is None:
        return "Never"
    if months < 1:
        return "< 1 mo"
    return f"{months:,.1f} mo" if months < 10 else f"{months:,.0f} mo"


def device_label(device: str) -> str:
    kind = device.split(":")[0]
    return {"cpu": "CPU", "cuda": f"GPU ({device})", "mps": "Apple GPU (mps)"}.get(kind, device)


def single_request_note(throughput: costs.Throughput) -> str:
    if throughput.single_request_p50_ms is None:
        return ""
    return (
        f" · one request at a time (batch size 1): p50 "
        f"**{fmt.fmt_ms(throughput.single_request_p50_ms)}**, p95 "
        f"**{fmt.fmt_ms(throughput.single_request_p95_ms)}**"
    )


def serving_speed(throughput: costs.Throughput, speed: object) -> object:
    """Batched throughput, or (where single-request latency was measured) one request at a
    time: 1000 / p50 requests a second, as a service answering each message on arrival."""
    rate = throughput.one_at_a_time_rate()
    if rate is None:
        return speed
    mode = st.radio(
        "Requests are answered",
        ["one at a time", "in batches"],
        horizontal=True,
        key=f"cost_serving_{st.session_state.get('cost_reset', 0)}",
        help="One at a time: each request on arrival, at the measured single-request latency "
        f"({rate:,.0f} requests/s). In batches: the measured batched throughput "
        f"({throughput.items_per_s:,.0f} items/s), for queued work.",
    )
    return rate if mode == "one at a time" else speed


def throughput_panel(throughput: costs.Throughput | None, model_id: str | None) -> float | None:
    """What the model's speed is based on; for an unmeasured model, the assumed items/s."""
    if throughput is not None:
        energy = (
            f" · energy **{throughput.energy_wh_per_item * 1000:,.2f} mWh** per item "
            f"(≈ {throughput.power_watts:,.0f} W while busy, from {throughput.energy_source})"
            if throughput.energy_wh_per_item is not None
            else ""
        )
        st.markdown(
            f"Measured on **{device_label(throughput.device)}**: **{fmt_items_per_s(throughput.items_per_s)}**, "
            f"median latency **{fmt.fmt_ms(throughput.latency_p50_ms)}** per item"
            f"{energy}{single_request_note(throughput)}  \n:small[Newest evaluation of {', '.join(throughput.tasks)} "
            f"({throughput.n_items:,} items, {throughput.measured_at[:16].replace('T', ' ')}); "
            "one request here = one evaluated item.]"
        )
        return None
    info, rate = st.columns([3, 1], vertical_alignment="center")
    info.info(
        "**No measured throughput yet: run an evaluation** of this model and its measured "
        "speed replaces the assumption on the right, e.g. "
        f"`finboard eval --model {model_id or '<id>'} --task fin_sentiment --limit 50`.",
        icon=":material/speed:",
    )
    return rate.number_input(
        "Assumed items/s (estimate)",
        min_value=0.01,
        value=DEFAULT_ASSUMED_RATE,
        step=1.0,
        format="%.2f",
        key=f"cost_assumed_rate_{st.session_state.get('cost_reset', 0)}",
        help="How many requests a second the model would answer on the chosen machine.",
    )


PRICES_KEY = "cost_prices"  # (reset generation, the session's price rows)
DRAFT_KEY = "cost_prices_draft"  # the open editor's table as last drawn
PRICE_COLUMNS = ["name", "vendor", "input_per_1m", "output_per_1m"]


def _generation() -> int:
    return st.session_state.get("cost_reset", 0)


def session_prices(defaults: costs.Prices) -> pd.DataFrame:
    """The hosted-API price rows of this session: the config's until edited (or reset)."""
    stored = st.session_state.get(PRICES_KEY)
    if stored is None or stored[0] != _generation():
        seed = pd.DataFrame([dataclasses.asdict(p) for p in defaults.apis])[PRICE_COLUMNS]
        stored = st.session_state[PRICES_KEY] = (_generation(), seed)
    return stored[1]


def keep_edits_on_close() -> None:
    """The editor closes: its table becomes the session's prices, and the next editor (a new
    widget, so the same edits are not applied twice) starts from it."""
    if st.session_state.get(f"cost_edit_prices_{_generation()}"):
        return  # opened: the editor starts from the session's prices
    draft = st.session_state.pop(DRAFT_KEY, None)
    if draft is not None:
        st.session_state[PRICES_KEY] = (_generation(), draft)
        st.session_state["cost_prices_version"] = st.session_state.get("cost_prices_version", 0) + 1


def price_editor(prices: pd.DataFrame, currency_symbol: str) -> pd.DataFrame:
    """The price table as an editable grid (rows can be added and deleted)."""
    unit = f"{currency_symbol}%.3f"
    version = st.session_state.get("cost_prices_version", 0)
    edited = st.data_editor(
        prices,
        num_rows="dynamic",
        hide_index=True,
        key=f"cost_api_prices_{_generation()}_{version}",
        column_config={
            "name": st.column_config.TextColumn(
                "Hosted model", required=True, help=costs.field_help(costs.ApiPrice, "name")
            ),
            "vendor": st.column_config.TextColumn("Vendor", width="small"),
            "input_per_1m": st.column_config.NumberColumn(
                "Input / 1M tokens",
                min_value=0.0,
                format=unit,
                help=costs.field_help(costs.ApiPrice, "input_per_1m"),
            ),
            "output_per_1m": st.column_config.NumberColumn(
                "Output / 1M tokens",
                min_value=0.0,
                format=unit,
                help=costs.field_help(costs.ApiPrice, "output_per_1m"),
            ),
        },
    )
    st.session_state[DRAFT_KEY] = edited
    return edited


def price_view(prices: pd.DataFrame, defaults: costs.Prices) -> None:
    """The price table, read-only (an HTML table: the grid loads only when editing)."""

    def per_million(value: object) -> str:
        return f"{defaults.currency_symbol}{float(value):.3f}" if pd.notna(value) else fmt.MISSING

    common.static_table(
        pd.DataFrame(
            {
                "Hosted model": prices["name"],
                "Vendor": prices["vendor"].fillna(""),
                "Input / 1M tokens": [per_million(v) for v in prices["input_per_1m"]],
                "Output / 1M tokens": [per_million(v) for v in prices["output_per_1m"]],
            }
        ),
        tooltips={
            "Hosted model": costs.field_help(costs.ApiPrice, "name"),
            "Input / 1M tokens": costs.field_help(costs.ApiPrice, "input_per_1m"),
            "Output / 1M tokens": costs.field_help(costs.ApiPrice, "output_per_1m"),
        },
    )


def api_prices(defaults: costs.Prices) -> list[costs.ApiPrice]:
    """The hosted APIs to compare with: shown, or edited after "Edit prices" is switched on;
    rows without a name or a price dropped."""
    prices = session_prices(defaults)
    editing = st.toggle(
        "Edit prices",
        key=f"cost_edit_prices_{_generation()}",
        on_change=keep_edits_on_close,
        help="Change a price, add a hosted model or delete one; the edits last for this "
        "session and are kept when the editor is closed.",
    )
    if editing:
        prices = price_editor(prices, defaults.currency_symbol)
    else:
        price_view(prices, defaults)
    rows = prices.dropna(subset=["name", "input_per_1m", "output_per_1m"])
    rows = rows[rows["name"].astype(str).str.strip() != ""].drop_duplicates("name")
    return [
        costs.ApiPrice(
            str(r.name).strip(),
            float(r.input_per_1m),
            float(r.output_per_1m),
            str(r.vendor or "") if pd.notna(r.vendor) else "",
        )
        for r in rows.itertuples()
    ]


def use_sizes(sizes: tuple[int, int]) -> None:
    gen = st.session_state.get("cost_reset", 0)
    st.session_state[f"cost_tokens_in_{gen}"], st.session_state[f"cost_tokens_out_{gen}"] = sizes


def workload_inputs(defaults: costs.Prices, throughput: costs.Throughput | None) -> dict:
    sym = defaults.currency_symbol
    kwh, tin, tout = st.columns(3)
    values = {
        "electricity_per_kwh": kwh.number_input(
            f"Electricity, {sym} per kWh",
            min_value=0.0,
            value=defaults.electricity_per_kwh,
            step=0.01,
            format="%.3f",
            key=f"cost_kwh_{st.session_state.get('cost_reset', 0)}",
            help=costs.field_help(costs.Prices, "electricity_per_kwh"),
        ),
        "tokens_in": tin.number_input(
            "Input tokens / request",
            min_value=0,
            value=defaults.tokens_in,
            step=50,
            key=f"cost_tokens_in_{st.session_state.get('cost_reset', 0)}",
            help=costs.field_help(costs.Prices, "tokens_in"),
        ),
        "tokens_out": tout.number_input(
            "Output tokens / request",
            min_value=0,
            value=defaults.tokens_out,
            step=10,
            key=f"cost_tokens_out_{st.session_state.get('cost_reset', 0)}",
            help=costs.field_help(costs.Prices, "tokens_out"),
        ),
    }
    sizes = throughput.approx_tokens() if throughput else None
    if sizes:
        hint, use = st.columns([4, 1], vertical_alignment="center")
        hint.caption(
            f"The measured items average about {sizes[0]:,} prompt and {sizes[1]:,} output "
            "tokens (at ≈ 4 characters a token). Longer requests than that run slower locally "
            "than measured, and cost more on an API."
        )
        use.button("Use these", on_click=use_sizes, args=(sizes,), key="cost_use_sizes")
    return values


def hardware_inputs(
    profile: costs.HardwareProfile, measured_watts: float | None, sym: str
) -> costs.HardwareProfile:
    """The chosen machine's price, lifetime and wattage, editable per profile."""
    gen = st.session_state.get("cost_reset", 0)
    cost, months, watts = st.columns(3)
    new_cost = cost.number_input(
        f"Machine price, {sym}",
        min_value=0.0,
        value=float(profile.cost),
        step=100.0,
        format="%.0f",
        key=f"cost_hw_cost_{profile.id}_{gen}",
        help=costs.field_help(costs.HardwareProfile, "cost"),
    )
    new_months = months.number_input(
        "Amortised over (months)",
        min_value=1,
        value=int(profile.amortisation_months),
        step=6,
        key=f"cost_hw_months_{profile.id}_{gen}",
        help=costs.field_help(costs.HardwareProfile, "amortisation_months"),
    )
    new_watts = watts.number_input(
        "Power under load, W (estimate)",
        min_value=0.0,
        value=float(profile.power_watts),
        step=10.0,
        format="%.0f",
        key=f"cost_hw_watts_{profile.id}_{gen}",
        disabled=measured_watts is not None,
        help=(
            f"Not used: energy was measured for this model (≈ {measured_watts:,.0f} W while busy)."
            if measured_watts is not None
            else costs.field_help(costs.HardwareProfile, "power_watts")
        ),
    )
    if profile.note:
        st.caption(profile.note)
    return dataclasses.replace(
        profile, cost=new_cost, amortisation_months=int(new_months), power_watts=new_watts
    )


@st.cache_data(ttl=5, show_spinner=False, max_entries=16)
def model_accuracy(path: str, latest_id: int, model_id: str) -> dict | None:
    """The model's leaderboard row (overall score and the tasks it covers), or None."""
    table = lb.leaderboard(common.open_db(path))
    rows = table[table["model_id"] == model_id]
    if rows.empty:
        return None
    row = rows.iloc[0]
    tasks = [t for t in lb.task_columns(table) if pd.notna(row[t])]
    return {
        "overall": row["overall"],
        "low": row["overall_low"],
        "high": row["overall_high"],
        "tasks": tasks,
    }


def accuracy_line(path: str, latest_id: int, model_id: str | None) -> None:
    """What the cost buys: the model's measured accuracy, beside its cost."""
    found = model_accuracy(path, latest_id, model_id) if model_id else None
    if found is None:
        st.caption("Accuracy: not measured yet (evaluate the model to see it beside its cost).")
        return
    score = fmt.fmt_ci(found["overall"], found["low"], found["high"])
    st.caption(
        f"Accuracy on the leaderboard: overall **{score}** on {', '.join(found['tasks'])} · "
        "a hosted API's accuracy on the same items is not measured here."
    )


def reset_assumptions() -> None:
    st.session_state["cost_reset"] = st.session_state.get("cost_reset", 0) + 1


def monthly_chart(result: costs.Comparison, local_label: str, prices: costs.Prices) -> str:
    """Horizontal stacked bars: the local month (hardware + electricity) and each API's month."""
    local = result.local
    rows = [(local_label, local["hardware_monthly"], local["electricity"], 0.0, 0.0)]
    rows += [(a["name"], 0.0, 0.0, a["input"], a["output"]) for a in result.apis]
    rows.sort(key=lambda row: sum(row[1:]))  # cheapest on top
    parts = [
        ("Hardware (amortised)", LOCAL_COLOR, [r[1] for r in rows]),
        ("Electricity", "#9ECAE9", [r[2] for r in rows]),
        ("API input tokens", "#F58518", [r[3] for r in rows]),
        ("API output tokens", "#FFBF79", [r[4] for r in rows]),
    ]
    return svg.svg_stacked_hbars(
        [r[0] for r in rows],
        parts,
        f"Cost per month ({prices.currency})",
        value_label=lambda v: money(v, prices),
        title="cost per month",
    )


def cumulative_chart(
    result: costs.Comparison, local_label: str, focus: str, prices: costs.Prices
) -> str:
    """Cumulative cost month by month: local (hardware in month 0) vs each API; break-even marked."""
    focus_row = result.api(focus)
    curve = focus_row["curve"]
    series = [(local_label, LOCAL_COLOR, list(curve.months), list(curve.local_cumulative))]
    top = max(curve.local_cumulative[-1], curve.api_cumulative[-1], 1e-9) * 1.35
    for index, row in enumerate(result.apis):
        api = row["curve"]
        color = API_COLORS[index % len(API_COLORS)]
        # steeper APIs run off the top of the chart, which is scaled to the comparison at hand
        values = [v if v <= top else None for v in api.api_cumulative]
        series.append((row["name"], color, list(api.months), values))
    even = focus_row["break_even_months"]
    if even is not None and even <= result.horizon_months:
        y = result.local["hardware_upfront"] + even * result.local["running_monthly"]
        series.append((f"break-even vs {focus}: {fmt.fmt_months(even)}", "#222", [even], [y]))
    return svg.svg_lines(
        series,
        "months from buying the machine",
        f"cumulative cost ({prices.currency})",
        x_label=lambda m: f"{m:g}",
        y_range=(0.0, top),
        y_format=",.0f" if top >= 10 else ",.2f",
        markers=True,
        title="cumulative cost",
        height=340,
        max_markers=13,  # a point a quarter over three years
    )


def breakdown(result: costs.Comparison, prices: costs.Prices, hardware: costs.HardwareProfile):
    """How the local month is worked out, line by line."""
    local = result.local
    estimate = " (estimate)" if local["power_source"] == "estimate" else " (measured)"
    lines = {
        "Machine-hours of work a month": (
            f"{local['hours_needed']:,.1f} h = {result.requests_per_month:,.0f} requests ÷ "
            f"{local['items_per_s']:,.2f} items/s ÷ 3,600"
        ),
        "Busy share of one machine": (
            f"{100 * local['utilisation']:,.1f}% of {local['hours_per_month']:,.0f} h a month"
        ),
        "Machines needed": f"{local['machines']}",
        "Power while busy": f"{local['power_watts']:,.0f} W{estimate}",
        "Electricity": (
            f"{money(local['electricity'], prices)} = {local['energy_kwh']:,.2f} kWh × "
            f"{money(prices.electricity_per_kwh, prices)}/kWh"
        ),
        "Hardware, amortised": (
            f"{money(local['hardware_monthly'], prices)} = {local['machines']} × "
            f"{money(hardware.cost, prices)} ÷ {hardware.amortisation_months} months"
        ),
        "API tokens a month": (
            f"{result.requests_per_month * prices.tokens_in / 1e6:,.1f}M input + "
            f"{result.requests_per_month * prices.tokens_out / 1e6:,.1f}M output"
        ),
    }
    st.dataframe(
        pd.DataFrame({"item": list(lines), "value": list(lines.values())}),
        hide_index=True,
        column_config={
            "item": st.column_config.TextColumn("Item", width="medium"),
            "value": st.column_config.TextColumn("How it is worked out", width="large"),
        },
    )
    st.caption(
        "Electricity is counted for the busy hours only (an idle machine is assumed off or "
        "near zero). The cumulative view pays for the hardware in month 0; the monthly view "
        "spreads it over its amortisation months. ROI = (API cost − local cost) ÷ local cost "
        f"over {result.horizon_months} months."
    )


def results_view(
    result: costs.Comparison,
    prices: costs.Prices,
    hardware: costs.HardwareProfile,
    model_name: str,
    assumed: bool,
    focus_col,
) -> None:
    local = result.local
    names = [a["name"] for a in result.apis]
    cheapest = result.cheapest_api()
    focus_choice = focus_col.selectbox(
        "Compare with",
        [CHEAPEST, *names],
        format_func=lambda n: f"{CHEAPEST} ({cheapest['name']})" if n == CHEAPEST else n,
        key=f"cost_focus_{st.session_state.get('cost_reset', 0)}",
        help="The hosted API the tiles, the sentence and the break-even mark compare with.",
    )
    focus = result.api(cheapest["name"] if focus_choice == CHEAPEST else focus_choice)
    life = local["amortisation_months"]
    even = focus["break_even_months"]
    per_k = local["per_request"]
    if even is None:
        even_note, even_color = "API stays cheaper", "orange"
    elif even > life:
        even_note, even_color = f"past {life}-month life", "orange"
    else:
        even_note, even_color = f"within {life}-month life", "green"
    roi_pct = focus["roi_pct"]
    saved = focus["curve"].savings[-1]
    common.tiles(
        [
            common.Tile(
                "Local / month",
                money(local["total_monthly"], prices),
                f"{money(1000 * per_k, prices)} / 1,000 req." if per_k is not None else None,
                help=f"Hardware {money(local['hardware_monthly'], prices)} (amortised) + "
                f"electricity {money(local['electricity'], prices)}, for "
                f"{result.requests_per_month:,.0f} requests.",
            ),
            common.Tile(
                "API / month",
                money(focus["total"], prices),
                focus["name"],
                help=f"{focus['name']}: input tokens {money(focus['input'], prices)} + output "
                f"tokens {money(focus['output'], prices)}, at the list prices below.",
            ),
            common.Tile(
                "Break-even",
                fmt_break_even(even),
                even_note,
                even_color,
                help=f"Months until the machine's price has been saved back vs {focus['name']}; "
                f"its life is the {life} months it is written off over.",
            ),
            common.Tile(
                f"{result.horizon_months}-month ROI",
                "—" if roi_pct is None else f"{roi_pct:+,.0f}%",
                f"saves {money(saved, prices)}"
                if saved >= 0
                else f"costs {money(-saved, prices)} more",
                "green" if saved >= 0 else "red",
                help=f"(cost of {focus['name']} − cost of running locally, machine included) ÷ "
                f"cost of running locally, over {result.horizon_months} months.",
            ),
        ]
    )
    sentence = costs.summary_sentence(result, model_name, focus["name"], prices.currency_symbol)
    if assumed:
        sentence += f" (At an assumed {local['items_per_s']:,.2f} items/s: evaluate it to know.)"
    st.markdown(f"**{sentence}**")
    estimates = [
        "the assumed throughput" if assumed else "throughput measured on a short evaluation",
        "measured energy"
        if local["power_source"] == "measured"
        else f"a stated {local['power_watts']:,.0f} W draw",
        f"list prices as of {prices.as_of}",
    ]
    st.caption("Estimates, based on " + ", ".join(estimates) + ".")
    if not local["sufficient"]:
        st.warning(
            f"One machine cannot keep up: this volume needs {local['hours_needed']:,.0f} hours "
            f"of work a month at this speed, and a month has {local['hours_per_month']:,.0f}. "
            f"The local cost assumes {local['machines']} machines.",
            icon=":material/warning:",
        )
    local_label = f"Local: {hardware.label}"
    if local["total_monthly"] <= 0 and focus["total"] <= 0:
        st.info("Nothing to chart: every cost is zero at this volume and these prices.")
        return
    st.markdown("**Cost per month**")
    charts.show(monthly_chart(result, local_label, prices))
    st.markdown(f"**Cumulative cost over {result.horizon_months} months**")
    charts.show(cumulative_chart(result, local_label, focus["name"], prices))
    if even is not None and even > result.horizon_months:
        st.caption(f"Break-even vs {focus['name']} comes after this chart: {fmt.fmt_months(even)}.")
    worked = st.expander("How these numbers are worked out", key="cost_worked", on_change="rerun")
    with worked:
        if worked.open is not False:  # built only when opened: a lighter first load
            breakdown(result, prices, hardware)


# ---------------------------------------------------------------- the page


def main() -> None:
    st.title("Cost and ROI")
    st.caption(
        "What answering your requests with a model on your own machine costs a month, next to "
        "a hosted API doing the same work, and when the machine pays for itself. Every number "
        "is an estimate from the assumptions at the bottom of the page."
    )
    try:
        defaults = load_defaults(str(costs.costs_config_path()))
    except costs.CostsConfigError as exc:
        st.error(f"The price list could not be read: {exc}")
        return
    path = common.db_path()
    latest = lb.latest_score_id(common.get_db())
    try:
        options = model_options(path, latest)
    except registry.RegistryError as exc:
        st.error(f"The model registry could not be read: {exc}")
        return

    gen = st.session_state.get("cost_reset", 0)  # "Reset to defaults" renews every field
    model_col, hw_col, volume_col, focus_col = st.columns([2.4, 2.4, 1.3, 2.2])
    model_id = model_col.selectbox(
        "Model", list(options), format_func=lambda m: options[m], key=f"cost_model_{gen}"
    )
    throughput = load_throughput(path, latest, model_id) if model_id else None
    suggested = defaults.profile_for_device(throughput.device if throughput else None)
    ids = [p.id for p in defaults.hardware]
    profile_id = hw_col.selectbox(
        "Machine",
        ids,
        index=ids.index(suggested.id),
        format_func=lambda i: defaults.hardware_profile(i).label,
        key=f"cost_hardware_{gen}",
        help="The machine the model would run on. A machine of another kind than the one the "
        "speed was measured on gets an estimated speed, labelled so.",
    )
    requests = volume_col.number_input(
        "Requests a month",
        min_value=0,
        value=defaults.requests_per_month,
        step=10_000,
        key=f"cost_requests_{gen}",
        help=costs.field_help(costs.Prices, "requests_per_month"),
    )
    volume_col.caption(f"≈ {requests / 30.4:,.0f} a day")
    accuracy_line(path, latest, model_id)
    assumed_rate = throughput_panel(throughput, model_id)
    device = defaults.hardware_profile(profile_id).device
    speed = None
    if throughput is not None:
        items_per_s, measured, basis = costs.speed_on(throughput, device)
        speed = throughput if measured else items_per_s
        if not measured:
            st.warning(basis + ".", icon=":material/speed:")
        elif throughput.single_request_p50_ms is not None:
            speed = serving_speed(throughput, speed)

    results = st.container()
    st.divider()
    head, reset = st.columns([4, 1], vertical_alignment="bottom")
    head.subheader("Prices and assumptions")
    reset.button("Reset to defaults", on_click=reset_assumptions, key="cost_reset_button")
    st.caption(
        f"**Defaults as of {defaults.as_of}.** {defaults.source} Edits here last for this "
        f"session; change `{costs.costs_config_path().name}` to keep them."
    )
    age = costs.prices_age_months(defaults.as_of)
    if age is not None and age > PRICES_STALE_MONTHS:
        st.warning(
            f"These prices are {age} months old (from {defaults.as_of}): hosted-API prices "
            "change often. Check each vendor's pricing page and edit the table below, or "
            f"update `{costs.costs_config_path().name}`.",
            icon=":material/schedule:",
        )
    apis = api_prices(defaults)
    workload = workload_inputs(defaults, throughput)
    measured_watts = throughput.power_watts if throughput else None
    hardware = hardware_inputs(
        defaults.hardware_profile(profile_id), measured_watts, defaults.currency_symbol
    )
    prices = dataclasses.replace(defaults, apis=tuple(apis), hardware=(hardware,), **workload)

    with results:
        if not apis:
            focus_col.empty()
            st.warning("Add at least one hosted API with its prices below to compare with.")
            return
        result = costs.compare(
            requests,
            speed if speed is not None else assumed_rate,
            prices,
            hardware=hardware,
            power_watts=None if measured_watts is not None else hardware.power_watts,
        )
        name = options.get(model_id, "the model") if model_id else "the model"
        results_view(result, prices, hardware, name, speed is None, focus_col)


main()
