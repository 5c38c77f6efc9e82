"""The model registry: base models from ``configs/models_config.yaml`` plus fine-tuned adapters.

    >>> entry = base_models(paths.MODELS_CONFIG)[0]
    >>> entry.id, entry.source.kind, entry.instruct
    ('smollm2-135m-instruct', 'gguf_package', True)

Fine-tuned models are rows of the store's ``models`` table, written by ``register_finetuned``
when a training job succeeds. ``FINBOARD_MODELS_CONFIG`` points at another config file.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import paths, store
from core.store import Database
from core.store import models as model_rows

SOURCE_KINDS = ("gguf_package", "hf", "local", "zip_package")
MODEL_KINDS = ("llm", "encoder")  # a generative model, or an encoder with classification heads


# Score rows that no registered model made (core.evaluation.encoder, core.evaluation.external):
BASELINE_ID = "majority-class"  # every test item answered with the train split's majority label
BASELINE_NAME = "Majority class (baseline)"
EXTERNAL_PREFIX = "external:"  # predictions imported from another system, e.g. a hosted API


def pseudo_model(model_id: str) -> tuple[str, str] | None:
    """(display name, kind) of a score's model id that is no registered model, else None.

    >>> pseudo_model("external:gpt-4o-mini")
    ('gpt-4o-mini (external predictions)', 'external predictions')
    >>> pseudo_model("majority-class")
    ('Majority class (baseline)', 'baseline')
    """
    if model_id == BASELINE_ID:
        return BASELINE_NAME, "baseline"
    if model_id.startswith(EXTERNAL_PREFIX):
        return f"{model_id.removeprefix(EXTERNAL_PREFIX)} (external predictions)", (
            "external predictions"
        )
    return None


class RegistryError(Exception):
    """A model id or config entry that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where a base model's weights come from (see the header of models_config.yaml)."""

    kind: str
    repo: str | None = None
    revision: str | None = None
    path: str | None = None
    package: str | None = None
    file: str | None = None
    assemble: bool = False


@dataclass(frozen=True)
class ModelEntry:
    id: str
    display_name: str
    source: ModelSource
    params: int | None = None
    license: str = "unknown"
    instruct: bool = False
    kind: str = "base"  # "base" | "finetuned"
    base_model_id: str | None = None
    method: str | None = None
    trained_on_task: str | None = None
    adapter_path: str | None = None
    trainable_params: int | None = None
    card: dict[str, Any] = field(default_factory=dict)
    job_id: int | None = None  # fine-tuned: the job that trained it
    model_kind: str = "llm"  # MODEL_KINDS: "encoder" is scored by its classification heads

    @property
    def is_finetuned(self) -> bool:
        return self.kind == "finetuned"


def config_path() -> Path:
    return Path(os.environ.get("FINBOARD_MODELS_CONFIG", paths.MODELS_CONFIG))


