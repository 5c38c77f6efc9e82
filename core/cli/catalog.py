"""``finboard models``, ``finboard tasks`` (and ``tasks add``), ``finboard prepare``."""

from __future__ import annotations

import json
from typing import Any

import click

from core import format as fmt
from core.cli.data import (
    SPLIT_OPTION_NAMES,
    add_prepared,
    print_report,
    split_options,
    tasks_report,
    wants_prepared,
)
from core.cli.support import open_store, run


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List base models (configs/models_config.yaml) and fine-tuned ones."""
    from core.models.registry import entry_summary, list_models

    entries = run(lambda: list_models(open_store(ctx)))
    if as_json:
        click.echo(json.dumps([entry_summary(e) for e in entries], indent=2))
        return
    rows = [
        [
            e.id,
            e.display_name,
            e.kind,
            fmt.fmt_params(e.params),
            e.license,
            "yes" if e.instruct else "no",
            e.source.kind,
        ]
        for e in entries
    ]
    click.echo(
        fmt.text_table(["id", "name", "kind", "params", "license", "instruct", "source"], rows)
    )


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def tasks(ctx: click.Context, as_json: bool) -> None:
    """List benchmark tasks; `tasks add` makes one from your file."""
    if ctx.invoked_subcommand:
        return
    from core.tasks.spec import broken_tasks, list_tasks, load_split

    specs = run(list_tasks)
    broken = run(broken_tasks)
    if as_json:
        data = [
            {
                "name": s.name,
                "version": s.version,
                "kind": s.kind,
                "primary_metric": s.primary_metric,
                "metrics": s.metrics,
                "labels": s.labels,
                "num_shots": s.num_shots,
                "path": str(s.path),
            }
            for s in specs
        ]
        click.echo(json.dumps(data, indent=2))
        return
    rows = []
    for spec in specs:
        try:
            test = load_split(spec, "test")
        except Exception as exc:  # its data file is gone or broken: say so, list the others
            broken.append((spec.path, str(exc).splitlines()[0]))
            continue
        origin = "built-in" if spec.builtin else "user"
        rows.append(
            [
                spec.name,
                f"v{spec.version}",
                spec.kind,
                spec.primary_metric,
                str(len(test)),
                test.fingerprint[:12],
                origin,
            ]
        )
    headers = ["task", "version", "kind", "primary metric", "test items", "test fingerprint"]
    click.echo(fmt.text_table([*headers, "origin"], rows))
    for path, why in broken:
        click.echo(f"Not usable: {path}: {why} (fix it, or `finboard tasks remove {path.stem}`)")


@tasks.command("remove")
@click.argument("name")
def tasks_remove(name: str) -> None:
    """Remove user task NAME (its task file and its copy of the data; scores are kept)."""
    from core.tasks.authoring import remove_task

    removed = run(lambda: remove_task(name))
    click.echo(f"Removed task '{name}': " + ", ".join(str(path) for path in removed))


@tasks.command("add")
@click.argument("name")
@click.option(
    "--file",
    "file_path",
    type=click.Path(exists=True),
    help="CSV, TSV, JSONL or JSON file (or a Hugging Face dataset folder / parquet / arrow).",
)
@split_options
@click.option(
    "--kind",
    type=click.Choice(["choice", "rating", "numeric", "text"]),
    default="choice",
    show_default=True,
)
@click.option("--text-column", help="Classification: the column holding the text.")
@click.option("--label-column", help="Classification: the column holding the label.")
@click.option("--prompt-column", help="Generation: the column holding the prompt.")
@click.option("--answer-column", help="Generation: the column holding the answer.")
@click.option("--id-column", help="Optional column of unique row ids.")
@click.option("--labels", help="Comma-separated allowed labels (default: those in the file).")
@click.option("--instruction", default="", help="Instruction shown before every item.")
@click.option("--template", default=None, help="Prompt template, e.g. 'Headline: {text}\\nTone:'.")
def tasks_add(
    name: str,
    file_path: str,
    kind: str,
    labels: str | None,
    instruction: str,
    template: str | None,
    **columns: Any,
) -> None:
    """Validate FILE (or --train/--validation/--test) row by row; if clean, save task NAME."""
    from core.data.importer import ColumnMapping
    from core.tasks.authoring import create_task_from_file

    split_settings = {key: columns.pop(key) for key in SPLIT_OPTION_NAMES}
    mapping = ColumnMapping(
        **{key.removesuffix("_column"): value for key, value in columns.items()}
    )
    label_list = [label.strip() for label in labels.split(",")] if labels else None
    if wants_prepared(file_path, split_settings) or mapping.split:
        spec = add_prepared(
            name, file_path, kind, mapping, label_list, instruction, template, split_settings
        )
        click.echo(f"Task '{spec.name}' saved to {spec.path}")
        return
    if not file_path:
        raise click.UsageError("give --file, or --train / --validation / --test files")
    spec = run(
        lambda: create_task_from_file(
            file_path,
            name=name,
            kind=kind,
            mapping=mapping,
            labels=label_list,
            instruction=instruction,
            template=template,
        )
    )
    print_report(spec)
    click.echo(f"Task '{spec.name}' saved to {spec.path}")


@tasks.command("add-multi")
@click.argument("name")
@click.option("--file", "file_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--text-column", required=True, help="The column holding the text.")
@click.option("--label-column", "label_columns", multiple=True, required=True, help="Repeat.")
@click.option("--id-column", default=None, help="Optional column of unique row ids.")
def tasks_add_multi(
    name: str, file_path: str, text_column: str, label_columns: tuple[str, ...], id_column: str
) -> None:
    """A CSV with several label columns as a multi-task dataset: task NAME_<column> for each."""
    from core.data.multitask import import_multitask

    specs = run(
        lambda: import_multitask(
            file_path,
            name=name,
            text_column=text_column,
            label_columns=list(label_columns),
            id_column=id_column,
        )
    )
    click.echo(f"Tasks saved: {', '.join(spec.name for spec in specs)}")


@click.command()
@click.option(
    "--model",
    "model_ids",
    multiple=True,
    help="Model id; repeat for several, or 'all' (default: the default model).",
)
def prepare(model_ids: tuple[str, ...]) -> None:
    """Make base models ready to load: assemble and de-quantize GGUF weights into the cache."""
    from core.models.loading import model_directory
    from core.models.registry import base_models, default_model_id, get_model

    if "all" in model_ids:
        entries = base_models()
    else:
        entries = [run(lambda m=m: get_model(m)) for m in (model_ids or [run(default_model_id)])]
    for entry in entries:
        click.echo(
            f"{entry.id}: preparing (the first time de-quantizes the weights, ~20-60 s) ...",
            err=True,
        )
        directory = run(lambda entry=entry: model_directory(entry))
        click.echo(f"{entry.id}: ready in {directory}", err=True)


tasks.add_command(tasks_report)
COMMANDS = (models, tasks, prepare)
