"""How one record becomes the model's input: the rendered prompt, the completion, the loss mask.

The tokens are the very ones training uses (``build_examples``): the prompt with the chat
template applied (no loss) and the completion, end-of-sequence included (the loss).

    >>> class Tok:  # a tokenizer of one id per character, for the example
    ...     eos_token_id, bos_token, chat_template = 0, None, None
    ...     def __call__(self, text, add_special_tokens=False):
    ...         return type("E", (), {"input_ids": [ord(c) for c in text]})()
    ...     def decode(self, ids):
    ...         return "".join(chr(i) if i else "</s>" for i in ids)
    >>> from core.tasks.spec import get_task
    >>> from core.data.items import Item
    >>> p = record_preview(get_task("fin_sentiment"), Item("x", {"text": "Up."}, "positive"), Tok(), False)
    >>> p["completion"], p["completion_tokens"], p["tokens"][-1]
    (' positive', 10, ('</s>', True))
"""

from __future__ import annotations

from typing import Any

from core.data.items import Item
from core.tasks.spec import TaskSpec

MAX_LENGTH = 4096


def record_preview(spec: TaskSpec, item: Item, tokenizer: Any, instruct: bool) -> dict[str, Any]:
    """The prompt and completion text, token counts, and each token with whether it has loss."""
    from core.tasks.examples import build_examples
    from core.tasks.prompts import render

    rendered = render(spec, item, tokenizer, instruct)
    example = build_examples(spec, [item], tokenizer, instruct, MAX_LENGTH)[0]
    tokens = [(tokenizer.decode([t]), False) for t in example.prompt_ids]
    tokens += [(tokenizer.decode([t]), True) for t in example.completion_ids]
    return {
        "prompt": rendered.prompt,
        "completion": rendered.completion,
        "prompt_tokens": len(example.prompt_ids),
        "completion_tokens": len(example.completion_ids),
        "tokens": tokens,
        "chat_template": bool(instruct and getattr(tokenizer, "chat_template", None)),
    }


def marked_text(tokens: list[tuple[str, bool]]) -> str:
    """The tokens as text, the loss-carrying ones in ⟦ ⟧, so a reader sees the mask.

    >>> marked_text([("Hi", False), (" yes", True), ("</s>", True)])
    'Hi⟦ yes</s>⟧'
    """
    out, inside = [], False
    for text, loss in tokens:
        if loss and not inside:
            out.append("⟦")
        if not loss and inside:
            out.append("⟧")
        inside = loss
        out.append(text)
    return "".join(out) + ("⟧" if inside else "")


def tokenizer_for(model_id: str | None = None) -> tuple[str, Any, bool] | None:
    """(description, tokenizer, instruct) of a model prepared on this machine, else None.

    Without ``model_id``, the default model. Nothing is downloaded or de-quantized here.
    """
    from core.models import loading, registry
    from core.tasks.inspect import _load_tokenizer

    try:
        entry = registry.get_model(model_id or registry.default_model_id())
        directory = loading.prepared_directory(entry)
    except Exception:  # an unusable model: the pages say so
        return None
    if directory is None:
        return None
    tokenizer = _load_tokenizer(str(directory))
    if tokenizer is None:
        return None
    return f"{entry.display_name} tokenizer", tokenizer, entry.instruct
