"""Staging a user's uploaded file on disk under a safe name (nothing is validated here).

>>> safe_filename("../../etc/My News (v2).CSV")
'My_News_v2.csv'
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from core import paths

UPLOADS = "uploads"  # staging folder for uploaded files, under paths.user_data_dir()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """A file name that is safe to create: base name only, odd characters replaced by ``_``."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = _UNSAFE.sub("_", stem).strip("._")[:80] or "upload"
    suffix = _UNSAFE.sub("", suffix)[:10]
    return f"{stem}{suffix}"


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``target``, then rename it into place.

    A reader never sees a half-written file, and an error leaves no partial file behind.
    """
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{target.name}")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def save_upload(name: str, data: bytes) -> Path:
    """Stage an uploaded file's bytes as ``user_data_dir()/uploads/<safe name>`` and return it.

    The uploads folder only holds staging copies: saving a task copies the file elsewhere
    (``user_data_dir()/datasets``), so a later upload of the same name never touches a saved
    task's data.
    """
    folder = paths.user_data_dir() / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_filename(name)
    write_atomic(target, data)
    return target
