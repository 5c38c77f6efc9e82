"""The unit of data every task works on: an item with an id, prompt fields and a gold answer.

>>> item = Item(id="fin_sentiment-test-00007", fields={"text": "Shares fell."}, answer="negative")
>>> split = Split(task="fin_sentiment", name="test", items=[item])
>>> len(split.fingerprint)
64
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Item:
    """One benchmark example.

    id: stable across runs and machines; the split fingerprint hashes these.
    fields: values substituted into the task's prompt template (e.g. ``{"text": ...}``).
    answer: the gold answer as a string: a label for choice tasks, a number for numeric ones.
    meta: optional extra facts kept for analysis (e.g. which distractors a snippet has).
    """

    id: str
    fields: dict[str, str]
    answer: str
    meta: dict[str, object] = field(default_factory=dict)


def fingerprint(ids: list[str]) -> str:
    """SHA-256 over the sorted row ids, so a score says exactly which items it was measured on."""
    digest = hashlib.sha256()
    for item_id in sorted(ids):
        digest.update(item_id.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class Split:
    """The items of one split of one task, in their stored order."""

    task: str
    name: str
    items: list[Item]

    @property
    def fingerprint(self) -> str:
        return fingerprint([item.id for item in self.items])

    def __len__(self) -> int:
        return len(self.items)

    def head(self, limit: int | None) -> Split:
        """The first ``limit`` items (all when ``limit`` is None), as a new split."""
        if limit is None or limit >= len(self.items):
            return self
        return Split(task=self.task, name=self.name, items=self.items[:limit])
