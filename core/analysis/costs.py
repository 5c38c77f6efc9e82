"""Cost and ROI: running a model on your own machine vs paying a hosted API for the same work.

    >>> prices = load_prices()                      # configs/costs.yaml
    >>> prices.as_of, prices.api("GPT-4o mini").input_per_1m
    ('2025-01', 0.15)
    >>> local = local_monthly_cost(100_000, 50.0, prices, hardware="cpu_box")
    >>> round(local["hours_needed"], 3), local["sufficient"], local["power_source"]
    (0.556, True, 'estimate')
    >>> api = api_monthly_cost(100_000, 400, 50, prices.api("GPT-4o mini"))
    >>> round(api["total"], 2)                      # 40M input tokens x 0.15 + 5M output x 0.60
    9.0
    >>> break_even_months(hardware_cost=1500, local_monthly_running=10, api_monthly=110)
    15.0
    >>> round(roi(24, hardware_cost=1500, local_monthly_running=10, api_monthly=110).roi_pct, 1)
    51.7

The model, in one place:

- One **request** is one item of the kind the model was evaluated on, so the measured
  evaluation throughput (items per second, from the store's ``scores`` rows) says how many
  machine-hours a month's requests take: ``hours = requests / items_per_s / 3600``.
- **Electricity** is paid for those busy hours only: ``kWh = hours x watts / 1000``. The watts
  come from energy measured during the evaluation job when the store has it (GPU energy per
  item, so the rest of the box is not in it), else from the hardware profile's stated wattage,
  which is an *estimate* and labelled so.
- **Hardware** is bought up front. The *monthly* view spreads it over its amortisation months;
  the *cumulative* view (break-even, ROI) pays it in month 0 and then adds the running cost,
  which is how a budget sees it. When one machine cannot do a month's work in the month's
  730 hours, ``machines`` machines are bought and ``sufficient`` is False.
- A hosted **API** costs ``requests x (tokens_in x input price + tokens_out x output price)``
  with prices per 1M tokens.

Everything here is pure arithmetic on plain values except ``load_prices`` (reads the YAML) and
``measured_throughput`` (reads the store); nothing imports Streamlit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from core import paths
from core.format import fmt_money, fmt_months
from core.store import Database
from core.store import scores as score_rows

HOURS_PER_MONTH = 730.0  # 8,760 hours a year / 12
CHARS_PER_TOKEN = 4.0  # a rough rule for English text, to size stored prompts in tokens
DEFAULT_HORIZON_MONTHS = 24


class CostsConfigError(Exception):
    """A costs config that cannot be used; the message says which field and what to do."""


# ---------------------------------------------------------------- prices (configs/costs.yaml)


def _help(text: str) -> Any:
    return field(metadata={"help": text})


@dataclass(frozen=True)
class ApiPrice:
    """A hosted model's list price per 1M tokens."""

    name: str = _help("The hosted model, as its vendor names it.")
    input_per_1m: float = _help("Price per 1 million input (prompt) tokens.")
    output_per_1m: float = _help("Price per 1 million output (generated) tokens.")
    vendor: str = field(default="", metadata={"help": "Who sells it."})


@dataclass(frozen=True)
class HardwareProfile:
    """A machine to run the model on: what it costs and what it draws."""

    id: str = _help("Short name used in the config.")
    label: str = _help("What the app shows.")
    cost: float = _help("Purchase price of the machine.")
    amortisation_months: int = _help(
        "Months over which the purchase is spread in the monthly cost."
    )
    power_watts: float = _help(
        "Estimated draw of the whole machine under load; used when no energy was measured."
    )
    device: str = field(
        default="cpu",
        metadata={
            "help": "What it runs models on (cpu or cuda): the default for a model measured there."
        },
    )
    note: str = field(default="", metadata={"help": "What kind of machine this is."})


