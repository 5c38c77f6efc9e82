"""``finboard tasks add-reviews`` (a review file as review tasks) and ``finboard tasks baseline``."""

from __future__ import annotations

import json

import click

from core.cli.catalog import tasks
from core.cli.support import run


@tasks.command("add-reviews")
@click.argument("name")
@click.option("--file", "file_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--text-column", required=True, help="The column holding the review.")
@click.option("--rating-column", required=True, help="The column holding the rating (1-5).")
@click.option(
    "--features-column",
    default=None,
    help="Optional: the features mentioned, comma- or semicolon-separated (vocabulary names "
    "or synonyms of review_features).",
)
@click.option(
    "--slice-column",
    "slice_columns",
    multiple=True,
    help="A column whose values become robustness slices (repeat for several).",
)
@click.option("--id-column", default=None, help="Optional column of unique row ids.")
def tasks_add_reviews(name: str, file_path: str, **columns) -> None:
    """Validate a review FILE row by row; if clean, save it as NAME_rating (NAME_features and
    NAME_summary too with a features column)."""
    from core.data.review_import import create_review_tasks

    specs = run(
        lambda: create_review_tasks(
            file_path,
            name=name,
            text=columns["text_column"],
            rating=columns["rating_column"],
            features=columns["features_column"],
            slices=columns["slice_columns"],
            id_column=columns["id_column"],
        )
    )
    for spec in specs:
        click.echo(f"Task '{spec.name}' saved to {spec.path}")


@tasks.command("baseline")
@click.argument("name")
@click.option("--split", default="test", show_default=True)
def tasks_baseline(name: str, split: str) -> None:
    """Score the rule-based baseline of review task NAME (JSON: metrics and slice verdicts)."""
    from core.analysis.slices import verdict_rows
    from core.evaluation.baselines import baseline_score
    from core.tasks.spec import get_task

    found = run(lambda: baseline_score(get_task(name), split))
    if found is None:
        raise click.ClickException(f"Task '{name}' has no rule-based baseline (review tasks do).")
    metrics = {
        key: value
        for key, value in found["metrics"].items()
        if isinstance(value, dict) and "value" in value
    }
    out = {"baseline": found["name"], "task": name, "n_items": found["n_items"], "metrics": metrics}
    out["slices"] = verdict_rows(found["slices"])
    click.echo(json.dumps(out, indent=1))


COMMANDS: tuple = ()  # both are subcommands of `finboard tasks`
