"""Seeded client messages to a bank or broker, each with three exact labels (pure stdlib).

A message is composed from independent parts: a greeting, an optional tone clause, the request
itself (a category, a kind of request, and slots: amounts, merchants, cards, tickers, cities),
an optional timing cue and a sign-off. The labels follow from the parts by these rules:

**category** (``CATEGORIES``): the topic of the request: ``account_access`` (logins,
passwords, locked accounts), ``payments`` (transfers, direct debits, standing orders),
``cards`` (card delivery, declined cards, limits, PINs), ``fraud`` (transactions the client did
not make, someone else in the account, phishing calls), ``trading`` (orders, positions,
market data), ``loans`` (mortgages, personal loans, repayments), ``fees`` (charges, interest,
statements of costs).

**priority** (``PRIORITIES``), applied in order:

1. suspected fraud (the ``fraud`` category) is ``urgent``, whatever else the message says;
2. otherwise the request's kind sets the level: a *question* (how do I, what is) is ``low``,
   a *problem* (something went wrong) ``medium``, a *blocker* (money or access stuck right
   now: locked out, payment failed, card declined, order stuck) ``high``;
3. a deadline cue ("today", "before the market closes", "by Friday") raises it one level
   (``low`` -> ``medium`` -> ``high``; ``high`` stays ``high``);
4. a no-rush cue ("no rush", "whenever you get a chance") lowers it one level (``medium`` ->
   ``low``; ``low`` stays ``low``). It never appears with a blocker or a deadline.

**sentiment** (``SENTIMENT_LABELS``), applied in order:

1. a complaint ("this is unacceptable", "third time I am asking") makes it ``negative``,
   also after praise ("I usually love your app, but this is unacceptable");
2. a negated complaint ("I am not complaining, just ...") is not a complaint;
3. otherwise praise ("thanks for the quick help last time") makes it ``positive``;
4. otherwise ``neutral`` (a plain request; a polite "thanks in advance" is neutral).

Labels are drawn independently (category uniformly; kind, tone and cue by fixed shares), so
no single word gives two labels away. ``answer`` is the category; ``meta`` holds all three
labels and the parts: ``{"sentiment", "category", "priority", "kind", "tone", "cue"}``. Task
files read one label with ``source.label`` (see ``configs/tasks/client_*.yaml``).

    >>> rng = random.Random("client_messages:0:test:0:0")
    >>> text, answer, meta = client_message(rng)
    >>> answer == meta["category"], meta["priority"] in PRIORITIES
    (True, True)
"""

from __future__ import annotations

import random

CATEGORIES = ("account_access", "payments", "cards", "fraud", "trading", "loans", "fees")
PRIORITIES = ("low", "medium", "high", "urgent")
SENTIMENT_LABELS = ("positive", "neutral", "negative")
LABEL_SETS = {"sentiment": SENTIMENT_LABELS, "category": CATEGORIES, "priority": PRIORITIES}

