"""Finance news sentences of realistic length for ``bench/quick_real.py``, written for the bench.

Each sentence is one news item as a wire service would write it: a subject (a company, its
shares, its lender, an index), what happened, and — in most sentences — some of the context a
reporter adds (the timing, an analyst's view, the market's reaction, a figure). The label
comes from what happened; the context clauses are chosen to agree with it or to stay neutral,
so a sentence's sentiment is what a reader would say it is. About 25 words a sentence on
average, from about 10 to about 60. This is not ``core.data.synthetic``: its wording, lengths
and structure are different, which is the point of the benchmark (real text, not the rows
the other benchmarks use).
"""

from __future__ import annotations

import random

COMPANIES = [
    "Nordhaven Bank",
    "Calloway Industries",
    "Brightwater Energy",
    "Ostrava Steel",
    "Meridian Logistics",
    "Halvorsen Pharma",
    "Pinecrest Insurance",
    "Talbot Retail Group",
    "Sunridge Semiconductors",
    "Arkwright Mining",
    "Bellmont Foods",
    "Quayside Shipping",
    "Lindqvist Telecom",
    "Everhart Capital",
    "Granite Peak Airlines",
    "Corvel Chemicals",
    "Ashby Home Builders",
    "Veltra Motors",
    "Kestrel Software",
    "Roanoke Utilities",
    "Marlow & Finch",
    "Tidewater Paper",
    "Oakhurst Hotels",
    "Saltmarsh Brewing",
]

# What happened, by label. {c}: company; {p}: a percentage; {m}: an amount in millions;
# {q}: a quarter.
EVENTS = {
    "positive": [
        "{c} reported {q} net profit of {m} million euros, beating analysts' estimates",
        "{c} raised its full-year revenue guidance after strong demand in its core markets",
        "shares of {c} jumped {p} percent after the company won a multi-year supply contract",
        "{c} said operating margin widened to {p} percent as cost cuts took hold",
        "{c} agreed to be acquired at a premium of {p} percent to its last closing price",
        "{c} lifted its dividend by {p} percent and announced a share buyback of {m} million",
        "order intake at {c} rose {p} percent year on year to a record {m} million",
        "{c} returned to profit in {q}, ahead of the timetable set out by management",
        "credit agency upgraded {c} to investment grade, citing lower debt and steady cash flow",
        "{c} said comparable sales grew {p} percent, the fastest pace in three years",
        "{c} shares rose {p} percent in early trading on {day}",
    ],
    "negative": [
        "{c} swung to a {q} loss of {m} million euros as demand weakened",
        "{c} cut its full-year outlook, blaming higher input costs and a slowdown in orders",
        "shares of {c} fell {p} percent after the company missed quarterly profit forecasts",
        "{c} will cut about {m} jobs, roughly {p} percent of its workforce, to save costs",
        "regulators fined {c} {m} million euros over failures in its anti-money laundering controls",
        "{c} suspended its dividend to preserve cash after a sharp drop in sales",
        "{c} warned that operating profit would fall short of expectations for a second year",
        "net sales at {c} dropped {p} percent in {q}, hurt by weak consumer spending",
        "{c} was downgraded by two brokers who see little room for margin recovery",
        "{c} booked a {m} million euro impairment on its struggling overseas unit",
        "{c} shares slid {p} percent in early trading on {day}",
    ],
    "neutral": [
        "{c} will publish its {q} results on the morning of its annual meeting",
        "{c} appointed a new chief financial officer, effective at the start of next month",
        "{c} said it had completed the previously announced sale of a warehouse property",
        "{c} will hold a capital markets day for investors and analysts in the autumn",
        "{c} confirmed the terms of its existing share incentive programme for senior staff",
        "{c} moved its registered office to a new address within the same city",
        "{c} said its board would propose the same auditor for another term",
        "{c} published the schedule of its financial reports for the coming year",
        "{c} said the number of its shares in issue was unchanged after the conversion",
        "{c} reported {q} sales of {m} million euros, in line with the same period last year",
        "{c} shares were flat in early trading on {day}",
    ],
}

# Context a reporter adds. Neutral ones fit any label; the others only their own.
CONTEXT = {
    "any": [
        "the company said in a statement on {day}",
        "according to a filing with the stock exchange",
        "in a release published before the market opened",
        "the group told reporters on a conference call",
    ],
    "positive": [
        "and analysts at several banks raised their price targets",
        "sending the stock to its highest level since the spring",
        "with the chief executive pointing to a healthy order book",
        "as new products sold better than planned",
    ],
    "negative": [
        "and the stock dropped to its lowest level in more than a year",
        "with management giving no date for a recovery",
        "as customers delayed orders and inventories grew",
        "prompting at least one analyst to move to a sell rating",
    ],
    "neutral": [
        "and gave no further details",
        "adding that the change would not affect its guidance",
        "as previously announced",
        "a spokesperson said, declining to comment further",
    ],
}

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
QUARTERS = ["first-quarter", "second-quarter", "third-quarter", "fourth-quarter"]
SHORT_LEADS = ["Update:", "Earnings:", "Markets:", "Company news:"]


def _fill(text: str, rng: random.Random, company: str) -> str:
    return text.format(
        c=company,
        p=f"{rng.uniform(1.5, 24):.1f}",
        m=str(rng.choice([12, 35, 48, 120, 260, 410, 780, 1250])),
        q=rng.choice(QUARTERS),
        day=rng.choice(DAYS),
    )


def sentence(label: str, rng: random.Random) -> str:
    """One news sentence whose sentiment is ``label``: an event and 0-4 context clauses."""
    company = rng.choice(COMPANIES)
    text = _fill(rng.choice(EVENTS[label]), rng, company)
    clauses = rng.choices([0, 1, 2, 3, 4], weights=[2, 4, 3, 1, 0.6])[0]
    pool = CONTEXT["any"] + CONTEXT[label]
    for clause in rng.sample(pool, clauses):
        text += ", " + _fill(clause, rng, company)
    if rng.random() < 0.15:
        text = f"{rng.choice(SHORT_LEADS)} {text}"
    return text[0].upper() + text[1:] + "."


def news_rows(count: int, seed: int = 7) -> list[dict[str, str]]:
    """``count`` distinct rows of id, sentence and sentiment, the labels in equal turns.

    A repeat of an earlier sentence is drawn again: the importer (rightly) refuses a file
    with duplicate rows.
    """
    rng = random.Random(seed)
    labels = ["positive", "neutral", "negative"]
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < count:
        label = labels[len(rows) % 3]
        text = sentence(label, rng)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"id": f"news-{len(rows):05d}", "sentence": text, "sentiment": label})
    return rows
