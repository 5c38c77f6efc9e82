"""GPU monitor: live utilisation, memory, temperature and power per GPU (NVML), CPU and RAM.

Samples come from ``core.monitoring``: a running job records its own every 2 s; while no job
runs, this page records one per refresh so the charts stay live. No GPU is a normal state.
"""

from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import monitoring
from core.jobs import kinds, queue
from core.store import samples as sample_rows
from streamlit_app import common

WINDOW_S = 600
REFRESH_S = 2
GAP_S = 3 * REFRESH_S  # a longer silence between samples is drawn as a gap


def _recent(db, since: float) -> pd.DataFrame:
    frame = pd.DataFrame(sample_rows.since(db, since))
    if not frame.empty:
        frame["time"] = pd.to_datetime(frame["ts"], unit="s")
    return frame


def with_gaps(part: pd.DataFrame, column: str) -> tuple[list, list]:
    """The samples as (times, values), broken where none was taken for a while.

    Samples are taken only while a job runs or this page is open: a straight line across the
    time in between would show readings nobody took.
    """
    xs, ys, last = [], [], None
    for ts, when, value in zip(part["ts"], part["time"], part[column], strict=True):
        if last is not None and ts - last > GAP_S:
            xs.append(when)
            ys.append(None)
        xs.append(when)
        ys.append(value)
        last = ts
    return xs, ys


def _line(
    frame: pd.DataFrame,
    column: str,
    title: str,
    unit: str,
    by_gpu: bool,
    max_value: float | None = None,
) -> None:
    figure = go.Figure()
    groups = frame.groupby("gpu_index") if by_gpu else [(None, frame.drop_duplicates("ts"))]
    for gpu, part in groups:
        xs, ys = with_gaps(part, column)
        figure.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            connectgaps=False,
            name=f"GPU {int(gpu)}" if gpu is not None else title,
        )
    figure.update_layout(
        title=title,
        height=240,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=unit,
        showlegend=by_gpu,
    )
    if max_value:
        figure.update_yaxes(range=[0, max_value])
    st.plotly_chart(figure, width="stretch")


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    db = common.get_db()
    running = queue.list_jobs(db, limit=5, states=("running",))
    if not running:
        monitoring.record(db)  # a running job samples itself
    frame = _recent(db, time.time() - WINDOW_S)
    if running:
        job = running[0]
        energy = monitoring.energy_wh(db, job["id"])
        cols = st.columns(3)
        cols[0].metric("Running job", f"#{job['id']} {kinds.label(job['kind'])}")
        cols[1].metric("Phase", job.get("phase") or "running")
        cols[2].metric(
            "Energy so far",
            f"{energy:.2f} Wh" if energy is not None else "not measured (no GPU power)",
        )
    else:
        st.caption("No job is running.")
    if frame.empty:
        st.caption("Collecting the first samples…")
        return
    gpu = frame.dropna(subset=["gpu_index"])
    if not gpu.empty:
        left, right = st.columns(2)
        with left:
            _line(gpu, "gpu_util", "GPU utilisation", "%", True, 100)
            _line(gpu, "gpu_temp_c", "GPU temperature", "°C", True)
        with right:
            _line(
                gpu,
                "gpu_mem_used_mb",
                "GPU memory used",
                "MB",
                True,
                float(gpu["gpu_mem_total_mb"].max()),
            )
            _line(gpu, "gpu_power_w", "GPU power", "W", True)
    latest = frame.iloc[-1]
    cols = st.columns(2)
    cols[0].metric("CPU", f"{latest['cpu_percent']:.0f} %")
    cols[1].metric(
        "RAM", f"{latest['ram_used_mb'] / 1024:.1f} / {latest['ram_total_mb'] / 1024:.1f} GB"
    )
    left, right = st.columns(2)
    with left:
        _line(frame, "cpu_percent", "CPU utilisation", "%", False, 100)
    with right:
        frame = frame.assign(ram_used_gb=frame["ram_used_mb"] / 1024)
        _line(
            frame, "ram_used_gb", "RAM used", "GB", False, float(frame["ram_total_mb"].max() / 1024)
        )


def main() -> None:
    st.title("GPU monitor")
    if monitoring.gpu_available():
        st.success(monitoring.status_line(), icon=":material/memory:")
    else:
        st.info(monitoring.status_line(), icon=":material/info:")
    st.caption(f"The last {WINDOW_S // 60} minutes, refreshed every {REFRESH_S} s.")
    live()


main()
