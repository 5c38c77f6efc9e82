"""Passing and reading a key/value cache across transformers versions.

transformers 5.x renamed the forward argument and output field ``past_key_values`` to ``cache``
(the old name still works, with a deprecation warning on every call). These two helpers use
whichever name the model's class takes, so neither the warning nor a breakage reaches users.

    >>> from transformers import LlamaConfig, LlamaModel
    >>> model = LlamaModel(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16,
    ...                                num_hidden_layers=1, num_attention_heads=2))
    >>> list(cache_kwargs(model, None))[0] in ("cache", "past_key_values")
    True
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=64)
def _takes_cache(cls: type) -> bool:
    return "cache" in inspect.signature(cls.forward).parameters


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """``{"cache": cache}`` or ``{"past_key_values": cache}``, as ``model.forward`` names it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"cache" if _takes_cache(type(base)) else "past_key_values": cache}


def output_cache(output: Any) -> Any:
    """The key/value cache a forward pass returned (under either name)."""
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output.past_key_values