# Requests per (category, kind). Fraud has no kinds of its own: every fraud message is urgent.
_REQUESTS: dict[str, dict[str, tuple[str, ...]]] = {
    "account_access": {
        "question": (
            "how do I change the email address I use to log in?",
            "can I set up two-factor authentication with an authenticator app instead of SMS?",
            "what are the rules for a new online banking password?",
            "how can I add {person} as a second user on my online banking?",
        ),
        "problem": (
            "the password reset email never arrives in my inbox.",
            "the app logs me out every few minutes since the last update.",
            "my security questions seem to have been reset and I do not know the answers.",
            "the verification code by SMS takes over ten minutes to arrive.",
        ),
        "blocker": (
            "my online banking is locked after three wrong passwords and I cannot get in.",
            "I am locked out of my account and the reset link says it has expired.",
            "the app rejects my fingerprint and my password, so I cannot log in at all.",
        ),
    },
    "payments": {
        "question": (
            "how long does an international transfer to {country} usually take?",
            "can I set up a standing order of ${amount} a month to my savings account?",
            "what is the daily limit for transfers from the app?",
            "how do I cancel a direct debit to {merchant}?",
        ),
        "problem": (
            "a transfer of ${amount} to {person} shows as pending for three days now.",
            "my direct debit to {merchant} was taken twice this month.",
            "the payee name check says the account name does not match for {person}.",
            "a refund of ${amount} from {merchant} has not reached my account.",
        ),
        "blocker": (
            "my transfer of ${amount} for the rent failed and the money has left my account.",
            "every payment I try from the app fails with an error code.",
            "my salary of ${amount} was sent back to my employer and I cannot pay my bills.",
        ),
    },
    "cards": {
        "question": (
            "how do I raise the contactless limit on my {card}?",
            "can I order a second {card} for my partner?",
            "does my {card} work abroad in {country} without extra setup?",
            "when will my new {card} arrive after the renewal?",
        ),
        "problem": (
            "my replacement {card} arrived damaged and the chip does not read.",
            "I forgot the PIN of my {card} and want a reminder.",
            "the new {card} has my name spelt wrong.",
            "my {card} was retained by a machine in {city}, which seems broken.",
        ),
        "blocker": (
            "my {card} is declined everywhere in {country} and I have no other way to pay.",
            "my {card} was swallowed by the machine and I have no cash for the trip home.",
            "my {card} stopped working at the checkout and my account shows no block.",
        ),
    },
    "fraud": {
        "report": (
            "there is a charge of ${amount} from {merchant} on my {card} that I did not make.",
            "someone logged into my account from {city} and it was not me.",
            "I got a call from someone claiming to be you who asked for my PIN.",
            "I see {count} transfers to an account I do not know, ${amount} in total.",
            "a text message with your logo asked me to confirm my card details on a website.",
            "my {card} was used in {country} while I am at home and still have the card.",
        ),
    },
    "trading": {
        "question": (
            "how do I place a limit order for {ticker} shares?",
            "what are the trading hours for {exchange} stocks in the app?",
            "can I hold {ticker} in my tax-free account?",
            "where can I see the dividend history of {ticker}?",
        ),
        "problem": (
            "my dividend from {ticker} is missing from last month's statement.",
            "the cost basis of my {ticker} position looks wrong.",
            "the price chart for {ticker} has not updated since yesterday.",
            "my order confirmation for {ticker} shows the wrong number of shares.",
        ),
        "blocker": (
            "my sell order for {count} {ticker} shares is stuck as pending and I cannot cancel it.",
            "the trading platform shows an error whenever I try to sell {ticker}.",
            "my account shows a margin call but I cannot see my {ticker} position at all.",
        ),
    },
    "loans": {
        "question": (
            "what rate would I get on a personal loan of ${amount}?",
            "can I make an extra repayment on my mortgage without a fee?",
            "how do I apply for a payment holiday on my car loan?",
            "what documents do I need to remortgage with you?",
        ),
        "problem": (
            "my mortgage statement shows a higher balance than I expected.",
            "my loan repayment of ${amount} was taken on the wrong date.",
            "the early settlement figure in the app differs from the letter I got.",
            "my loan application has said under review for two weeks.",
        ),
        "blocker": (
            "my mortgage offer expired and the house purchase cannot complete without it.",
            "the loan money of ${amount} never arrived and the seller is waiting for it.",
            "my loan account is frozen and the repayment keeps bouncing.",
        ),
    },
    "fees": {
        "question": (
            "what fee do you charge for a transfer to {country}?",
            "is there a monthly fee on the premium account?",
            "how is the overdraft interest worked out?",
            "do you charge for paying in cheques at a branch?",
        ),
        "problem": (
            "I was charged a ${fee} fee for a transfer that should be free.",
            "there is an overdraft fee of ${fee} although I never went overdrawn.",
            "my account was charged a ${fee} foreign exchange fee twice for one purchase.",
            "the annual fee of ${fee} was taken although I closed the card last year.",
        ),
        "blocker": (
            "a ${fee} fee pushed my account overdrawn and now my rent payment is blocked.",
            "fees of ${fee} were taken and my account is now frozen for a negative balance.",
        ),
    },
}

_KIND_PRIORITY = {"question": "low", "problem": "medium", "blocker": "high", "report": "urgent"}

_GREETINGS = ("Hi,", "Hello,", "Good morning,", "Dear support team,", "Hi there,", "Hello team,")
_OPENERS = ("", "", "Quick one: ", "I need some help: ", "Can you help? ", "I have an issue: ")
_PRAISE = (
    "Thanks for the quick help last time.",
    "I really like the new app.",
    "Your branch staff in {city} were great last week.",
    "I have been a happy customer for {years} years.",
    "Your support team is always helpful.",
)
_COMPLAINTS = (
    "This is the third time I am asking about this.",
    "Honestly, this is unacceptable.",
    "I am really frustrated with your service.",
    "Nobody on the phone line could help me.",
    "I am thinking of moving my accounts elsewhere.",
)
_MIXED = (
    "I usually love your app, but this is unacceptable.",
    "Your staff are friendly, but I am fed up with waiting.",
    "Thanks for past help, but I am very annoyed this time.",
)
_NEGATED = (
    "I am not complaining, just asking.",
    "No complaint here, I simply want to check.",
    "I am not upset about it.",
)
_DEADLINES = (
    "I need this sorted today.",
    "Please answer before the market closes.",
    "It has to be done by Friday.",
    "I need an answer within the hour.",
)
_NO_RUSH = ("No rush on this.", "Whenever you get a chance.", "Any time this week is fine.")
_SIGNOFFS = ("", "Thanks in advance.", "Best regards,", "Kind regards,", "Thank you.", "Cheers,")

