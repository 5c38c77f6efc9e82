"""``finboard eval`` (score a model, with a progress bar) and ``finboard leaderboard``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from core import format as fmt
from core.cli.support import dumps, open_store, run


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


@click.command("eval")
@click.option(
    "--model", "model_id", default=None, help="Model id (default: the config's default model)."
)
@click.option(
    "--task", "task_names", multiple=True, help="Task name; repeat for several (default: all)."
)
@click.option(
    "--split", default="test", show_default=True, type=click.Choice(["train", "validation", "test"])
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Only the first N items of the split (a smoke test: listed apart, never ranked).",
)
@click.option(
    "--shots",
    type=click.IntRange(min=0),
    default=None,
    help="Few-shot examples (default: the task's).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Default: 16 on CPU, 64 on GPU."
)
@click.option("--dtype", default="auto", show_default=True, help="auto, bf16, fp16 or fp32.")
@click.option("--device", default=None, help="cpu, cuda, mps (default: the best available).")
@click.option(
    "--gpus",
    default=None,
    metavar="N|all",
    help="Data parallel over N GPUs ('all': every GPU): runs as a background job.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Without a GPU: data parallel over N CPU processes, as a background job.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result object as the last line.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    model_id: str | None,
    task_names: tuple[str, ...],
    split: str,
    limit: int | None,
    shots: int | None,
    seed: int,
    batch_size: int | None,
    dtype: str,
    device: str | None,
    gpus: str | None,
    processes: int | None,
    as_json: bool,
) -> None:
    """Score a model on finance tasks and store the results in the leaderboard.

    With --gpus or --processes the evaluation runs as a job of the queue, its items shared out
    over the processes (one score row, the same as one process stores), and is followed here.
    """
    from core.evaluation.encoder import answerable, loader_and_scorer
    from core.evaluation.runner import EvalOptions
    from core.models.registry import default_model_id, get_model
    from core.tasks.spec import get_task, list_tasks

    db = open_store(ctx)
    model_id = model_id or run(default_model_id)
    entry = run(lambda: get_model(model_id, db))
    specs = [run(lambda n=n: get_task(n)) for n in task_names] if task_names else run(list_tasks)
    if not task_names:  # every task the model can answer (an encoder: those with labels)
        specs = answerable(entry, specs)
    load_model, evaluate = loader_and_scorer(entry)
    if gpus is not None or processes is not None:
        from core.cli.jobs import submit_and_follow

        params = {"model_id": entry.id, "tasks": [spec.name for spec in specs]}
        asked = {"split": split, "limit": limit, "num_shots": shots, "seed": seed}
        asked.update(batch_size=batch_size, dtype=dtype, device=device)
        asked.update(gpus=gpus, processes=processes)
        params.update({key: value for key, value in asked.items() if value is not None})
        submit_and_follow(ctx, "eval", params, True, as_json)
        return
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
    loaded = run(lambda: load_model(entry, device=device, dtype=dtype))
    click.echo(
        f"Loaded on {loaded.device} as {loaded.dtype_name} in {loaded.load_seconds:.1f} s", err=True
    )
    results = []
    for spec in specs:
        update, close = _progress_bar(f"{entry.id} · {spec.name}")
        try:
            result = run(
                lambda spec=spec, update=update: evaluate(
                    loaded, spec, db=db, options=options, progress=update
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
        click.echo(dumps(results[0] if len(results) == 1 else {"results": results}))


# ---------------------------------------------------------------- leaderboard


@click.command("leaderboard")
@click.option("--task", "task_names", multiple=True, help="Only these tasks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.pass_context
def leaderboard_command(ctx: click.Context, task_names: tuple[str, ...], as_json: bool) -> None:
    """Models ranked by overall score (mean of each task's primary metric)."""
    from core.analysis.leaderboard import leaderboard, smoke_tests, task_columns

    db = open_store(ctx)
    table = leaderboard(db, list(task_names) or None)
    if as_json:
        click.echo(table.to_json(orient="records"))
        return
    if table.empty:
        click.echo("No full test-split scores yet: run `finboard eval` (without --limit) first.")
    else:
        names = task_columns(table)
        rows = []
        for _, row in table.iterrows():
            rank = str(row["rank"]) if row["complete"] else f"({row['rank']})"
            cells = [
                rank,
                row["model_id"],
                row["kind"],
                fmt.fmt_ci(row["overall"], row["overall_low"], row["overall_high"]),
                row["model_type"] if isinstance(row["model_type"], str) else "LLM",
            ]
            cells += [fmt.fmt_ci(row[t], row[f"{t}_low"], row[f"{t}_high"]) for t in names]
            rows.append(cells)
        click.echo(fmt.text_table(["rank", "model", "kind", "overall", "type"] + names, rows))
        click.echo(
            "Scores are each task's primary metric on its full test split, with 95% CIs; models "
            "whose intervals overlap share a rank; (ranks) in brackets: scored on fewer tasks, "
            "ranked apart."
        )
    smoke = smoke_tests(db)
    if not smoke.empty:
        click.echo("\nSmoke tests (--limit runs; not ranked):")
        rows = [
            [
                r["model_id"],
                r["task"],
                f"{int(r['n_items'])} items",
                fmt.fmt_ci(r["primary_value"], r["ci_low"], r["ci_high"]),
            ]
            for r in smoke.to_dict("records")
        ]
        click.echo(fmt.text_table(["model", "task", "items", "score"], rows))


COMMANDS = (eval_command, leaderboard_command)
