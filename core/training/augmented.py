"""Training examples of an augmented corpus: every record once per view (core/data/augment.py).

Each view's examples are rendered with that view's own prompt (``build_examples``), so a
review becomes a rating, a features, a summary, a sentiment and a recommendation example.
"""

from __future__ import annotations

from typing import Any

from core.data import augment
from core.data.items import Item
from core.tasks.examples import Example, build_examples


def training_examples(
    spec: Any, items: list[Item], tokenizer: Any, instruct: bool, max_length: int
) -> list[Example]:
    """``build_examples`` over the augmented pairs, or over the items when not augmented."""
    pairs = augment.expand(spec, items)
    if not pairs:
        return build_examples(spec, items, tokenizer, instruct, max_length)
    by_view: dict[str, tuple[Any, list[Item]]] = {}
    for view_spec, item in pairs:
        by_view.setdefault(view_spec.name, (view_spec, []))[1].append(item)
    examples: list[Example] = []
    for view_spec, view_items in by_view.values():
        examples += build_examples(view_spec, view_items, tokenizer, instruct, max_length)
    return examples
