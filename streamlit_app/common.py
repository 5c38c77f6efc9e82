"""Helpers every page needs: the cached store connection and value formatting.

    >>> fmt_params(134_515_008), fmt_params(3_212_749_824), fmt_params(None)
    ('135M', '3.21B', '—')
    >>> fmt_ci(0.475, 0.41, 0.54), fmt_ci(0.475, 0.41, 0.54, style="pm")
    ('0.475 [0.41, 0.54]', '0.475 ± 0.07')

UI only: no business logic here; data comes from ``core``.
"""

from __future__ import annotations

import math
from typing import Any

import sqlite_utils
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core import paths, store

MISSING = "—"


# ---------------------------------------------------------------- the store


@st.cache_resource(show_spinner=False, max_entries=8)
def open_db(path: str) -> sqlite_utils.Database:
    """The store at ``path``, opened once per path and process (cache functions call this)."""
    return store.connect(path)


def db_path() -> str:
    """The store's path as a string (the key of every per-store cache)."""
    return str(paths.db_path())


def get_db() -> sqlite_utils.Database:
    """The store at ``core.paths.db_path()``, opened once per path and process."""
    return open_db(db_path())


# ---------------------------------------------------------------- formatting


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_score(value: float | None, digits: int = 3) -> str:
    return MISSING if _missing(value) else f"{value:.{digits}f}"


def fmt_ci(
    value: float | None, low: float | None, high: float | None, style: str = "interval"
) -> str:
    """A score with its 95% CI: ``"0.475 [0.41, 0.54]"`` or, with ``style="pm"``, ``"0.475 ± 0.07"``."""
    if _missing(value):
        return MISSING
    if _missing(low) or _missing(high):
        return fmt_score(value)
    if style == "pm":
        return f"{value:.3f} ± {(high - low) / 2:.2f}"
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


def fmt_params(count: int | float | None) -> str:
    """A parameter count the way people say it: ``135M``, ``3.21B``, ``40K``."""
    if _missing(count):
        return MISSING
    count = float(count)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= threshold * 0.9995:  # 999.6M reads as 1B, not 1e+03M
            return f"{count / threshold:.3g}{suffix}"
    return f"{count:.0f}"


def fmt_ms(value: float | None) -> str:
    return MISSING if _missing(value) else f"{value:,.1f} ms"


def fmt_rate(value: float | None) -> str:
    return MISSING if _missing(value) else f"{value:,.1f}/s"


def short_hash(value: str | None, length: int = 12) -> str:
    return MISSING if not value else value[:length]


METHOD_LABELS = {"lora": "LoRA", "qlora": "QLoRA", "prompt_tuning": "prompt tuning"}


def method_label(method: str | None) -> str:
    """A fine-tuning method as people write it: ``lora`` -> ``LoRA``."""
    if not method:
        return MISSING
    return METHOD_LABELS.get(method, method.replace("_", " "))


def kind_label(kind: str | None) -> str:
    return {"base": "base", "finetuned": "fine-tuned"}.get(kind or "", kind or MISSING)


# ---------------------------------------------------------------- moving between pages


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """``st.page_link`` to another page of the app (``"views/jobs.py"``).

    A page run on its own (``streamlit run streamlit_app/views/x.py``, AppTest) has no
    navigation to link into: the link is then shown as plain text.
    """
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        st.caption(f"→ {label}")


def switch_page(page: str) -> None:
    """``st.switch_page``, staying put when the page runs outside the app's navigation."""
    try:
        st.switch_page(page)
    except StreamlitPageNotFoundError:
        st.rerun()
