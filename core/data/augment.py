"""Augmentation: one review record becomes several instruction examples, one per view.

    >>> from core.tasks.spec import get_task, load_split
    >>> spec = get_task("review_rating")
    >>> views(spec)
    ['rating', 'features', 'summary', 'sentiment', 'recommendation']
    >>> pairs = expand(spec, load_split(spec, "train").items[:2])
    >>> len(pairs), pairs[0][0].name, pairs[1][0].name
    (10, 'review_rating', 'review_features')

A corpus chooses its views in its task file (``source.augment``); without it a task trains on
its own examples only. The rating, features and summary views use the prompts of the built-in
``review_*`` tasks, so what the model learns is exactly what those tasks score; sentiment and
recommendation have prompts of their own (``EXTRA_VIEWS``). So 500 training reviews with the
five views are 2,500 training examples.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.data import reviews
from core.data.items import Item

TASK_VIEWS = {"rating": "review_rating", "features": "review_features", "summary": "review_summary"}
# view -> (instruction, template) for the views that are not benchmark tasks
EXTRA_VIEWS = {
    "sentiment": (
        "Read the customer review of a financial product and give its overall sentiment: "
        "positive, neutral or negative.",
        "Review: {text}\nSentiment:",
    ),
    "recommendation": (
        "Read the customer review of a financial product. Would the reviewer recommend the "
        "product? Answer yes, maybe or no.",
        "Review: {text}\nRecommend:",
    ),
}


def views(spec: Any) -> list[str]:
    """The views a task's corpus is augmented with ([] for none)."""
    chosen = [str(view) for view in spec.source.get("augment") or []]
    unknown = [view for view in chosen if view not in reviews.VIEWS]
    if unknown:
        raise ValueError(
            f"{spec.path}, field 'source.augment': unknown view {unknown[0]!r}; views: "
            f"{', '.join(reviews.VIEWS)}"
        )
    return chosen


def view_spec(spec: Any, view: str) -> Any:
    """The task spec whose prompt renders ``view`` (a review task's, or one of EXTRA_VIEWS)."""
    from core.tasks.spec import get_task

    if view in TASK_VIEWS:
        return get_task(TASK_VIEWS[view])
    instruction, template = EXTRA_VIEWS[view]
    return replace(spec, name=f"{spec.name}:{view}", instruction=instruction, template=template)


def expand(spec: Any, items: list[Item]) -> list[tuple[Any, Item]]:
    """(view spec, item with the view's answer) for every record and view, record by record."""
    chosen = views(spec)
    specs = {view: view_spec(spec, view) for view in chosen}
    return [
        (specs[view], replace(item, id=f"{item.id}:{view}", answer=reviews.VIEWS[view](item.meta)))
        for item in items
        for view in chosen
    ]


def expansion_rows(spec: Any, item: Item) -> list[dict[str, str]]:
    """What one record becomes: per view, the prompt text (instruction + filled template) and
    the answer a model is trained to give (for the Datasets page)."""
    return [
        {
            "view": pair_item.id.rsplit(":", 1)[1],
            "prompt": f"{view.instruction}\n\n{view.template.format(**pair_item.fields)}",
            "answer": pair_item.answer,
        }
        for view, pair_item in expand(spec, [item])
    ]
