"""``finboard``: everything the app does, headless.

finboard models                       the registry
finboard tasks                        the benchmark tasks
finboard tasks add NAME --file F ...  a task from your CSV / JSONL file
finboard eval --model ID --task T     score a model (progress bar; --json for scripts)
finboard leaderboard                  the ranked table
finboard app                          start the Streamlit app on 127.0.0.1
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from core import cli_support, paths

_run = cli_support.run


def _db(ctx: click.Context) -> Any:
    return cli_support.open_store(ctx)


@click.group(help=__doc__)
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="SQLite store (default: $FINBOARD_DB or ./leaderboard.db).")  # fmt: skip
@click.version_option(package_name="finboard")
@click.pass_context
def main(ctx: click.Context, db_path: str | None) -> None:
    if db_path:
        os.environ["FINBOARD_DB"] = str(Path(db_path).resolve())  # so subprocesses share it
    ctx.obj = {"db": db_path}


# ---------------------------------------------------------------- models and tasks


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List base models (configs/models_config.yaml) and fine-tuned ones."""
    from core.registry import entry_summary, list_models

    entries = _run(lambda: list_models(_db(ctx)))
    if as_json:
        click.echo(json.dumps([entry_summary(e) for e in entries], indent=2))
        return
    rows = [
        [
            e.id,
            e.display_name,
            e.kind,
            _params(e.params),
            e.license,
            "yes" if e.instruct else "no",
            e.source.kind,
        ]
        for e in entries
    ]
    click.echo(_table(["id", "name", "kind", "params", "license", "instruct", "source"], rows))


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def tasks(ctx: click.Context, as_json: bool) -> None:
    """List benchmark tasks; `tasks add` makes one from your file."""
    if ctx.invoked_subcommand:
        return
    from core.tasks import list_tasks, load_split

    specs = _run(list_tasks)
    if as_json:
        data = [
            {"name": s.name, "version": s.version, "kind": s.kind, "primary_metric": s.primary_metric,
             "metrics": s.metrics, "labels": s.labels, "num_shots": s.num_shots, "path": str(s.path)}
            for s in specs
        ]  # fmt: skip
        click.echo(json.dumps(data, indent=2))
        return
    rows = []
    for spec in specs:
        test = _run(lambda spec=spec: load_split(spec, "test"))
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
    click.echo(
        _table(
            [
                "task",
                "version",
                "kind",
                "primary metric",
                "test items",
                "test fingerprint",
                "origin",
            ],
            rows,
        )
    )


