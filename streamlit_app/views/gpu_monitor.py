"""GPU monitor: live utilisation, memory, temperature and power per GPU (NVML), CPU and RAM.

Samples come from ``core.monitoring``: a running job records its own every 2 s; while no job
runs, this page records one per refresh so the charts stay live. No GPU is a normal state.
"""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import streamlit as st

from core import format as fmt
from core import guard, monitoring
from core.analysis import svg
from core.jobs import kinds, queue
from core.store import samples as sample_rows
from streamlit_app import charts, common

WINDOW_S = 600
REFRESH_S = 2
GAP_S = 3 * REFRESH_S  # a longer silence between samples is drawn as a gap


def _recent(db, since: float) -> pd.DataFrame:
    return pd.DataFrame(sample_rows.since(db, since))


def with_gaps(part: pd.DataFrame, column: str) -> tuple[list[float], list[float | None]]:
    """The samples as (times, values), broken where none was taken for a while.

    Samples are taken only while a job runs or this page is open: a straight line across the
    time in between would show readings nobody took.
    """
    xs: list[float] = []
    ys: list[float | None] = []
    last = None
    for ts, value in zip(part["ts"], part[column], strict=True):
        if last is not None and ts - last > GAP_S:
            xs.append(ts)
            ys.append(None)
        xs.append(float(ts))
        ys.append(None if pd.isna(value) else float(value))
        last = ts
    return xs, ys


def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _line(
    frame: pd.DataFrame,
    column: str,
    title: str,
    unit: str,
    by_gpu: bool,
    max_value: float | None = None,
) -> None:
    groups = frame.groupby("gpu_index") if by_gpu else [(None, frame.drop_duplicates("ts"))]
    series = []
    for number, (gpu, part) in enumerate(groups):
        xs, ys = with_gaps(part, column)
        name = f"GPU {int(gpu)}" if gpu is not None else title
        series.append((name, fmt.PALETTE["series"][number % len(fmt.PALETTE["series"])], xs, ys))
    st.markdown(f"**{title}**")
    y_range = (0.0, max_value) if max_value else None
    picture = svg.svg_lines(
        series,
        "time",
        unit,
        x_label=clock,
        y_range=y_range,
        markers=False,
        title=title,
        height=220,
    )
    charts.show(picture)


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
        common.tiles(
            [
                common.Tile("Running job", f"#{job['id']} {kinds.label(job['kind'])}"),
                common.Tile("Phase", job.get("phase") or "running"),
                common.Tile(
                    "Energy so far",
                    f"{energy:.2f} Wh" if energy is not None else "not measured",
                    None if energy is not None else "no GPU power readings",
                ),
            ]
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
    common.tiles(
        [
            common.Tile("CPU", f"{latest['cpu_percent']:.0f} %"),
            common.Tile(
                "RAM",
                f"{latest['ram_used_mb'] / 1024:.1f} / {latest['ram_total_mb'] / 1024:.1f} GB",
            ),
        ]
    )
    left, right = st.columns(2)
    with left:
        _line(frame, "cpu_percent", "CPU utilisation", "%", False, 100)
    with right:
        frame = frame.assign(ram_used_gb=frame["ram_used_mb"] / 1024)
        _line(
            frame, "ram_used_gb", "RAM used", "GB", False, float(frame["ram_total_mb"].max() / 1024)
        )


def guard_limits() -> None:
    """The resource guard's limits in force, and a form to change them (FINBOARD_HOME's file)."""
    st.subheader("Resource guard")
    try:
        settings = guard.load_settings()
    except guard.GuardConfigError as exc:
        st.error(f"The guard settings cannot be used: {exc}", icon=":material/error:")
        return
    limits = guard.limits_from(settings)
    rows = guard.limits_table(limits)
    if rows:
        st.dataframe(
            pd.DataFrame(
                {
                    "GPU": [row["gpu"] for row in rows],
                    "Max temperature": [_limit(row["max_temp_c"], "°C") for row in rows],
                    "Max power": [_limit(row["max_power_w"], "W") for row in rows],
                    "From": [row["from"] for row in rows],
                }
            ),
            hide_index=True,
        )
    else:
        st.caption(
            f"No GPU: CPU runs pause while less than {settings.min_free_ram_mb:.0f} MB of RAM "
            "is free."
        )
    st.caption(
        f"Over a limit, training {'pauses' if settings.action == 'pause' else 'runs smaller passes'}"
        f" between optimizer steps and resumes {settings.temp_hysteresis_c:g} °C / "
        f"{settings.power_hysteresis_w:g} W under it. Out-of-memory runs are retried "
        f"{settings.oom_retries} times with half the micro-batch."
    )
    with st.form("guard_limits"):
        cols = st.columns(4)
        temp = cols[0].number_input(
            "Max GPU temperature (°C, 0: NVML's)",
            min_value=0.0,
            value=float(settings.max_temp_c) if isinstance(settings.max_temp_c, float) else 0.0,
            help="Every GPU. The default is the GPU's slowdown temperature minus "
            f"{settings.temp_margin_c:g} °C.",
        )
        power = cols[1].number_input(
            "Max GPU power (W, 0: NVML's)",
            min_value=0.0,
            value=float(settings.max_power_w) if isinstance(settings.max_power_w, float) else 0.0,
            help=f"Every GPU. The default is its power limit minus {settings.power_margin_pct:g}%.",
        )
        floor = cols[2].number_input(
            "Free RAM floor (MB, CPU runs)", min_value=0.0, value=settings.min_free_ram_mb
        )
        action = cols[3].selectbox(
            "Over a limit", guard.ACTIONS, index=guard.ACTIONS.index(settings.action)
        )
        if st.form_submit_button("Save limits"):
            values = {
                "max_temp_c": temp or None,
                "max_power_w": power or None,
                "min_free_ram_mb": floor,
                "action": action,
            }
            try:
                guard.save_overrides(values)
            except guard.GuardConfigError as exc:
                st.error(str(exc))
            else:
                st.success("Saved: jobs started from now on use these limits.")


def _limit(value: float | None, unit: str) -> str:
    return f"{value:.0f} {unit}" if value is not None else "not limited (not reported)"


def main() -> None:
    st.title("GPU monitor")
    if monitoring.gpu_available():
        st.success(monitoring.status_line(), icon=":material/memory:")
    else:
        st.info(monitoring.status_line(), icon=":material/info:")
    st.caption(f"The last {WINDOW_S // 60} minutes, refreshed every {REFRESH_S} s.")
    live()
    guard_limits()


main()
