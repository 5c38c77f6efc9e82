"""``finboard guard``: the resource guard's limits in force, changing them, a job's events.

finboard guard                                 limits per GPU, RAM floor, action, retries
finboard guard --set max_temp_c=80 --set action=shrink   save overrides (FINBOARD_HOME/guard.yaml)
finboard guard --job 12                        the job's pauses, resumes, retries and attempts
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click
import yaml

from core import format as fmt
from core.cli.support import dumps, open_store, run


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        values[key.strip()] = yaml.safe_load(text) if text.strip() else None
    return values


def _show_limits(as_json: bool) -> None:
    from core import guard

    settings = run(guard.load_settings)
    limits = guard.limits_from(settings)
    rows = guard.limits_table(limits)
    if as_json:
        click.echo(dumps({"settings": dataclasses.asdict(settings), "gpus": rows}))
        return
    if rows:
        table = [
            [str(r["gpu"]), fmt.fmt_score(r["max_temp_c"], 0), fmt.fmt_score(r["max_power_w"], 0)]
            + [r["from"]]
            for r in rows
        ]
        click.echo(fmt.text_table(["gpu", "max °C", "max W", "from"], table))
    else:
        click.echo("No NVIDIA GPU: GPU limits apply once NVML sees one.")
    click.echo(
        f"CPU runs: pause below {settings.min_free_ram_mb:g} MB of free RAM. Over a limit: "
        f"{settings.action}; resume {settings.temp_hysteresis_c:g} °C / "
        f"{settings.power_hysteresis_w:g} W / {settings.ram_hysteresis_mb:g} MB inside it. "
        f"Out of memory: {settings.oom_retries} retries, back-off from {settings.oom_backoff_s:g} s."
    )
    files = ", ".join(str(path) for path in guard.settings_files() if path.is_file())
    click.echo(f"Settings from: {files}")


def _show_job(ctx: click.Context, job_id: int, as_json: bool) -> None:
    from core.jobs import queue

    db = open_store(ctx)
    job = run(lambda: queue.get(db, job_id))
    events = queue.events(db, job_id)
    if as_json:
        click.echo(dumps({"events": events, "attempts": job["attempts"]}))
        return
    paused = fmt.fmt_duration(queue.paused_seconds(db, job_id))
    click.echo(f"Job {job_id} ({job['state']}): paused {paused} by the guard")
    for event in events:
        click.echo(f"  {event['kind']:>7}  {event['message']}")
    for item in job["attempts"]:
        passes = f"micro-batch {item.get('micro_batch')}, accumulation {item.get('grad_accum')}"
        click.echo(
            f"  attempt {item['attempt']}: {item['outcome']} ({passes}) {item['reason'] or ''}"
        )


@click.command("guard")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Save a guard setting.")
@click.option("--job", "job_id", type=int, default=None, help="Show this job's guard events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def guard_command(ctx: click.Context, sets: tuple[str, ...], job_id: int | None, as_json: bool):
    """The resource guard: temperature / power limits per GPU, the RAM floor, OOM retries."""
    from core import guard

    if sets:
        run(lambda: guard.save_overrides(_parse_sets(sets)))
    if job_id is not None:
        _show_job(ctx, job_id, as_json)
        return
    _show_limits(as_json)


COMMANDS = [guard_command]
