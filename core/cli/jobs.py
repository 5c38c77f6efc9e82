"""``finboard`` commands for background jobs.

finboard train --model ID --task T [--method M] [--preset P] [--set k=v]   fine-tune (a job)
finboard finetune-compare --model ID --task T ...    base score, fine-tune, fine-tuned score
finboard jobs                                        the job table
finboard cancel JOB / finboard resume JOB            stop a job / continue it from a checkpoint
finboard worker                                      run the job worker in the foreground
finboard demo                                        fill the leaderboard with real runs
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from core.cli.support import dumps, open_store, run, strict
from core.format import fmt_duration

FOLLOW_POLL_S = 0.5
TERMINAL = ("succeeded", "failed", "cancelled")

_run = run
_db = open_store
_clean = strict


# ---------------------------------------------------------------- following a job


class _JobBar:
    """One tqdm bar on stderr for the whole job: its share done, the phase it is in, and the
    job's own ETA (from its plan and measured speeds; tqdm's rate would only describe the
    percentages seen so far). Training adds the step count."""

    def __init__(self) -> None:
        self.bar: Any = None

    def show(self, phase: str, fraction: float, eta_s: float | None, detail: str = "") -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=100,
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
            )
        self.bar.set_description_str(phase, refresh=False)
        eta = f"ETA {fmt_duration(eta_s)}" if eta_s is not None else ""
        self.bar.set_postfix_str(", ".join(part for part in (detail, eta) if part), refresh=False)
        self.bar.update(max(0.0, 100 * fraction - self.bar.n))  # never back, as the job's bar
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def follow(db: Any, job_id: int, poll_s: float = FOLLOW_POLL_S) -> dict[str, Any]:
    """Show the job's progress bar until it ends; returns its final row."""
    from core.jobs import queue, worker

    bar = _JobBar()
    last_check = 0.0
    try:
        while True:
            job = queue.get(db, job_id)
            if job["state"] in TERMINAL:
                if job["state"] == "succeeded" and bar.bar is not None:
                    bar.show("done", 1.0, None)  # the last poll may have seen 91 %
                return job
            if job["state"] == "queued" and time.monotonic() - last_check > 10:
                worker.ensure_worker()  # the worker may have gone idle in between
                last_check = time.monotonic()
            phase = (job["phase"] or "starting") if job["state"] == "running" else "queued"
            bar.show(phase, job["progress"] or 0.0, job.get("eta_s"), _step_detail(db, job))
            time.sleep(poll_s)
    finally:
        bar.close()


def _step_detail(db: Any, job: dict[str, Any]) -> str:
    """While a job trains: "step 5/12" (before its first step: "preparing the first step")."""
    from core.jobs import queue

    if job["phase"] != "training":
        return ""
    row = queue.latest_progress(db, job["id"])
    if row and row["total_steps"]:
        return f"step {row['step']}/{row['total_steps']}"
    return "preparing the first step"


def _report_end(job: dict[str, Any], as_json: bool) -> None:
    """Print how the job ended; a failure becomes one clear error line (exit status 1)."""
    if job["state"] == "failed":
        raise click.ClickException(
            f"Job {job['id']} failed: {job['error']} (log: {job['log_path']})"
        )
    if job["state"] == "cancelled":
        where = f"; resume with `finboard resume {job['id']}`" if job.get("checkpoint") else ""
        click.echo(f"Job {job['id']} was cancelled{where}", err=True)
        if as_json:
            click.echo(
                json.dumps(
                    {"job_id": job["id"], "state": "cancelled", "checkpoint": job.get("checkpoint")}
                )
            )
        raise SystemExit(1)
    result = _clean(job["result"] or {})
    _summary(job, result)
    if as_json:
        click.echo(dumps({**result, "job_id": job["id"]}))


def _summary(job: dict[str, Any], result: dict[str, Any]) -> None:
    if "finetuned_score" in result:
        click.echo(
            f"{result['task']}: {result['primary_metric']} {result['base_score']:.3f} (base) → "
            f"{result['finetuned_score']:.3f} ({result['finetuned_model']}), "
            f"{result['seconds']:.0f} s",
            err=True,
        )
        for note in result.get("training_notes") or []:
            if note.startswith("time budget"):
                click.echo(f"  {note}", err=True)
        if result.get("model_kind") == "encoder":  # each head against its majority class
            for task in result.get("tasks") or []:
                low, high = task["improvement_ci"]
                click.echo(
                    f"  {task['task']}: {task['primary_metric']} {task['base_score']:.3f} "
                    f"(majority '{task['majority_label']}') → {task['finetuned_score']:.3f}, "
                    f"paired 95% CI of the gain [{low:+.3f}, {high:+.3f}]",
                    err=True,
                )
        elif result.get("overall") is not None or result.get("tasks"):
            from core import format as fmt  # scored on every task: per-task table and gains
            from core.analysis import gains

            table = fmt.text_table(gains.GAIN_HEADERS, gains.gain_table_rows(result))
            click.echo(table + "\n" + gains.resource_line(result), err=True)
    elif "model_id" in result:
        click.echo(
            f"Registered {result['model_id']}: {result['steps']} steps, "
            f"{result['train_seconds']:.0f} s training, {result['tokens_per_s']:.0f} tokens/s",
            err=True,
        )
    click.echo(f"Job {job['id']} succeeded", err=True)


