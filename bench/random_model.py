"""A randomly initialised model of a published shape, for throughput benchmarks.

Tokens/s and MFU depend on a model's shape, not on its weights: a Llama-3.2-1B-shaped model
with random weights trains exactly as fast as the real one, and needs no download (a GPU
machine lent for a few minutes has no hub access). The tokenizer and chat template come from a
registered model (the embedded SmolLM2 by default); its token ids all fall inside the shape's
larger vocabulary, so the embedding and LM head keep the published size.

    python bench/random_model.py --shape llama-3.2-1b --out /tmp/llama-1b-random
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

# Published configs (config.json on the hub), the fields that decide the compute.
SHAPES: dict[str, dict] = {
    "llama-3.2-1b": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    },
    # a few layers of the same widths: checks the path on a CPU in seconds
    "llama-tiny": {
        "hidden_size": 256,
        "intermediate_size": 1024,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "vocab_size": 49152,
        "max_position_embeddings": 2048,
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    },
}


def write_random_model(
    shape: str, out: Path, tokenizer_dir: Path, dtype: torch.dtype = torch.bfloat16, seed: int = 0
) -> Path:
    """Save a random model of ``shape`` with the tokenizer of ``tokenizer_dir`` into ``out``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    fields = SHAPES[shape]
    if len(tokenizer) > fields["vocab_size"]:
        raise SystemExit(f"the tokenizer has {len(tokenizer)} tokens, more than {shape}'s vocab")
    config = LlamaConfig(
        **fields,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(dtype)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    from core.models.loading import model_directory
    from core.models.registry import get_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="llama-3.2-1b", choices=list(SHAPES))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokenizer-from", default="smollm2-135m-instruct")
    args = parser.parse_args()
    tokenizer_dir = model_directory(get_model(args.tokenizer_from))
    print(write_random_model(args.shape, args.out, tokenizer_dir))


if __name__ == "__main__":
    main()
