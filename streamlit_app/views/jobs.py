"""Jobs: the queue and history, one live progress bar per job, cancel and resume.

Everything is read from the store, so reloading the page or restarting the server shows the
same jobs; a running job lives in its own process. The whole page body is one fragment that
refreshes every 2 s: the table, the picker and the job's panel always agree.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core import format as fmt
from core.analysis import utilisation
from core.jobs import kinds, queue, worker
from streamlit_app import charts, common

# Plain symbols that every font has (emoji fonts are often missing on servers).
STATE_ICONS = {"queued": "…", "running": "▶", "succeeded": "✓", "failed": "✗", "cancelled": "■"}
REFRESH_S = 2
LOG_LINES = 200


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


def _what(job: dict) -> str:
    params = job["params"]
    return params.get("task") or ", ".join(params.get("tasks") or [])


def _label(job: dict) -> str:
    icon = STATE_ICONS.get(job["state"], "")
    return f"#{job['id']} {icon} {kinds.label(job['kind'])} · {job['params'].get('model_id')} · {_what(job)}"


def queue_table(jobs: list[dict]) -> None:
    rows = [
        {
            "Job": job["id"],
            "State": f"{STATE_ICONS.get(job['state'], '')} {job['state']}",
            "Kind": kinds.label(job["kind"]),
            "Model": job["params"].get("model_id"),
            "Task": _what(job),
            "Phase": job.get("phase") or "",
            "Progress": f"{100 * float(job.get('progress') or 0.0):.0f}%",
            "Devices": job.get("devices") or "",
            "Created": _age(job.get("created_at")),
            "Duration": _duration(job),
        }
        for job in jobs
    ]
    # HTML, not a dataframe grid: the grid costs every load of this live page ~0.3 s
    common.static_table(pd.DataFrame(rows), max_height_rem=22)


def progress_bar(job: dict) -> None:
    """One bar for the whole job, across its phases, with the time left."""
    phase = job.get("phase") or job["state"]
    share = float(job.get("progress") or 0.0)
    eta = job.get("eta_s")
    left = f" · about {fmt.fmt_duration(eta)} left" if eta is not None and share > 0 else ""
    st.progress(share, text=f"{phase} · {100 * share:.0f}%{left}")
    plan = [p["name"] for p in job.get("plan") or []]
    if plan:
        current = plan.index(phase) if phase in plan else -1
        marks = [
            f"✓ {name}" if i < current else (f"**▶ {name}**" if i == current else name)
            for i, name in enumerate(plan)
        ]
        st.caption(" → ".join(marks))


def training_view(db, job: dict) -> None:
    curve = queue.training_curve(db, job["id"])
    if not curve:
        if job["state"] == "running":
            st.caption("Training has not logged a step yet.")
        return
    last = curve[-1]
    val = next((r["val_loss"] for r in reversed(curve) if r["val_loss"] is not None), None)
    common.tiles(
        [
            common.Tile("Step", f"{last['step']} / {last['total_steps']}"),
            common.Tile("Train loss", fmt.fmt_score(last["train_loss"])),
            common.Tile("Validation loss", fmt.fmt_score(val)),
            common.Tile("Tokens/s", fmt.fmt_rate(last.get("tokens_per_s")).removesuffix("/s")),
        ]
    )
    charts.show(charts.loss_curve(curve))


def eval_results(result: dict) -> pd.DataFrame:
    """An eval job's scores, formatted like the leaderboard's."""
    rows = result.get("results", [result])
    return pd.DataFrame(
        {
            "Task": [r["task"] for r in rows],
            "Metric": [r["primary_metric"] for r in rows],
            "Score [95% CI]": [
                fmt.fmt_ci(r["score"], *(r.get("ci") or [None, None])) for r in rows
            ],
            "Items": [r["n_items"] for r in rows],
            "Speed": [fmt.fmt_rate(r.get("items_per_s"), "items") for r in rows],
        }
    )


def result_view(job: dict) -> None:
    result = job.get("result") or {}
    if job["kind"] == "finetune_compare" and "finetuned_score" in result:
        gain = result["improvement"]
        common.tiles(
            [
                common.Tile("Base", fmt.fmt_ci(result["base_score"], *result["base_ci"])),
                common.Tile(
                    "Fine-tuned",
                    fmt.fmt_ci(result["finetuned_score"], *result["finetuned_ci"]),
                    fmt.fmt_points(gain),
                    "green" if gain and gain > 0 else "red" if gain and gain < 0 else None,
                ),
                common.Tile("Training time", fmt.fmt_duration(result.get("train_seconds"))),
                common.Tile("Total time", fmt.fmt_duration(result.get("seconds"))),
            ]
        )
        common.page_link(
            "views/comparison.py", label="Open the comparison", icon=":material/compare_arrows:"
        )
    elif job["kind"] == "eval" and result:
        st.dataframe(eval_results(result), hide_index=True, key=f"job_results_{job['id']}")
        common.page_link(
            "views/leaderboard.py", label="Open the leaderboard", icon=":material/leaderboard:"
        )
    elif result.get("model_id"):
        st.success(
            f"Registered **{result['model_id']}**: {result.get('steps')} steps in "
            f"{fmt.fmt_duration(result.get('train_seconds'))}."
        )


def stopped_actions(db, job: dict) -> None:
    if job["state"] == "failed":
        st.error(f"Failed: {job.get('error') or 'no reason recorded'}", icon=":material/error:")
    if job["state"] == "cancelled":
        st.warning(
            "Cancelled."
            + (f" Checkpoint saved: {job['checkpoint']}" if job.get("checkpoint") else "")
        )
    if not kinds.get(job["kind"]).trains:
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
        st.session_state.pop("followed_jobs", None)
        st.rerun()


def attempts_view(job: dict) -> None:
    """Each attempt of a job retried after running out of memory: its passes and its end."""
    if not job.get("attempts"):
        return
    st.markdown(f"**Attempts** ({len(job['attempts'])})")
    st.dataframe(
        pd.DataFrame(job["attempts"]).drop(columns=["resume_from"], errors="ignore"),
        hide_index=True,
        key=f"attempts_{job['id']}",
    )


def guard_view(db, job: dict) -> None:
    """The resource guard's pauses, resumes and shrinks, and the retries, with their seconds."""
    events = queue.events(db, job["id"])
    if not events:
        return
    table = pd.DataFrame(events)
    st.markdown(
        f"**Resource guard** (paused {fmt.fmt_duration(queue.paused_seconds(db, job['id']))})"
    )
    st.dataframe(
        pd.DataFrame(
            {
                "Time": [datetime.fromtimestamp(ts).strftime("%H:%M:%S") for ts in table["ts"]],
                "Event": table["kind"],
                "What": table["message"],
                "Seconds": [fmt.fmt_duration(v) if pd.notna(v) else "" for v in table["seconds"]],
            }
        ),
        hide_index=True,
        key=f"events_{job['id']}",
    )


