"""The one narrow model interface every task is scored through.

Two calls, nothing else:

- ``choice_logprobs(contexts, continuations)``: for each context, the log-likelihood of each
  continuation (the same list of continuations for every context, e.g. the labels).
- ``generate(contexts, stop, max_new_tokens)``: greedy text after each context, cut at the
  first stop sequence.

Both take an optional ``on_batch(indices, seconds)`` callback, called after each internal
batch with the request indices it covered and its wall time (progress bars, latency).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

BatchCallback = Callable[[list[int], float], None]


class LanguageModel(Protocol):
    def choice_logprobs(
        self,
        contexts: Sequence[str],
        continuations: Sequence[str],
        on_batch: BatchCallback | None = None,
    ) -> list[list[float]]: ...

    def generate(
        self,
        contexts: Sequence[str],
        stop: Sequence[str],
        max_new_tokens: int,
        on_batch: BatchCallback | None = None,
    ) -> list[str]: ...


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop sequence, and whether one was found."""
    cut = len(text)
    for sequence in stop:
        if sequence and (position := text.find(sequence)) != -1:
            cut = min(cut, position)
    return text[:cut], cut < len(text)
