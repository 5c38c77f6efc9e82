"""Training batches: examples (``core.tasks.examples``) in length-grouped, padded batches.

Loss is on the completion tokens only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from core.tasks.examples import Example


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Random batches of similar length (little padding), in a random order.

    Shuffle, cut into mega-batches of 50 batches, sort each mega-batch by length, cut it into
    batches, then shuffle the batches: the same idea as transformers' ``group_by_length``.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) right-padded
    attention_mask: torch.Tensor  # (B, T)
    target_rows: torch.Tensor  # (N,) row of each completion token
    target_positions: torch.Tensor  # (N,) position whose hidden state predicts it
    targets: torch.Tensor  # (N,) the completion token ids
    tokens: int  # non-padding tokens (prompt + completion)


def collate(examples: list[Example], pad_id: int, device: str) -> Batch:
    width = max(e.length for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    rows, positions, targets = [], [], []
    for row, example in enumerate(examples):
        sequence = example.prompt_ids + example.completion_ids
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
        start = len(example.prompt_ids)
        for offset, token in enumerate(example.completion_ids):
            rows.append(row)
            positions.append(start + offset - 1)
            targets.append(token)
    return Batch(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        target_rows=torch.tensor(rows, device=device),
        target_positions=torch.tensor(positions, device=device),
        targets=torch.tensor(targets, device=device),
        tokens=sum(e.length for e in examples),
    )
