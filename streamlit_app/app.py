"""LLM Finance Leaderboard: the app's entry point (`streamlit run streamlit_app/app.py`).

Sets the page config and the navigation; each area of the app is one page script in
``streamlit_app/pages/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `core` and `streamlit_app` importable without installing
    sys.path.insert(0, str(REPO_ROOT))

import streamlit as st  # noqa: E402

PAGES_DIR = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="LLM Finance Leaderboard", page_icon="📈", layout="wide")

page = st.navigation(
    [
        st.Page(
            PAGES_DIR / "leaderboard.py",
            title="Leaderboard",
            icon=":material/leaderboard:",
            default=True,
        ),
    ]
)
page.run()
