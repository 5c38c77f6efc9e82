"""Summary metrics, all computed: ROUGE-L against the reference, coverage of the gold facts,
and the precision of the domain terms a summary uses.

    >>> round(rouge_l("the fees are low", "fees are very low"), 4)
    0.75
    >>> rouge_l("", "anything")
    0.0

- **ROUGE-L** (Lin, 2004): F1 of the longest common subsequence of lower-cased word tokens
  (``\\w+``), recall = LCS / reference length, precision = LCS / candidate length (beta = 1).
- **Fact coverage**: the share of a review's gold facts the summary states, the facts being
  each mentioned feature (its name or a synonym, found as in ``sets.find_terms``) and the
  rating (the digit followed by ``/5``, ``star`` or ``stars``, e.g. "4/5", "4 stars").
- **Domain-term precision**: of the vocabulary features a summary names, the share the review
  really mentions (a summary naming none scores 1: it claims nothing false).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.evaluation.sets import find_terms

_WORD = re.compile(r"\w+")


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str | None, reference: str) -> float:
    """ROUGE-L F1 of ``candidate`` against ``reference`` (0 for an empty side)."""
    cand = _WORD.findall((candidate or "").lower())
    ref = _WORD.findall(reference.lower())
    lcs = _lcs(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def states_rating(text: str, rating: int) -> bool:
    """Whether ``text`` states the rating: "4/5", "4 / 5", "4 stars", "4-star".

    >>> states_rating("4/5 stars. Praises the app.", 4), states_rating("rated 3 stars", 4)
    (True, False)
    """
    return re.search(rf"\b{rating}\s*(?:/\s*5|-?\s*stars?\b)", text.lower()) is not None


def fact_coverage(
    summary: str | None,
    features: Sequence[str],
    rating: int,
    vocabulary: Sequence[str],
    synonyms: dict[str, str],
) -> float:
    """Share of the gold facts (each feature, the rating) that ``summary`` states."""
    text = summary or ""
    named = set(find_terms(text, vocabulary, synonyms))
    facts = [feature in named for feature in features] + [states_rating(text, rating)]
    return sum(facts) / len(facts)


def term_precision(
    summary: str | None,
    features: Sequence[str],
    vocabulary: Sequence[str],
    synonyms: dict[str, str],
) -> float:
    """Share of the vocabulary features named in ``summary`` that the review mentions."""
    named = find_terms(summary or "", vocabulary, synonyms)
    if not named:
        return 1.0
    return sum(term in features for term in named) / len(named)