@tasks.command("add")
@click.argument("name")
@click.option(
    "--file",
    "file_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV, TSV or JSONL file.",
)
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
    **columns: str | None,
) -> None:
    """Validate FILE row by row and, if clean, save it as task NAME."""
    from core.data.importer import ColumnMapping
    from core.user_tasks import create_task_from_file

    mapping = ColumnMapping(
        **{key.removesuffix("_column"): value for key, value in columns.items()}
    )
    label_list = [label.strip() for label in labels.split(",")] if labels else None
    spec = _run(
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
    click.echo(f"Task '{spec.name}' saved to {spec.path}")


@main.command()
@click.option(
    "--model",
    "model_ids",
    multiple=True,
    help="Model id; repeat for several, or 'all' (default: the default model).",
)
def prepare(model_ids: tuple[str, ...]) -> None:
    """Make base models ready to load: assemble and de-quantize GGUF weights into the cache."""
    from core.models import model_directory
    from core.registry import base_models, default_model_id, get_model

    if "all" in model_ids:
        entries = base_models()
    else:
        entries = [_run(lambda m=m: get_model(m)) for m in (model_ids or [_run(default_model_id)])]
    for entry in entries:
        click.echo(
            f"{entry.id}: preparing (the first time de-quantizes the weights, ~20-60 s) ...",
            err=True,
        )
        directory = _run(lambda entry=entry: model_directory(entry))
        click.echo(f"{entry.id}: ready in {directory}", err=True)


# ---------------------------------------------------------------- evaluation


def _progress_bar(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr driven by (done, total) callbacks."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(
                total=total, desc=label, unit="item", file=sys.stderr, dynamic_ncols=True
            )
        bar.update(done - bar.n)

    def close() -> None:
        if state.get("bar") is not None:
            state["bar"].close()

    return update, close


@main.command("eval")
@click.option(
    "--model", "model_id", default=None, help="Model id (default: the config's default model)."
)
@click.option(
    "--task", "task_names", multiple=True, help="Task name; repeat for several (default: all)."
)
@click.option(
    "--split", default="test", show_default=True, type=click.Choice(["train", "validation", "test"])
)
@click.option("--limit", type=int, default=None, help="Only the first N items of the split.")
@click.option("--shots", type=int, default=None, help="Few-shot examples (default: the task's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=None, help="Default: 16 on CPU, 64 on GPU.")
@click.option("--dtype", default="auto", show_default=True, help="auto, bf16, fp16 or fp32.")
@click.option("--device", default=None, help="cpu, cuda, mps (default: the best available).")
@click.option("--json", "as_json", is_flag=True, help="Print the result object as the last line.")
@click.pass_context
def eval_command(ctx: click.Context, model_id: str | None, task_names: tuple[str, ...], split: str, limit: int | None,
                 shots: int | None, seed: int, batch_size: int | None, dtype: str, device: str | None, as_json: bool) -> None:  # fmt: skip
    """Score a model on finance tasks and store the results in the leaderboard."""
    from core.evaluation.runner import EvalOptions, evaluate
    from core.models import load_model
    from core.registry import default_model_id, get_model
    from core.tasks import get_task, list_tasks

    db = _db(ctx)
    model_id = model_id or _run(default_model_id)
    entry = _run(lambda: get_model(model_id, db))
    specs = [_run(lambda n=n: get_task(n)) for n in task_names] if task_names else _run(list_tasks)
    options = EvalOptions(
        split=split,
        limit=limit,
        batch_size=batch_size,
        num_shots=shots,
        seed=seed,
        dtype=dtype,
        device=device,
    )
    click.echo(f"Loading {entry.display_name} ...", err=True)
    loaded = _run(lambda: load_model(entry, device=device, dtype=dtype))
    click.echo(
        f"Loaded on {loaded.device} as {loaded.dtype_name} in {loaded.load_seconds:.1f} s", err=True
    )
    results = []
    for spec in specs:
        update, close = _progress_bar(f"{entry.id} · {spec.name}")
        try:
            result = _run(
                lambda spec=spec, update=update: evaluate(
                    entry.id, spec.name, options=options, db=db, progress=update, loaded=loaded
                )
            )
        finally:
            close()
        results.append(result)
        lo, hi = result["ci"]
        click.echo(
            f"{spec.name}: {result['primary_metric']} {result['score']:.3f} (95% CI {lo:.3f}-{hi:.3f}) "
            f"on {result['n_items']} items, {result['items_per_s']:.1f} items/s",
            err=True,
        )
    if as_json:
        click.echo(cli_support.dumps(results[0] if len(results) == 1 else {"results": results}))


# ---------------------------------------------------------------- leaderboard


@main.command("leaderboard")
@click.option("--task", "task_names", multiple=True, help="Only these tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.pass_context
def leaderboard_command(ctx: click.Context, task_names: tuple[str, ...], as_json: bool) -> None:
    """Models ranked by overall score (mean of each task's primary metric)."""
    from core.leaderboard import leaderboard, task_columns

    table = leaderboard(_db(ctx), list(task_names) or None)
    if as_json:
        click.echo(table.to_json(orient="records"))
        return
    if table.empty:
        click.echo("The leaderboard is empty: run `finboard eval` first.")
        return
    names = task_columns(table)
    rows = []
    for _, row in table.iterrows():
        cells = [
            str(row["rank"]),
            row["model_id"],
            row["kind"],
            _fmt_ci(row["overall"], row["overall_low"], row["overall_high"]),
        ]
        cells += [_fmt_ci(row[t], row[f"{t}_low"], row[f"{t}_high"]) for t in names]
        rows.append(cells)
    click.echo(_table(["rank", "model", "kind", "overall"] + names, rows))
    click.echo(
        "Scores are each task's primary metric on its test split, with 95% CIs; models whose intervals overlap share a rank."
    )


# ---------------------------------------------------------------- demo


@main.command()
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the jobs until they end."
)
@click.pass_context
def demo(ctx: click.Context, wait: bool) -> None:
    """Fill the leaderboard with real runs: the embedded models on every built-in task,
    then a quick LoRA fine-tune of the default model and its comparison."""
    from core.demo import submit_demo
    from core.jobs.cli import follow
    from core.jobs.worker import ensure_worker

    db = _db(ctx)
    job_ids = _run(lambda: submit_demo(db))
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


# ---------------------------------------------------------------- the app


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.option(
    "--headless/--no-headless", default=True, show_default=True, help="Do not open a browser."
)
def app(port: int, headless: bool) -> None:
    """Start the Streamlit app bound to 127.0.0.1."""
    script = paths.REPO_ROOT / "streamlit_app" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", str(headless).lower(),
               "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]  # fmt: skip
    click.echo(f"Starting the app on http://127.0.0.1:{port}", err=True)
    raise SystemExit(subprocess.call(command))


# ---------------------------------------------------------------- formatting


def _params(count: int | None) -> str:
    if not count:
        return "?"
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"


def _fmt_ci(value: float, low: float, high: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


from core.jobs.cli import register as _register_job_commands; _register_job_commands(main)  # noqa: E402, E702, I001  # fmt: skip

if __name__ == "__main__":
    main()
