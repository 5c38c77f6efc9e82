"""``finboard predictions import``: score predictions made by another system (e.g. a hosted API).

finboard predictions import --task fin_sentiment --name gpt-4o-mini --file preds.csv
    scores a CSV of (item_id, prediction) on the task's test items and ranks it on the
    leaderboard as "gpt-4o-mini (external predictions)"; a bad row is named and nothing stored.
finboard predictions template --task fin_sentiment > preds.csv
    the test items' ids and texts, with an empty prediction column to fill in.
"""

from __future__ import annotations

import csv
import sys

import click

from core.cli.support import dumps, open_store, run


@click.group("predictions", help=__doc__)
def predictions_group() -> None:
    pass


@predictions_group.command("import")
@click.option("--task", "task_name", required=True, help="The task the predictions answer.")
@click.option("--name", required=True, help="What made them, e.g. gpt-4o-mini (shown as such).")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False))
@click.option("--id-column", default="item_id", show_default=True)
@click.option("--prediction-column", default="prediction", show_default=True)
@click.option("--split", default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the score as JSON.")
@click.pass_context
def import_command(
    ctx: click.Context,
    task_name: str,
    name: str,
    path: str,
    id_column: str,
    prediction_column: str,
    split: str,
    as_json: bool,
) -> None:
    """Score a CSV of predictions on the task's items and store it beside the models."""
    from core.evaluation.external import import_predictions
    from core.tasks.spec import get_task

    db = open_store(ctx)
    spec = run(lambda: get_task(task_name))
    result = run(
        lambda: import_predictions(
            db,
            spec,
            name,
            path,
            id_column=id_column,
            prediction_column=prediction_column,
            split=split,
        )
    )
    lo, hi = result["ci"]
    click.echo(
        f"{result['model']} on {spec.name}: {result['primary_metric']} {result['score']:.3f} "
        f"(95% CI {lo:.3f}-{hi:.3f}) on {result['n_items']} items",
        err=True,
    )
    if as_json:
        click.echo(dumps(result))


@predictions_group.command("template")
@click.option("--task", "task_name", required=True)
@click.option("--split", default="test", show_default=True)
def template_command(task_name: str, split: str) -> None:
    """Print a CSV of the split's item ids and texts with an empty prediction column."""
    from core.tasks.spec import get_task, load_split

    spec = run(lambda: get_task(task_name))
    items = run(lambda: load_split(spec, split)).items
    writer = csv.writer(sys.stdout)
    writer.writerow(["item_id", "text", "prediction"])
    for item in items:
        text = item.fields.get("text") or item.fields.get("prompt") or ""
        writer.writerow([item.id, text, ""])


COMMANDS = (predictions_group,)
