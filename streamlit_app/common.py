"""What every page needs: the cached store connection and links between pages.

UI only: no business logic here; data comes from ``core``, numbers are formatted by
``core.format``.
"""

from __future__ import annotations

import gc
import html
import sys

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core import paths, store
from core.store import Database

# ---------------------------------------------------------------- the store


_modules_when_frozen = 0


def freeze_imported_objects() -> None:
    """Exempt what the imports made from garbage collection, once per new set of modules.

    Streamlit runs a full collection after every script run; with the ML stack imported that
    walks some 400,000 long-lived objects (about 0.3 s a page load on a 2-core CPU). Frozen,
    they are skipped, and each run's own garbage is still collected. A page importing modules
    not seen before pays one collection, then freezes again.
    """
    global _modules_when_frozen
    if len(sys.modules) > _modules_when_frozen:
        gc.collect()
        gc.freeze()
        _modules_when_frozen = len(sys.modules)


@st.cache_resource(show_spinner=False, max_entries=8)
def open_db(path: str) -> Database:
    """The store at ``path``, opened once per path and process (cache functions call this)."""
    return store.connect(path)


def db_path() -> str:
    """The store's path as a string (the key of every per-store cache)."""
    return str(paths.db_path())


def get_db() -> Database:
    """The store at ``core.paths.db_path()``, opened once per path and process."""
    return open_db(db_path())


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


def kind_label(kind: str | None) -> str:
    """How the UI names a model kind."""
    return {"base": "base", "finetuned": "fine-tuned"}.get(kind or "", kind or "—")


CODE_CLASS = "fb-code"
# Streamlit draws a markdown <pre> as its own element (the class is dropped): style that one.
STYLE = """<style>
div[data-testid="stMarkdownPre"] { font-family: "Source Code Pro", ui-monospace, monospace; font-size: 0.82rem;
  background: rgba(128, 128, 128, 0.08); border-radius: 0.5rem; padding: 0.6rem 0.8rem;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 22rem; overflow-y: auto; }
</style>"""


def style() -> None:
    """The few styles the app adds (code blocks): once per page run, from app.py."""
    st.html(STYLE)  # a style-only html element is applied to the page and takes no space


def code_block(text: str, container=None) -> None:
    """Monospace text (a command, a prompt, a log) as plain HTML.

    ``st.code`` loads a syntax highlighter, about a quarter of a second of every page load
    on a small machine; commands and logs need no colours.
    """
    (container or st).markdown(
        f'<pre class="{CODE_CLASS}">{html.escape(text)}</pre>', unsafe_allow_html=True
    )
