"""Where things live on disk. Every location can be moved with an environment variable.

- ``FINBOARD_HOME``: runtime data root (default: the repository root).
- ``FINBOARD_DB``: the SQLite store (default: ``$FINBOARD_HOME/leaderboard.db``).
- ``FINBOARD_CACHE``: de-quantized model weights (default: ``~/.cache/finboard``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO_ROOT / "configs"
MODELS_CONFIG = CONFIGS_DIR / "models_config.yaml"
BUILTIN_TASKS_DIR = CONFIGS_DIR / "tasks"


def home_dir() -> Path:
    return Path(os.environ.get("FINBOARD_HOME", REPO_ROOT))


def db_path() -> Path:
    """The leaderboard store; created on first use."""
    return Path(os.environ.get("FINBOARD_DB", home_dir() / "leaderboard.db"))


def cache_dir() -> Path:
    return Path(os.environ.get("FINBOARD_CACHE", Path.home() / ".cache" / "finboard"))


def adapters_dir() -> Path:
    return home_dir() / "adapters"


def runs_dir() -> Path:
    """Job logs and checkpoints."""
    return home_dir() / "runs"


def user_data_dir() -> Path:
    """User datasets and the task files made from them."""
    return home_dir() / "user_data"


def user_tasks_dir() -> Path:
    return user_data_dir() / "tasks"
