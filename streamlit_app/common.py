"""What every page needs: the cached store connection and links between pages.

UI only: no business logic here; data comes from ``core``, numbers are formatted by
``core.format``.
"""

from __future__ import annotations

import gc
import html
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
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
TABLE_CLASS = "fb-table"
# Streamlit draws a markdown <pre> as its own element (the class is dropped): style that one.
STYLE = """<style>
div[data-testid="stMarkdownPre"], pre.fb-code { font-family: "Source Code Pro", ui-monospace, monospace; font-size: 0.82rem;
  background: rgba(128, 128, 128, 0.08); border-radius: 0.5rem; padding: 0.6rem 0.8rem;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 22rem; overflow-y: auto; }
table.fb-table { border-collapse: collapse; width: 100%; font-size: 0.875rem; }
table.fb-table th { text-align: left; font-weight: 600; color: rgba(49, 51, 63, 0.7);
  border-bottom: 1px solid rgba(49, 51, 63, 0.2); padding: 0.35rem 0.6rem; white-space: nowrap; }
table.fb-table th[title] { text-decoration: underline dotted; cursor: help; }
.fb-card { font-size: 0.95rem; line-height: 1.6; }
.fb-bordered { border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; padding: 1rem; }
.fb-card summary { cursor: pointer; }
.fb-card-grid { display: grid; grid-template-columns: repeat(4, 1fr); gap: 1rem; margin: 0.4rem 0; }
.fb-muted { color: rgba(49, 51, 63, 0.6); font-size: 0.875rem; }
.fb-scroll { overflow-y: auto; }
.fb-scroll table.fb-table th { position: sticky; top: 0; background: white; }
.fb-tiles { display: grid; gap: 1rem; margin: 0.25rem 0 0.75rem; }
.fb-tile { border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; padding: 0.75rem 1rem; }
.fb-tile-label { font-size: 0.875rem; color: rgb(49, 51, 63); }
.fb-tile[title] .fb-tile-label { text-decoration: underline dotted; cursor: help; }
.fb-tile-value { font-size: 2.25rem; line-height: 1.25; overflow-wrap: anywhere; }
.fb-tiles-wrap { display: flex; flex-wrap: wrap; }
.fb-tiles-wrap .fb-tile { flex: 1 1 auto; min-width: var(--fb-tile-min); }
.fb-tiles-wrap .fb-tile-value { white-space: nowrap; }
.fb-tile-delta { display: inline-block; font-size: 0.875rem; border-radius: 1rem;
  padding: 0.05rem 0.5rem; margin-top: 0.25rem; background: rgba(49, 51, 63, 0.06);
  color: rgba(49, 51, 63, 0.7); }
.fb-tile-delta.green { background: rgba(33, 195, 84, 0.12); color: rgb(21, 130, 55); }
.fb-tile-delta.red { background: rgba(255, 43, 43, 0.09); color: rgb(200, 30, 30); }
.fb-tile-delta.orange { background: rgba(255, 164, 33, 0.12); color: rgb(171, 95, 0); }
.fb-board { overflow-x: auto; margin-bottom: 0.5rem; }
.fb-board table.fb-table td { white-space: nowrap; }
.fb-board table.fb-table td.fb-stick2 { white-space: normal; min-width: 14rem; max-width: 22rem; }
.fb-board .fb-stick1, .fb-board .fb-stick2 { position: sticky; background: white; z-index: 1; }
.fb-board .fb-stick1 { left: 0; min-width: 3.2rem; max-width: 3.2rem; }
.fb-board .fb-stick2 { left: 3.2rem; box-shadow: 1px 0 0 rgba(49, 51, 63, 0.12); }
.fb-bar { display: inline-block; width: 3rem; height: 0.45rem; border-radius: 0.25rem;
  background: rgba(49, 51, 63, 0.1); margin-right: 0.45rem; vertical-align: middle; overflow: hidden; }
.fb-bar span { display: block; height: 100%; }
table.fb-table td { border-bottom: 1px solid rgba(49, 51, 63, 0.08); padding: 0.35rem 0.6rem; }
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


@dataclass(frozen=True)
class Tile:
    """One figure of a row of tiles: a label, a value, an optional note under it (``delta``,
    coloured ``green``, ``red`` or ``orange``; grey otherwise) and a hover text."""

    label: str
    value: str
    delta: str | None = None
    color: str | None = None
    help: str | None = None


TILE_CLASS = "fb-tiles"


def tiles(row: list[Tile], container=None, min_width_rem: float | None = None) -> None:
    """Figures side by side in bordered tiles, as one HTML element.

    Looks like a row of bordered ``st.metric`` s; one element instead of a column and a metric
    per figure, a few hundredths of a second less per page load each on a small machine.
    With ``min_width_rem`` the tiles wrap onto further rows rather than narrow below it.
    """
    esc = html.escape
    cells = []
    for tile in row:
        tip = f' title="{esc(tile.help)}"' if tile.help else ""
        delta = (
            f'<div class="fb-tile-delta {esc(tile.color or "")}">{esc(tile.delta)}</div>'
            if tile.delta
            else ""
        )
        cells.append(
            f'<div class="fb-tile"{tip}><div class="fb-tile-label">{esc(tile.label)}</div>'
            f'<div class="fb-tile-value">{esc(tile.value)}</div>{delta}</div>'
        )
    if min_width_rem:  # each as wide as its figure, at least this, wrapping where short
        layout = f'class="{TILE_CLASS} fb-tiles-wrap" style="--fb-tile-min: {min_width_rem}rem"'
    else:  # equal columns, like st.columns
        layout = f'class="{TILE_CLASS}" style="grid-template-columns: repeat({len(row)}, 1fr)"'
    (container or st).html(f"<div {layout}>{''.join(cells)}</div>")


def static_table(
    frame: pd.DataFrame,
    tooltips: dict[str, str] | None = None,
    cell_style: Callable[[str, str], str | None] | None = None,
    container=None,
    max_height_rem: float | None = None,
    column_classes: dict[str, str] | None = None,
    cell_html: dict[str, Callable[[object], str]] | None = None,
    wrapper_class: str | None = None,
) -> None:
    """A small read-only table (a few rows, nothing to sort or scroll) as plain HTML.

    ``st.dataframe``'s grid is a component the browser loads and starts on every page load:
    about 0.3 s of the load on a small machine, for a table of five rows. ``tooltips`` explain
    columns (shown on hover over the header); ``cell_style(column, text)`` may give a cell CSS;
    ``max_height_rem`` scrolls a longer table inside that height, its header kept in view.
    ``column_classes`` give a column's cells a CSS class; ``cell_html[column](value)`` draws
    that column's cells as markup our code builds (its own texts escaped); ``wrapper_class``
    puts the table in a ``div`` of that class.
    """
    tips, classes, drawers = tooltips or {}, column_classes or {}, cell_html or {}

    def attributes(column: str, style: str | None = None) -> str:
        css = f' class="{html.escape(classes[column])}"' if column in classes else ""
        return css + (f' style="{html.escape(style)}"' if style else "")

    head = "".join(
        f"<th{attributes(c)}"
        + (f' title="{html.escape(tips[c])}"' if c in tips else "")
        + f">{html.escape(str(c))}</th>"
        for c in frame.columns
    )
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            if column in drawers:
                cells.append(f"<td{attributes(column)}>{drawers[column](value)}</td>")
                continue
            text = (
                "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
            )
            style = cell_style(column, text) if cell_style else None
            cells.append(f"<td{attributes(column, style)}>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = (
        f'<table class="{TABLE_CLASS}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    if max_height_rem is not None:
        table = f'<div class="fb-scroll" style="max-height: {max_height_rem}rem">{table}</div>'
    if wrapper_class is not None:
        table = f'<div class="{html.escape(wrapper_class)}">{table}</div>'
    (container or st).html(table)
