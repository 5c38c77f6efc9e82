"""``finboard demo``: real runs of the embedded models, then the leaderboard they make."""

from __future__ import annotations

import click

from core.cli.evaluate import leaderboard_command
from core.cli.jobs import follow
from core.cli.support import open_store, run


@click.command()
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the jobs until they end."
)
@click.pass_context
def demo(ctx: click.Context, wait: bool) -> None:
    """Fill the leaderboard with real runs: the embedded models on every built-in task,
    then a quick LoRA fine-tune of the default model and its comparison."""
    from core.jobs.worker import ensure_worker
    from core.workflows.demo import submit_demo

    db = open_store(ctx)
    job_ids = run(lambda: submit_demo(db))
    ensure_worker()
    click.echo(
        f"Queued demo jobs {', '.join(map(str, job_ids))} (`finboard jobs` lists them).", err=True
    )
    if not wait:
        return
    states = {}
    for job_id in job_ids:
        job = follow(db, job_id)
        states[job_id] = job["state"]
        click.echo(
            f"job {job_id} ({job['kind']}): {job['state']}"
            + (f": {job['error']}" if job.get("error") else ""),
            err=True,
        )
    ctx.invoke(leaderboard_command, task_names=(), as_json=False)
    if any(state != "succeeded" for state in states.values()):
        raise click.ClickException("Some demo jobs did not succeed: see `finboard jobs`.")


COMMANDS = (demo,)
