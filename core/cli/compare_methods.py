"""``finboard compare-methods``: LoRA, QLoRA and prompt tuning on the same data, side by side."""

from __future__ import annotations

import click

from core.cli.support import dumps, open_store, run


@click.command("compare-methods")
@click.option("--model", "model_id", required=True, help="Base model id (`finboard models`).")
@click.option("--task", required=True, help="Task to train and score on (`finboard tasks`).")
@click.option(
    "--methods",
    default="lora,qlora,prompt-tuning",
    show_default=True,
    help="Comma list of methods: lora, qlora, prompt-tuning.",
)
@click.option("--preset", default="quick", show_default=True, help="The shared training preset.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one training setting for every method; repeat for several.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON (last line).")
@click.pass_context
def compare_methods_command(
    ctx: click.Context,
    model_id: str,
    task: str,
    methods: str,
    preset: str,
    settings: tuple[str, ...],
    wait: bool,
    as_json: bool,
) -> None:
    """Queue one job per method (same data, same budget), follow them, print the table."""
    from core import format as fmt
    from core.cli.jobs import follow
    from core.jobs import worker
    from core.training.config import parse_overrides
    from core.workflows import compare_methods as cm

    db = open_store(ctx)
    overrides = run(lambda: parse_overrides(settings))
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    group, job_ids = run(
        lambda: cm.submit_comparison(db, model_id, task, chosen, preset, overrides)
    )
    click.echo(f"Comparison {group}: jobs {', '.join(map(str, job_ids))} queued", err=True)
    run(worker.ensure_worker)
    if not wait:
        return
    for job_id in job_ids:
        follow(db, job_id)
    rows = cm.methods_table(db, group)
    if as_json:
        click.echo(dumps({"group": group, "methods": rows}))
        return
    click.echo(fmt.text_table(cm.TABLE_HEADERS, cm.text_rows(rows)))
    for row in rows:
        report = row.get("memory_report")
        if report:
            click.echo(
                f"QLoRA memory ({report['measured']}): base weights {report['base_4bit_mb']:.0f} MB "
                f"in 4-bit vs {report['base_full_mb']:.0f} MB in {report['full_dtype']} "
                f"({report['reduction_percent']}% less); tensors {report['tensor_4bit_mb']:.0f} vs "
                f"{report['tensor_full_mb']:.0f} MB; peak training memory "
                f"{fmt.fmt_mb(report['peak_training_mb'])} ({report['peak_training_what']})"
            )
        if row.get("error"):
            click.echo(f"{row['method']}: failed: {row['error']}")


COMMANDS = (compare_methods_command,)
