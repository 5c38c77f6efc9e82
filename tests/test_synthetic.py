"""Tests for the seeded synthetic finance generators in core.data.synthetic."""

from __future__ import annotations

import math
import re
from collections import Counter
from decimal import Decimal

import pytest

from core.data import synthetic
from core.data.items import Item
from core.data.synthetic import GENERATOR_NAMES, SENTIMENT_LABELS, generate_splits

SIZES = {"train": 300, "validation": 60, "test": 120}

# ---------------------------------------------------------------------------------------------
# Independent parsing helpers (do not reuse the generator's formatting code).
# ---------------------------------------------------------------------------------------------

_AMOUNT = re.compile(r"(\$?)(\d[\d,]*(?:\.\d+)?)(?: (thousand|million|billion))?")
_SCALE = {None: 1, "thousand": 10**3, "million": 10**6, "billion": 10**9}


def _amounts(text: str) -> list[tuple[bool, float, str | None]]:
    """Every number in ``text``: (has a dollar sign, value, unit word or None)."""
    found = []
    for dollar, digits, unit in _AMOUNT.findall(text):
        value = Decimal(digits.rstrip(",").replace(",", "")) * _SCALE[unit or None]
        found.append((dollar == "$", float(value), unit or None))
    return found


def _find(text: str, value: float, *, dollar: bool) -> str | None:
    """The unit word of the amount in ``text`` equal to ``value`` ('' when bare), else None."""
    for has_dollar, parsed, unit in _amounts(text):
        if has_dollar == dollar and math.isclose(parsed, value, rel_tol=1e-12):
            return unit or ""
    return None


@pytest.fixture(scope="module")
def all_splits() -> dict[str, dict[str, list[Item]]]:
    return {name: generate_splits(name, 7, SIZES) for name in GENERATOR_NAMES}


# ---------------------------------------------------------------------------------------------
# Split mechanics
# ---------------------------------------------------------------------------------------------


def test_unknown_generator_names_the_valid_ones() -> None:
    with pytest.raises(ValueError) as excinfo:
        generate_splits("eps_extractoin", 0, {"test": 1})
    for name in GENERATOR_NAMES:
        assert name in str(excinfo.value)


def test_bad_sizes_rejected() -> None:
    with pytest.raises(ValueError):
        generate_splits("fin_sentiment", 0, {"dev": 3})
    with pytest.raises(ValueError):
        generate_splits("fin_sentiment", 0, {"test": -1})


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_deterministic_and_seed_dependent(name: str) -> None:
    first = generate_splits(name, 11, {"test": 40, "train": 40})
    second = generate_splits(name, 11, {"test": 40, "train": 40})
    assert first == second
    other = generate_splits(name, 12, {"test": 40, "train": 40})
    assert [i.fields["text"] for i in other["test"]] != [i.fields["text"] for i in first["test"]]


def test_returns_requested_keys_only() -> None:
    out = generate_splits("revenue_analysis", 0, {"validation": 3, "train": 0})
    assert list(out) == ["validation", "train"]
    assert len(out["validation"]) == 3 and out["train"] == []


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_ids_fields_and_answers(name: str, all_splits: dict) -> None:
    splits = all_splits[name]
    assert set(splits) == set(SIZES)
    for split, items in splits.items():
        assert len(items) == SIZES[split]
        assert [item.id for item in items] == [f"{name}-{split}-{i:05d}" for i in range(len(items))]
        for item in items:
            assert list(item.fields) == ["text"]
            assert isinstance(item.fields["text"], str) and item.fields["text"].strip()
            assert isinstance(item.answer, str) and item.answer


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_no_duplicate_or_leaked_texts(name: str, all_splits: dict) -> None:
    texts = [item.fields["text"] for items in all_splits[name].values() for item in items]
    assert len(texts) == sum(SIZES.values())
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_test_split_independent_of_other_sizes(name: str, all_splits: dict) -> None:
    alone = generate_splits(name, 7, {"test": SIZES["test"]})
    assert alone["test"] == all_splits[name]["test"]
    bigger_train = generate_splits(name, 7, {"train": 500, "test": SIZES["test"]})
    assert bigger_train["test"] == all_splits[name]["test"]
    # A shorter test split is a prefix of a longer one.
    assert generate_splits(name, 7, {"test": 30})["test"] == all_splits[name]["test"][:30]