@dataclass(frozen=True)
class Prices:
    """Every default price and assumption of the cost model, with the date the prices were taken."""

    as_of: str = _help("The date the default prices were taken; check the vendors' pages.")
    source: str = _help("Where the default prices come from.")
    currency: str = _help("The currency of every amount.")
    currency_symbol: str = _help("How amounts are written.")
    electricity_per_kwh: float = _help("Electricity price per kWh.")
    tokens_in: int = _help("Average prompt tokens per request (what an API bills as input).")
    tokens_out: int = _help("Average generated tokens per request (what an API bills as output).")
    requests_per_month: int = _help("Requests (evaluated items) a month.")
    apis: tuple[ApiPrice, ...] = _help("Hosted APIs to compare with.")
    hardware: tuple[HardwareProfile, ...] = _help("Machines to run the model on.")

    def api(self, name: str) -> ApiPrice:
        """The API called ``name``; KeyError naming the known ones when there is none."""
        for price in self.apis:
            if price.name == name:
                return price
        raise KeyError(f"No API '{name}' in the prices; known: {', '.join(self.api_names())}")

    def api_names(self) -> list[str]:
        return [price.name for price in self.apis]

    def hardware_profile(self, profile_id: str) -> HardwareProfile:
        """The hardware profile ``profile_id``; KeyError naming the known ones when there is none."""
        for profile in self.hardware:
            if profile.id == profile_id:
                return profile
        known = ", ".join(p.id for p in self.hardware)
        raise KeyError(f"No hardware profile '{profile_id}'; known: {known}")

    def profile_for_device(self, device: str | None) -> HardwareProfile:
        """The first profile that runs models on ``device`` ("cuda:0" counts as "cuda"), else the first.

        >>> load_prices().profile_for_device("cuda:0").id
        'gpu_24gb'
        """
        kind = (device or "cpu").split(":")[0]
        return next((p for p in self.hardware if p.device == kind), self.hardware[0])


def field_help(cls: type, name: str) -> str:
    """The help text of a config field (the UI's tooltip): ``field_help(Prices, "tokens_in")``."""
    for item in fields(cls):
        if item.name == name:
            return str(item.metadata.get("help", ""))
    raise KeyError(f"{cls.__name__} has no field '{name}'")


def costs_config_path() -> Path:
    """``FINBOARD_COSTS_CONFIG`` or ``configs/costs.yaml``."""
    return Path(os.environ.get("FINBOARD_COSTS_CONFIG", paths.CONFIGS_DIR / "costs.yaml"))


def _number(raw: dict[str, Any], key: str, where: str, integer: bool = False) -> Any:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise CostsConfigError(f"{where}: `{key}` must be a number >= 0 (got {value!r})")
    return int(value) if integer else float(value)


def _api_price(raw: Any, where: str) -> ApiPrice:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise CostsConfigError(f"{where}: every entry of `apis` needs a `name`")
    at = f"{where}: api '{raw['name']}'"
    return ApiPrice(
        name=str(raw["name"]),
        input_per_1m=_number(raw, "input_per_1m", at),
        output_per_1m=_number(raw, "output_per_1m", at),
        vendor=str(raw.get("vendor") or ""),
    )


def _hardware_profile(raw: Any, where: str) -> HardwareProfile:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise CostsConfigError(f"{where}: every entry of `hardware` needs an `id`")
    at = f"{where}: hardware '{raw['id']}'"
    months = _number(raw, "amortisation_months", at, integer=True)
    if months < 1:
        raise CostsConfigError(f"{at}: `amortisation_months` must be at least 1")
    return HardwareProfile(
        id=str(raw["id"]),
        label=str(raw.get("label") or raw["id"]),
        cost=_number(raw, "cost", at),
        amortisation_months=months,
        power_watts=_number(raw, "power_watts", at),
        device=str(raw.get("device") or "cpu"),
        note=str(raw.get("note") or ""),
    )


def load_prices(path: str | Path | None = None) -> Prices:
    """The prices and assumptions in ``path`` (default ``costs_config_path()``).

    >>> load_prices().hardware_profile("gpu_24gb").amortisation_months
    36
    """
    where = Path(path) if path is not None else costs_config_path()
    raw = paths.read_yaml(where, CostsConfigError, "Costs config") or {}
    if not isinstance(raw, dict):
        raise CostsConfigError(f"{where}: expected a mapping (see configs/costs.yaml)")
    apis = tuple(_api_price(item, str(where)) for item in raw.get("apis") or [])
    hardware = tuple(_hardware_profile(item, str(where)) for item in raw.get("hardware") or [])
    if not apis or not hardware:
        raise CostsConfigError(f"{where}: needs at least one entry in `apis` and in `hardware`")
    return Prices(
        as_of=str(raw.get("as_of") or "unknown date"),
        source=str(raw.get("source") or "").strip(),
        currency=str(raw.get("currency") or "USD"),
        currency_symbol=str(raw.get("currency_symbol") or "$"),
        electricity_per_kwh=_number(raw, "electricity_per_kwh", str(where)),
        tokens_in=_number(raw, "tokens_in", str(where), integer=True),
        tokens_out=_number(raw, "tokens_out", str(where), integer=True),
        requests_per_month=_number(raw, "requests_per_month", str(where), integer=True),
        apis=apis,
        hardware=hardware,
    )


