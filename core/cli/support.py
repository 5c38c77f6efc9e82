"""What every `finboard` command shares: clear one-line errors, the store, strict JSON output."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import click


def user_errors() -> tuple[type[Exception], ...]:
    """Errors a user can cause (bad model, task, file, config): shown as one line."""
    from core.data.importer import DatasetImportError
    from core.models.loading import ModelLoadError
    from core.models.registry import RegistryError
    from core.store import StoreError
    from core.tasks.spec import TaskSpecError

    return (
        RegistryError,
        ModelLoadError,
        TaskSpecError,
        DatasetImportError,
        StoreError,
        FileNotFoundError,
        ValueError,
        RuntimeError,
    )


def run(action: Callable[[], Any]) -> Any:
    """Run ``action``; errors a user can cause become one clear line, never a traceback."""
    try:
        return action()
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from exc


def open_store(ctx: click.Context) -> Any:
    """The store named by the group's ``--db`` option (else the default one)."""
    from core import store

    root = ctx.find_root().obj or {}
    return run(lambda: store.connect(root.get("db")))


def strict(value: Any) -> Any:
    """NaN → None everywhere, so the JSON printed is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON of a result object (NaN → null, anything else unknown → str)."""
    return json.dumps(strict(value), default=str)