def submit_and_follow(
    ctx: click.Context, kind: str, params: dict[str, Any], wait: bool, as_json: bool
) -> None:
    """Queue a ``kind`` job, make sure the worker runs, and follow it (unless ``wait`` is off)."""
    from core.jobs import queue, worker

    db = _db(ctx)
    job_id = _run(lambda: queue.submit(db, kind, params))
    job = queue.get(db, job_id)
    click.echo(f"Job {job_id} queued ({kind}: {job['params'].get('new_model_id', '')})", err=True)
    if params.get("external"):
        from core.jobs.launch import machines_command

        example = shlex.join(machines_command(job_id, 2, 0, 2, "HEAD_IP")[2:])
        click.echo(
            f"Job {job_id} waits for a multi-machine launch. On each machine R of N, with the "
            f"store at the same FINBOARD_DB:\n  python {example}\n(--machine_rank R, "
            "--num_machines N, --num_processes = all GPUs together)",
            err=True,
        )
        if as_json:
            click.echo(json.dumps({"job_id": job_id, "state": "queued"}))
        return
    pid = _run(worker.ensure_worker)
    if not wait:
        click.echo(f"Worker pid {pid}; follow with `finboard jobs`", err=True)
        if as_json:
            click.echo(json.dumps({"job_id": job_id, "state": "queued"}))
        return
    _report_end(_follow_until_end(db, job_id), as_json)


def _follow_until_end(db: Any, job_id: int) -> dict[str, Any]:
    """``follow``; Ctrl-C stops following, not the job."""
    try:
        return follow(db, job_id)
    except KeyboardInterrupt:
        click.echo(
            f"\nStopped following job {job_id}; it keeps running "
            f"(`finboard jobs` to check, `finboard cancel {job_id}` to stop it)",
            err=True,
        )
        raise SystemExit(130) from None


# ---------------------------------------------------------------- commands


