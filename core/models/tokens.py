"""Token helpers shared by training and evaluation: BOS handling and the shared-prefix length.

>>> common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
2
>>> common_prefix_length([[7, 8], [7, 8]])  # every sequence keeps at least one token
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt, adding the BOS token unless the text already starts with it.

    A chat template usually writes the BOS token itself; adding another would change every
    score, so training and evaluation both encode prompts through this one function.
    """
    bos = tokenizer.bos_token
    return list(tokenizer(text, add_special_tokens=not (bos and text.startswith(bos))).input_ids)


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix, leaving every sequence at least one token."""
    if not sequences:
        return 0
    shortest = min(len(s) for s in sequences)
    first = sequences[0]
    length = 0
    while length < shortest - 1 and all(s[length] == first[length] for s in sequences):
        length += 1
    return length
