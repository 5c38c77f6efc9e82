"""Synthetic corpora on demand: the seeded generators at a chosen seed and size, checked first.

>>> corpus = generate_corpus("fin_sentiment", 7, {"train": 3, "test": 2})
>>> {split: len(items) for split, items in corpus.items()}
{'train': 3, 'test': 2}
>>> corpus_jsonl(corpus["test"][:1]).decode().count("\\n")
1
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.data import synthetic
from core.data.items import SPLIT_NAMES, Item

# One line per synthetic generator, for pickers and help text.
GENERATORS = {
    "eps_extraction": "Earnings snippets with distractors and mixed units → EPS "
    "(net income / diluted shares, two decimals).",
    "fin_sentiment": "One financial news sentence → positive / neutral / negative, "
    "with negation, hedging and mixed signals.",
    "revenue_analysis": "Revenue for two periods, possibly in different units → growth "
    "in percent (one decimal).",
    "reviews": "Financial-product reviews (banking, cards, brokerage, insurance, mortgages) → "
    "star rating, features mentioned, summary; slices by category, length, edge case.",
}
MAX_SPLIT_SIZE = 5000  # items per split a synthetic corpus may have (generation stays < 1 s)


def check_sizes(sizes: dict[str, int]) -> dict[str, int]:
    """``sizes`` in split order, after checking names and 0 <= size <= MAX_SPLIT_SIZE."""
    unknown = [name for name in sizes if name not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}; splits are {', '.join(SPLIT_NAMES)}")
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SPLIT_SIZE:
            raise ValueError(
                f"the {name} split must have 0 to {MAX_SPLIT_SIZE} items, not {size!r}"
            )
    if not any(sizes.values()):
        raise ValueError("ask for at least one item")
    return {name: sizes[name] for name in SPLIT_NAMES if name in sizes}


def check_generator(generator: str) -> None:
    """ValueError naming the known generators unless ``generator`` is one."""
    if generator not in synthetic.GENERATOR_NAMES:
        known = ", ".join(synthetic.GENERATOR_NAMES)
        raise ValueError(f"unknown generator {generator!r}; choose one of {known}")


def generate_corpus(generator: str, seed: int, sizes: dict[str, int]) -> dict[str, list[Item]]:
    """Seeded synthetic items per split (as ``synthetic.generate_splits``), in split order.

    ValueError for an unknown generator, an unknown split or a size outside 0..MAX_SPLIT_SIZE.
    """
    check_generator(generator)
    return synthetic.generate_splits(generator, int(seed), check_sizes(sizes))


def item_record(item: Item) -> dict[str, Any]:
    """One item as a JSON-ready record: id, the item's fields (``text``), answer, meta."""
    return {"id": item.id, **item.fields, "answer": item.answer, "meta": item.meta}


def corpus_jsonl(items: Sequence[Item]) -> bytes:
    """Items as JSON Lines (UTF-8), one :func:`item_record` per line: for downloads."""
    lines = [json.dumps(item_record(item), ensure_ascii=False) for item in items]
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
