"""Robustness slices on the pages: the tables and charts come from ``core.analysis.slices``."""

from __future__ import annotations

import streamlit as st

from core import format as fmt
from core.analysis import slices
from streamlit_app import charts

VERDICT_NOTE = (
    "Verdicts on the primary metric over slices with enough items: within a dimension the "
    "relative drop from the best slice to the worst must stay under the task's threshold "
    "(default 10%); between gold classes the gap must stay under its threshold in points "
    "(default 5). Thresholds: the task file's `robustness`."
)


def comparison_section(detail) -> None:
    """Base vs fine-tuned per slice for one task of a comparison, and the baseline beside."""
    table = slices.baseline_table(detail)
    if table is not None and not table.empty:
        st.markdown(f"**Rule-based baseline on the same items:** {detail.baseline['name']}")
        st.dataframe(table, hide_index=True, width="stretch")
    found = detail.slices
    if not found:
        st.caption("No slices stored for these scores (scored before slices were recorded).")
        return
    st.markdown(f"**Robustness slices** · {found['primary_metric']}")
    st.dataframe(slices.verdict_table(found["verdicts"]), hide_index=True, width="stretch")
    st.caption(VERDICT_NOTE)
    st.dataframe(slices.comparison_slice_table(found), hide_index=True, width="stretch")
    colors = (fmt.PALETTE["base"], fmt.PALETTE["tuned"])
    charts.show(slices.comparison_chart(found, colors))


def score_section(score: dict) -> None:
    """One score's slices (the leaderboard's detail view)."""
    report = slices.stored(score)
    if not report:
        st.info("This score was stored before slices were recorded: evaluate again to get them.")
        return
    st.dataframe(slices.score_verdict_table(report), hide_index=True, width="stretch")
    st.caption(VERDICT_NOTE)
    st.dataframe(slices.score_slice_table(report), hide_index=True, width="stretch")
    charts.show(slices.score_chart(report, fmt.PALETTE["base"]))
