"""Completion loss: how well a model predicts each item's gold completion, token by token.

For instruction and chat corpora, whose outputs are free text, the loss (mean negative
log-likelihood per completion token, in nats) scores a model where exact match is too strict.
It uses the very tokens training puts the loss on (``core.tasks.examples.build_examples``).
"""

from __future__ import annotations

from typing import Any

import torch

from core.data.items import Item
from core.evaluation.metrics import mean_with_ci
from core.tasks.spec import TaskSpec

MAX_LENGTH = 1024


def scores_loss(spec: TaskSpec) -> bool:
    """Tasks made of instruction or chat records report the completion loss."""
    return spec.source.get("records") in ("instruction", "chat")


@torch.no_grad()
def item_losses(loaded: Any, spec: TaskSpec, items: list[Item]) -> list[float]:
    """Mean NLL per completion token of each item, one forward pass per item."""
    from core.tasks.examples import build_examples

    examples = build_examples(spec, items, loaded.tokenizer, loaded.entry.instruct, MAX_LENGTH)
    losses = []
    for example in examples:
        ids = torch.tensor([example.prompt_ids + example.completion_ids], device=loaded.device)
        logits = loaded.model(input_ids=ids).logits[0].float()
        start = len(example.prompt_ids)
        predicted = logits[start - 1 : ids.shape[1] - 1]
        targets = ids[0, start:]
        losses.append(float(torch.nn.functional.cross_entropy(predicted, targets)))
    return losses


def completion_loss(loaded: Any, spec: TaskSpec, items: list[Item], seed: int = 0) -> dict:
    """``{"value", "ci"}``: the mean completion loss over the items, with its 95% interval."""
    return mean_with_ci(item_losses(loaded, spec, items), seed)
