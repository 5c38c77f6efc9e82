"""Where things live on disk, and how the project's YAML files are read.

Every location can be moved with an environment variable:

- ``FINBOARD_HOME``: runtime data root (default: the folder of ``FINBOARD_DB`` when only that
  is set, else the repository root).
- ``FINBOARD_DB``: the SQLite store (default: ``$FINBOARD_HOME/leaderboard.db``).
- ``FINBOARD_CACHE``: de-quantized model weights (default: ``~/.cache/finboard``).

Job logs and checkpoints live in a folder of their store (``runs/<store>-<hash>/``), so two
stores under one home never share a job's log or run folder (job ids restart per store).

    >>> read_yaml(BUILTIN_TASKS_DIR / "fin_sentiment.yaml", ValueError, "Task file")["name"]
    'fin_sentiment'
    >>> read_yaml(CONFIGS_DIR / "missing.yaml", ValueError, "Task file")
    Traceback (most recent call last):
    ...
    ValueError: Task file not found: .../configs/missing.yaml
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO_ROOT / "configs"
MODELS_CONFIG = CONFIGS_DIR / "models_config.yaml"
PRESETS_DIR = CONFIGS_DIR / "presets"
BUILTIN_TASKS_DIR = CONFIGS_DIR / "tasks"


def home_dir() -> Path:
    if os.environ.get("FINBOARD_HOME"):
        return Path(os.environ["FINBOARD_HOME"])
    if os.environ.get("FINBOARD_DB"):  # a store elsewhere keeps its runs and adapters with it
        return Path(os.environ["FINBOARD_DB"]).resolve().parent
    return REPO_ROOT


def db_path() -> Path:
    """The leaderboard store; created on first use."""
    return Path(os.environ.get("FINBOARD_DB", home_dir() / "leaderboard.db"))


def cache_dir() -> Path:
    return Path(os.environ.get("FINBOARD_CACHE", Path.home() / ".cache" / "finboard"))


def adapters_dir() -> Path:
    return home_dir() / "adapters"


def store_key(db: Path | None = None) -> str:
    """A folder name of its own for a store: its file name and a hash of its full path.

    >>> store_key(Path("/data/leaderboard.db")) != store_key(Path("/other/leaderboard.db"))
    True
    """
    target = Path(db or db_path()).resolve()
    return f"{target.stem}-{hashlib.sha256(str(target).encode()).hexdigest()[:8]}"


def runs_dir() -> Path:
    """Job logs and checkpoints of the current store."""
    return home_dir() / "runs" / store_key()


def user_data_dir() -> Path:
    """User datasets and the task files made from them."""
    return home_dir() / "user_data"


def user_tasks_dir() -> Path:
    return user_data_dir() / "tasks"


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed YAML at ``path``; ``error`` naming the file when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