def test_collisions_are_redrawn_then_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def constant(rng):  # every draw gives the same text
        return "Same sentence.", "neutral", {"pattern": "neutral_fact"}

    monkeypatch.setitem(synthetic._GENERATORS, "fin_sentiment", constant)
    assert len(generate_splits("fin_sentiment", 0, {"test": 1})["test"]) == 1
    with pytest.raises(ValueError, match="unique"):
        generate_splits("fin_sentiment", 0, {"test": 1, "train": 1})


def test_test_split_has_priority_with_a_small_text_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    def small_pool(rng):  # only 12 distinct texts exist, so collisions are frequent
        return f"Sentence {rng.randrange(12)}.", "neutral", {"pattern": "neutral_fact"}

    monkeypatch.setitem(synthetic._GENERATORS, "fin_sentiment", small_pool)
    alone = generate_splits("fin_sentiment", 3, {"test": 4})
    both = generate_splits("fin_sentiment", 3, {"train": 6, "validation": 2, "test": 4})
    assert both["test"] == alone["test"]
    texts = [i.fields["text"] for items in both.values() for i in items]
    assert len(set(texts)) == len(texts) == 12
    with pytest.raises(ValueError):
        generate_splits("fin_sentiment", 3, {"train": 9, "test": 4})


# ---------------------------------------------------------------------------------------------
# eps_extraction
# ---------------------------------------------------------------------------------------------


def test_eps_answers_recomputed_from_text(all_splits: dict) -> None:
    items = [i for items in all_splits["eps_extraction"].values() for i in items]
    mixed_units = negatives = 0
    for item in items:
        text, meta = item.fields["text"], item.meta
        assert re.fullmatch(r"-?\d+\.\d\d", item.answer), item.answer
        ni_unit = _find(text, abs(meta["net_income"]), dollar=True)
        shares_unit = _find(text, meta["shares"], dollar=False)
        assert ni_unit is not None, (text, meta)
        assert shares_unit is not None, (text, meta)
        assert _find(text, meta["revenue"], dollar=True) is not None, (text, meta)
        eps = meta["net_income"] / meta["shares"]
        assert item.answer == f"{eps:.2f}", (text, item.answer)
        assert -3.0 <= eps <= 15.0
        if meta["net_income"] < 0:
            negatives += 1
            assert "loss" in text or "lost" in text
        else:
            assert not re.search(r"(net loss|lost) (of )?\$", text.split("a net loss of")[0])
        mixed_units += ni_unit != shares_unit
        # The EPS is never stated.
        assert "per share" not in text or "dividend" in text
        assert "EPS" not in text and "earnings per share" not in text.lower()
        assert item.answer.lstrip("-") not in re.findall(r"\d[\d,]*(?:\.\d+)?", text)
        assert 2 <= text.count(". ") + 1 <= 4
        assert meta["distractors"][0] == "revenue" and len(meta["distractors"]) >= 2
    assert negatives >= len(items) * 0.05
    assert mixed_units >= len(items) * 0.1


def test_eps_distractors_are_displayed(all_splits: dict) -> None:
    kinds = Counter()
    for item in all_splits["eps_extraction"]["train"]:
        text = item.fields["text"]
        for name in item.meta["distractors"]:
            kinds[name] += 1
        if "prior_shares" in item.meta["distractors"]:
            share_counts = [v for d, v, _ in _amounts(text) if not d and v >= 1e6]
            assert len(share_counts) == 2, text
        if "prior_net_income" in item.meta["distractors"]:
            assert re.search(r"(compared with|versus) (net income|a net loss) of \$", text), text
        if "dividend_per_share" in item.meta["distractors"]:
            assert re.search(r"dividend of \$\d+\.\d\d per share", text), text
    for name in ("prior_net_income", "prior_shares", "operating_income", "prior_revenue"):
        assert kinds[name] > 10, kinds


# ---------------------------------------------------------------------------------------------
# revenue_analysis
# ---------------------------------------------------------------------------------------------


