"""Hugging Face ``datasets`` on disk, turned into JSON Lines so they pass the same validation.

A ``save_to_disk`` / ``load_from_disk`` directory (a ``Dataset`` or a ``DatasetDict`` of
splits), a ``.parquet`` file or an ``.arrow`` file is read with the ``datasets`` library
(nothing is fetched from the hub) and written as one ``.jsonl`` per split; row N of that file
is record N of the dataset, so errors name the record. Split names ``valid`` / ``dev`` /
``val`` mean validation.

    >>> split_name("dev"), split_name("train"), split_name("all")
    ('validation', 'train', 'all')
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

HF_SUFFIXES = (".parquet", ".arrow")
ALIASES = {"valid": "validation", "val": "validation", "dev": "validation"}


def is_hf_source(path: Path) -> bool:
    """A directory saved by ``datasets`` or a parquet / arrow file."""
    if path.is_dir():
        return (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()
    return path.suffix.lower() in HF_SUFFIXES


def split_name(name: str) -> str:
    return ALIASES.get(name, name)


def _load(path: Path):
    import datasets

    if path.is_dir():
        return datasets.load_from_disk(str(path))
    if path.suffix.lower() == ".parquet":
        return datasets.Dataset.from_parquet(str(path))
    return datasets.Dataset.from_file(str(path))


def export_splits(path: Path, folder: Path | None = None) -> dict[str, Path]:
    """One JSON Lines file per split of the dataset at ``path`` (``"all"`` for a single set)."""
    import datasets

    path = Path(path)
    if not is_hf_source(path):
        raise ValueError(
            f"{path}: not a Hugging Face dataset (a save_to_disk folder, .parquet or .arrow file)"
        )
    loaded = _load(path)
    parts = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"all": loaded}
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="finboard-hf-"))
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, part in parts.items():
        target = folder / f"{path.stem}-{name}.jsonl"
        with target.open("w", encoding="utf-8") as handle:
            for record in part:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        written[split_name(name)] = target
    return written
