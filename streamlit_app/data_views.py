"""Page parts of the data side: split-file upload, the quality report, the record preview.

UI only: the checks, the report and the preview come from ``core.tasks.prepared``,
``core.data.quality`` and ``core.training.preview``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.analysis import svg
from core.data import quality, uploads
from core.data.importer import ColumnMapping, DatasetImportError
from core.data.items import SPLIT_NAMES
from core.tasks.spec import TaskSpec, TaskSpecError, load_split
from core.training import preview
from streamlit_app import charts, common

USER_ERRORS = (DatasetImportError, TaskSpecError, ValueError, OSError)
REASON_COLOR = "#E45756"


# ---------------------------------------------------------------- the quality report


def report_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per reason with its count and an example (raw and kept first)."""
    rows = [
        {"reason": "raw", "records": report["raw"], "example": ""},
        {"reason": "kept", "records": report["kept"], "example": ""},
    ]
    for reason, count in report["rejected"].items():
        shown = (report.get("examples") or {}).get(reason) or []
        example = f"{shown[0]['id']}: {shown[0]['detail']}" if shown else ""
        rows.append({"reason": reason.replace("_", " "), "records": count, "example": example})
    return pd.DataFrame(rows)


def report_chart(report: dict[str, Any]) -> str:
    rows = [
        (reason.replace("_", " "), float(n), None, REASON_COLOR)
        for reason, n in report["rejected"].items()
    ]
    rows.insert(0, ("kept", float(report["kept"]), None, "#54A24B"))
    return svg.svg_hbars(rows, "records", value_format=".0f", title="quality report")


def quality_report(report: dict[str, Any], key: str) -> None:
    """The report as a line, a table, a bar chart and the leaked rows."""
    st.markdown("**Quality report:** " + quality.report_lines(report)[0])
    if report["mode"] == "report" and report["passed"] != report["raw"]:
        st.caption(
            "Report only: the flagged rows were kept (choose **Drop rejected rows** to drop them)."
        )
    left, right = st.columns([3, 2])
    left.dataframe(report_table(report), hide_index=True, key=f"{key}_table")
    charts.show(report_chart(report), right)
    if report.get("leakage"):
        st.warning(
            f"{len(report['leakage'])} validation / test rows also appear in an earlier split "
            "(leakage).",
            icon=":material/warning:",
        )
        st.dataframe(pd.DataFrame(report["leakage"]), hide_index=True, key=f"{key}_leaks")


def task_quality_section(specs: list[TaskSpec]) -> None:
    """Pick a user task with a stored report and show it, with its record preview."""
    from core.tasks.prepared import stored_report

    reports = {spec.name: stored_report(spec) for spec in specs if not spec.builtin}
    named = [name for name, report in reports.items() if report]
    if not named:
        return
    st.subheader("Quality reports")
    name = st.selectbox("Task", named, key="ds_quality_task")
    quality_report(reports[name], key="ds_quality")
    record_preview(next(s for s in specs if s.name == name), key="ds_preview")


# ---------------------------------------------------------------- the record preview


def record_preview(spec: TaskSpec, key: str, model_id: str | None = None) -> None:
    """How the first train (else test) record becomes the model's input, with its loss mask."""
    found = preview.tokenizer_for(model_id)
    items = load_split(spec, "train").items or load_split(spec, "test").items
    with st.expander("Preview: how a record becomes the model's input", expanded=False):
        if found is None or not items:
            st.caption("Prepare the model first (`finboard prepare`) to see its tokens.")
            return
        name, tokenizer, instruct = found
        shown = preview.record_preview(spec, items[0], tokenizer, instruct)
        st.caption(
            f"{name}; chat template {'applied' if shown['chat_template'] else 'not used'}: "
            f"{shown['prompt_tokens']} prompt tokens (no loss) + {shown['completion_tokens']} "
            "completion tokens (the loss, marked ⟦ ⟧)."
        )
        common.code_block(preview.marked_text(shown["tokens"]))


# ---------------------------------------------------------------- split files


def split_files_tab() -> None:
    """Upload a file per split (or instruction / chat records), check, clean and save."""
    from core.tasks.prepared import create_prepared_task

    st.caption(
        "A file per split (train, validation, test), or instruction "
        "`{instruction, input, output}` / chat `{messages}` records. Test rows that also sit in "
        "train are reported as leakage."
    )
    files: dict[str, Path] = {}
    for column, split in zip(st.columns(3), SPLIT_NAMES):
        upload = column.file_uploader(
            split.capitalize(), type=["csv", "tsv", "jsonl", "json"], key=f"ds_split_{split}"
        )
        if upload is not None:
            files[split] = uploads.save_upload(f"{split}-{upload.name}", upload.getvalue())
    kind = st.radio(
        "Task kind", ["choice", "numeric", "text"], horizontal=True, key="ds_split_kind"
    )
    cols = st.columns(3)
    first = cols[0].text_input(
        "Text / prompt column", key="ds_split_col1", help="Empty for records."
    )
    second = cols[1].text_input(
        "Label / answer column", key="ds_split_col2", help="Empty for records."
    )
    id_column = cols[2].text_input("Id column (optional)", key="ds_split_id")
    name = st.text_input("Task name", key="ds_split_name", placeholder="e.g. my_news")
    drop_rejected = st.checkbox("Drop rejected rows", key="ds_split_filter")
    drop_leakage = st.checkbox("Drop train rows leaked into validation / test", key="ds_split_leak")
    if not st.button("Check and save", type="primary", key="ds_split_save", disabled=not files):
        return
    roles = ("text", "label") if kind == "choice" else ("prompt", "answer")
    mapping = None
    if first.strip() and second.strip():
        mapping = ColumnMapping(
            **{roles[0]: first.strip(), roles[1]: second.strip(), "id": id_column.strip() or None}
        )
    try:
        spec, report = create_prepared_task(
            name.strip(),
            kind=kind if mapping or kind != "choice" else None,
            files=files,
            mapping=mapping,
            filter=drop_rejected,
            drop_leakage=drop_leakage,
        )
    except USER_ERRORS as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.success(f"Saved task **{spec.name}** ({spec.kind}).", icon=":material/save:")
    quality_report(report, key="ds_split_report")
