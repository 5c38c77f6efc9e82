"""Seeded reviews of financial products with exact ground truth, and the task views of one record.

    >>> text, answer, meta = review_item(random.Random("reviews:0:test:0:0"))
    >>> answer == str(meta["rating"]), meta["category"] in CATEGORIES
    (True, True)
    >>> sorted(meta["slices"])
    ['category', 'edge_case', 'length']

A review is built from parts whose meaning is fixed, so every label is exact:

- a **product** of one category (``banking``, ``credit_card``, ``brokerage``, ``insurance``,
  ``mortgage``) from a fictional brand;
- **feature sentences**, each about one feature of the vocabulary (``FEATURES``; only those
  that fit the category) with a polarity: +1 (praised), -1 (criticised) or 0 (ambiguous, "not
  sure what to make of the fees yet"). A sentence may be *negated* ("the fees are not high at
  all" is +1, "I can't say the app is reliable" is -1) or, for a criticism, *sarcastic* ("Oh
  great, the app is buggy again. Just what I needed." is -1);
- an **overall sentence** whose wording fixes the star rating (``OVERALL``);
- **context sentences** that mention no feature, added until the review's length
  (``core.data.lengths.count_tokens``) falls in its bucket: short < 50 tokens, medium 50-200,
  long > 200 (about 40 / 40 / 20 %).

The rating (uniform over 1-5) decides the composition: 5 = only praise; 4 = praise and at most
one criticism; 3 = praise and criticism in balance (``mixed``) or only ambiguous remarks
(``ambiguous``); 2 = criticism and at most one praise; 1 = only criticism. Sentiment is
positive for 4-5, neutral for 3, negative for 1-2; the recommendation is yes / maybe / no.

``meta`` holds ``rating``, ``sentiment``, ``recommend``, ``features`` (feature -> polarity),
``category``, ``product``, ``tags`` (every edge case present: sarcasm, negation, mixed,
ambiguous), ``summary`` (the reference summary) and ``slices`` (category, edge_case: the first
of sarcasm > negation > mixed > ambiguous present, else plain; length bucket).

One record serves every review task through a *view* (``VIEWS``): the rating ("1".."5"), the
feature list (canonical names in vocabulary order, comma-separated), the reference summary,
the sentiment, the recommendation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from core.data.items import Item
from core.data.lengths import count_tokens, length_bucket

FEATURES = (
    "fees",
    "interest rate",
    "mobile app",
    "customer service",
    "rewards",
    "approval speed",
    "hidden charges",
    "security",
    "claims process",
    "investment tools",
)
CATEGORIES = ("banking", "credit_card", "brokerage", "insurance", "mortgage")
EDGE_CASES = ("sarcasm", "negation", "mixed", "ambiguous")  # slice order: the first present wins
SENTIMENTS = ("positive", "neutral", "negative")

_CATEGORY_FEATURES = {
    "banking": (
        *("fees", "interest rate", "mobile app", "customer service", "rewards"),
        *("hidden charges", "security"),
    ),
    "credit_card": (
        *("fees", "interest rate", "mobile app", "customer service", "rewards"),
        *("approval speed", "hidden charges"),
    ),
    "brokerage": (
        *("fees", "mobile app", "customer service", "hidden charges", "security"),
        "investment tools",
    ),
    "insurance": (
        *("fees", "customer service", "claims process", "approval speed", "mobile app"),
        "hidden charges",
    ),
    "mortgage": ("interest rate", "fees", "customer service", "approval speed", "hidden charges"),
}
_PRODUCTS = {
    "banking": ("online bank account", "digital checking account", "savings account"),
    "credit_card": ("credit card", "cashback card", "travel card"),
    "brokerage": ("brokerage account", "investing platform", "retirement account"),
    "insurance": ("car insurance policy", "home insurance policy", "travel insurance"),
    "mortgage": ("mortgage", "home loan", "refinancing deal"),
}
_BRANDS = (
    *("Northwind", "Bluepeak", "Harbor Trust", "Summit", "Evergreen", "Crescent", "Ironbridge"),
    *("Lakeshore", "Redwood", "Silverline", "Beacon", "Meridian"),
)

# feature -> (its name's noun phrase and verb, praising adjectives, criticising adjectives)
_FEATURE_WORDS: dict[str, tuple[tuple[str, str], tuple[str, ...], tuple[str, ...]]] = {
    "fees": (("the fees", "are"), ("low", "reasonable", "fair"), ("high", "steep", "outrageous")),
    "interest rate": (
        ("the interest rate", "is"),
        ("competitive", "low", "fair"),
        ("high", "terrible", "uncompetitive"),
    ),
    "mobile app": (
        ("the mobile app", "is"),
        ("fast", "easy to use", "reliable"),
        ("slow", "buggy", "confusing"),
    ),
    "customer service": (
        ("customer service", "is"),
        ("helpful", "friendly", "responsive"),
        ("unhelpful", "rude", "slow to respond"),
    ),
    "rewards": (
        ("the rewards program", "is"),
        ("generous", "valuable", "easy to redeem"),
        ("stingy", "worthless", "hard to redeem"),
    ),
    "approval speed": (
        ("the approval process", "was"),
        ("quick", "fast", "painless"),
        ("slow", "endless", "painfully slow"),
    ),
    "hidden charges": (
        ("the billing", "was"),
        ("exactly as quoted", "free of surprises"),
        ("padded with extras I never agreed to", "full of surprises"),
    ),
    "security": (
        ("account security", "is"),
        ("solid", "reassuring", "strong"),
        ("weak", "worrying", "lax"),
    ),
    "claims process": (
        ("the claims process", "was"),
        ("smooth", "quick", "fair"),
        ("a nightmare", "slow", "unfair"),
    ),
    "investment tools": (
        ("the trading tools", "are"),
        ("powerful", "well designed", "excellent"),
        ("clunky", "limited", "outdated"),
    ),
}
# feature -> paraphrases that avoid its name and every synonym: half the mentions use one, so
# finding the features takes reading, not keyword spotting
_PARAPHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "fees": (("what they charge each month", "is"), ("the monthly maintenance cost", "is")),
    "interest rate": (("the cost of borrowing", "is"), ("what I pay to borrow", "is")),
    "mobile app": (("logging in on my phone", "is"), ("the phone experience", "is")),
    "customer service": (("the people on the phone", "are"), ("the agents I spoke to", "were")),
    "rewards": (("the perks", "are"), ("the cash I earn back on purchases", "is")),
    "approval speed": (("getting the green light", "was"), ("the wait for a decision", "was")),
    "hidden charges": (("my monthly statement", "was"), ("the final bill", "was")),
    "security": (("the protection against fraud", "is"), ("the login protection", "is")),
    "claims process": (("getting paid after my accident", "was"), ("the payout", "was")),
    "investment tools": (
        ("the charting and research screens", "are"),
        ("the order screens", "are"),
    ),
}
# Sentence forms; {np} noun phrase, {Np} capitalised, {be} verb, {adj} adjective.
_PRAISE = (
    "{Np} {be} {adj}.",
    "I was impressed that {np} {be} so {adj}.",
    "Really happy that {np} {be} {adj}.",
)
_CRITICISM = (
    "{Np} {be} {adj}.",
    "I'm disappointed that {np} {be} so {adj}.",
    "Honestly, {np} {be} {adj}.",
)
_NEGATED_PRAISE = ("{Np} {be} not {adj} at all.", "I never found that {np} {be} {adj}.")
_NEGATED_CRITICISM = ("{Np} {be} not {adj}, sadly.", "I can't say that {np} {be} {adj}.")
_SARCASM = (
    "Oh great, {np} {be} {adj} again. Just what I needed.",
    "Love how {np} {be} always {adj}. Really wonderful.",
)
_AMBIGUOUS = (
    "Not sure what to make of {np} yet.",
    "Hard to say whether {np} {be} good or bad.",
    "{Np} {be} what it is, I suppose.",
)
# rating -> overall sentences; {product} the product noun
OVERALL = {
    5: (
        "Absolutely love this {product}.",
        "Best {product} I have ever had.",
        "Couldn't be happier.",
    ),
    4: ("Pretty good overall.", "A solid {product} with small flaws.", "Mostly satisfied."),
    3: ("It's okay, nothing special.", "Mixed feelings overall.", "Time will tell."),
    2: ("Not great overall.", "Rather disappointed with this {product}.", "I expected better."),
    1: ("Absolutely terrible.", "Worst {product} I have ever used.", "Avoid at all costs."),
}
_CONTEXT = (
    "I opened the account in {month}.",
    "I have been a customer for {years} years now.",
    "We switched over from another provider last {season}.",
    "My {relative} recommended {brand} to me.",
    "I mostly use it for {purpose}.",
    "The sign-up form asked for the usual documents.",
    "I read a lot of reviews before choosing.",
    "This is my {ordinal} {product} so far.",
    "I compared three providers before picking this one.",
    "My partner and I share it.",
    "The welcome letter arrived within a week.",
    "I will update this review in a few months.",
    "I check my balance a couple of times a week.",
    "A colleague at work uses {brand} as well.",
    "I moved to {city} recently, which is why I was looking.",
    "The branch near my office closed last year.",
    "I am not an expert, just a regular user.",
    "It took me a weekend to move everything over.",
    "My previous {product} was with a much bigger company.",
    "I used to keep everything on paper.",
    "Most of my friends are with the big names instead.",
    "The paperwork was about what I expected for a {product}.",
    "I set everything up from my kitchen table.",
    "I plan to keep it for at least another year.",
    "My {relative} still thinks I should have gone elsewhere.",
    "I first heard about {brand} from a podcast.",
    "The website explains the terms in plain language.",
    "I travel to {city} often for work.",
    "We are saving for a house, so every dollar counts.",
    "I don't write many reviews, but here goes.",
    "The letters they send are printed on nice paper.",
    "I signed up on a {weekday} afternoon.",
)
_SLOTS = {
    "month": ("January", "March", "May", "July", "September", "November"),
    "years": ("two", "three", "five", "seven", "ten"),
    "season": ("spring", "summer", "autumn", "winter"),
    "relative": ("sister", "brother", "father", "mother", "cousin", "neighbour"),
    "purpose": ("everyday spending", "paying bills", "saving", "travel", "my small business"),
    "ordinal": ("first", "second", "third"),
    "city": ("Denver", "Boston", "Austin", "Seattle", "Phoenix", "Atlanta"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
}
_BUCKET_TARGETS = {"short": (12, 49), "medium": (50, 200), "long": (201, 320)}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _feature_sentence(rng: random.Random, feature: str, form: str) -> str:
    """One sentence about ``feature`` in ``form`` (praise, criticism, negated_praise,
    negated_criticism, sarcasm, ambiguous)."""
    named, good, bad = _FEATURE_WORDS[feature]
    np_, be = named if rng.random() < 0.5 else rng.choice(_PARAPHRASES[feature])
    templates, adjectives = {
        "praise": (_PRAISE, good),
        "criticism": (_CRITICISM, bad),
        "negated_praise": (_NEGATED_PRAISE, bad),  # "not high at all": praise by negation
        "negated_criticism": (_NEGATED_CRITICISM, good),  # "not reliable": criticism
        "sarcasm": (_SARCASM, bad),
        "ambiguous": (_AMBIGUOUS, good),
    }[form]
    template = rng.choice(templates)
    return template.format(np=np_, Np=_capital(np_), be=be, adj=rng.choice(adjectives))


def _polarities(rng: random.Random, rating: int, count: int) -> tuple[list[int], str | None]:
    """The polarity of each of ``count`` features for ``rating``, and the edge case it makes."""
    if rating in (5, 1):
        return [1 if rating == 5 else -1] * count, None
    if rating in (4, 2):
        main = 1 if rating == 4 else -1
        if count >= 2 and rng.random() < 0.5:  # one voice against the rest
            return [main] * (count - 1) + [-main], "mixed"
        return [main] * count, None
    if count >= 2 and rng.random() < 0.6:
        half = count // 2
        polarities = [1] * half + [-1] * half + ([0] if count % 2 else [])
        return polarities, "mixed"
    return [0] * count, "ambiguous"


def _form(rng: random.Random, polarity: int, rating: int, tags: set[str]) -> str:
    if polarity == 0:
        return "ambiguous"
    if polarity < 0 and rating <= 2 and rng.random() < 0.25:
        tags.add("sarcasm")
        return "sarcasm"
    if rng.random() < 0.25:
        tags.add("negation")
        return "negated_praise" if polarity > 0 else "negated_criticism"
    return "praise" if polarity > 0 else "criticism"


def _fill(rng: random.Random, template: str, brand: str, product: str) -> str:
    values = {name: rng.choice(options) for name, options in _SLOTS.items()}
    return template.format(brand=brand, product=product, **values)


def summary_text(rating: int, features: dict[str, int]) -> str:
    """The reference summary of a review: its rating, then what it praises, criticises, doubts.

    >>> summary_text(4, {"fees": 1, "mobile app": 1, "customer service": -1})
    '4/5 stars. Praises the fees and the mobile app. Criticises the customer service.'
    """
    parts = [f"{rating}/5 stars."]
    for polarity, verb in ((1, "Praises"), (-1, "Criticises"), (0, "Unsure about")):
        named = [f"the {name}" for name in FEATURES if features.get(name) == polarity]
        if named:
            listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
            parts.append(f"{verb} {listed}.")
    return " ".join(parts)


def _edge_case(tags: set[str]) -> str:
    return next((tag for tag in EDGE_CASES if tag in tags), "plain")


def review_item(rng: random.Random) -> tuple[str, str, dict[str, object]]:
    """One review: (text, rating as a string, meta); see the module doc for the rules."""
    category = rng.choice(CATEGORIES)
    product = rng.choice(_PRODUCTS[category])
    brand = rng.choice(_BRANDS)
    rating = rng.randint(1, 5)
    bucket = rng.choices(("short", "medium", "long"), weights=(2, 2, 1))[0]
    most = {"short": 2, "medium": 3, "long": 4}[bucket]
    count = rng.randint(1 if bucket != "long" else 2, most)
    features = rng.sample(_CATEGORY_FEATURES[category], count)
    polarities, composition = _polarities(rng, rating, count)
    tags = {composition} if composition else set()
    sentences = [
        _feature_sentence(rng, feature, _form(rng, polarity, rating, tags))
        for feature, polarity in zip(features, polarities)
    ]
    opening = f"I have had the {brand} {product} for a while."
    overall = rng.choice(OVERALL[rating]).format(product=product)
    if overall == "Time will tell.":
        tags.add("ambiguous")
    context = rng.sample(_CONTEXT, len(_CONTEXT))
    low, high = _BUCKET_TARGETS[bucket]
    body = list(sentences)
    while count_tokens(" ".join([opening, *body, overall])) < low and context:
        body.insert(rng.randint(0, len(body)), _fill(rng, context.pop(), brand, product))
    text = " ".join([opening, *body, overall])
    while count_tokens(text) > high and len(body) > len(sentences):  # rare: trim a context line
        body.remove(next(s for s in body if s not in sentences))
        text = " ".join([opening, *body, overall])
    gold = dict(zip(features, polarities))
    tokens = count_tokens(text)
    meta: dict[str, object] = {
        "rating": rating,
        "sentiment": sentiment_of(rating),
        "recommend": recommendation_of(rating),
        "features": {name: gold[name] for name in FEATURES if name in gold},
        "category": category,
        "product": f"{brand} {product}",
        "tags": sorted(tags),
        "summary": summary_text(rating, gold),
        "tokens": tokens,
        "slices": {
            "category": category,
            "edge_case": _edge_case(tags),
            "length": length_bucket(tokens),
        },
    }
    return text, str(rating), meta


def sentiment_of(rating: int) -> str:
    return "positive" if rating >= 4 else "negative" if rating <= 2 else "neutral"


def recommendation_of(rating: int) -> str:
    return "yes" if rating >= 4 else "no" if rating <= 2 else "maybe"


def feature_list(features: dict[str, int] | list[str]) -> str:
    """Feature names in vocabulary order, comma-separated; ``none`` for no feature.

    >>> feature_list({"mobile app": -1, "fees": 1})
    'fees, mobile app'
    """
    names = [name for name in FEATURES if name in features]
    return ", ".join(names) if names else "none"


# view name -> the gold answer of a review record (its meta) for that view
VIEWS: dict[str, Callable[[dict[str, object]], str]] = {
    "rating": lambda meta: str(meta["rating"]),
    "features": lambda meta: feature_list(meta["features"]),  # type: ignore[arg-type]
    "summary": lambda meta: str(meta["summary"]),
    "sentiment": lambda meta: str(meta["sentiment"]),
    "recommendation": lambda meta: str(meta["recommend"]),
}


def view_items(items: list[Item], view: str) -> list[Item]:
    """The items with the gold answer of ``view`` (the same ids, text and meta)."""
    if view not in VIEWS:
        raise ValueError(f"unknown review view {view!r}; views: {', '.join(VIEWS)}")
    return [replace(item, answer=VIEWS[view](item.meta)) for item in items]