# ---------------------------------------------------------------- measured throughput (the store)


@dataclass(frozen=True)
class Throughput:
    """How fast a model answered in its newest evaluations, on one device.

    ``items_per_s`` is total items / total seconds over the newest score of each task on the
    device of the model's newest score; ``latency_p50_ms`` is the item-weighted mean of those
    scores' median latencies. ``energy_wh_per_item`` is set when the store holds energy for the
    evaluation jobs behind those scores (GPU energy; None without a GPU).
    """

    model_id: str
    items_per_s: float
    latency_p50_ms: float | None
    n_items: int
    device: str
    tasks: tuple[str, ...]
    score_ids: tuple[int, ...]
    measured_at: str
    energy_wh_per_item: float | None = None
    energy_source: str | None = None  # "job result" | "monitor samples"
    avg_prompt_chars: float | None = None  # of the evaluated items' prompts (the predictions)
    avg_output_chars: float | None = None
    # encoders: the p50 / p95 of answering one request at a time (batch size 1), as measured
    single_request_p50_ms: float | None = None
    single_request_p95_ms: float | None = None

    def one_at_a_time_rate(self) -> float | None:
        """Requests/s of one worker answering one request at a time: 1000 / single-request p50.

        >>> t = Throughput("m", 300.0, 5.0, 10, "cpu", ("a",), (1,), "", single_request_p50_ms=8.0)
        >>> t.one_at_a_time_rate()
        125.0
        """
        if not self.single_request_p50_ms:
            return None
        return 1000 / self.single_request_p50_ms

    def approx_tokens(self) -> tuple[int, int] | None:
        """The evaluated items' average (prompt, output) size in tokens, at ~4 characters a token."""
        if self.avg_prompt_chars is None or self.avg_output_chars is None:
            return None
        return (
            round(self.avg_prompt_chars / CHARS_PER_TOKEN),
            max(1, round(self.avg_output_chars / CHARS_PER_TOKEN)),
        )

    @property
    def power_watts(self) -> float | None:
        """Average power while answering, from the measured energy: Wh/item x items/s x 3600."""
        if self.energy_wh_per_item is None:
            return None
        return self.energy_wh_per_item * self.items_per_s * 3600


def _job_energy_wh(db: Database, job_id: int) -> tuple[float | None, str | None]:
    """An evaluation job's energy: ``energy_wh`` of its result, else its monitor samples."""
    from core import monitoring
    from core.jobs import queue

    try:
        job = queue.get(db, job_id)
    except queue.JobError:
        return None, None
    if job["kind"] != "eval":  # training energy is not the cost of answering
        return None, None
    result = job["result"] if isinstance(job["result"], dict) else {}
    energy = result.get("energy_wh")
    if isinstance(energy, (int, float)) and energy > 0:
        return float(energy), "job result"
    energy = monitoring.energy_wh(db, job_id)
    if energy is not None and energy > 0:
        return float(energy), "monitor samples"
    return None, None


def _energy_per_item(db: Database, job_ids: set[int]) -> tuple[float | None, str | None]:
    total_wh, total_items, sources = 0.0, 0, set()
    for job_id in sorted(job_ids):
        energy, source = _job_energy_wh(db, job_id)
        if energy is None:
            continue
        items = score_rows.items_of_job(db, job_id)
        if items:
            total_wh += energy
            total_items += items
            sources.add(source)
    if not total_items:
        return None, None
    return total_wh / total_items, " + ".join(sorted(sources))


