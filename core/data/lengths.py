"""Text length in model-independent tokens, and the length buckets robustness slices use.

    >>> count_tokens("The app's fees are $4.99, too high!")
    14
    >>> length_bucket(49), length_bucket(50), length_bucket(200), length_bucket(201)
    ('short', 'medium', 'medium', 'long')

A token is a run of letters or digits, or one punctuation mark (``\\w+|[^\\w\\s]``): close to
what a subword tokenizer counts for English prose, and the same for every model, so base and
fine-tuned models (and two different models) are sliced alike.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]")
SHORT_BELOW = 50  # short: fewer than 50 tokens
LONG_ABOVE = 200  # long: more than 200 tokens; medium: 50 to 200
LENGTH_BUCKETS = ("short", "medium", "long")


def count_tokens(text: str) -> int:
    """Tokens in ``text`` (see the module doc)."""
    return len(_TOKEN.findall(text or ""))


def length_bucket(tokens: int) -> str:
    """short (< 50 tokens), medium (50-200) or long (> 200)."""
    if tokens < SHORT_BELOW:
        return "short"
    return "long" if tokens > LONG_ABOVE else "medium"