def resources_view(job: dict) -> None:
    """The run's utilisation figures (stored with its result)."""
    line = utilisation.figures_line((job.get("result") or {}).get("resources"))
    if line:
        st.caption(f"Resources: {line}")


def log_view(job: dict, ours: list[str], library: list[str]) -> None:
    with st.expander("Log", expanded=job["state"] == "failed"):
        common.code_block("\n".join(ours) or "(no output yet)")
        if library:
            with st.expander(f"Library output ({len(library)} lines)"):
                common.code_block("\n".join(library))


def job_panel(db, job: dict) -> None:
    st.subheader(_label(job))
    ours, library = queue.log_lines(job, LOG_LINES)
    if job["state"] in ("queued", "running"):
        progress_bar(job)
        if job["state"] == "running" and ours:  # e.g. the last task scored, or the last step
            st.caption(f"Latest: {ours[-1]}")
        if st.button("Cancel", key=f"cancel_{job['id']}", icon=":material/stop:"):
            queue.request_cancel(db, job["id"])
            st.toast(f"Cancel requested for job {job['id']}: it saves a checkpoint and stops.")
    if kinds.get(job["kind"]).trains:
        training_view(db, job)
    guard_view(db, job)
    attempts_view(job)
    if job["state"] == "succeeded":
        result_view(job)
        resources_view(job)
    if job["state"] in ("failed", "cancelled"):
        stopped_actions(db, job)
    log_view(job, ours, library)


def worker_line(jobs: list[dict]) -> None:
    pid = worker.running_worker_pid()
    active = [j for j in jobs if j["state"] in ("queued", "running")]
    if pid:
        st.caption(
            f"Worker running (pid {pid}): jobs run in their own processes and survive closing "
            "this page."
        )
    elif active:
        st.warning("Jobs are waiting but no worker is running.")
        if st.button("Start the worker"):
            worker.ensure_worker()
            st.rerun()


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    db = common.get_db()
    queue.reap_stale(db)  # a job whose process and worker both died shows as failed
    jobs = queue.list_jobs(db, limit=200)
    worker_line(jobs)
    if not jobs:
        st.info(
            "No jobs yet. Start one from **Run a model**, or on the command line: "
            "`finboard finetune-compare --model smollm2-135m-instruct --task fin_sentiment "
            "--method lora --preset quick`."
        )
        common.page_link("views/launch.py", label="Run a model", icon=":material/rocket_launch:")
        return
    queue_table(jobs)
    ids = [j["id"] for j in jobs]
    shown = queue.job_to_show(
        jobs, st.session_state.get("selected_job"), st.session_state.get("followed_jobs")
    )
    labels = {j["id"]: _label(j) for j in jobs}
    job_id = st.selectbox("Job", ids, index=ids.index(shown), format_func=labels.get)
    if job_id != shown:  # the user picked another job: it stays shown
        st.session_state["selected_job"] = job_id
        st.session_state.pop("followed_jobs", None)
    job_panel(db, next(j for j in jobs if j["id"] == job_id))


def main() -> None:
    st.title("Jobs")
    live()


main()