def _parse_source(model_id: str, raw: Any, where: Path) -> ModelSource:
    if not isinstance(raw, dict) or raw.get("kind") not in SOURCE_KINDS:
        raise RegistryError(
            f"{where}: model '{model_id}': source.kind must be one of {', '.join(SOURCE_KINDS)}"
        )
    allowed = set(ModelSource.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise RegistryError(
            f"{where}: model '{model_id}': unknown source field(s) {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    source = ModelSource(**raw)
    required = {"hf": "repo", "local": "path", "gguf_package": "package", "zip_package": "package"}[
        source.kind
    ]
    if not getattr(source, required):
        raise RegistryError(
            f"{where}: model '{model_id}': source.{required} is required for kind '{source.kind}'"
        )
    if source.kind == "gguf_package" and not (source.file or source.assemble):
        raise RegistryError(
            f"{where}: model '{model_id}': a gguf_package source needs `file` or `assemble: true`"
        )
    if source.kind == "zip_package" and not source.file:
        raise RegistryError(f"{where}: model '{model_id}': a zip_package source needs `file`")
    return source


def _parse_entry(raw: Any, where: Path) -> ModelEntry:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise RegistryError(f"{where}: every model entry needs an `id`")
    model_id = str(raw["id"])
    known = {"id", "display_name", "source", "params", "license", "instruct", "kind"}
    unknown = set(raw) - known
    if unknown:
        raise RegistryError(f"{where}: model '{model_id}': unknown field(s) {sorted(unknown)}")
    if raw.get("kind", "llm") not in MODEL_KINDS:
        raise RegistryError(f"{where}: model '{model_id}': kind must be one of llm, encoder")
    return ModelEntry(
        id=model_id,
        display_name=str(raw.get("display_name") or model_id),
        source=_parse_source(model_id, raw.get("source"), where),
        params=int(raw["params"]) if raw.get("params") is not None else None,
        license=str(raw.get("license", "unknown")),
        instruct=bool(raw.get("instruct", False)),
        model_kind=str(raw.get("kind", "llm")),
    )


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The raw YAML mapping of the models config."""
    where = path or config_path()
    data = paths.read_yaml(where, RegistryError, "Models config") or {}
    if not isinstance(data, dict):
        raise RegistryError(f"{where}: expected a mapping with a `models` list")
    return data


def base_models(path: Path | None = None) -> list[ModelEntry]:
    """The base models listed in the config, in file order."""
    where = path or config_path()
    entries = [_parse_entry(raw, where) for raw in load_config(where).get("models") or []]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise RegistryError(f"{where}: model id '{entry.id}' is listed twice")
        seen.add(entry.id)
    return entries


def default_model_id() -> str:
    config = load_config()
    return str(config.get("default_model") or base_models()[0].id)


def _finetuned_from_row(row: dict[str, Any], base: ModelEntry) -> ModelEntry:
    return ModelEntry(
        id=row["id"],
        display_name=row["display_name"],
        source=base.source,
        params=base.params,
        license=base.license,
        instruct=base.instruct,
        kind="finetuned",
        base_model_id=row["base_model_id"],
        method=row["method"],
        trained_on_task=row["trained_on_task"],
        adapter_path=row["adapter_path"],
        trainable_params=row["trainable_params"],
        card=json.loads(row["card_json"] or "{}"),
        job_id=row.get("job_id"),
        model_kind=base.model_kind,
    )


def finetuned_models(db: Database) -> list[ModelEntry]:
    """Every registered fine-tuned model whose base is still in the config, newest first."""
    bases = {entry.id: entry for entry in base_models()}
    rows = model_rows.finetuned(db)
    return [
        _finetuned_from_row(row, bases[row["base_model_id"]])
        for row in rows
        if row["base_model_id"] in bases
    ]


def list_models(db: Database | None = None) -> list[ModelEntry]:
    """Base models then fine-tuned ones."""
    models = base_models()
    if db is not None:
        models += finetuned_models(db)
    return models


def get_model(model_id: str, db: Database | None = None) -> ModelEntry:
    """The entry for ``model_id``; a RegistryError naming the known ids when there is none."""
    for entry in base_models():
        if entry.id == model_id:
            return entry
    database = db if db is not None else store.connect()
    row = model_rows.get(database, model_id)
    if row is not None:
        base = get_model(row["base_model_id"])
        return _finetuned_from_row(row, base)
    known = ", ".join(entry.id for entry in list_models(database))
    raise RegistryError(
        f"Unknown model '{model_id}'. Known models: {known}. "
        f"Add it to {config_path()} (see the commented examples there) or run `finboard models`."
    )


def register_finetuned(db: Database, entry: ModelEntry) -> None:
    """Add (or replace) a fine-tuned model in the store."""
    if not entry.is_finetuned or not entry.base_model_id or not entry.adapter_path:
        raise RegistryError("register_finetuned needs a fine-tuned entry with a base and adapter")
    model_rows.upsert(
        db,
        {
            "id": entry.id,
            "display_name": entry.display_name,
            "kind": "finetuned",
            "base_model_id": entry.base_model_id,
            "method": entry.method,
            "trained_on_task": entry.trained_on_task,
            "adapter_path": entry.adapter_path,
            "params": entry.params,
            "trainable_params": entry.trainable_params,
            "license": entry.license,
            "instruct": int(entry.instruct),
            "card_json": store.to_json(entry.card),
            "job_id": entry.job_id,
        },
    )


def display_names(db: Database | None = None) -> dict[str, str]:
    """Model id -> display name for every model the config and the store know.

    An unreadable models config leaves the ids of the base models to stand for themselves.
    """
    names: dict[str, str] = {BASELINE_ID: BASELINE_NAME}
    if db is not None:
        names.update({row["id"]: row["display_name"] for row in model_rows.finetuned(db)})
    with contextlib.suppress(RegistryError):
        names.update({entry.id: entry.display_name for entry in base_models()})
    return names


def entry_summary(entry: ModelEntry) -> dict[str, Any]:
    """A flat dict for tables and JSON output."""
    data = asdict(entry)
    data["source"] = {k: v for k, v in data["source"].items() if v not in (None, False)}
    data.pop("card")
    return data
