"""The quality pipeline: one function per rule, thresholds from YAML, a report of every reason.

A record is checked by the per-record rules in ``RULES`` order and rejected by the first one it
fails, so the report's counts add up: ``raw == passed + sum(rejected.values())``. Then the
set rules run over what passed: exact duplicates, near duplicates (MinHash of 5-character
shingles, ``datasketch``) within a split, and **leakage**: validation / test rows whose text
also sits in train (exactly or nearly). Leaked pairs are always listed; the train rows are
dropped only with ``drop_leakage``.

    >>> t = Thresholds()
    >>> too_short(Record("r1", "train", "Hi", "Hello there."), t) is not None
    True
    >>> finance_relevance("Net income rose 12% to $150M on higher revenue")
    1.0
    >>> finance_relevance("The cat sat on the warm mat all afternoon")
    0.0

``instruction`` is the prompt side of a record (a text to classify, an instruction and its
input); ``response`` is its output. For classification (``response_is_label``) the response
rules are skipped: a label is one word by design.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core import paths
from core.data.items import SPLIT_NAMES, Item
from core.evaluation.parsing import parse_number

DEFAULTS_FILE = paths.REPO_ROOT / "configs" / "quality.yaml"
EXAMPLES_PER_REASON = 3
TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Thresholds:
    """Every knob of the pipeline; ``configs/quality.yaml`` says what each does."""

    min_instruction_words: int = 3
    max_instruction_words: int = 400
    min_response_words: int = 1
    max_response_words: int = 400
    min_instruction_tokens: int = 3
    max_instruction_tokens: int = 1024
    min_response_tokens: int = 1
    max_response_tokens: int = 1024
    ngram: int = 3
    max_repeated_ngram_share: float = 0.3
    min_letter_share: float = 0.5
    require_finished_response: bool = True
    near_duplicate_jaccard: float = 0.8
    minhash_permutations: int = 128
    min_finance_relevance: float = 0.15
    eps_tolerance: float = 0.01
    drop_leakage: bool = False


def load_thresholds(overrides: dict[str, Any] | None = None, source: str = "quality") -> Thresholds:
    """``configs/quality.yaml`` with ``overrides`` on top; ValueError naming a bad key or value.

    >>> load_thresholds({"min_instruction_words": 5}).min_instruction_words
    5
    >>> load_thresholds({"max_words": 5})
    Traceback (most recent call last):
    ...
    ValueError: quality: unknown threshold 'max_words'; known: min_instruction_words, ...
    """
    base = paths.read_yaml(DEFAULTS_FILE, ValueError, "Quality config") or {}
    merged = {**base, **(overrides or {})}
    known = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for key, value in merged.items():
        if key not in known:
            names = ", ".join(list(known)[:1])
            raise ValueError(f"{source}: unknown threshold {key!r}; known: {names}, ...")
        default = getattr(Thresholds, key)
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError("expected true or false")
                values[key] = value
            else:
                number = type(default)(value)
                if not math.isfinite(number) or number < 0:
                    raise ValueError("must be a finite number >= 0")
                values[key] = number
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: threshold {key!r}: bad value {value!r} ({exc})") from exc
    return Thresholds(**values)


@dataclass(frozen=True)
class Record:
    """What the rules see of one item."""

    id: str
    split: str
    instruction: str
    response: str
    response_is_label: bool = False


def record_of(item: Item, split: str, response_is_label: bool) -> Record:
    """An item as a record: its fields joined by new lines, its completion (or answer)."""
    response = str(item.meta.get("completion") or item.answer)
    return Record(item.id, split, "\n".join(item.fields.values()), response, response_is_label)


# ---------------------------------------------------------------- per-record rules

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _sides(record: Record) -> list[tuple[str, str]]:
    """("instruction", text) and, unless the response is a label, ("response", text)."""
    sides = [("instruction", record.instruction)]
    if not record.response_is_label:
        sides.append(("response", record.response))
    return sides


def _length_problem(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None, short: bool
) -> str | None:
    for side, text in _sides(record):
        measures = [("words", len(_words(text)))]
        if count_tokens is not None:
            measures.append(("tokens", count_tokens(text)))
        for unit, size in measures:
            low = getattr(t, f"min_{side}_{unit}")
            high = getattr(t, f"max_{side}_{unit}")
            if short and size < low:
                return f"{side} has {size} {unit} (< {low})"
            if not short and size > high:
                return f"{side} has {size} {unit} (> {high})"
    return None


def too_short(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None = None
) -> str | None:
    """Fewer words (or tokens) than the minimum in the instruction or the response."""
    return _length_problem(record, t, count_tokens, short=True)


def too_long(record: Record, t: Thresholds, count_tokens: TokenCounter | None = None) -> str | None:
    """More words (or tokens) than the maximum in the instruction or the response."""
    return _length_problem(record, t, count_tokens, short=False)


def repeated_ngram_share(text: str, n: int = 3) -> float:
    """The share of word n-grams that repeat an earlier one (0 with fewer than 4 n-grams).

    >>> repeated_ngram_share("buy buy buy buy buy buy buy")
    0.8
    >>> repeated_ngram_share("Revenue rose five percent in the third quarter")
    0.0
    """
    words = _words(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def repetition(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None = None
) -> str | None:
    """Too large a share of repeated word n-grams (a model stuck in a loop)."""
    for side, text in _sides(record):
        share = repeated_ngram_share(text, t.ngram)
        if share > t.max_repeated_ngram_share:
            return f"{side}: {share:.0%} of its {t.ngram}-grams are repeats"
    return None


REFUSALS = re.compile(
    r"\b(as an ai\b|as a language model|i (?:cannot|can't|am unable to) (?:help|assist|provide)"
    r"|i'm sorry, but|i apologi[sz]e, but)",
    re.IGNORECASE,
)
_FINISHED = re.compile(r"[.!?%)\]\"'\d]\s*$")


def letter_share(text: str) -> float:
    """Letters / non-space characters (1.0 for an empty text).

    >>> letter_share("$$$ 123 ###"), letter_share("Shares fell.")
    (0.0, 0.9090909090909091)
    """
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 1.0


def low_quality(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None = None
) -> str | None:
    """Mostly non-letters, refusal boilerplate, or a response that stops mid-sentence."""
    for side, text in _sides(record):
        share = letter_share(text)
        if share < t.min_letter_share and not (side == "response" and parse_number(text)):
            return f"{side} is {share:.0%} letters (< {t.min_letter_share:.0%})"
        if found := REFUSALS.search(text):
            return f"{side} is refusal boilerplate ({found.group(0)!r})"
    if (
        t.require_finished_response
        and not record.response_is_label
        and not _FINISHED.search(record.response)
    ):
        return f"the response stops mid-sentence ({record.response[-30:]!r})"
    return None


FINANCE_TERMS = frozenset(
    """
    revenue revenues sales income profit profits loss losses margin margins earnings eps ebitda
    ebit dividend dividends share shares stock stocks equity debt bond bonds yield yields
    interest rate rates inflation cash flow flows asset assets liability liabilities balance
    sheet capital investment investor investors portfolio market markets price prices fund
    funds bank banks loan loans credit tax taxes fiscal quarter quarterly annual guidance
    forecast valuation ratio ratios growth expense expenses cost costs budget payment
    payments financial finance accounting audit gaap ipo merger acquisition hedge risk
    return returns roi roe leverage liquidity solvency deficit surplus gdp currency exchange
    trading trader securities derivative options futures treasury fed monetary fiscal
    net gross operating outstanding billion million thousand dollar dollars usd eur percent
    rose fell grew declined increased decreased bullish bearish rally downturn recession
    """.split()  # noqa: SIM905
)
_AMOUNT = re.compile(r"[$€£]\s?\d|\d\s?%|\d+(?:\.\d+)?\s?(?:[bmk]\b|bn\b|billion|million)", re.I)


def finance_relevance(text: str) -> float:
    """A 0..1 score: finance terms and money amounts per word, times 4, capped at 1.

    ``(terms + amounts) / words * 4``: one finance term or amount in every four words scores
    1; none scores 0. ``FINANCE_TERMS`` lists the vocabulary; an amount is a currency sign or
    a percent or a million / billion next to a digit.

    >>> round(finance_relevance("Please summarise this long story about a dragon and its gold"), 2)
    0.0
    >>> finance_relevance("What is the EPS?")
    1.0
    """
    words = [w for w in _words(text) if not w.isdigit()]
    if not words:
        return 0.0
    hits = sum(word in FINANCE_TERMS for word in words) + len(_AMOUNT.findall(text))
    return min(1.0, hits / len(words) * 4)


def off_topic(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None = None
) -> str | None:
    """A record whose finance relevance (instruction and response together) is too low."""
    score = finance_relevance(f"{record.instruction}\n{record.response}")
    if score < t.min_finance_relevance:
        return f"finance relevance {score:.2f} (< {t.min_finance_relevance})"
    return None


_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9}
_SCALE |= {"bn": 1e9, "billion": 1e9}
_AMOUNT_VALUE = r"\$?\s*(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion|mn|bn|[kmb])?\b"
_NET_INCOME = re.compile(r"net income[^\d$]{0,20}" + _AMOUNT_VALUE, re.I)
_SHARES = re.compile(
    r"shares(?: outstanding)?[^\d$]{0,20}" + _AMOUNT_VALUE + r"|" + _AMOUNT_VALUE + r"\s*shares",
    re.I,
)


def _amount(number: str, scale: str | None) -> float:
    return float(number.replace(",", "")) * _SCALE.get((scale or "").lower(), 1.0)


def computed_eps(text: str) -> float | None:
    """Net income / shares outstanding, read from ``text``; None when either is missing.

    >>> computed_eps("Revenue $2.1B, Net Income $150M, Shares Outstanding 50M")
    3.0
    """
    income, shares = _NET_INCOME.search(text), _SHARES.search(text)
    if income is None or shares is None:
        return None
    groups = [g for g in shares.groups()]
    number, scale = (groups[0], groups[1]) if groups[0] else (groups[2], groups[3])
    count = _amount(number, scale)
    return _amount(*income.groups()) / count if count else None


def inconsistent(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None = None
) -> str | None:
    """An EPS record whose stated EPS disagrees with net income / shares in its input."""
    if record.response_is_label or not re.search(
        r"\beps\b|earnings per share", f"{record.instruction} {record.response}", re.I
    ):
        return None
    expected = computed_eps(record.instruction)
    stated = parse_number(record.response)
    if expected is None or stated is None:
        return None
    if abs(stated - expected) > t.eps_tolerance:
        return f"EPS stated {stated:g}, but net income / shares = {expected:.2f}"
    return None


Rule = Callable[[Record, Thresholds, TokenCounter | None], str | None]
RULES: dict[str, Rule] = {
    "too_short": too_short,
    "too_long": too_long,
    "repetition": repetition,
    "low_quality": low_quality,
    "off_topic": off_topic,
    "inconsistent": inconsistent,
}
SET_RULES = ("duplicate", "near_duplicate", "leakage")
REASONS = ("format", *RULES, *SET_RULES)


# ---------------------------------------------------------------- duplicates and leakage


def normalized(text: str) -> str:
    """Lower case, words only, single spaces: two texts equal here are exact duplicates.

    >>> normalized("  Shares FELL, sharply! ")
    'shares fell sharply'
    """
    return " ".join(_words(text))


def _minhash(text: str, permutations: int) -> Any:
    from datasketch import MinHash

    norm = normalized(text)
    shingles = {norm[i : i + 5] for i in range(max(1, len(norm) - 4))}
    sketch = MinHash(num_perm=permutations, seed=1)
    sketch.update_batch([shingle.encode("utf-8") for shingle in shingles])  # order-free minima
    return sketch


class NearIndex:
    """Texts added so far, queried for one whose MinHash Jaccard reaches the threshold."""

    def __init__(self, threshold: float, permutations: int):
        from datasketch import MinHashLSH

        self.threshold, self.permutations = threshold, permutations
        # datasketch's in-memory locality-sensitive-hashing index (candidates, then Jaccard)
        self.lsh = MinHashLSH(threshold=min(max(threshold, 0.01), 0.99), num_perm=permutations)
        self.sketches: dict[str, Any] = {}
        self.exact: dict[str, str] = {}

    def add(self, key: str, text: str) -> None:
        self.exact.setdefault(normalized(text), key)
        sketch = _minhash(text, self.permutations)
        self.sketches[key] = sketch
        self.lsh.insert(key, sketch)

    def find(self, text: str) -> tuple[str, float] | None:
        """(key, similarity) of an exact (1.0) or near match already added, else None."""
        if (key := self.exact.get(normalized(text))) is not None:
            return key, 1.0
        sketch = _minhash(text, self.permutations)
        best = None
        for key in self.lsh.query(sketch):
            similarity = sketch.jaccard(self.sketches[key])
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (key, similarity)
        return best


# ---------------------------------------------------------------- the pipeline and its report


@dataclass
class QualityReport:
    """Counts by reason (they add up to ``raw``), examples of each, and the leaked pairs."""

    mode: str  # "filter": rejected records are dropped; "report": only counted
    raw: int = 0
    passed: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    by_split: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    leakage: list[dict[str, Any]] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)
    tokens_checked: bool = False

    def reject(self, record: Record, reason: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        split = self.by_split.setdefault(record.split, {"raw": 0, "kept": 0})
        split[reason] = split.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            text = (
                record.instruction
                if len(record.instruction) < 200
                else record.instruction[:197] + "..."
            )
            shown.append({"split": record.split, "id": record.id, "text": text, "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_records(
    splits: dict[str, list[Item]],
    *,
    response_is_label: bool,
    thresholds: Thresholds | None = None,
    count_tokens: TokenCounter | None = None,
    mode: str = "filter",
    format_errors: Sequence[Any] = (),
) -> tuple[dict[str, list[Item]], QualityReport]:
    """Run every rule over the items of each split; (the items kept, the report).

    ``mode="filter"`` drops every rejected record; ``"report"`` keeps them all but counts them
    (leaked train rows are dropped in both modes when ``thresholds.drop_leakage``).
    ``format_errors``: records that never became items (e.g. a model output that was not an
    instruction), counted as ``format``.
    """
    if mode not in ("filter", "report"):
        raise ValueError("mode must be 'filter' or 'report'")
    t = thresholds or load_thresholds()
    report = QualityReport(mode=mode, thresholds=asdict(t), tokens_checked=count_tokens is not None)
    for error in format_errors:
        report.raw += 1
        split = getattr(error, "split", "train")
        report.by_split.setdefault(split, {"raw": 0, "kept": 0})["raw"] += 1
        report.reject(
            Record(str(getattr(error, "id", "?")), split, str(error), ""), "format", str(error)
        )
    passing: dict[str, list[Item]] = {}
    failed: set[tuple[str, str]] = set()
    for split in [s for s in SPLIT_NAMES if s in splits]:
        report.by_split.setdefault(split, {"raw": 0, "kept": 0})["raw"] += len(splits[split])
        report.raw += len(splits[split])
        passing[split] = []
        index = NearIndex(t.near_duplicate_jaccard, t.minhash_permutations)
        for item in splits[split]:
            record = record_of(item, split, response_is_label)
            reason, detail = _first_failure(record, t, count_tokens, index)
            if reason is None:
                passing[split].append(item)
                index.add(item.id, record.instruction + "\n" + record.response)
            else:
                report.reject(record, reason, detail)
                failed.add((split, item.id))
    leaked = _leakage(passing, t, report, response_is_label)
    kept: dict[str, list[Item]] = {}
    for split, items in splits.items():
        if mode == "filter":
            chosen = [item for item in passing.get(split, []) if (split, item.id) not in leaked]
        else:
            chosen = [item for item in items if (split, item.id) not in leaked]
        kept[split] = chosen
        report.by_split.setdefault(split, {"raw": 0, "kept": 0})["kept"] = len(chosen)
    report.passed = report.raw - sum(report.rejected.values())
    report.kept = sum(len(items) for items in kept.values())
    return kept, report


def _first_failure(
    record: Record, t: Thresholds, count_tokens: TokenCounter | None, index: NearIndex
) -> tuple[str | None, str]:
    for name, rule in RULES.items():
        detail = rule(record, t, count_tokens)
        if detail is not None:
            return name, detail
    found = index.find(record.instruction + "\n" + record.response)
    if found is not None:
        key, similarity = found
        if similarity >= 1.0:
            return "duplicate", f"same text as {key}"
        return "near_duplicate", f"{similarity:.0%} like {key}"
    return None, ""


def _leakage(
    passing: dict[str, list[Item]], t: Thresholds, report: QualityReport, response_is_label: bool
) -> set[tuple[str, str]]:
    """List validation rows found in train and test rows found in train or validation.

    Returns the (split, id) of the earlier split's rows to drop when ``drop_leakage`` is set
    (the test file is never cut: a score stays on exactly its rows).
    """
    index = NearIndex(t.near_duplicate_jaccard, t.minhash_permutations)
    first_seen: dict[str, tuple[str, Item]] = {}
    dropped: set[tuple[str, str]] = set()
    for split in ("train", "validation", "test"):
        items = passing.get(split) or []
        for item in items if split != "train" else []:
            text = record_of(item, split, response_is_label).instruction
            found = index.find(text)
            if found is None:
                continue
            key, similarity = found
            earlier_split, earlier = first_seen[key]
            report.leakage.append(
                {
                    "split": split,
                    "id": item.id,
                    "match_id": earlier.id,
                    "match_split": earlier_split,
                    "similarity": round(similarity, 3),
                    "text": text[:200],
                }
            )
            if t.drop_leakage and (earlier_split, earlier.id) not in dropped:
                dropped.add((earlier_split, earlier.id))
                record = record_of(earlier, earlier_split, response_is_label)
                report.reject(record, "leakage", f"also in {split} as {item.id}")
        if split == "test":
            break
        for item in items:
            key = f"{split}\x1f{item.id}"
            first_seen[key] = (split, item)
            index.add(key, record_of(item, split, response_is_label).instruction)
    return dropped


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text lines for the CLI: one summary line, reasons, leakage, examples.

    >>> report_lines({"mode": "filter", "raw": 3, "passed": 2, "kept": 2,
    ...               "rejected": {"too_short": 1, "leakage": 0}, "leakage": [], "examples": {}})[0]
    'raw 3 / kept 2 / too short 1'
    """
    counts = [f"{reason.replace('_', ' ')} {n:,}" for reason, n in report["rejected"].items() if n]
    lines = [" / ".join([f"raw {report['raw']:,}", f"kept {report['kept']:,}", *counts])]
    if report["mode"] == "report" and report["passed"] != report["raw"]:
        lines.append(
            f"  (report only: {report['raw'] - report['passed']} flagged rows were kept; "
            "use --filter to drop them)"
        )
    for leak in report.get("leakage") or []:
        lines.append(
            f"  leakage: {leak['split']} {leak['id']} = {leak['match_split']} "
            f"{leak['match_id']} "
            f"({leak['similarity']:.0%}): {leak['text'][:60]!r}"
        )
    for reason, shown in (report.get("examples") or {}).items():
        for example in shown:
            lines.append(f"  {reason}: {example['split']} {example['id']}: {example['detail']}")
    return lines
