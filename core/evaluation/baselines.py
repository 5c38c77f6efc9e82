"""Rule-based baselines of the review tasks, scored on the same items with the same metrics.

    >>> lexicon_rating("Absolutely love it. The fees are low and the app is great.")
    '5'
    >>> keyword_features("Customer support was rude and the hidden fees hurt.")
    'customer service, hidden charges'

- **Rating: a sentiment lexicon.** +1 for each positive word, -1 for each negative one
  (``POSITIVE`` / ``NEGATIVE``), the sign flipped when one of ``NEGATORS`` stands within the
  three words before it; the total maps to stars: >= 2 -> 5, 1 -> 4, 0 -> 3, -1 -> 2,
  <= -2 -> 1. Sarcasm fools it, as it fools every lexicon.
- **Features: keyword matching.** Every vocabulary term or synonym of the task found in the
  review as whole words (``sets.find_terms``).
- **Summary: a template** over both: ``"{stars}/5 stars. Mentions the a and the b."``.

Baselines load nothing and take milliseconds, so they are computed when shown, never stored.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import Any

from core.data.review_import import feature_vocabulary
from core.evaluation import sets

POSITIVE = frozenset(
    [
        "love",
        "best",
        "happier",
        "good",
        "great",
        "solid",
        "satisfied",
        "impressed",
        "happy",
        "low",
        "reasonable",
        "fair",
        "competitive",
        "fast",
        "easy",
        "reliable",
        "helpful",
        "friendly",
        "responsive",
        "generous",
        "valuable",
        "quick",
        "painless",
        "transparent",
        "clear",
        "strong",
        "reassuring",
        "smooth",
        "powerful",
        "excellent",
        "wonderful",
    ]
)
NEGATIVE = frozenset(
    [
        "terrible",
        "worst",
        "avoid",
        "disappointed",
        "bad",
        "high",
        "steep",
        "outrageous",
        "uncompetitive",
        "slow",
        "buggy",
        "confusing",
        "unhelpful",
        "rude",
        "stingy",
        "worthless",
        "hard",
        "endless",
        "weak",
        "worrying",
        "lax",
        "nightmare",
        "unfair",
        "clunky",
        "limited",
        "outdated",
        "sneaky",
        "expected",
        "better",
    ]
    + ["hidden", "surprise", "padded"]
)
NEGATORS = frozenset(
    ["not", "never", "no", "can't", "cannot", "don't", "didn't", "isn't", "wasn't"]
)
_WORD = re.compile(r"[a-z']+")


def lexicon_score(text: str) -> int:
    words = _WORD.findall(text.lower())
    score = 0
    for index, word in enumerate(words):
        sign = 1 if word in POSITIVE else -1 if word in NEGATIVE else 0
        if sign and NEGATORS & set(words[max(0, index - 3) : index]):
            sign = -sign
        score += sign
    return score


def lexicon_rating(text: str) -> str:
    """The star rating a sentiment lexicon gives ``text`` (see the module doc)."""
    return str(min(5, max(1, 3 + max(-2, min(2, lexicon_score(text))))))


def keyword_features(text: str) -> str:
    """The features named in ``text``, canonical (vocabulary order, ``none`` for none)."""
    vocabulary, synonyms = feature_vocabulary()
    found = sets.find_terms(text, vocabulary, synonyms)
    return ", ".join(found) if found else "none"


def template_summary(text: str) -> str:
    features = sets.split_terms(keyword_features(text))
    named = " and ".join(f"the {name}" for name in features) or "no feature"
    return f"{lexicon_rating(text)}/5 stars. Mentions {named}."


BASELINES = {
    "rating": ("lexicon", lexicon_rating),
    "set": ("keywords", keyword_features),
    "text": ("template", template_summary),
}


def has_baseline(spec: Any) -> bool:
    """Review tasks (their data is review records) of a kind with a rule-based baseline."""
    return (
        spec.kind in BASELINES
        and spec.source.get("generator", "reviews") == "reviews"
        and (spec.source.get("type") in ("synthetic", "reviews_file"))
    )


def baseline_score(spec: Any, split: str = "test", seed: int = 0) -> dict[str, Any] | None:
    """The baseline's metrics and slices on ``split`` (the items a model is scored on), or None.

    Returned like a stored score row: ``metrics`` (every metric with its CI), ``slices``
    (``core.analysis.slices.score_slices``), ``name``, ``n_items``.
    """
    from core.analysis.slices import score_slices
    from core.evaluation.runner import ItemResult, _is_correct, task_metrics
    from core.tasks.spec import load_split

    if not has_baseline(spec):
        return None
    name, rule = BASELINES[spec.kind]
    items = load_split(spec, split).items
    start = time.perf_counter()
    results = []
    for item in items:
        answer = rule(item.fields["text"])
        results.append(ItemResult(answer, answer, _is_correct(spec, answer, item.answer), 0.0))
    seconds = time.perf_counter() - start
    metric = lambda chosen, found: task_metrics(spec, chosen, found, seed)  # noqa: E731
    return {
        "name": f"rule-based ({name})",
        "n_items": len(items),
        "seconds": seconds,
        "metrics": metric(items, results),
        "slices": score_slices(
            spec.kind, spec.primary_metric, items, results, metric, spec.robustness
        ),
    }


def for_score(score: dict[str, Any], seed: int = 0) -> dict[str, Any] | None:
    """The baseline on the items of a stored score (its task and split), when the task has one
    and is still the version and items the score was measured on; else None."""
    from core.tasks.spec import TaskSpecError, get_task, load_split

    try:
        spec = get_task(score["task"])
    except TaskSpecError:
        return None
    if not has_baseline(spec) or spec.version != score.get("task_version"):
        return None
    split = load_split(spec, score["split"])
    if split.fingerprint != score.get("split_fingerprint"):
        return None  # a --limit score: the baseline would not be on the same items
    return _cached(spec.name, score["split"], seed)


@lru_cache(maxsize=16)
def _cached(task: str, split: str, seed: int) -> dict[str, Any] | None:
    from core.tasks.spec import get_task

    return baseline_score(get_task(task), split, seed)