def measured_throughput(db: Database, model_id: str) -> Throughput | None:
    """The model's measured throughput from its newest scores; None when it has none.

    >>> from core.store import connect
    >>> measured_throughput(connect(":memory:"), "smollm2-135m-instruct") is None
    True
    """
    rows = score_rows.timed(db, model_id)
    if not rows:
        return None
    device = rows[0]["device"]
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:  # newest first: keep the first row of each task on the newest device
        if row["device"] == device and row["task"] not in newest:
            newest[row["task"]] = row
    used = list(newest.values())
    items = sum(int(r["n_items"]) for r in used)
    seconds = sum(r["n_items"] / r["items_per_s"] for r in used)
    timed = [r for r in used if r["latency_p50_ms"] is not None]
    latency = (
        sum(r["latency_p50_ms"] * r["n_items"] for r in timed) / sum(r["n_items"] for r in timed)
        if timed
        else None
    )
    energy, source = _energy_per_item(db, {int(r["job_id"]) for r in used if r["job_id"]})
    single = _single_request_latency(model_id, timed)
    ids = sorted(int(r["id"]) for r in used)
    sizes = score_rows.prediction_sizes(db, ids)
    return Throughput(
        model_id=model_id,
        items_per_s=items / seconds,
        latency_p50_ms=latency,
        n_items=items,
        device=str(device or "unknown"),
        tasks=tuple(sorted(newest)),
        score_ids=tuple(ids),
        measured_at=str(rows[0]["created_at"] or ""),
        energy_wh_per_item=energy,
        energy_source=source,
        avg_prompt_chars=sizes[0],
        avg_output_chars=sizes[1],
        single_request_p50_ms=single[0],
        single_request_p95_ms=single[1],
    )


def _single_request_latency(
    model_id: str, rows: list[dict[str, Any]]
) -> tuple[float | None, float | None]:
    """(p50, p95) of answering one request at a time, item-weighted over ``rows``: measured so
    for encoders (``core.evaluation.encoder``); an LLM's latency is its batch time per item."""
    from core.models import registry
    from core.models.encoder import is_encoder

    try:
        if not rows or not is_encoder(registry.get_model(model_id)):
            return None, None
    except registry.RegistryError:
        return None, None
    weight = sum(r["n_items"] for r in rows)
    p95 = [r for r in rows if r.get("latency_p95_ms") is not None]
    return (
        sum(r["latency_p50_ms"] * r["n_items"] for r in rows) / weight,
        sum(r["latency_p95_ms"] * r["n_items"] for r in p95) / weight if p95 else None,
    )


def speed_on(throughput: Throughput, device: str) -> tuple[float, bool, str]:
    """(items/s, measured?, basis) of a model on ``device`` ("cpu", "cuda").

    The measured speed where it was measured on that kind of device; else an estimate that
    scales it by the assumed sustained FLOP/s of the two device kinds (``estimates``), labelled
    as such.

        >>> t = Throughput("m", 10.0, None, 100, "cpu", ("a",), (1,), "2025-01-01")
        >>> speed_on(t, "cpu")[:2], round(speed_on(t, "cuda")[0])
        ((10.0, True), 4000)
    """
    from core.analysis.estimates import ASSUMED_FLOPS

    measured_on = (throughput.device or "cpu").split(":")[0]
    wanted = (device or "cpu").split(":")[0]
    if wanted == measured_on or wanted not in ASSUMED_FLOPS or measured_on not in ASSUMED_FLOPS:
        return throughput.items_per_s, True, f"measured on {measured_on}"
    factor = ASSUMED_FLOPS[wanted] / ASSUMED_FLOPS[measured_on]
    basis = (
        f"ESTIMATE: measured {throughput.items_per_s:,.1f} items/s on {measured_on}, scaled "
        f"x{factor:,.0f} to {wanted} by assumed device speed; evaluate the model there to know"
    )
    return throughput.items_per_s * factor, False, basis


def prices_age_months(as_of: str, today: date | None = None) -> int | None:
    """How many whole months old a ``YYYY-MM`` price date is (None when it is not a date).

    >>> prices_age_months("2025-01", date(2026, 12, 1))
    23
    """
    try:
        year, month = (int(part) for part in as_of.split("-")[:2])
    except ValueError:
        return None
    today = today or date.today()
    return (today.year - year) * 12 + today.month - month


# ---------------------------------------------------------------- monthly costs


