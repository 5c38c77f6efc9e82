"""LLM Finance Leaderboard: the app's entry point (`streamlit run streamlit_app/app.py`).

Sets the page config and the navigation; each area of the app is one page script in
``streamlit_app/views/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `core` and `streamlit_app` importable without installing
    sys.path.insert(0, str(REPO_ROOT))

import streamlit as st  # noqa: E402

from core.jobs import queue, worker  # noqa: E402
from streamlit_app import access, common  # noqa: E402

PAGES_DIR = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="LLM Finance Leaderboard", page_icon="📈", layout="wide")
access.guard()  # before anything of the store is read or shown

PAGES = {
    "Results": [
        ("leaderboard.py", "Leaderboard", ":material/leaderboard:"),
        ("comparison.py", "Comparison", ":material/compare_arrows:"),
        ("cost_roi.py", "Cost and ROI", ":material/payments:"),
    ],
    "Run": [
        ("launch.py", "Run a model", ":material/rocket_launch:"),
        ("jobs.py", "Jobs", ":material/model_training:"),
        ("compare_methods.py", "Compare methods", ":material/view_column:"),
        ("playground.py", "Playground", ":material/chat:"),
        ("gpu_monitor.py", "GPU monitor", ":material/monitor_heart:"),
        ("datasets.py", "Datasets", ":material/dataset:"),
    ],
}

HOME = "leaderboard.py"  # served at the root URL, and at /leaderboard like every page


def _page(file: str, title: str, icon: str) -> st.Page:
    return st.Page(PAGES_DIR / file, title=title, icon=icon, url_path=file.removesuffix(".py"))


sections = {section: [_page(*entry) for entry in entries] for section, entries in PAGES.items()}
home_entry = next(entry for entries in PAGES.values() for entry in entries if entry[0] == HOME)
# The root URL runs the home page; a hidden page of the same script answers its own URL, so a
# link to /leaderboard works like /comparison does (the default page is only served at /).
sections["Results"].insert(
    0,
    st.Page(
        PAGES_DIR / HOME, title=home_entry[1], icon=home_entry[2], url_path="home", default=True
    ),
)
sections["Results"][1] = st.Page(
    PAGES_DIR / HOME,
    title=home_entry[1],
    icon=home_entry[2],
    url_path="leaderboard",
    visibility="hidden",
)
page = st.navigation(sections, position="top")
common.style()
db = common.get_db()
if queue.list_jobs(db, limit=1, states=("queued",)) and worker.running_worker_pid() is None:
    worker.ensure_worker()  # jobs wait and nobody runs them: start the one detached worker
page.run()
common.freeze_imported_objects()  # after the page: its imports are loaded by now
