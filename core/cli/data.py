"""Data commands: `tasks add` with split files / records, `tasks report`, `finboard generate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from core.cli.support import run

SPLIT_OPTION_NAMES = ("train", "validation", "test", "records", "filter", "drop_leakage", "quality")


def split_options(command: Callable) -> Callable:
    """The options of explicit splits, records and the quality pipeline."""
    file_type = click.Path(exists=True)
    options = [
        click.option("--train", type=file_type, help="The train split's file."),
        click.option("--validation", type=file_type, help="The validation split's file."),
        click.option("--test", type=file_type, help="The test split's file (alone: eval only)."),
        click.option(
            "--split-column", help="A column of train / validation / test in --file (the split)."
        ),
        click.option(
            "--records",
            type=click.Choice(["auto", "classification", "generation", "instruction", "chat"]),
            default="auto",
            show_default=True,
            help="What the files hold: instruction {instruction,input,output}, chat {messages}, "
            "or columns (auto: from the JSON keys).",
        ),
        click.option("--filter", is_flag=True, help="Drop the rows the quality rules reject."),
        click.option(
            "--drop-leakage", is_flag=True, help="Drop train rows that are also in validation/test."
        ),
        click.option(
            "--quality",
            type=click.Path(exists=True, dir_okay=False),
            help="YAML of quality thresholds (defaults: configs/quality.yaml).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def wants_prepared(file_path: str | None, settings: dict[str, Any]) -> bool:
    """Split files, a split column, records, HF data or quality choices: the prepared path."""
    from core.data.hf_disk import is_hf_source

    chosen = [settings[k] for k in ("train", "validation", "test", "filter", "drop_leakage")]
    hf = bool(file_path) and is_hf_source(Path(file_path))
    records = bool(file_path) and not hf and _holds_records(Path(file_path))
    return any(chosen) or settings["records"] in ("instruction", "chat") or hf or records


def _holds_records(path: Path) -> bool:
    """A .json file, or a JSON Lines file of instruction / chat records."""
    from core.data import instructions

    if path.suffix.lower() == ".json":
        return True
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return False
    found, _ = instructions.read_records(path)
    return instructions.detect_format(found[:20]) is not None


def add_prepared(
    name: str,
    file_path: str | None,
    kind: str,
    mapping: Any,
    labels: list[str] | None,
    instruction: str,
    template: str | None,
    settings: dict[str, Any],
) -> Any:
    """Create the task from its split files, print the quality report, return the spec."""
    from core import paths
    from core.data.quality import report_lines
    from core.tasks.prepared import create_prepared_task

    files = {s: settings[s] for s in ("train", "validation", "test") if settings[s]}
    source = click.get_current_context().get_parameter_source("kind")
    if source == click.core.ParameterSource.DEFAULT:
        kind = None  # from the records: text for instruction / chat, else choice
    overrides = (
        paths.read_yaml(Path(settings["quality"]), ValueError, "Quality file")
        if settings["quality"]
        else None
    )
    has_columns = any(getattr(mapping, role) for role in ("text", "label", "prompt", "answer"))
    spec, report = run(
        lambda: create_prepared_task(
            name,
            kind=kind,
            files=files or None,
            file=None if files else file_path,
            mapping=mapping if has_columns or mapping.split else None,
            labels=labels,
            records=settings["records"],
            instruction=instruction,
            template=template,
            quality_overrides=overrides,
            filter=settings["filter"],
            drop_leakage=settings["drop_leakage"],
        )
    )
    click.echo("Quality report: " + "\n".join(report_lines(report)))
    return spec


def print_report(spec: Any) -> None:
    """The quality report stored with a task (nothing when it has none)."""
    from core.data.quality import report_lines
    from core.tasks.prepared import stored_report

    report = stored_report(spec)
    if report:
        click.echo("Quality report: " + "\n".join(report_lines(report)))


@click.command("report")
@click.argument("name")
def tasks_report(name: str) -> None:
    """Print the quality report stored with user task NAME."""
    from core.data.quality import report_lines
    from core.tasks.prepared import task_report

    report = run(lambda: task_report(name))
    if report is None:
        raise click.ClickException(f"Task '{name}' has no stored quality report")
    click.echo("\n".join(report_lines(report)))


@click.command("generate")
@click.argument("name")
@click.option("--model", "model_id", default=None, help="An instruct model (default: SmolLM2).")
@click.option("--count", type=int, default=200, show_default=True, help="Raw records to make.")
@click.option("--temperature", type=float, default=0.9, show_default=True)
@click.option("--top-p", type=float, default=0.95, show_default=True)
@click.option("--max-tokens", type=int, default=128, show_default=True, help="Per answer.")
@click.option("--instruction-tokens", type=int, default=48, show_default=True)
@click.option("--topic", "topics", multiple=True, help="A topic seed; repeat (default: 12 topics).")
@click.option("--checkpoint-every", type=int, default=8, show_default=True, help="Records.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=0, help="CPU threads (0: torch's default).")
@click.option("--quality", type=click.Path(exists=True, dir_okay=False), help="Threshold YAML.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the job.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def generate_command(ctx: click.Context, name: str, **options: Any) -> None:
    """Make task NAME of synthetic finance instructions with a local model (a job).

    Checkpoints every --checkpoint-every records; `finboard resume ID` (or the same command
    again) continues a cancelled or killed run without losing a record.
    """
    from core import paths
    from core.cli.jobs import submit_and_follow
    from core.models.registry import default_model_id

    wait, as_json = options.pop("wait"), options.pop("as_json")
    quality_file = options.pop("quality")
    params: dict[str, Any] = {
        "name": name,
        "model_id": options.pop("model_id") or run(default_model_id),
        "max_new_tokens": options.pop("max_tokens"),
        **{k: v for k, v in options.items() if k != "topics"},
    }
    if options["topics"]:
        params["topics"] = list(options["topics"])
    if quality_file:
        params["quality"] = run(lambda: paths.read_yaml(Path(quality_file), ValueError, "Quality"))
    submit_and_follow(ctx, "generate", params, wait, as_json)
    if wait and not as_json:
        from core.data.quality import report_lines
        from core.tasks.prepared import task_report

        click.echo("Quality report: " + "\n".join(report_lines(run(lambda: task_report(name)))))


COMMANDS: tuple[click.Command, ...] = (generate_command,)
