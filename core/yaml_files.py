"""Reading the project's YAML files with one clear error for a missing or broken file.

>>> read_yaml(Path("configs/tasks/fin_sentiment.yaml"), ValueError, "Task file")["name"]  # doctest: +SKIP
'fin_sentiment'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed YAML at ``path``; ``error`` naming the file when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