def _check_non_negative(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and (math.isnan(value) or value < 0):
            raise ValueError(f"{name} must be a number >= 0 (got {value})")


def local_monthly_cost(
    requests_per_month: float,
    throughput: Throughput | float,
    prices: Prices,
    power_watts: float | None = None,
    hardware: HardwareProfile | str | None = None,
) -> dict[str, Any]:
    """A month of running the model locally, broken down.

    ``throughput`` is a measured ``Throughput`` or an assumed items/s. ``power_watts``, when
    given, is used as stated (an estimate); when None, the measured energy per item is used if
    the throughput has it, else the hardware profile's wattage (an estimate). ``hardware`` is a
    profile or its id (default: the first in ``prices``).

        >>> cost = local_monthly_cost(3_600_000, 2.0, load_prices(), hardware="cpu_box")
        >>> cost["hours_needed"], cost["sufficient"], cost["machines"]
        (500.0, True, 1)
        >>> round(cost["electricity"], 2), round(cost["hardware_monthly"], 2)  # 60 kWh; 1500/36
        (9.0, 41.67)
    """
    if isinstance(hardware, str):
        hardware = prices.hardware_profile(hardware)
    profile = hardware or prices.hardware[0]
    items_per_s = throughput.items_per_s if isinstance(throughput, Throughput) else throughput
    _check_non_negative(requests_per_month=requests_per_month, power_watts=power_watts)
    if not items_per_s or items_per_s <= 0 or math.isnan(items_per_s):
        raise ValueError(f"throughput must be more than 0 items/s (got {items_per_s})")
    measured = throughput.power_watts if isinstance(throughput, Throughput) else None
    if power_watts is not None:
        watts, source = float(power_watts), "estimate"
    elif measured is not None:
        watts, source = measured, "measured"
    else:
        watts, source = profile.power_watts, "estimate"
    hours = requests_per_month / items_per_s / 3600
    machines = max(1, math.ceil(hours / HOURS_PER_MONTH - 1e-9))
    energy_kwh = hours * watts / 1000
    electricity = energy_kwh * prices.electricity_per_kwh
    upfront = machines * profile.cost
    hardware_monthly = upfront / profile.amortisation_months
    total = electricity + hardware_monthly
    return {
        "requests_per_month": requests_per_month,
        "items_per_s": items_per_s,
        "hardware_id": profile.id,
        "hours_needed": hours,
        "hours_per_month": HOURS_PER_MONTH,
        "utilisation": hours / HOURS_PER_MONTH,  # of one machine; above 1 means it can't keep up
        "sufficient": hours <= HOURS_PER_MONTH,
        "machines": machines,
        "power_watts": watts,
        "power_source": source,  # "measured" | "estimate"
        "energy_kwh": energy_kwh,
        "electricity": electricity,
        "hardware_upfront": upfront,
        "hardware_monthly": hardware_monthly,
        "amortisation_months": profile.amortisation_months,
        "running_monthly": electricity,
        "total_monthly": total,
        "per_request": total / requests_per_month if requests_per_month else None,
    }


def api_monthly_cost(
    requests_per_month: float, tokens_in: float, tokens_out: float, price: ApiPrice
) -> dict[str, Any]:
    """A month of a hosted API: input and output tokens at its per-1M-token prices.

    >>> api_monthly_cost(1_000_000, 400, 50, ApiPrice("X", 2.5, 10.0))["total"]
    1500.0
    """
    _check_non_negative(
        requests_per_month=requests_per_month,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        input_per_1m=price.input_per_1m,
        output_per_1m=price.output_per_1m,
    )
    input_cost = requests_per_month * tokens_in * price.input_per_1m / 1e6
    output_cost = requests_per_month * tokens_out * price.output_per_1m / 1e6
    total = input_cost + output_cost
    return {
        "name": price.name,
        "vendor": price.vendor,
        "input": input_cost,
        "output": output_cost,
        "total": total,
        "per_request": total / requests_per_month if requests_per_month else None,
    }


# ---------------------------------------------------------------- over time


def break_even_months(
    hardware_cost: float, local_monthly_running: float, api_monthly: float
) -> float | None:
    """Months until the hardware has paid for itself; None when the API costs no more a month.

    >>> break_even_months(1500, 10, 110), break_even_months(1500, 10, 10)
    (15.0, None)
    """
    _check_non_negative(
        hardware_cost=hardware_cost,
        local_monthly_running=local_monthly_running,
        api_monthly=api_monthly,
    )
    saving = api_monthly - local_monthly_running
    if saving <= 0:
        return None
    return hardware_cost / saving


@dataclass(frozen=True)
class Roi:
    """Cumulative costs month by month (month 0 = the hardware is bought) and the ROI at the end."""

    months: list[int]
    local_cumulative: list[float]
    api_cumulative: list[float]
    savings: list[float]  # api - local, cumulative: negative until break-even
    roi_pct: float | None  # (api - local) / local at the horizon, in %; None when local costs 0
    break_even_months: float | None


def roi(
    months: int = DEFAULT_HORIZON_MONTHS,
    *,
    hardware_cost: float,
    local_monthly_running: float,
    api_monthly: float,
) -> Roi:
    """Local (hardware up front + running) vs API cumulative cost, and the ROI after ``months``.

    >>> curve = roi(2, hardware_cost=100, local_monthly_running=5, api_monthly=55)
    >>> curve.local_cumulative, curve.api_cumulative, curve.savings
    ([100.0, 105.0, 110.0], [0.0, 55.0, 110.0], [-100.0, -50.0, 0.0])
    >>> curve.roi_pct, curve.break_even_months
    (0.0, 2.0)
    """
    if months < 1:
        raise ValueError(f"months must be at least 1 (got {months})")
    even = break_even_months(hardware_cost, local_monthly_running, api_monthly)
    steps = list(range(months + 1))
    local = [float(hardware_cost + m * local_monthly_running) for m in steps]
    api = [float(m * api_monthly) for m in steps]
    savings = [a - b for a, b in zip(api, local)]
    roi_pct = 100 * savings[-1] / local[-1] if local[-1] > 0 else None
    return Roi(steps, local, api, savings, roi_pct, even)


# ---------------------------------------------------------------- the whole comparison


@dataclass(frozen=True)
class Comparison:
    """Local vs every API at one request volume: what the Cost and ROI page shows."""

    requests_per_month: float
    local: dict[str, Any]
    apis: list[dict[str, Any]]  # api_monthly_cost() + break_even_months, roi_pct, curve
    horizon_months: int

    def cheapest_api(self) -> dict[str, Any] | None:
        return min(self.apis, key=lambda a: a["total"]) if self.apis else None

    def api(self, name: str) -> dict[str, Any]:
        for row in self.apis:
            if row["name"] == name:
                return row
        raise KeyError(f"No API '{name}' in this comparison")


def compare(
    requests_per_month: float,
    throughput: Throughput | float,
    prices: Prices,
    hardware: HardwareProfile | str | None = None,
    power_watts: float | None = None,
    months: int = DEFAULT_HORIZON_MONTHS,
) -> Comparison:
    """``local_monthly_cost`` vs ``api_monthly_cost`` of each of ``prices.apis``, with break-even
    and ROI per API.

        >>> result = compare(100_000, 50.0, load_prices(), hardware="cpu_box")
        >>> result.cheapest_api()["name"]
        'Gemini 1.5 Flash'
    """
    local = local_monthly_cost(requests_per_month, throughput, prices, power_watts, hardware)
    rows = []
    for price in prices.apis:
        cost = api_monthly_cost(requests_per_month, prices.tokens_in, prices.tokens_out, price)
        curve = roi(
            months,
            hardware_cost=local["hardware_upfront"],
            local_monthly_running=local["running_monthly"],
            api_monthly=cost["total"],
        )
        rows.append(
            {
                **cost,
                "break_even_months": curve.break_even_months,
                "roi_pct": curve.roi_pct,
                "curve": curve,
            }
        )
    return Comparison(requests_per_month, local, rows, months)


# ---------------------------------------------------------------- words and numbers


def summary_sentence(
    comparison: Comparison, model_name: str, api_name: str, symbol: str = "$"
) -> str:
    """One plain sentence a manager can read: local vs ``api_name`` at this volume.

    >>> result = compare(1_000_000, 50.0, load_prices(), hardware="cpu_box")
    >>> summary_sentence(result, "SmolLM2", "GPT-4o mini")  # doctest: +NORMALIZE_WHITESPACE
    'At 1,000,000 requests a month, running SmolLM2 locally costs $41.77 a month vs $90.00
    for GPT-4o mini; the hardware pays for itself in 17 months.'
    """
    local = comparison.local
    api = comparison.api(api_name)
    money = lambda v: fmt_money(v, symbol)  # noqa: E731
    text = (
        f"At {comparison.requests_per_month:,.0f} requests a month, running {model_name} "
        f"locally costs {money(local['total_monthly'])} a month vs {money(api['total'])} "
        f"for {api_name}"
    )
    even = api["break_even_months"]
    if even is None:
        text += f"; {api_name} stays cheaper, so the hardware never pays for itself at this volume."
    elif local["hardware_upfront"] == 0:
        text += (
            f"; with no hardware to buy, running locally saves "
            f"{money(api['total'] - local['running_monthly'])} a month."
        )
    elif even > local["amortisation_months"]:
        text += (
            f"; the hardware would take {fmt_months(even)} to pay for itself, longer than the "
            f"{local['amortisation_months']} months it is written off over."
        )
    else:
        text += f"; the hardware pays for itself in {fmt_months(even)}."
    if not local["sufficient"]:
        text += (
            f" One machine cannot keep up with this volume at this speed "
            f"({local['hours_needed']:,.0f} hours of work a month), so the local cost assumes "
            f"{local['machines']} machines."
        )
    return text
