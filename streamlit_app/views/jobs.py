"""Fine-tuning jobs: the queue and history, live progress of a running job, cancel and resume.

Everything is read from the store, so reloading the page or restarting the server shows the
same jobs; a running job lives in its own process and is re-attached on every refresh.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import format as fmt
from core.jobs import kinds, queue, worker
from streamlit_app import common

# Plain symbols that every font has (emoji fonts are often missing on servers).
STATE_ICONS = {"queued": "…", "running": "▶", "succeeded": "✓", "failed": "✗", "cancelled": "■"}
REFRESH_S = 2


def _age(stamp: str | None) -> str:
    if not stamp:
        return fmt.MISSING
    seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()
    return f"{fmt.fmt_duration(max(0.0, seconds))} ago"


def _duration(job: dict) -> str:
    if not job.get("started_at"):
        return fmt.MISSING
    end = (
        datetime.fromisoformat(job["finished_at"])
        if job.get("finished_at")
        else datetime.now(timezone.utc)
    )
    return fmt.fmt_duration((end - datetime.fromisoformat(job["started_at"])).total_seconds())


def _label(job: dict) -> str:
    params = job["params"]
    what = params.get("task") or ", ".join(params.get("tasks") or [])
    return f"#{job['id']} {STATE_ICONS.get(job['state'], '')} {kinds.label(job['kind'])} · {params.get('model_id')} · {what}"


def _queue_table(jobs: list[dict]) -> None:
    rows = [
        {
            "Job": job["id"],
            "State": f"{STATE_ICONS.get(job['state'], '')} {job['state']}",
            "Kind": kinds.label(job["kind"]),
            "Model": job["params"].get("model_id"),
            "Task": job["params"].get("task") or ", ".join(job["params"].get("tasks") or []),
            "Phase": job.get("phase") or "",
            "Progress": float(job.get("progress") or 0.0),
            "Created": _age(job.get("created_at")),
            "Duration": _duration(job),
        }
        for job in jobs
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "Progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent"
            )
        },
    )


def _loss_chart(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    figure = go.Figure()
    figure.add_scatter(
        x=frame["step"], y=frame["train_loss"], mode="lines+markers", name="train loss"
    )
    validation = frame.dropna(subset=["val_loss"]).drop_duplicates("val_loss")
    if not validation.empty:
        figure.add_scatter(
            x=validation["step"],
            y=validation["val_loss"],
            mode="lines+markers",
            name="validation loss",
        )
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="step",
        yaxis_title="loss (completion tokens)",
        legend={"orientation": "h", "y": 1.12},
    )
    st.plotly_chart(figure, width="stretch")


def _training_view(db, job: dict) -> None:
    rows = queue.progress_rows(db, job["id"])
    if not rows:
        st.caption("No training steps logged yet.")
        return
    last = rows[-1]
    cols = st.columns(4)
    cols[0].metric("Step", f"{last['step']} / {last['total_steps']}")
    cols[1].metric("Train loss", fmt.fmt_score(last["train_loss"]))
    cols[2].metric("Validation loss", fmt.fmt_score(last["val_loss"]))
    cols[3].metric(
        "Tokens/s", f"{last['tokens_per_s']:.0f}" if last.get("tokens_per_s") else fmt.MISSING
    )
    _loss_chart(rows)


def _result_view(job: dict) -> None:
    result = job.get("result") or {}
    if job["kind"] == "finetune_compare" and "finetuned_score" in result:
        cols = st.columns(4)
        cols[0].metric("Base", f"{result['base_score']:.3f}")
        cols[1].metric(
            "Fine-tuned",
            f"{result['finetuned_score']:.3f}",
            delta=f"{result['improvement'] * 100:+.1f} pts",
        )
        cols[2].metric("Training time", fmt.fmt_duration(result.get("train_seconds") or 0))
        cols[3].metric("Total time", fmt.fmt_duration(result.get("seconds") or 0))
        common.page_link(
            "views/comparison.py", label="Open the comparison", icon=":material/compare_arrows:"
        )
    elif job["kind"] == "eval" and result:
        st.dataframe(
            pd.DataFrame(result.get("results", [result]))[
                ["task", "primary_metric", "score", "n_items", "items_per_s"]
            ],
            hide_index=True,
        )
        common.page_link(
            "views/leaderboard.py", label="Open the leaderboard", icon=":material/leaderboard:"
        )


def _stopped_actions(db, job: dict) -> None:
    if job["state"] == "failed":
        st.error(f"Failed: {job.get('error') or 'no reason recorded'}", icon=":material/error:")
    if job["state"] == "cancelled":
        st.warning(
            "Cancelled."
            + (f" Checkpoint saved: {job['checkpoint']}" if job.get("checkpoint") else "")
        )
    if job["kind"] == "eval":
        return
    points = queue.checkpoints(job)
    if not points:
        st.caption("No checkpoint was saved: resuming starts the training over.")
    steps = [step for step, _ in points]
    step = (
        st.selectbox(
            "Resume from checkpoint",
            steps,
            index=len(steps) - 1,
            format_func=lambda s: f"step {s}",
            key=f"ckpt_{job['id']}",
        )
        if steps
        else None
    )
    if st.button("Resume", key=f"resume_{job['id']}", icon=":material/play_arrow:"):
        try:
            new_id = queue.resume(db, job["id"], step)
        except Exception as exc:
            st.error(str(exc))
            return
        worker.ensure_worker()
        st.session_state["selected_job"] = new_id
        st.rerun()


@st.fragment(run_every=REFRESH_S)
def job_detail(job_id: int) -> None:
    db = common.get_db()
    job = queue.get(db, job_id)
    st.subheader(_label(job))
    if job["state"] in ("queued", "running"):
        eta = ""
        rows = queue.progress_rows(db, job_id) if job["kind"] != "eval" else []
        if rows and rows[-1].get("eta_s") is not None and job.get("phase") == "training":
            eta = f" · about {fmt.fmt_duration(rows[-1]['eta_s'])} left in training"
        st.progress(
            float(job.get("progress") or 0.0), text=f"{job.get('phase') or job['state']}{eta}"
        )
        if st.button("Cancel", key=f"cancel_{job_id}", icon=":material/stop:"):
            queue.request_cancel(db, job_id)
            st.toast(f"Cancel requested for job {job_id}: it saves a checkpoint and stops.")
    if job["kind"] != "eval":
        _training_view(db, job)
    if job["state"] == "succeeded":
        _result_view(job)
    if job["state"] in ("failed", "cancelled"):
        _stopped_actions(db, job)
    with st.expander("Log", expanded=job["state"] == "failed"):
        st.code(queue.log_tail(job, 40) or "(no output yet)", language="text")


def main() -> None:
    st.title("Jobs")
    db = common.get_db()
    jobs = queue.list_jobs(db, limit=200)
    pid = worker.running_worker_pid()
    active = [j for j in jobs if j["state"] in ("queued", "running")]
    if pid:
        st.caption(
            f"Worker running (pid {pid}): jobs run one at a time in their own processes and survive closing this page."
        )
    elif active:
        st.warning("Jobs are waiting but no worker is running.")
        if st.button("Start the worker"):
            worker.ensure_worker()
            st.rerun()
    if not jobs:
        st.info(
            "No jobs yet. Start one from **Run a model**, or on the command line: `finboard finetune-compare --model smollm2-135m-instruct --task fin_sentiment --method lora --preset quick`."
        )
        common.page_link("views/launch.py", label="Run a model", icon=":material/rocket_launch:")
        return
    _queue_table(jobs)
    ids = [j["id"] for j in jobs]
    wanted = st.session_state.get("selected_job")
    default = ids.index(wanted) if wanted in ids else (ids.index(active[0]["id"]) if active else 0)
    labels = {j["id"]: _label(j) for j in jobs}
    job_id = st.selectbox("Job", ids, index=default, format_func=labels.get)
    st.session_state["selected_job"] = job_id
    job_detail(job_id)


main()
