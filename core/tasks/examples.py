"""Examples: the evaluation prompt + the gold completion, tokenized, as training and loss see them.

The prompt is rendered by ``core.tasks.prompts.render``, exactly as the evaluator renders it, so
a model is trained (``core.training``) and its completion loss measured (``core.evaluation.loss``)
on the format it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.data.items import Item
from core.models.tokens import encode_prompt
from core.tasks.prompts import render
from core.tasks.spec import TaskSpec


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]
    completion_ids: list[int]

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def build_examples(
    spec: TaskSpec, items: list[Item], tokenizer: Any, instruct: bool, max_length: int
) -> list[Example]:
    """One example per item; over-long prompts are cut from the left so the answer survives."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    examples = []
    for item in items:
        rendered = render(spec, item, tokenizer, instruct)
        completion = list(tokenizer(rendered.completion, add_special_tokens=False).input_ids) + eos
        prompt = encode_prompt(tokenizer, rendered.prompt)
        keep = max(1, max_length - len(completion))
        examples.append(Example(prompt[-keep:], completion[: max_length - 1]))
    return examples
