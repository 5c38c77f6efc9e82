"""``finboard export``: a quick LoRA model merged, reloaded in a fresh Python with transformers
only, reproducing the product's greedy outputs; the other formats' files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import TINY_CHAT_ID, TINY_MODEL_ID, evaluate_ids

from core.evaluation.runner import EvalOptions
from core.models.registry import get_model
from core.tasks.spec import get_task, load_split
from core.training.config import preset_config
from core.training.finetune import TrainPlan, train_and_register
from core.workflows import export as ex

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")

QUICK = {"max_train_examples": 16, "batch_size": 8, "eval_every": 2, "dtype": "fp32"}


def _train(db, tmp_path, method: str = "lora"):
    overrides = {**QUICK, "method": method}
    plan = TrainPlan(
        base=get_model(TINY_MODEL_ID, db),
        task=get_task("eps_extraction"),
        config=preset_config("quick", overrides),
        new_model_id=f"tiny-{method}",
        run_dir=tmp_path / "run" / method,
    )
    entry, _ = train_and_register(plan, db)
    return entry


def test_merged_export_reloads_with_transformers_alone_and_matches(db, tmp_path):
    from core.cli import main

    entry = _train(db, tmp_path)
    out = tmp_path / "merged"
    result = CliRunner().invoke(
        main, ["export", entry.id, "--format", "merged", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout.strip().splitlines()[-1])
    assert written["check"]["matches"] == written["check"]["items"] == 5
    assert "model.safetensors" in written["files"] and "tokenizer.json" in written["files"]
    assert not (out / "adapter_config.json").exists()  # one plain HF directory, no peft

    # The check's own script (it imports no finboard), run again: the same outputs; and a
    # differing expectation is reported item by item.
    assert "core" not in (out / "reload_check.py").read_text().split("import")[1]
    prompts = json.loads((out / "reload_check_prompts.json").read_text())["prompts"]
    again = ex.reload_check(out, prompts, [], ["certainly not this"] * len(prompts))
    assert again["outputs"] == written["check"]["outputs"]
    assert again["matches"] == 0 and len(again["mismatches"]) == 5

    # The merged weights are the fine-tuned model (LoRA folded in), not a copy of the base.
    from safetensors.torch import load_file

    from core.models.loading import load_model

    assert all(written["check"]["outputs"])  # real continuations, not empty strings
    merged = load_file(out / "model.safetensors")
    base = load_model(get_model(TINY_MODEL_ID, db), device="cpu", dtype="fp32").model.state_dict()
    changed = [name for name, t in merged.items() if not t.equal(base[name])]
    assert any("q_proj" in name for name in changed)


def test_prompt_tuning_cannot_merge_and_says_why(db, tmp_path):
    entry = _train(db, tmp_path, "prompt-tuning")
    with pytest.raises(ex.ExportError, match="virtual tokens"):
        ex.export(db, entry, "merged", tmp_path / "out")
    assert not any("merged" in command for command in ex.export_commands(entry))
    written = ex.export(db, entry, "adapter", tmp_path / "adapter")
    assert "adapter_config.json" in written.files and "README.md" in written.files


def test_modelfile_samples_and_leaderboard(db, tmp_path):
    entry = get_model(TINY_CHAT_ID, db)
    modelfile = ex.export(db, entry, "modelfile", tmp_path / "ollama")
    text = (tmp_path / "ollama" / "Modelfile").read_text()
    assert modelfile.files == ["Modelfile"]
    assert f"FROM ./{entry.id}.gguf" in text
    assert "<|user|>{{ .Prompt }}<|end|>" in text and "<|assistant|>" in text  # chat template
    assert 'PARAMETER stop "<|end|>"' in text

    evaluate_ids(TINY_CHAT_ID, "fin_sentiment", db=db, options=EvalOptions())
    samples = ex.export(db, entry, "samples", tmp_path / "samples")
    (name,) = samples.files
    assert name.startswith("samples_fin_sentiment_") and name.endswith(".jsonl")
    rows = [json.loads(line) for line in (tmp_path / "samples" / name).read_text().splitlines()]
    assert len(rows) == len(load_split(get_task("fin_sentiment"), "test").items)
    first = rows[0]
    assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "acc"} <= set(first)
    assert first["doc"]["answer"] == first["target"] and first["acc"] in (0.0, 1.0)

    board = ex.export(db, None, "leaderboard", tmp_path / "board")
    assert board.files == ["leaderboard.csv", "leaderboard.json"]
    assert TINY_CHAT_ID in (tmp_path / "board" / "leaderboard.csv").read_text()
    with pytest.raises(ex.ExportError, match="not empty"):
        ex.export(db, None, "leaderboard", tmp_path / "board")
