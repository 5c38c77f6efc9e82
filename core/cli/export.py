"""``finboard export MODEL --format adapter|merged|gguf|modelfile|samples|leaderboard``."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli.support import dumps, open_store, run


@click.command("export")
@click.argument("model_id")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["adapter", "merged", "gguf", "modelfile", "samples", "leaderboard"]),
    help="adapter: the peft folder; merged: base+LoRA in one safetensors folder (checked by "
    "reloading with transformers); gguf: merged + the llama.cpp command; modelfile: Ollama; "
    "samples: per-item results as lm-eval --log_samples JSONL; leaderboard: CSV and JSON.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="A new or empty folder (default: exports/MODEL-FORMAT).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def export_command(
    ctx: click.Context, model_id: str, fmt: str, out: str | None, as_json: bool
) -> None:
    """Export a model (MODEL may be 'all' with --format leaderboard)."""
    from core import paths
    from core.models.registry import get_model
    from core.workflows.export import export

    db = open_store(ctx)
    entry = (
        None if fmt == "leaderboard" and model_id == "all" else run(lambda: get_model(model_id, db))
    )
    target = Path(out) if out else paths.home_dir() / "exports" / f"{model_id}-{fmt}"
    written = run(lambda: export(db, entry, fmt, target))
    if as_json:
        click.echo(dumps(written.to_dict()))
        return
    click.echo(f"Wrote {fmt} export to {written.directory}: {', '.join(written.files)}")
    if written.check:
        click.echo(
            f"Reload check (transformers only, fresh Python): {written.check['matches']} of "
            f"{written.check['items']} greedy outputs equal the product's."
        )
    for note in written.notes:
        click.echo(note)


COMMANDS = (export_command,)
