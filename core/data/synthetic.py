"""Seeded synthetic finance benchmark data with exact ground truth (pure standard library).

Three generators, each yielding :class:`~core.data.items.Item` objects whose ``fields`` are
``{"text": ...}`` and whose ``answer`` is a string:

``eps_extraction``
    A 2-4 sentence earnings snippet for a fictional company. It states revenue, net income (or a
    net loss) and the weighted average diluted share count for the current period, plus
    distractors (prior-year net income or share count, operating income, prior-year revenue, a
    dividend per share) and mixed units ("$1.2 billion" net income on "450 million" shares). The
    EPS itself is never stated. ``answer`` = current net income / current diluted shares with
    exactly two decimals ("2.67", "-0.84"). ``meta`` = ``{"net_income", "shares", "revenue",
    "distractors"}`` (dollars / share count as floats, distractor names as a list).

``fin_sentiment``
    One financial news sentence labelled ``positive`` / ``neutral`` / ``negative``. The label is
    decided by these rules, applied in order:

    1. *Events* carry a fixed polarity. Positive: beat estimates, raised guidance or outlook, a
       share buyback, a dividend increase, an analyst upgrade, a contract win, a regulatory
       approval, an early product launch, record revenue, margin expansion, winning a lawsuit.
       Negative: missed estimates, cut or lowered guidance, job cuts, a dividend cut or
       suspension, an analyst downgrade, being sued, losing a lawsuit, an abrupt CEO departure,
       a product recall, a swing to a net loss, a regulatory investigation, a delayed launch.
    2. *Neutral facts* (``neutral_fact``) are neutral: scheduled results dates or meetings,
       reaffirmed / unchanged guidance, a regular or unchanged dividend, board or CFO
       appointments, filings, conference presentations, listing transfers.
    3. *Negation* (``negation``) flips the polarity of the negated event: "did not", "failed to",
       "declined to", "ruled out", "avoided", "did not need to". So "did not miss estimates" and
       "did not cut its guidance" are positive; "did not raise its dividend" is negative. Note
       that "did not cut its guidance" (negated negative event: positive) differs from
       "reaffirmed its guidance" (a neutral fact). Neutral facts are never negated.
    4. *Hedging* (``hedge``: "may", "could", "is expected to", "is likely to", "analysts say ...
       could", "analysts expect ... to") keeps the polarity of the hedged event or fact; a hedged
       neutral fact is neutral.
    5. *Mixed* sentences (``mixed``) join two events of opposite polarity. The label is the
       polarity of the main clause. The clause introduced by "despite", "although", "while" or
       "even though" is concessive and does not count; with "..., but ...", the clause after
       "but" is the main one.
    6. Otherwise (``plain``) the label is the polarity of the single event.

    Labels are drawn uniformly (about a third each). ``meta`` = ``{"pattern": ...}`` with the
    pattern one of ``plain``, ``negation``, ``hedge``, ``mixed``, ``neutral_fact``.

``revenue_analysis``
    Revenue for a current and a prior period (year over year, sequential quarter, or fiscal
    year), possibly in different units ("$950 million" vs "$1.12 billion" or "$1,250 million"),
    sometimes with distractors (operating income, segment revenue, guidance, analyst
    consensus). ``answer`` = (current - prior) / prior * 100 with exactly one decimal ("17.9",
    "-4.2"). ``meta`` = ``{"current", "prior", "distractors"}``.

Every printed figure is exactly the figure the answer is computed from (answers are computed in
:class:`~decimal.Decimal` from the displayed, rounded values), and items whose answer lies within
1e-6 of a rounding tie are redrawn, so float and Decimal arithmetic agree on the gold answer.

    >>> splits = generate_splits("revenue_analysis", seed=0, sizes={"test": 2})
    >>> [item.id for item in splits["test"]]
    ['revenue_analysis-test-00000', 'revenue_analysis-test-00001']
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from core.data import reviews
from core.data.client_messages import LABEL_SETS, client_message
from core.data.items import SPLIT_NAMES, Item

GENERATOR_NAMES: tuple[str, ...] = (
    *("eps_extraction", "fin_sentiment", "revenue_analysis"),
    "client_messages",  # core.data.client_messages: three labels a message (source.label)
    "reviews",  # financial-product reviews: core/data/reviews.py
)
SENTIMENT_LABELS = ("positive", "neutral", "negative")

# Splits are generated in this order; a later split never repeats an earlier split's text.
_GENERATION_ORDER = ("test", "validation", "train")
_MAX_ATTEMPTS = 200

_MILLION = Decimal(1_000_000)
_BILLION = Decimal(1_000_000_000)

# --------------------------------------------------------------------------------------------
# Shared vocabulary
# --------------------------------------------------------------------------------------------

_NAME_STEMS = (
    "Northwind",
    "Bluestone",
    "Halcyon",
    "Meridian",
    "Copperleaf",
    "Ironbridge",
    "Silverline",
    "Crestview",
    "Oakhurst",
    "Redwater",
    "Granite Peak",
    "Lumen",
    "Vantora",
    "Kestrel",
    "Solano",
    "Brightwater",
    "Harborview",
    "Pinecrest",
    "Aldermoor",
    "Quantrix",
    "Norvale",
    "Stratos",
    "Tidewater",
    "Falconridge",
    "Celadon",
    "Arcadia",
    "Westmark",
    "Summit Lane",
    "Orion Forge",
    "Bramble",
    "Cobalt Bay",
    "Maplecroft",
    "Veridian",
    "Zephyr",
    "Ashford",
    "Caldera",
    "Helix",
    "Juniper Row",
    "Marlowe",
    "Sablewood",
    "Greyhaven",
    "Larkspur",
    "Emberline",
    "Polaris Ridge",
    "Thornbury",
    "Wexford",
    "Blue Heron",
    "Ridgeway",
    "Castellan",
    "Nimbus",
)

# Company-name suffix -> sector description used in appositives.
_NAME_SUFFIXES = {
    "Holdings": "diversified holding company",
    "Group": "conglomerate",
    "Industries": "industrial manufacturer",
    "Systems": "enterprise software provider",
    "Technologies": "technology company",
    "Energy": "oil and gas producer",
    "Therapeutics": "biotech company",
    "Logistics": "freight and logistics company",
    "Bancorp": "regional lender",
    "Foods": "packaged food maker",
    "Motors": "carmaker",
    "Networks": "telecom operator",
    "Materials": "chemicals maker",
    "Robotics": "automation company",
    "Semiconductor": "chipmaker",
    "Retail": "department store chain",
    "Airlines": "air carrier",
    "Mining": "copper miner",
    "Software": "business software maker",
    "Insurance": "property insurer",
}

_BANKS = (
    "Morgan Stanley",
    "Goldman Sachs",
    "JPMorgan",
    "Barclays",
    "UBS",
    "Citi",
    "Jefferies",
    "Bernstein",
    "Wells Fargo",
    "BofA Securities",
    "Deutsche Bank",
    "RBC Capital Markets",
)
_PRODUCTS = (
    "flagship smartphone",
    "electric pickup truck",
    "cloud security suite",
    "diabetes drug",
    "next-generation chip",
    "payments app",
    "cancer therapy",
    "home battery system",
    "AI assistant",
    "wide-body jet",
    "budget sedan",
    "streaming service",
    "data center GPU",
    "robotic vacuum",
    "plant-based snack line",
    "cholesterol treatment",
)
_DEVICES = (
    "flagship smartphone",
    "electric pickup truck",
    "home battery system",
    "robotic vacuum",
    "budget sedan",
    "smart thermostat",
    "e-bike",
    "baby stroller",
    "space heater",
    "laptop charger",
)
_AGENCIES = (
    "the Defense Department",
    "NASA",
    "the European Space Agency",
    "a state utility",
    "a major U.S. carrier",
    "the U.K. Ministry of Defence",
    "a European rail operator",
    "the Department of Energy",
)
_ISSUES = (
    "its accounting practices",
    "its sales practices",
    "its data privacy practices",
    "its revenue recognition",
    "its safety disclosures",
    "its pricing practices",
)
_PEOPLE = (
    "Maria Okafor",
    "James Whitfield",
    "Priya Raman",
    "Daniel Hoffmann",
    "Elena Petrova",
    "Samuel Adeyemi",
    "Laura Chen",
    "Michael Brennan",
    "Sofia Lindqvist",
    "Rahul Mehta",
    "Claire Dubois",
    "Thomas Nakamura",
)
_CONFERENCES = (
    "J.P. Morgan Healthcare",
    "Goldman Sachs Communacopia",
    "Morgan Stanley TMT",
    "Barclays Global Financial Services",
    "Bernstein Strategic Decisions",
    "UBS Global Industrials",
)
_CITIES = ("Chicago", "Austin", "Denver", "Boston", "Atlanta", "Seattle", "Charlotte", "Phoenix")
_EXCHANGES = ("New York Stock Exchange", "Nasdaq")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_ORDINALS = ("first", "second", "third", "fourth")
_QUARTER_ENDS = ("March 31", "June 30", "September 30", "December 31")
_SEGMENTS = (
    "cloud",
    "consumer",
    "industrial",
    "services",
    "wholesale",
    "international",
    "software",
    "healthcare",
    "data center",
    "advertising",
)


def _company(rng: random.Random) -> tuple[str, str]:
    """A fictional company name and its sector description."""
    suffix = rng.choice(sorted(_NAME_SUFFIXES))
    return f"{rng.choice(_NAME_STEMS)} {suffix}", _NAME_SUFFIXES[suffix]


def _date(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}"


def _power_of_ten(exponent: int) -> float:
    return float(10**exponent) if exponent >= 0 else 1.0 / 10**-exponent


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    """Roughly log-uniform in [low, high]: a uniformly chosen decade times a uniform mantissa.

    Uses only exactly rounded IEEE arithmetic (no libm ``exp``/``log``), so the draws, and hence
    the texts, are bit-identical on every platform.
    """
    lowest = 0
    while _power_of_ten(lowest) > low:
        lowest -= 1
    while _power_of_ten(lowest + 1) <= low:
        lowest += 1
    highest = lowest
    while _power_of_ten(highest + 1) <= high:
        highest += 1
    while True:
        value = _power_of_ten(rng.randint(lowest, highest)) * rng.uniform(1.0, 10.0)
        if low <= value <= high:
            return value


def _near_tie(value: Decimal, places: int) -> bool:
    """True when ``value`` lies within 1e-6 (in last-place units) of a rounding tie."""
    scaled = abs(value) * (Decimal(10) ** places)
    fraction = scaled - int(scaled)
    return abs(fraction - Decimal("0.5")) < Decimal("1e-6")


def _quantize(value: Decimal, places: int) -> str:
    """``value`` rounded half-up to ``places`` decimals, as a plain string (never ``-0.0``)."""
    text = str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _display(rng: random.Random, approx: float, *, allow_raw: bool = True) -> tuple[str, Decimal]:
    """Round a positive amount to a printable form; return (text, exact value of that text).

    The text is e.g. ``"1.25 billion"``, ``"1,250 million"``, ``"82.4 million"`` or
    ``"412,300,000"`` (no currency sign); the Decimal is exactly the number the text denotes.
    """
    if allow_raw and rng.random() < 0.08:
        value = Decimal(round(approx / 100_000)) * 100_000
        return f"{int(value):,}", value
    if approx >= 1e9:
        if rng.random() < 0.25:
            millions = Decimal(round(approx / 1e7)) * 10  # "1,250 million"
            return f"{int(millions):,} million", millions * _MILLION
        places = rng.choice((1, 2, 2))
        billions = Decimal(str(round(approx / 1e9, places)))
        return f"{billions:.{places}f} billion", billions * _BILLION
    if approx >= 1e8:
        if rng.random() < 0.75:
            millions = Decimal(round(approx / 1e6))
            return f"{int(millions)} million", millions * _MILLION
        millions = Decimal(str(round(approx / 1e6, 1)))
        return f"{millions:.1f} million", millions * _MILLION
    places = 1 if approx >= 1e7 else 2
    millions = Decimal(str(round(approx / 1e6, places)))
    return f"{millions:.{places}f} million", millions * _MILLION


def _differs(rng: random.Random, base: float, low: float, high: float) -> float:
    """``base`` scaled by a factor in [low, high] that is at least 4% away from 1."""
    while True:
        factor = rng.uniform(low, high)
        if abs(factor - 1.0) >= 0.04:
            return base * factor


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------------------------


def _period(rng: random.Random, *, sequential_ok: bool = False) -> dict[str, str]:
    """A current period and its comparison period in several phrasings.

    Keys: ``long`` / ``short`` (current period as a noun phrase), ``prior_long`` / ``prior_short``
    (comparison period), ``prior_rel`` (a relative phrase such as "a year earlier"), ``kind``
    ("quarter" or "year"), ``next`` (the following period, for guidance).
    """
    year = rng.randint(2016, 2025)
    if rng.random() < 0.65:
        q = rng.randint(1, 4)
        fiscal = "fiscal " if rng.random() < 0.4 else ""
        sequential = sequential_ok and rng.random() < 0.3
        if sequential:
            pq, py = (q - 1, year) if q > 1 else (4, year - 1)
            rel = rng.choice(("in the previous quarter", "a quarter earlier"))
        else:
            pq, py = q, year - 1
            rel = rng.choice(
                ("a year earlier", "in the year-earlier quarter", "in the same quarter last year")
            )
        nq, ny = (q + 1, year) if q < 4 else (1, year + 1)
        if rng.random() < 0.3 and not fiscal:
            long = f"the quarter ended {_QUARTER_ENDS[q - 1]}, {year}"
            prior_long = f"the quarter ended {_QUARTER_ENDS[pq - 1]}, {py}"
        else:
            long = f"the {_ORDINALS[q - 1]} quarter of {fiscal}{year}"
            prior_long = f"the {_ORDINALS[pq - 1]} quarter of {fiscal}{py}"
        fy = "FY" if fiscal else ""
        return {
            "kind": "quarter",
            "long": long,
            "short": f"Q{q} {fy}{year}",
            "prior_long": prior_long,
            "prior_short": f"Q{pq} {fy}{py}",
            "prior_rel": rel,
            "next": f"Q{nq} {fy}{ny}",
        }
    word = rng.choice(("fiscal", "fiscal year", "full-year"))
    return {
        "kind": "year",
        "long": f"{word} {year}",
        "short": f"FY{year}" if word != "full-year" else f"full-year {year}",
        "prior_long": f"{word} {year - 1}",
        "prior_short": f"FY{year - 1}" if word != "full-year" else f"full-year {year - 1}",
        "prior_rel": rng.choice(("a year earlier", "in the prior year", "the year before")),
        "next": f"fiscal {year + 1}",
    }


# --------------------------------------------------------------------------------------------
# eps_extraction
# --------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_EPS_DISTRACTOR_POOL = (
    "prior_net_income",
    "prior_shares",
    "operating_income",
    "prior_revenue",
    "dividend_per_share",
)


def _eps_numbers(rng: random.Random) -> tuple[bool, str, Decimal, str, Decimal, Decimal, str]:
    """Draw (loss, net income text, |net income|, shares text, shares, eps, answer)."""
    while True:
        loss = rng.random() < 0.15
        shares_approx = _log_uniform(rng, 3e7, 5e9)
        eps_target = rng.uniform(0.1, 3.0) if loss else _log_uniform(rng, 0.15, 14.0)
        ni_text, ni_abs = _display(rng, eps_target * shares_approx)
        sh_text, shares = _display(rng, shares_approx)
        eps = (-ni_abs if loss else ni_abs) / shares
        if -3 <= eps <= 15 and abs(eps) >= Decimal("0.05") and not _near_tie(eps, 2):
            return loss, ni_text, ni_abs, sh_text, shares, eps, _quantize(eps, 2)


def _eps_item(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    """One eps_extraction snippet: (text, answer, meta); the EPS value never appears in it."""
    while True:
        text, answer, meta = _eps_attempt(rng)
        if answer.lstrip("-") not in _NUMBER.findall(text):
            return text, answer, meta


def _eps_attempt(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    loss, ni_text, ni_abs, sh_text, shares, _eps, answer = _eps_numbers(rng)
    company, _sector = _company(rng)
    period = _period(rng)
    rel = period["prior_rel"]
    margin = rng.uniform(1.5, 20.0) if loss else 1.0 / rng.uniform(0.04, 0.35)
    rev_text, revenue = _display(rng, float(ni_abs) * margin)

    pool = [d for d in _EPS_DISTRACTOR_POOL if not (loss and d == "dividend_per_share")]
    chosen = rng.sample(pool, rng.choice((1, 1, 2)))
    used: list[str] = []

    # Intro sentence: company, period and revenue (maybe with one inline distractor).
    if "prior_revenue" in chosen and rng.random() < 0.6:
        prior_rev = _display(rng, _differs(rng, float(revenue), 0.7, 1.3))[0]
        intro = rng.choice(
            (
                f"{company} reported revenue of ${rev_text} for {period['long']}, compared with "
                f"${prior_rev} {rel}.",
                f"For {period['long']}, {company} posted revenue of ${rev_text}, versus "
                f"${prior_rev} {rel}.",
            )
        )
        used.append("prior_revenue")
    elif "operating_income" in chosen and not loss and rng.random() < 0.5:
        op_income = _display(rng, float(ni_abs) * rng.uniform(1.15, 1.7))[0]
        intro = rng.choice(
            (
                f"{company} reported revenue of ${rev_text} and operating income of "
                f"${op_income} for {period['long']}.",
                f"For {period['long']}, {company} posted revenue of ${rev_text} and operating "
                f"income of ${op_income}.",
            )
        )
        used.append("operating_income")
    else:
        intro = rng.choice(
            (
                f"{company} reported revenue of ${rev_text} for {period['long']}.",
                f"For {period['long']}, {company} posted revenue of ${rev_text}.",
                f"{company} said it generated revenue of ${rev_text} in {period['long']}.",
                f"In {period['long']}, {company} recorded sales of ${rev_text}.",
            )
        )

    prior_ni_phrase = ""
    if "prior_net_income" in chosen:
        prior_ni = _display(rng, _differs(rng, float(ni_abs), 0.55, 1.5))[0]
        prior_kind = "a net loss of" if loss and rng.random() < 0.5 else "net income of"
        connector = rng.choice(("compared with", "versus"))
        prior_ni_phrase = f", {connector} {prior_kind} ${prior_ni} {rel}"
        used.append("prior_net_income")
    prior_sh_phrase = ""
    if "prior_shares" in chosen:
        prior_sh = _display(rng, _differs(rng, float(shares), 0.88, 1.1))[0]
        prior_sh_phrase = f", compared with {prior_sh} {rel}"
        used.append("prior_shares")

    body: list[str] = []
    if not prior_ni_phrase and not prior_sh_phrase and rng.random() < 0.5:
        # Net income and shares in one sentence.
        if loss:
            options = (
                f"The net loss of ${ni_text} was spread over {sh_text} weighted average diluted "
                "shares.",
                f"It reported a net loss of ${ni_text}, with {sh_text} weighted average diluted "
                "shares outstanding.",
                f"The company lost ${ni_text} on {sh_text} diluted shares outstanding.",
            )
        else:
            options = (
                f"Net income was ${ni_text} on {sh_text} weighted average diluted shares.",
                f"It earned ${ni_text} in net income, with {sh_text} weighted average diluted "
                "shares outstanding.",
                f"The company booked net income of ${ni_text} on {sh_text} diluted shares "
                "outstanding.",
            )
        body.append(rng.choice(options))
    else:
        if loss:
            options = (
                f"The company posted a net loss of ${ni_text}{prior_ni_phrase}.",
                f"Net loss was ${ni_text}{prior_ni_phrase}.",
                f"It swung to a net loss of ${ni_text}{prior_ni_phrase}.",
            )
        else:
            options = (
                f"Net income was ${ni_text}{prior_ni_phrase}.",
                f"The company earned net income of ${ni_text}{prior_ni_phrase}.",
                f"Net income attributable to shareholders totaled ${ni_text}{prior_ni_phrase}.",
            )
        body.append(rng.choice(options))
        body.append(
            rng.choice(
                (
                    f"Weighted average diluted shares outstanding were {sh_text}{prior_sh_phrase}.",
                    f"The weighted average diluted share count was {sh_text}{prior_sh_phrase}.",
                    f"Diluted shares outstanding averaged {sh_text} during the period"
                    f"{prior_sh_phrase}.",
                )
            )
        )

    # Distractors not placed inline get their own sentence (at most four sentences in all).
    for name in chosen:
        if name in used or len(body) >= 3:
            continue
        if name == "operating_income":
            factor = rng.uniform(0.4, 1.2) if loss else rng.uniform(1.15, 1.7)
            value = _display(rng, float(ni_abs) * factor)[0]
            kind = "Operating loss" if loss else "Operating income"
            body.append(rng.choice((f"{kind} was ${value}.", f"{kind} came in at ${value}.")))
        elif name == "prior_revenue":
            value = _display(rng, _differs(rng, float(revenue), 0.7, 1.3))[0]
            body.append(f"Revenue in {period['prior_long']} was ${value}.")
        elif name == "dividend_per_share":
            value = answer
            while value == answer or Decimal(value) <= 0:
                value = f"{rng.uniform(0.05, 0.6) * float(_eps):.2f}"
            body.append(
                rng.choice(
                    (
                        f"The board declared a quarterly dividend of ${value} per share.",
                        f"{company} also declared a dividend of ${value} per share.",
                    )
                )
            )
        else:  # prior_* are always inline
            continue
        used.append(name)
    rng.shuffle(body)
    meta: dict[str, object] = {
        "net_income": float(-ni_abs if loss else ni_abs),
        "shares": float(shares),
        "revenue": float(revenue),
        "distractors": ["revenue", *sorted(used)],
    }
    return " ".join([intro, *body]), answer, meta


# --------------------------------------------------------------------------------------------
# fin_sentiment
# --------------------------------------------------------------------------------------------

# An event: (topic, polarity, past, base, gerund, negated pasts). Polarity is +1 or -1. Strings
# use str.format placeholders filled from ``_sentiment_slots``. An empty negation tuple means the
# event is never negated.
_Event = tuple[str, int, str, str, str, tuple[str, ...]]

_EVENTS: tuple[_Event, ...] = (
    # Positive events.
    (
        "estimates",
        1,
        "beat analysts' estimates for {quarter} earnings",
        "beat analysts' estimates for {quarter} earnings",
        "beating analysts' estimates for {quarter} earnings",
        (
            "did not beat analysts' estimates for {quarter} earnings",
            "failed to beat analysts' estimates for {quarter} earnings",
        ),
    ),
    (
        "estimates",
        1,
        "topped Wall Street forecasts for {quarter} profit",
        "top Wall Street forecasts for {quarter} profit",
        "topping Wall Street forecasts for {quarter} profit",
        ("failed to top Wall Street forecasts for {quarter} profit",),
    ),
    (
        "guidance",
        1,
        "raised its full-year revenue guidance",
        "raise its full-year revenue guidance",
        "raising its full-year revenue guidance",
        ("did not raise its full-year revenue guidance",),
    ),
    (
        "guidance",
        1,
        "lifted its {year} profit outlook",
        "lift its {year} profit outlook",
        "lifting its {year} profit outlook",
        ("declined to lift its {year} profit outlook",),
    ),
    (
        "capital",
        1,
        "announced a ${amount} billion share buyback",
        "announce a ${amount} billion share buyback",
        "announcing a ${amount} billion share buyback",
        ("did not announce a new share buyback",),
    ),
    (
        "dividend",
        1,
        "raised its quarterly dividend by {pct}%",
        "raise its quarterly dividend by {pct}%",
        "raising its quarterly dividend by {pct}%",
        ("did not raise its quarterly dividend",),
    ),
    (
        "rating",
        1,
        "was upgraded to buy by {bank}",
        "be upgraded to buy by {bank}",
        "being upgraded to buy by {bank}",
        (),
    ),
    (
        "contract",
        1,
        "won a ${amount} billion contract from {agency}",
        "win a ${amount} billion contract from {agency}",
        "winning a ${amount} billion contract from {agency}",
        ("failed to win a contract from {agency}", "did not win the {agency} contract"),
    ),
    (
        "product",
        1,
        "received regulatory approval for its {product}",
        "receive regulatory approval for its {product}",
        "receiving regulatory approval for its {product}",
        (
            "did not receive regulatory approval for its {product}",
            "failed to win regulatory approval for its {product}",
        ),
    ),
    (
        "product",
        1,
        "launched its {product} ahead of schedule",
        "launch its {product} ahead of schedule",
        "launching its {product} ahead of schedule",
        ("did not launch its {product} on schedule",),
    ),
    (
        "revenue",
        1,
        "reported record {quarter} revenue",
        "report record {quarter} revenue",
        "reporting record {quarter} revenue",
        (),
    ),
    (
        "margin",
        1,
        "expanded its gross margin by {bps} basis points",
        "expand its gross margin by {bps} basis points",
        "expanding its gross margin by {bps} basis points",
        ("did not expand its gross margin",),
    ),
    (
        "litigation",
        1,
        "won a patent lawsuit against a rival",
        "win a patent lawsuit against a rival",
        "winning a patent lawsuit against a rival",
        ("did not win its patent lawsuit against a rival",),
    ),
    # Negative events.
    (
        "estimates",
        -1,
        "missed analysts' estimates for {quarter} earnings",
        "miss analysts' estimates for {quarter} earnings",
        "missing analysts' estimates for {quarter} earnings",
        ("did not miss analysts' estimates for {quarter} earnings",),
    ),
    (
        "estimates",
        -1,
        "fell short of Wall Street forecasts for {quarter} profit",
        "fall short of Wall Street forecasts for {quarter} profit",
        "falling short of Wall Street forecasts for {quarter} profit",
        ("did not fall short of Wall Street forecasts for {quarter} profit",),
    ),
    (
        "guidance",
        -1,
        "cut its full-year revenue guidance",
        "cut its full-year revenue guidance",
        "cutting its full-year revenue guidance",
        ("did not cut its full-year revenue guidance",),
    ),
    (
        "guidance",
        -1,
        "lowered its {year} profit outlook",
        "lower its {year} profit outlook",
        "lowering its {year} profit outlook",
        ("did not lower its {year} profit outlook",),
    ),
    (
        "jobs",
        -1,
        "announced plans to eliminate {jobs} jobs",
        "eliminate {jobs} jobs",
        "eliminating {jobs} jobs",
        ("ruled out job cuts", "did not announce any layoffs"),
    ),
    (
        "dividend",
        -1,
        "cut its quarterly dividend by {pct}%",
        "cut its quarterly dividend by {pct}%",
        "cutting its quarterly dividend by {pct}%",
        ("did not cut its quarterly dividend",),
    ),
    (
        "dividend",
        -1,
        "suspended its dividend",
        "suspend its dividend",
        "suspending its dividend",
        ("did not suspend its dividend",),
    ),
    (
        "rating",
        -1,
        "was downgraded to sell by {bank}",
        "be downgraded to sell by {bank}",
        "being downgraded to sell by {bank}",
        ("avoided a downgrade from {bank}",),
    ),
    (
        "litigation",
        -1,
        "was sued by shareholders over {issue}",
        "be sued by shareholders over {issue}",
        "being sued by shareholders over {issue}",
        (),
    ),
    (
        "litigation",
        -1,
        "lost a patent lawsuit against a rival",
        "lose a patent lawsuit against a rival",
        "losing a patent lawsuit against a rival",
        ("did not lose its patent lawsuit against a rival",),
    ),
    (
        "leadership",
        -1,
        "announced the abrupt departure of its chief executive",
        "announce the abrupt departure of its chief executive",
        "announcing the abrupt departure of its chief executive",
        (),
    ),
    (
        "product",
        -1,
        "recalled {units} units of its {device}",
        "recall {units} units of its {device}",
        "recalling {units} units of its {device}",
        ("did not need to recall its {device}",),
    ),
    (
        "profit",
        -1,
        "swung to a {quarter} net loss",
        "swing to a {quarter} net loss",
        "swinging to a {quarter} net loss",
        ("avoided a {quarter} net loss",),
    ),
    (
        "regulation",
        -1,
        "disclosed a regulatory investigation into {issue}",
        "face a regulatory investigation into {issue}",
        "facing a regulatory investigation into {issue}",
        (),
    ),
    (
        "product",
        -1,
        "delayed the launch of its {product}",
        "delay the launch of its {product}",
        "delaying the launch of its {product}",
        ("did not delay the launch of its {product}",),
    ),
)

# Neutral facts: (statement after the company name, base form for hedging).
_NEUTRAL_FACTS: tuple[tuple[str, str], ...] = (
    ("will report {quarter} results on {date}", "report {quarter} results on {date}"),
    (
        "scheduled its annual shareholder meeting for {date}",
        "hold its annual shareholder meeting on {date}",
    ),
    ("reaffirmed its full-year guidance", "reaffirm its full-year guidance"),
    ("left its {year} outlook unchanged", "leave its {year} outlook unchanged"),
    ("appointed {person} to its board of directors", "appoint {person} to its board of directors"),
    (
        "filed its quarterly report with the SEC on {date}",
        "file its quarterly report with the SEC on {date}",
    ),
    (
        "will present at the {conf} conference on {date}",
        "present at the {conf} conference on {date}",
    ),
    (
        "declared its regular quarterly dividend of ${div} per share",
        "declare its regular quarterly dividend of ${div} per share",
    ),
    (
        "named {person} chief financial officer, effective {date}",
        "name {person} chief financial officer",
    ),
    (
        "said its annual meeting will be held in {city} on {date}",
        "hold its annual meeting in {city} on {date}",
    ),
    (
        "will hold a conference call to discuss {quarter} results on {date}",
        "hold a conference call to discuss {quarter} results on {date}",
    ),
    (
        "kept its quarterly dividend unchanged at ${div} per share",
        "keep its quarterly dividend unchanged at ${div} per share",
    ),
    (
        "completed the transfer of its stock listing to the {exchange}",
        "complete the transfer of its stock listing to the {exchange}",
    ),
    (
        "confirmed that its {quarter} results will be released on {date}",
        "release its {quarter} results on {date}",
    ),
)

_HEDGES = (
    "{co} may {base}.",
    "{co} could {base}, analysts say.",
    "Analysts say {co} could {base}.",
    "{co} is expected to {base}.",
    "{co} is likely to {base}, according to people familiar with the matter.",
    "Analysts expect {co} to {base}.",
    "{co} signaled that it may {base}.",
    "{co} might {base}, according to a person familiar with the plans.",
)
# Mixed templates: A is the concessive clause, B the main clause (the label follows B).
_MIXED = (
    "Despite {gerund_a}, {co} {past_b}.",
    "{co} {past_b}, despite {gerund_a}.",
    "Although {co} {past_a}, it {past_b}.",
    "{co} {past_b}, although it {past_a}.",
    "While {co} {past_a}, it {past_b}.",
    "{co} {past_a}, but it {past_b}.",
    "{co} {past_b} even though it {past_a}.",
)
_PREFIXES = ("On {weekday}, ", "In a statement, ", "In a regulatory filing, ", "Earlier today, ")
_SENTIMENT_PATTERNS = {
    "positive": ("plain", "negation", "hedge", "mixed"),
    "negative": ("plain", "negation", "hedge", "mixed"),
    "neutral": ("neutral_fact", "neutral_fact", "neutral_fact", "hedge"),
}
_POLARITY_LABEL = {1: "positive", -1: "negative"}


def _sentiment_slots(rng: random.Random) -> dict[str, str]:
    q = rng.randint(1, 4)
    year = rng.randint(2016, 2026)
    return {
        "quarter": rng.choice((f"Q{q}", f"{_ORDINALS[q - 1]}-quarter", f"fiscal Q{q}")),
        "year": str(year),
        "amount": rng.choice(("1", "1.5", "2", "2.5", "3", "4", "5", "7.5", "10", "12", "20")),
        "pct": str(rng.choice((3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50))),
        "bank": rng.choice(_BANKS),
        "agency": rng.choice(_AGENCIES),
        "product": rng.choice(_PRODUCTS),
        "device": rng.choice(_DEVICES),
        "issue": rng.choice(_ISSUES),
        "bps": str(rng.choice((50, 80, 100, 120, 150, 200, 250, 300))),
        "jobs": f"{rng.choice((150, 300, 400, 600, 800, 1200, 1500, 2000, 3500, 5000, 8000)):,}",
        "units": f"{rng.choice((12, 40, 85, 150, 250, 400, 900)) * 1000:,}",
        "person": rng.choice(_PEOPLE),
        "date": _date(rng),
        "conf": rng.choice(_CONFERENCES),
        "city": rng.choice(_CITIES),
        "exchange": rng.choice(_EXCHANGES),
        "div": f"{rng.randint(5, 150) / 100:.2f}",
        "weekday": rng.choice(_WEEKDAYS),
    }


def _sentiment_item(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    """One fin_sentiment sentence: (text, label, meta)."""
    label = rng.choice(SENTIMENT_LABELS)
    pattern = rng.choice(_SENTIMENT_PATTERNS[label])
    slots = _sentiment_slots(rng)
    company, sector = _company(rng)
    subject = f"{company}, the {sector}," if rng.random() < 0.2 else company
    polarity = 1 if label == "positive" else -1

    def fill(template: str) -> str:
        return template.format(**slots)

    if pattern == "neutral_fact":
        body = f"{subject} {fill(rng.choice(_NEUTRAL_FACTS)[0])}."
    elif pattern == "hedge":
        if label == "neutral":
            base = rng.choice(_NEUTRAL_FACTS)[1]
        else:
            base = rng.choice([e for e in _EVENTS if e[1] == polarity])[3]
        hedge = rng.choice(_HEDGES)
        body = hedge.format(co=subject if hedge.startswith("{co}") else company, base=fill(base))
    elif pattern == "negation":
        # The negated event has the opposite polarity of the label.
        event = rng.choice([e for e in _EVENTS if e[1] == -polarity and e[5]])
        body = f"{subject} {fill(rng.choice(event[5]))}."
    elif pattern == "mixed":
        main = rng.choice([e for e in _EVENTS if e[1] == polarity])
        concession = rng.choice([e for e in _EVENTS if e[1] == -polarity and e[0] != main[0]])
        template = rng.choice(_MIXED)
        body = template.format(
            co=company,
            past_a=fill(concession[2]),
            gerund_a=fill(concession[4]),
            past_b=fill(main[2]),
        )
    else:  # plain
        event = rng.choice([e for e in _EVENTS if e[1] == polarity])
        body = f"{subject} {fill(event[2])}."
    if body.startswith(company) and rng.random() < 0.25:
        body = fill(rng.choice(_PREFIXES)) + body
    return _sentence_case(body), label, {"pattern": pattern}


# --------------------------------------------------------------------------------------------
# revenue_analysis
# --------------------------------------------------------------------------------------------

_REVENUE_DISTRACTORS = ("operating_income", "segment_revenue", "guidance", "consensus")


def _revenue_item(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    """One revenue_analysis snippet: (text, answer, meta)."""
    while True:
        prior_approx = _log_uniform(rng, 5e7, 6e10)
        growth_target = rng.uniform(-0.4, 0.8)
        prior_text, prior = _display(rng, prior_approx)
        cur_text, current = _display(rng, prior_approx * (1 + growth_target))
        growth = (current - prior) / prior * 100
        if -40 <= growth <= 80 and abs(growth) >= Decimal("0.05") and not _near_tie(growth, 1):
            break
    answer = _quantize(growth, 1)
    company, _sector = _company(rng)
    period = _period(rng, sequential_ok=True)
    direction = "up" if current > prior else "down"
    word = rng.choice(("revenue", "revenue", "sales", "net sales"))
    word_cap = _sentence_case(word)
    cur_long, cur_short = period["long"], period["short"]
    prior_long, prior_short, rel = period["prior_long"], period["prior_short"], period["prior_rel"]
    sentences = rng.choice(
        (
            [
                f"{company} reported {word} of ${cur_text} for {cur_long}, compared with "
                f"${prior_text} in {prior_long}."
            ],
            [
                f"{_possessive(company)} {word} for {cur_long} was ${cur_text}, {direction} from "
                f"${prior_text} {rel}."
            ],
            [
                f"In {prior_long}, {company} generated {word} of ${prior_text}.",
                f"For {cur_long}, {word} totaled ${cur_text}.",
            ],
            [
                f"{word_cap} at {company} came in at ${cur_text} in {cur_short} versus ${prior_text} "
                f"in {prior_short}."
            ],
            [
                f"{company} posted {cur_short} {word} of ${cur_text}.",
                f"{word_cap} {rel} had been ${prior_text}.",
            ],
            [
                f"{company} said {cur_short} {word} reached ${cur_text} ({prior_short}: "
                f"${prior_text})."
            ],
            [
                f"{company} said {word} was ${prior_text} in {prior_long} and ${cur_text} in "
                f"{cur_long}."
            ],
        )
    )
    distractors = rng.sample(_REVENUE_DISTRACTORS, rng.choice((0, 1, 1, 2)))
    for name in distractors:
        if name == "operating_income":
            value = _display(rng, float(current) * rng.uniform(0.05, 0.3))[0]
            sentence = rng.choice(
                (
                    f"Operating income was ${value}.",
                    f"Operating income for the period was ${value}.",
                )
            )
        elif name == "segment_revenue":
            value = _display(rng, float(current) * rng.uniform(0.15, 0.6))[0]
            sentence = (
                f"The {rng.choice(_SEGMENTS)} segment contributed ${value} of {cur_short} {word}."
            )
        elif name == "guidance":
            value = _display(rng, _differs(rng, float(current), 0.85, 1.25))[0]
            sentence = f"The company expects {period['next']} {word} of about ${value}."
        else:
            value = _display(rng, _differs(rng, float(current), 0.9, 1.1))[0]
            sentence = f"Analysts had expected {cur_short} {word} of ${value}."
        if name == "consensus" and rng.random() < 0.5:
            sentences.insert(0, sentence)
        else:
            sentences.append(sentence)
    meta: dict[str, object] = {
        "current": float(current),
        "prior": float(prior),
        "distractors": distractors,
    }
    return " ".join(sentences), answer, meta


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------

_GENERATORS: dict[str, Callable[[random.Random], tuple[str, str, dict[str, object]]]] = {
    "eps_extraction": _eps_item,
    "fin_sentiment": _sentiment_item,
    "revenue_analysis": _revenue_item,
    "client_messages": client_message,
    "reviews": reviews.review_item,
}
# Generators whose items carry several labels in ``meta``: a task picks one (``source.label``).
LABEL_FIELDS: dict[str, tuple[str, ...]] = {"client_messages": tuple(LABEL_SETS)}


def generate_splits(generator: str, seed: int, sizes: dict[str, int]) -> dict[str, list[Item]]:
    """Generate seeded splits of one synthetic task.

    ``sizes`` maps split names among 'train', 'validation', 'test' to item counts; the result has
    the same keys. Splits are generated test first, then validation, then train, each item from its
    own ``random.Random`` seeded by ``"{generator}:{seed}:{split}:{index}:{attempt}"``, so the test
    split depends only on (generator, seed, test size) and the output is identical on any machine.
    A text already generated (in this or an earlier split) is redrawn; ValueError when a split
    cannot be filled with unique texts.
    """
    if generator not in _GENERATORS:
        raise ValueError(
            f"unknown generator {generator!r}; valid generators: {', '.join(GENERATOR_NAMES)}"
        )
    unknown = [name for name in sizes if name not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"unknown split names {unknown}; valid splits: {', '.join(SPLIT_NAMES)}")
    for name, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"size of split {name!r} must be a non-negative int, got {size!r}")
    make = _GENERATORS[generator]
    seen: set[str] = set()
    result: dict[str, list[Item]] = {}
    for split in _GENERATION_ORDER:
        if split not in sizes:
            continue
        items: list[Item] = []
        for index in range(sizes[split]):
            for attempt in range(_MAX_ATTEMPTS):
                rng = random.Random(f"{generator}:{seed}:{split}:{index}:{attempt}")
                text, answer, meta = make(rng)
                if text not in seen:
                    break
            else:
                raise ValueError(
                    f"{generator}: could not generate a unique text for {split} item {index} "
                    f"after {_MAX_ATTEMPTS} attempts ({len(seen)} texts already generated); "
                    "ask for fewer items"
                )
            seen.add(text)
            items.append(
                Item(
                    id=f"{generator}-{split}-{index:05d}",
                    fields={"text": text},
                    answer=answer,
                    meta=meta,
                )
            )
        result[split] = items
    return {name: result[name] for name in sizes}
