"""``finboard``: everything the app does, headless.

finboard models                       the registry
finboard tasks                        the benchmark tasks
finboard tasks add NAME --file F ...  a task from your CSV / JSONL file (tasks remove NAME)
finboard tasks add NAME --train F --test F   explicit splits; instruction / chat records
finboard generate NAME                synthetic finance instructions from a local model
finboard tasks add-reviews NAME ...   a review file as review tasks (tasks baseline T)
finboard eval --model ID --task T     score a model (progress bar; --json for scripts)
finboard leaderboard                  the ranked table
finboard train / finetune-compare     fine-tune (a background job)
finboard jobs / cancel / resume       the job queue
finboard guard                        the resource guard's limits (--set k=v), a job's pauses
finboard compare-methods --model ID --task T  LoRA / QLoRA / prompt tuning side by side
finboard export MODEL --format F     adapter, merged, gguf, modelfile, samples, leaderboard
finboard app                          start the Streamlit app on 127.0.0.1
finboard serve                        the HTTP API on 127.0.0.1 (docs at /docs)
finboard predictions import ...       score predictions made elsewhere (e.g. a hosted API)
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from core.cli import (
    app,
    catalog,
    compare_methods,
    data,
    demo,
    evaluate,
    export,
    guard,
    jobs,
    predictions,
    reviews,
    serve,
)


@click.group(help=__doc__)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite store (default: $FINBOARD_DB or ./leaderboard.db).",
)
@click.version_option(package_name="finboard")
@click.pass_context
def main(ctx: click.Context, db_path: str | None) -> None:
    if db_path:
        os.environ["FINBOARD_DB"] = str(Path(db_path).resolve())  # so subprocesses share it
    ctx.obj = {"db": db_path}


for module in (
    catalog,
    evaluate,
    jobs,
    app,
    serve,
    guard,
    data,
    predictions,
    reviews,
    export,
    compare_methods,
    demo,
):
    for command in module.COMMANDS:
        main.add_command(command)


if __name__ == "__main__":
    main()
