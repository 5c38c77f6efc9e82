"""Turn a task item into the exact prompt text a model sees, and the completion it should give.

Evaluation and training both go through ``render``, so a fine-tuned model is trained on the
very format it is scored on.

- Instruction-tuned models with a chat template: the instruction and the filled template are
  the user turn (few-shot examples as earlier user/assistant turns); the completion is the
  bare answer.
- Other models: plain text ``instruction`` + shots + filled template; the completion is
  `` <answer>`` with a leading space.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from core.data.items import Item
from core.tasks.spec import TaskSpec


@dataclass(frozen=True)
class Rendered:
    prompt: str
    completion: str


def uses_chat(tokenizer: Any, instruct: bool) -> bool:
    return bool(instruct and getattr(tokenizer, "chat_template", None))


def user_message(spec: TaskSpec, item: Item) -> str:
    return spec.template.format(**item.fields)


def pick_shots(spec: TaskSpec, train_items: list[Item], seed: int, num_shots: int) -> list[Item]:
    """The same ``num_shots`` training examples for every item of a run (seeded)."""
    if num_shots <= 0 or not train_items:
        return []
    return random.Random(f"shots:{spec.name}:{seed}").sample(
        train_items, min(num_shots, len(train_items))
    )


def completion_text(answer: str, chat: bool) -> str:
    return answer if chat else f" {answer}"


def render(
    spec: TaskSpec, item: Item, tokenizer: Any, instruct: bool, shots: list[Item] | None = None
) -> Rendered:
    """The prompt for ``item`` (ending where the answer starts) and its gold completion."""
    shots = shots or []
    chat = uses_chat(tokenizer, instruct)
    if chat:
        messages: list[dict[str, str]] = []
        for index, shot in enumerate(shots):
            text = user_message(spec, shot)
            if index == 0 and spec.instruction:
                text = f"{spec.instruction}\n\n{text}"
            messages += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": shot.answer},
            ]
        text = user_message(spec, item)
        if not shots and spec.instruction:
            text = f"{spec.instruction}\n\n{text}"
        messages.append({"role": "user", "content": text})
        messages = messages[:-1] + item.meta.get("messages", messages[-1:])  # chat records
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        blocks = [spec.instruction] if spec.instruction else []
        blocks += [f"{user_message(spec, shot)} {shot.answer}" for shot in shots]
        turns = item.meta.get("messages")  # a chat record without a chat template: plain turns
        blocks.append(
            "\n".join(f"{t['role']}: {t['content']}" for t in turns)
            if turns
            else user_message(spec, item)
        )
        prompt = "\n\n".join(blocks)
    # instruction records scored as numbers train on their whole output (meta "completion")
    answer = str(item.meta.get("completion") or item.answer)
    return Rendered(prompt=prompt, completion=completion_text(answer, chat))


def surface_forms(label: str) -> list[str]:
    """The ways a model may write a label: as given, and capitalized (``positive``, ``Positive``)."""
    return list(dict.fromkeys([label, label[:1].upper() + label[1:]]))


def choice_continuations(spec: TaskSpec, tokenizer: Any, instruct: bool) -> list[list[str]]:
    """For each label, the texts that would follow the prompt if the model chose it.

    A label's log-likelihood is that of all its surface forms together, so a model that
    prefers "Positive" to "positive" is not marked wrong for its capital letter.
    """
    chat = uses_chat(tokenizer, instruct)
    return [[completion_text(form, chat) for form in surface_forms(label)] for label in spec.labels]


# Chat-template markup of the common families: ChatML (<|im_start|>role ... <|im_end|>), Gemma
# (<start_of_turn>role ... <end_of_turn>), Llama 3 (<|start_header_id|>role<|end_header_id|>),
# Llama 2 / Mistral ([INST] ... [/INST]), and generic <|token|> / <s> markers.
_ROLE_MARKERS = re.compile(
    r"<\|im_start\|>\s*\w+\n?|<start_of_turn>\s*\w+\n?|<\|start_header_id\|>\s*\w+\s*<\|end_header_id\|>\n*"
)
_MARKERS = re.compile(r"<\|[^|<>\s]{1,40}\|>|</?s>|<end_of_turn>|<bos>|<eos>|\[/?INST\]")


def readable_prompt(prompt: str) -> str:
    """A rendered prompt as a person reads it: chat-template tokens and role names removed.

    >>> readable_prompt("<|im_start|>user\\nSentence: Shares fell.\\nSentiment:<|im_end|>\\n"
    ...                 "<|im_start|>assistant\\n")
    'Sentence: Shares fell.\\nSentiment:'
    >>> readable_prompt("<bos><start_of_turn>user\\nHello<end_of_turn>\\n<start_of_turn>model\\n")
    'Hello'
    """
    text = _ROLE_MARKERS.sub("\n", str(prompt or ""))
    text = _MARKERS.sub("\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