def test_revenue_growth_recomputed_from_text(all_splits: dict) -> None:
    items = [i for items in all_splits["revenue_analysis"].values() for i in items]
    mixed_units = negatives = 0
    for item in items:
        text, meta = item.fields["text"], item.meta
        assert re.fullmatch(r"-?\d+\.\d", item.answer), item.answer
        cur_unit = _find(text, meta["current"], dollar=True)
        prior_unit = _find(text, meta["prior"], dollar=True)
        assert cur_unit is not None and prior_unit is not None, (text, meta)
        growth = (meta["current"] - meta["prior"]) / meta["prior"] * 100
        assert item.answer == f"{growth:.1f}", (text, item.answer)
        assert -40.0 <= growth <= 80.0
        negatives += growth < 0
        mixed_units += cur_unit != prior_unit
        if " up from " in text:
            assert growth > 0
        if " down from " in text:
            assert growth < 0
    assert len(items) * 0.15 <= negatives <= len(items) * 0.6
    assert mixed_units >= len(items) * 0.1
    assert any(item.meta["distractors"] for item in items)


# ---------------------------------------------------------------------------------------------
# fin_sentiment: an independent implementation of the documented labelling rules.
# ---------------------------------------------------------------------------------------------

_POSITIVE = re.compile(
    r"\b(beat|top|rais|lift|buyback|win|won|approval|(?<!the )launch|expand|upgrade|record)\w*"
)
_NEGATIVE = re.compile(
    r"\b(miss|fell short|fall short|falling short|cut|lower|eliminat|layoff|suspend|downgrad|"
    r"sued|lost|lose|losing|departure|recall|net loss|investigation|delay)\w*"
)
_NEGATOR = re.compile(r"\b(did not|failed to|declined to|ruled out|avoided|no longer)\b")
_PREFIX = re.compile(r"^(On \w+day|In a statement|In a regulatory filing|Earlier today), ")


def _polarity(clause: str) -> int:
    pos, neg = bool(_POSITIVE.search(clause)), bool(_NEGATIVE.search(clause))
    assert not (pos and neg), clause
    sign = 1 if pos else -1 if neg else 0
    return -sign if _NEGATOR.search(clause) else sign


def _main_clause(text: str) -> str:
    text = _PREFIX.sub("", text)
    if text.startswith("Despite "):
        return text.split(", ", 1)[1]
    if text.startswith(("Although ", "While ")):
        return text.split(", it ", 1)[1]
    for marker, keep_after in (
        (", despite ", False),
        (", although it ", False),
        (", but it ", True),
        (" even though it ", False),
    ):
        if marker in text:
            before, after = text.split(marker, 1)
            return after if keep_after else before
    return text


def _rule_label(text: str) -> str:
    return {1: "positive", 0: "neutral", -1: "negative"}[_polarity(_main_clause(text))]


def test_sentiment_labels_follow_documented_rules(all_splits: dict) -> None:
    for items in all_splits["fin_sentiment"].values():
        for item in items:
            assert item.answer in SENTIMENT_LABELS
            assert item.answer == _rule_label(item.fields["text"]), item


def test_sentiment_balance_and_patterns(all_splits: dict) -> None:
    items = [i for items in all_splits["fin_sentiment"].values() for i in items]
    labels = Counter(item.answer for item in items)
    for label in SENTIMENT_LABELS:
        assert 0.25 <= labels[label] / len(items) <= 0.42, labels
    patterns = Counter((item.meta["pattern"], item.answer) for item in items)
    for pattern in ("plain", "negation", "hedge", "mixed"):
        for label in ("positive", "negative"):
            assert patterns[(pattern, label)] >= 10, patterns
    assert patterns[("hedge", "neutral")] >= 10
    assert patterns[("neutral_fact", "neutral")] >= 50
    assert not {p for p, label in patterns if label == "neutral"} - {"neutral_fact", "hedge"}
    for item in items:
        text, pattern = item.fields["text"], item.meta["pattern"]
        if pattern == "negation":
            assert _NEGATOR.search(text), text
        if pattern == "hedge":
            assert re.search(r"\b(may|could|might|is expected to|is likely to|expect)\b", text)
        if pattern == "mixed":
            assert _POSITIVE.search(text) and _NEGATIVE.search(text), text
    # Negated events flip: a negated negative event is positive and vice versa.
    negated = [i for i in items if i.meta["pattern"] == "negation"]
    assert {i.answer for i in negated} == {"positive", "negative"}


def test_sentiment_texts_varied(all_splits: dict) -> None:
    items = all_splits["fin_sentiment"]["train"]
    companies = {re.sub(_PREFIX, "", i.fields["text"]).split(" ")[0] for i in items}
    assert len(companies) >= 30
    openings = Counter(" ".join(i.fields["text"].split()[2:4]) for i in items)
    assert openings.most_common(1)[0][1] < len(items) * 0.1
