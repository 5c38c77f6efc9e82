"""bench/random_model.py: a random model of a published shape, for the GPU throughput bench."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from conftest import TINY_CHAT_ID
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from random_model import SHAPES, write_random_model  # noqa: E402


def test_the_llama_shape_has_the_published_parameter_count():
    # Llama-3.2-1B: 1,235,814,400 parameters (embeddings tied with the LM head)
    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**SHAPES["llama-3.2-1b"]))
    assert sum(p.numel() for p in model.parameters()) == 1_235_814_400


def test_a_random_model_loads_with_the_donor_tokenizer_and_its_chat_template(
    tiny_model_dirs, tmp_path
):
    donor = tiny_model_dirs[TINY_CHAT_ID]
    out = write_random_model("llama-tiny", tmp_path / "random", donor)
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.hidden_size == SHAPES["llama-tiny"]["hidden_size"]
    assert model.config.vocab_size == SHAPES["llama-tiny"]["vocab_size"] >= len(tokenizer)
    assert model.dtype == torch.bfloat16
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(donor).chat_template
    ids = tokenizer("revenue rose", return_tensors="pt").input_ids
    assert model(input_ids=ids).logits.shape[-1] == SHAPES["llama-tiny"]["vocab_size"]


def test_a_tokenizer_directory_stands_in_for_the_registered_model_on_a_bare_machine(
    tiny_model_dirs, tmp_path
):
    # bench/gpu_run.sh passes .gpu/tokenizer: a lent GPU has no embedded model to read one from
    import argparse

    from train_speed import bench_model

    donor = tiny_model_dirs[TINY_CHAT_ID]
    args = argparse.Namespace(model="no-such-model", random_shape="llama-tiny", tokenizer_dir=donor)
    entry = bench_model(args, tmp_path)
    assert entry.id == "random-llama-tiny" and entry.instruct
    saved = AutoTokenizer.from_pretrained(entry.source.path)
    assert saved.chat_template == AutoTokenizer.from_pretrained(donor).chat_template