def _show_settings(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--help-settings``: every training setting with its default and help, then exit."""
    if not value or ctx.resilient_parsing:
        return
    from core.training.config import settings_help

    click.echo(settings_help())
    ctx.exit()


def _training_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--help-settings",
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_show_settings,
            help="Explain every training setting and exit.",
        ),
        click.option(
            "--model", "model_id", required=True, help="Base model id (`finboard models`)."
        ),
        click.option("--task", "task", required=True, help="Task to train on (`finboard tasks`)."),
        click.option(
            "--method",
            type=click.Choice(["lora", "qlora", "prompt-tuning", "head", "full"]),
            default=None,
            help="Default: the preset's method (lora). head / full: encoders only.",
        ),
        click.option(
            "--preset",
            default=None,
            help="Training preset from configs/presets/, e.g. quick or standard.",
        ),
        click.option(
            "--set",
            "settings",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override one training setting; repeat for several.",
        ),
        click.option(
            "--gpus",
            default=None,
            metavar="N|all",
            help="GPUs for one data-parallel run (default 1; 'all': every GPU).",
        ),
        click.option(
            "--processes",
            type=click.IntRange(min=1),
            default=None,
            help="Without a GPU: CPU processes for one data-parallel run (default 1).",
        ),
        click.option(
            "--external",
            is_flag=True,
            help="Queue it for a multi-machine launch to run (the worker leaves it): see the "
            "README, 'More than one GPU'.",
        ),
        click.option(
            "--wait/--no-wait",
            default=True,
            show_default=True,
            help="Follow the job with progress bars until it ends.",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print the job's result object as the last line.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _training_params(
    model_id: str, task: str, method: str | None, preset: str | None, settings: tuple[str, ...]
) -> dict[str, Any]:
    from core.training.config import parse_overrides

    overrides = _run(lambda: parse_overrides(settings))
    if method:
        overrides["method"] = method
    return {"model_id": model_id, "task": task, "preset": preset, "overrides": overrides}


def _training_command(name: str, kind: str, summary: str) -> click.Command:
    """A command that submits a ``kind`` job from the training options (train, finetune-compare)."""

    @click.command(name, help=summary)
    @_training_options
    @click.pass_context
    def command(
        ctx: click.Context,
        model_id: str,
        task: str,
        method: str | None,
        preset: str | None,
        settings: tuple[str, ...],
        gpus: str | None,
        processes: int | None,
        external: bool,
        wait: bool,
        as_json: bool,
    ) -> None:
        params = _training_params(model_id, task, method, preset, settings)
        devices = {"gpus": gpus, "processes": processes, "external": external or None}
        params.update({key: value for key, value in devices.items() if value is not None})
        if external:
            wait = False  # another launch runs it
        submit_and_follow(ctx, kind, params, wait, as_json)

    return command


train_command = _training_command(
    "train",
    "train",
    "Fine-tune a base model on a task as a background job; registers the new model.",
)
finetune_compare_command = _training_command(
    "finetune-compare",
    "finetune_compare",
    "Score the base model, fine-tune it, score the fine-tuned one on the same items.",
)


def _job_model(job: dict[str, Any]) -> str:
    params = job["params"]
    new = params.get("new_model_id")
    return f"{params.get('model_id', '')} → {new}" if new else params.get("model_id", "")


@click.command("jobs")
@click.option("--limit", default=30, show_default=True, help="How many of the newest jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.pass_context
def jobs_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    from core.jobs import queue

    db = _db(ctx)
    queue.reap_stale(db)  # a job whose process and worker both died shows as failed
    jobs = queue.list_jobs(db, limit)
    if as_json:
        keep = (
            "id",
            "kind",
            "state",
            "phase",
            "progress",
            "devices",
            "params",
            "result",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "checkpoint",
            "log_path",
            "run_dir",
            "resumed_from_job",
            "attempts",  # an out-of-memory retry's history (core.jobs.retry)
        )
        click.echo(json.dumps([_clean({k: j.get(k) for k in keep}) for j in jobs], default=str))
        return
    if not jobs:
        click.echo("No jobs yet: `finboard train` or `finboard finetune-compare` start one.")
        return
    rows = [
        [
            str(j["id"]),
            j["kind"],
            j["state"],
            j["phase"] or "",
            f"{100 * (j['progress'] or 0):.0f}%",
            j.get("devices") or "",
            _job_model(j),
            j["params"].get("task") or ",".join(j["params"].get("tasks", [])),
            (j["created_at"] or "")[:19].replace("T", " "),
            (j["error"] or "")[:80],
        ]
        for j in jobs
    ]
    headers = [
        "id",
        "kind",
        "state",
        "phase",
        "progress",
        "devices",
        "model",
        "task",
        "created",
        "error",
    ]
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(headers)]
    for cells in [headers, ["-" * w for w in widths], *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip())


@click.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
def cancel_command(ctx: click.Context, job_id: int) -> None:
    """Cancel a job: a queued one at once, a running one after it saves a checkpoint."""
    from core.jobs import queue

    state = _run(lambda: queue.request_cancel(_db(ctx), job_id))
    if state == "cancelled":
        click.echo(f"Job {job_id} cancelled")
    elif state == "running":
        click.echo(f"Job {job_id}: cancel requested; it stops after saving a checkpoint")
    else:
        click.echo(f"Job {job_id} already ended ({state})")


@click.command("resume")
@click.argument("job_id", type=int)
@click.option("--checkpoint", type=int, default=None, help="Checkpoint step (default: the latest).")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Follow the new job.")
@click.option("--json", "as_json", is_flag=True, help="Print the result object as the last line.")
@click.pass_context
def resume_command(
    ctx: click.Context, job_id: int, checkpoint: int | None, wait: bool, as_json: bool
) -> None:
    """Continue a failed or cancelled training job from a checkpoint, as a new job."""
    from core.jobs import queue, worker

    db = _db(ctx)
    new_id = _run(lambda: queue.resume(db, job_id, checkpoint))
    job = queue.get(db, new_id)
    start = job["params"].get("resume_from") or "the beginning (no checkpoint)"
    click.echo(f"Job {new_id} queued: job {job_id} resumed from {start}", err=True)
    _run(worker.ensure_worker)
    if wait:
        _report_end(_follow_until_end(db, new_id), as_json)
    elif as_json:
        click.echo(json.dumps({"job_id": new_id, "state": "queued"}))


@click.command("worker")
@click.option(
    "--idle-exit",
    "idle_exit",
    type=float,
    default=300.0,
    show_default=True,
    help="Exit after this many seconds without jobs (0: never).",
)
def worker_command(idle_exit: float) -> None:
    """Run the job worker in the foreground (one per store)."""
    from core.jobs import worker

    pid = worker.running_worker_pid()
    if pid is not None:
        raise click.ClickException(f"A worker already runs for this store (pid {pid})")
    status = worker.run_worker(idle_exit)
    if status:
        raise SystemExit(status)


COMMANDS = (
    train_command,
    finetune_compare_command,
    jobs_command,
    cancel_command,
    resume_command,
    worker_command,
)
