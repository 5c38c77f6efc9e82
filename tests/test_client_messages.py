"""The seeded client-message generator: its stated label rules, and the three tasks on it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from core.data import client_messages as cm
from core.data import synthetic
from core.tasks.spec import TaskSpecError, get_task, load_split, parse_task

TASKS = ("client_sentiment", "client_category", "client_priority")


def _messages(n: int = 600):
    return [cm.client_message(random.Random(f"t:{i}")) for i in range(n)]


def test_labels_follow_the_stated_rules():
    for text, category, meta in _messages():
        assert category == meta["category"]
        kind, cue, tone = meta["kind"], meta["cue"], meta["tone"]
        if category == "fraud":
            assert meta["priority"] == "urgent"
        else:
            base = {"question": 0, "problem": 1, "blocker": 2}[kind]
            shift = {"deadline": 1, "no_rush": -1, "none": 0}[cue]
            assert meta["priority"] == cm.PRIORITIES[min(2, max(0, base + shift))]
        expected = {"complaint": "negative", "mixed": "negative", "praise": "positive"}
        assert meta["sentiment"] == expected.get(tone, "neutral")
        assert not (cue == "no_rush" and kind in ("blocker", "report")), text


def test_labels_are_compositional_not_one_template_per_label():
    messages = _messages()
    pairs = Counter((meta["category"], meta["sentiment"]) for _, _, meta in messages)
    assert len(pairs) == len(cm.CATEGORIES) * 3  # every category with every sentiment
    by_priority = Counter((meta["category"], meta["priority"]) for _, _, meta in messages)
    assert {c for c, p in by_priority if p == "high"} == set(cm.CATEGORIES) - {"fraud"}
    assert len({text for text, _, _ in messages}) == len(messages)


def test_three_tasks_read_the_same_messages():
    splits = [load_split(get_task(name), "test") for name in TASKS]
    assert len({split.fingerprint for split in splits}) == 1
    first = splits[0].items[0]
    labels = [split.items[0].answer for split in splits]
    assert labels == [first.meta["sentiment"], first.meta["category"], first.meta["priority"]]
    for name, split in zip(TASKS, splits):
        assert set(item.answer for item in split.items) <= set(get_task(name).labels)


def test_an_unknown_label_field_is_rejected(tmp_path):
    raw = {
        **{"name": "x", "kind": "choice", "labels": ["a"], "template": "{text}"},
        "source": {"type": "synthetic", "generator": "client_messages", "label": "mood"},
    }
    with pytest.raises(TaskSpecError, match="source.label"):
        parse_task(tmp_path / "x.yaml", raw)
    assert synthetic.LABEL_FIELDS["client_messages"] == ("sentiment", "category", "priority")