_SLOTS = {
    "merchant": ("Amazon", "Netflix", "ShopMax", "City Gym", "FastFuel", "Blue Air", "MegaMart"),
    "card": ("debit card", "credit card", "Visa card", "Mastercard", "travel card"),
    "country": ("Spain", "Japan", "Canada", "Mexico", "Germany", "Thailand", "Brazil"),
    "city": ("Leeds", "Lyon", "Boston", "Madrid", "Dublin", "Porto", "Austin", "Milan"),
    "person": ("my landlord", "my sister", "a supplier", "my son", "John Carter", "Ana Ruiz"),
    "ticker": ("AAPL", "MSFT", "TSLA", "NVDA", "VOD", "SAP", "BP", "KO", "JPM"),
    "exchange": ("US", "London", "Frankfurt", "Tokyo"),
}
_NAMES = ("Maria", "Tom", "Priya", "Lukas", "Chen", "Fatima", "Oliver", "Sofia", "", "", "")


def _slots(rng: random.Random) -> dict[str, str]:
    slots = {name: rng.choice(values) for name, values in _SLOTS.items()}
    slots["amount"] = f"{rng.choice((45, 120, 250, 480, 760, 1200, 2500, 3900, 8400)):,}"
    slots["fee"] = rng.choice(("5", "12", "15", "25", "30", "35"))
    slots["count"] = str(rng.choice((2, 3, 4, 5, 10, 25, 50, 100)))
    slots["years"] = str(rng.choice((3, 5, 8, 10, 15, 20)))
    return slots


def _tone(rng: random.Random) -> tuple[str, str]:
    """(tone part, its sentiment): praise, complaint, mixed, negated complaint or none."""
    tone = rng.choices(
        ("praise", "complaint", "mixed", "negated", "none"), weights=(3, 2, 1, 1, 3)
    )[0]
    sentiment = {"praise": "positive", "complaint": "negative", "mixed": "negative"}
    return tone, sentiment.get(tone, "neutral")


def _cue(rng: random.Random, kind: str) -> str:
    """A timing cue: a deadline, no rush (never with a blocker or a fraud report), or none."""
    if kind in ("blocker", "report"):
        return rng.choices(("deadline", "none"), weights=(1, 2))[0]
    return rng.choices(("deadline", "no_rush", "none"), weights=(1, 1, 2))[0]


def _priority(kind: str, cue: str) -> str:
    """The priority rules of the module docstring, in order."""
    if kind == "report":
        return "urgent"
    level = PRIORITIES.index(_KIND_PRIORITY[kind])
    if cue == "deadline":
        level = min(level + 1, PRIORITIES.index("high"))
    elif cue == "no_rush":
        level = max(level - 1, 0)
    return PRIORITIES[level]


def client_message(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    """One client message: (text, category, meta with the three labels and the parts)."""
    category = rng.choice(CATEGORIES)
    kind = rng.choice(tuple(_REQUESTS[category]))
    request = rng.choice(_REQUESTS[category][kind]).format(**_slots(rng))
    tone, sentiment = _tone(rng)
    cue = _cue(rng, kind)
    slots = _slots(rng)
    tone_text = {
        "praise": rng.choice(_PRAISE),
        "complaint": rng.choice(_COMPLAINTS),
        "mixed": rng.choice(_MIXED),
        "negated": rng.choice(_NEGATED),
        "none": "",
    }[tone].format(**slots)
    cue_text = {"deadline": rng.choice(_DEADLINES), "no_rush": rng.choice(_NO_RUSH), "none": ""}
    opener = rng.choice(_OPENERS)
    lower = opener.endswith(": ") and not request.startswith("I ")
    body = opener + (request[0].lower() if lower else request[0].upper()) + request[1:]
    parts = [rng.choice(_GREETINGS)]
    if tone_text and rng.random() < 0.5:  # the tone before or after the request
        parts += [tone_text, body]
    else:
        parts += [body, tone_text]
    parts += [cue_text[cue], rng.choice(_SIGNOFFS)]
    name = rng.choice(_NAMES)
    if name and parts[-1].endswith(","):
        parts.append(name)
    text = " ".join(part for part in parts if part).removesuffix(",")
    meta: dict[str, object] = {
        "sentiment": sentiment,
        "category": category,
        "priority": _priority(kind, cue),
        "kind": kind,
        "tone": tone,
        "cue": cue,
    }
    return text, category, meta
