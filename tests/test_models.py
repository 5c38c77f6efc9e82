"""Model loading: device and dtype, the weights hash, and clear errors for models that cannot load."""

from __future__ import annotations

import shutil

import pytest
import torch

from core.models import loading as models
from core.models import registry
from core.models.loading import ModelLoadError, load_model, parse_dtype, weights_hash
from core.models.registry import ModelEntry, ModelSource

pytestmark = pytest.mark.usefixtures("isolated_cache")


def local_entry(model_id: str, path) -> ModelEntry:
    return ModelEntry(
        id=model_id, display_name=model_id, source=ModelSource(kind="local", path=str(path))
    )


@pytest.mark.parametrize(("name", "expected"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_load_tiny_model_on_cpu_with_dtype(finboard_home, name, expected):
    loaded = load_model(registry.get_model("tiny-llama"), device="cpu", dtype=name)
    assert loaded.device == "cpu"
    assert loaded.dtype == expected
    assert loaded.dtype_name == str(expected).removeprefix("torch.")
    assert {p.dtype for p in loaded.model.parameters()} == {expected}
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
    assert not loaded.model.training
    assert loaded.tokenizer.pad_token is not None
    assert loaded.entry.id == "tiny-llama"
    assert len(loaded.weights_hash) == 64
    assert loaded.load_seconds > 0
    with torch.no_grad():
        logits = loaded.model(torch.tensor([[5, 6, 7]])).logits
    assert logits.shape[:2] == (1, 3)


def test_weights_hash_is_stable_and_changes_with_the_weights(
    finboard_home, tiny_model_dirs, tmp_path
):
    copy_dir = tmp_path / "model-copy"
    shutil.copytree(tiny_model_dirs["tiny-llama"], copy_dir)
    entry = local_entry("copy", copy_dir)
    first = weights_hash(entry)
    assert first == weights_hash(entry)
    assert load_model(entry, device="cpu", dtype="fp32").weights_hash == first
    # same weights in another directory: same hash (it hashes names and contents, not paths)
    assert weights_hash(local_entry("original", tiny_model_dirs["tiny-llama"])) == first
    # a tokenizer or config change is not a weights change
    (copy_dir / "README.md").write_text("notes")
    assert weights_hash(entry) == first

    loaded = load_model(entry, device="cpu", dtype="fp32")
    with torch.no_grad():
        next(loaded.model.parameters()).add_(0.01)
    loaded.model.save_pretrained(copy_dir)
    changed = weights_hash(entry)
    assert changed != first
    assert load_model(entry, device="cpu", dtype="fp32").weights_hash == changed


def test_finetuned_weights_hash_covers_the_adapter(finboard_home, tiny_model_dirs, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"A" * 64)
    base = local_entry("base", tiny_model_dirs["tiny-llama"])
    tuned = ModelEntry(
        id="tuned",
        display_name="tuned",
        source=base.source,
        kind="finetuned",
        base_model_id="base",
        adapter_path=str(adapter),
    )
    first = weights_hash(tuned)
    assert first != weights_hash(base)
    (adapter / "adapter_model.safetensors").write_bytes(b"B" * 65)
    assert weights_hash(tuned) != first


def test_local_source_without_config_json_names_the_model(finboard_home, tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    entry = local_entry("my-broken-model", empty)
    with pytest.raises(ModelLoadError) as info:
        load_model(entry, device="cpu")
    message = str(info.value)
    assert "my-broken-model" in message
    assert "config.json" in message
    assert str(empty) in message


def test_local_source_with_bad_weights_is_a_model_load_error(
    finboard_home, tiny_model_dirs, tmp_path
):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dirs["tiny-llama"], broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="broken-weights"):
        load_model(local_entry("broken-weights", broken), device="cpu", dtype="fp32")


def test_hf_source_not_in_cache_offline_says_how_to_fix(finboard_home, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = ModelEntry(
        id="missing-hub-model",
        display_name="Missing",
        source=ModelSource(kind="hf", repo="finboard-tests/definitely-not-cached"),
    )
    with pytest.raises(ModelLoadError) as info:
        load_model(entry, device="cpu")
    message = str(info.value)
    assert "missing-hub-model" in message
    assert "finboard-tests/definitely-not-cached" in message
    assert "HF_HUB_OFFLINE" in message
    assert "hf download finboard-tests/definitely-not-cached" in message  # how to fix
    assert "kind: local" in message  # the other way out


@pytest.mark.parametrize(
    "source",
    [
        ModelSource(kind="gguf_package", package="finboard_no_such_package_xyz", file="model.gguf"),
        ModelSource(kind="gguf_package", package="finboard_no_such_package_xyz", assemble=True),
    ],
)
def test_gguf_package_not_installed_is_a_clear_error(finboard_home, source):
    entry = ModelEntry(id="ghost-gguf", display_name="Ghost", source=source)
    with pytest.raises(ModelLoadError) as info:
        load_model(entry, device="cpu")
    message = str(info.value)
    assert "ghost-gguf" in message
    assert "finboard_no_such_package_xyz" in message
    assert "not installed" in message
    assert "pip install" in message


def test_gguf_package_missing_file_is_a_clear_error(finboard_home):
    entry = ModelEntry(
        id="wrong-file",
        display_name="x",
        source=ModelSource(kind="gguf_package", package="pytest", file="nope.gguf"),
    )
    with pytest.raises(ModelLoadError, match=r"wrong-file.*nope\.gguf.*missing"):
        models.gguf_file(entry)


def test_a_gguf_conversion_reads_the_file_once_and_leaves_gguf_as_it_was(
    finboard_home, isolated_cache, monkeypatch
):
    import gguf

    reads = []
    real_reader = gguf.GGUFReader

    def counted_reader(*args, **kwargs):
        reads.append(args)
        return real_reader(*args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", counted_reader)
    before = (gguf.GGUFReader, gguf.get_tensor_name_map)
    smollm = registry.get_model("smollm2-135m-instruct")
    directory = models.model_directory(smollm)  # a fresh cache: converted here
    # transformers asks for it three times (config, tokenizer, weights); it is read once
    assert len(reads) == 1
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == before
    assert models.prepared_directory(smollm) == directory
    loaded = load_model(smollm, device="cpu", dtype="fp32")
    prompt = loaded.tokenizer("Revenue rose", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(loaded.model(prompt).logits).all()


def test_gguf_is_put_back_when_a_conversion_fails():
    import gguf

    before = (gguf.GGUFReader, gguf.get_tensor_name_map)
    with pytest.raises(RuntimeError), models.gguf_parsed_once():
        assert gguf.GGUFReader is not before[0]
        raise RuntimeError("conversion failed")
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == before


@pytest.mark.parametrize("name", ["junk", "float33", "nn", "manual_seed", "int8x"])
def test_parse_dtype_rejects_junk(name):
    with pytest.raises(ModelLoadError, match=f"Unknown dtype '{name}'"):
        parse_dtype(name, "cpu")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fp32", torch.float32),
        ("float32", torch.float32),
        ("bf16", torch.bfloat16),
        ("bfloat16", torch.bfloat16),
        ("fp16", torch.float16),
        ("half", torch.float16),
    ],
)
def test_parse_dtype_aliases(name, expected):
    assert parse_dtype(name, "cpu") == expected


@pytest.mark.parametrize("name", [None, "", "auto"])
def test_parse_dtype_auto_is_the_best_for_the_device(name):
    assert parse_dtype(name, "cpu") == models.best_dtype("cpu")
    assert models.best_dtype("cpu") in (torch.float32, torch.bfloat16)


def test_load_model_with_unknown_dtype_fails_before_loading(finboard_home):
    with pytest.raises(ModelLoadError, match="Unknown dtype"):
        load_model(registry.get_model("tiny-llama"), device="cpu", dtype="float17")


def test_the_lm_head_gets_a_contiguous_input_even_with_frozen_weights(finboard_home):
    # a frozen (merged, fine-tuned) head given transformers' strided `hidden[:, -k:, :]` made
    # PyTorch copy the whole weight per row: same logits, 100x the time and gigabytes of memory
    loaded = load_model(registry.get_model("tiny-llama"), device="cpu", dtype="fp32")
    model = loaded.model
    model.requires_grad_(False)
    seen: list[bool] = []
    model.get_output_embeddings().register_forward_pre_hook(
        lambda _module, args: seen.append(args[0].is_contiguous())
    )
    ids = torch.randint(3, 100, (3, 9))
    with torch.inference_mode():
        kept = model(input_ids=ids, logits_to_keep=2).logits
        full = model(input_ids=ids).logits
    assert seen == [True, True]
    torch.testing.assert_close(kept, full[:, -2:, :])
