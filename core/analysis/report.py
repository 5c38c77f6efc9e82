"""A one-file HTML report of base vs fine-tuned that a manager can open offline, or print.

    >>> view = build_view(db, "smollm2-135m-instruct", tuned_id)      # doctest: +SKIP
    >>> Path("report.html").write_text(render_html_report(view))       # doctest: +SKIP

It renders the same ``ComparisonView`` the Comparison page shows. Self-contained: inline CSS
and inline SVG charts, no script, font, stylesheet or image from anywhere else, so it opens the
same on a laptop without network. Every text that comes from the store (model names, prompts,
outputs, paths) goes through ``html.escape``.

Sections: headline (gain with its paired 95% CI, training time, energy, throughput), the
comparison table, a grouped bar chart, win/loss/tie, confusion matrices, the training curve,
a sample of the items that flipped, and the facts needed to reproduce every number.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core import format as fmt
from core.analysis import paired
from core.analysis.comparison import ComparisonView, headline_sentence, prompt_snippet
from core.analysis.svg import esc, svg_grouped_bars, svg_heatmap, svg_lines
from core.store import now_iso
from core.training.config import method_label

BASE_COLOR, TUNED_COLOR = fmt.PALETTE["base"], fmt.PALETTE["tuned"]
FLIP_SAMPLE = 8
VERDICT_CSS = {"better": "good", "worse": "bad"}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1f2328; margin: 0; background: #f6f8fa; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p, li { line-height: 1.5; }
.sub { color: #57606a; margin: 0 0 18px; }
.verdict { font-size: 17px; margin: 14px 0 18px; }
.tiles { display: grid; grid-template-columns: 1.5fr repeat(4, 1fr); gap: 12px; }
@media (max-width: 820px) { .tiles { grid-template-columns: repeat(2, 1fr); }
                            .tile.wide { grid-column: span 2; } }
.tile { border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 14px; }
.tile .label { color: #57606a; font-size: 13px; }
.tile .value { font-size: 22px; font-weight: 600; margin-top: 2px; }
.tile .note { color: #57606a; font-size: 12px; margin-top: 2px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid #e5e8eb; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.overall td { font-weight: 600; border-top: 2px solid #d0d7de; }
.good { color: #1a7f37; } .bad { color: #cf222e; } .muted { color: #57606a; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
       background: #f6f8fa; padding: 1px 4px; border-radius: 4px; overflow-wrap: anywhere; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px;
          vertical-align: -1px; }
footer { margin-top: 36px; color: #57606a; font-size: 12.5px; }
@media print { body { background: #fff; } main { padding: 0; } h2 { break-after: avoid; } }
"""


# ---------------------------------------------------------------- sections


def _tile(label: str, value: str, note: str = "", wide: bool = False) -> str:
    note_html = f'<div class="note">{esc(note)}</div>' if note else ""
    return (
        f'<div class="tile{" wide" if wide else ""}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div>{note_html}</div>'
    )


def headline_section(view: ComparisonView) -> str:
    head, facts = view.headline, view.facts
    parts = ["<section>"]
    tiles = []
    if head:
        css = VERDICT_CSS.get(head.verdict, "muted")
        parts.append(
            f'<p class="verdict"><b>{esc(view.tuned_name)}</b> '
            f'<span class="{css}">{esc(headline_sentence(head))}</span></p>'
        )
        unit = f" {head.unit}" if head.unit else ""
        note = ""
        if head.points_ci:
            note = f"95% CI {fmt.fmt_signed(head.points_ci[0], 1)} to {fmt.fmt_signed(head.points_ci[1], 1)}"
        where = head.task or "all tasks"
        tiles.append(
            _tile(
                f"{paired.metric_label(head.metric)} gain on {where}",
                f"{fmt.fmt_signed(head.points, 1)}{unit}",
                f"{note} · {head.n_items} test items",
                wide=True,
            )
        )
    device = f"on {facts['device']} ({facts['dtype']})" if facts.get("device") else ""
    tiles.append(_tile("Training time", fmt.fmt_duration(facts.get("train_seconds")), device))
    measured = facts.get("energy_kwh") is not None
    tiles.append(
        _tile(
            "Energy",
            fmt.fmt_energy(facts.get("energy_kwh")),
            "GPU energy of the job" if measured else "(no NVIDIA GPU)",
        )
    )
    rate = facts.get("tokens_per_s")
    tiles.append(
        _tile("Throughput", f"{rate:,.0f} tokens/s" if rate else fmt.MISSING, "while training")
    )
    tiles.append(_tile("Peak memory", fmt.fmt_mb(facts.get("peak_memory_mb"))))
    parts.append('<div class="tiles">' + "".join(tiles) + "</div></section>")
    return "".join(parts)


def table_section(table: pd.DataFrame) -> str:
    head = (
        "<tr><th>Metric</th><th>Task</th><th>Base</th><th>Fine-tuned</th>"
        "<th>Improvement</th><th>95% CI of the difference</th><th>Verdict</th></tr>"
    )
    rows = []
    for row in table.to_dict("records"):
        css = VERDICT_CSS.get(row["verdict"], "muted")
        arrow = "↑" if row["higher_is_better"] else "↓"
        overall = ' class="overall"' if row["metric"] == "overall" else ""
        task = f"all {table['task'].nunique()} tasks" if overall else row["task"]
        rows.append(
            f"<tr{overall}><td>{esc(paired.metric_label(row['metric']))} "
            f"<span class='muted'>{arrow}</span></td><td>{esc(task)}</td>"
            f"<td class='num'>{fmt.fmt_score(row['base'])}</td>"
            f"<td class='num'>{fmt.fmt_score(row['tuned'])}</td>"
            f"<td class='num {css}'>{fmt.fmt_signed(row['improvement'])}</td>"
            f"<td class='num'>{fmt.fmt_interval(row['ci'])}</td>"
            f"<td class='{css}'>{esc(row['verdict'])}</td></tr>"
        )
    return (
        "<section><h2>Base vs fine-tuned, metric by metric</h2>"
        f"<table>{head}{''.join(rows)}</table>"
        "<p class='muted'>Improvement is fine-tuned minus base, with the sign flipped for "
        "metrics where lower is better (↓), so a positive improvement always means the "
        "fine-tuned model is better. The 95% CI of the difference is a paired bootstrap over "
        "the same test items (1,000 resamples); “better” or “worse” means it excludes zero. "
        "The overall row is the mean of each task's primary metric.</p></section>"
    )


def chart_section(table: pd.DataFrame) -> str:
    primary = table[table["primary"]]
    categories = [
        "Overall" if m == "overall" else t for m, t in zip(primary["metric"], primary["task"])
    ]
    metrics = sorted(set(primary.loc[primary["metric"] != "overall", "metric"]))
    title = paired.metric_label(metrics[0]).lower() if len(metrics) == 1 else "primary metric"
    bounded = primary[["base", "tuned"]].stack().between(0, 1).all()
    chart = svg_grouped_bars(
        categories,
        [
            ("Base", BASE_COLOR, list(primary["base"]), list(primary["base_ci"])),
            ("Fine-tuned", TUNED_COLOR, list(primary["tuned"]), list(primary["tuned_ci"])),
        ],
        title,
        1.0 if bounded else None,
    )
    return f"<section><h2>Primary metric by task</h2>{chart}</section>"


def win_loss_section(view: ComparisonView) -> str:
    rows = "".join(
        f"<tr><td>{esc(d.task)}</td><td class='num good'>{d.tally['win']}</td>"
        f"<td class='num bad'>{d.tally['loss']}</td><td class='num'>{d.tally['both_right']}</td>"
        f"<td class='num'>{d.tally['both_wrong']}</td><td class='num'>{d.tally['n']}</td></tr>"
        for d in view.tasks
    )
    return (
        "<section><h2>Item by item</h2><table><tr><th>Task</th><th>Wins (now right)</th>"
        "<th>Losses (now wrong)</th><th>Ties: both right</th><th>Ties: both wrong</th>"
        f"<th>Items</th></tr>{rows}</table></section>"
    )


def confusion_section(view: ComparisonView) -> str:
    blocks = []
    for detail in view.tasks:
        charts = [
            svg_heatmap(m["labels"], m["matrix"], name, color)
            for m, name, color in (
                (detail.base_confusion, "Base", BASE_COLOR),
                (detail.tuned_confusion, "Fine-tuned", TUNED_COLOR),
            )
            if m
        ]
        if charts:
            blocks.append(f"<h3>{esc(detail.task)}</h3><div class='charts'>{''.join(charts)}</div>")
    if not blocks:
        return ""
    return (
        "<section><h2>Confusion matrices</h2><p class='muted'>Rows: the gold label; columns: "
        "the model's answer; shade: share of the gold row.</p>" + "".join(blocks) + "</section>"
    )


def curve_section(curve: list[dict[str, Any]]) -> str:
    train = [(r["step"], r["train_loss"]) for r in curve if r.get("train_loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in curve if r.get("val_loss") is not None]
    series = [
        (name, color, [p[0] for p in points], [p[1] for p in points])
        for name, color, points in (
            ("train loss", BASE_COLOR, train),
            ("validation loss", TUNED_COLOR, val),
        )
        if points
    ]
    if not series:
        return (
            "<section><h2>Training curve</h2><p class='muted'>Not recorded: this model was "
            "trained outside the job queue, so no per-step progress was stored.</p></section>"
        )
    return (
        "<section><h2>Training curve</h2>"
        + svg_lines(series, "optimizer step")
        + "<p class='muted'>Loss per completion token; validation loss at each evaluation.</p>"
        "</section>"
    )


def _answer(value: Any) -> str:
    return esc(value if value is not None and not fmt.is_missing(value) else "(no answer)")


def flips_section(view: ComparisonView) -> str:
    blocks = []
    for detail in view.tasks:
        frame = detail.flips
        for flip, title in (("win", "Now right (were wrong)"), ("loss", "Now wrong (were right)")):
            part = frame[frame["flip"] == flip]
            if part.empty:
                blocks.append(
                    f"<h3>{esc(detail.task)}: {esc(title)}</h3><p class='muted'>None.</p>"
                )
                continue
            rows = "".join(
                f"<tr><td class='num'>{int(r.position) + 1}</td>"
                f"<td>{esc(prompt_snippet(r.prompt, 140))}</td><td>{esc(r.gold)}</td>"
                f"<td>{_answer(r.base_answer)}</td><td>{_answer(r.tuned_answer)}</td></tr>"
                for r in part.head(FLIP_SAMPLE).itertuples()
            )
            more = f" (first {FLIP_SAMPLE} of {len(part)})" if len(part) > FLIP_SAMPLE else ""
            blocks.append(
                f"<h3>{esc(detail.task)}: {esc(title)}{esc(more)}</h3><table><tr><th>#</th>"
                "<th>Item</th><th>Gold</th><th>Base answer</th><th>Fine-tuned answer</th>"
                f"</tr>{rows}</table>"
            )
    return "<section><h2>Items that flipped</h2>" + "".join(blocks) + "</section>"


def _code(value: Any) -> str:
    return f"<code>{esc(value)}</code>" if value else "—"


def repro_section(view: ComparisonView) -> str:
    tuned = view.tuned
    rows = [
        ("Base model id", _code(view.base_id)),
        ("Fine-tuned model id", _code(tuned.id)),
        ("Adapter", _code(tuned.adapter_path)),
        ("Fine-tune command", _code(view.finetune_command)),
    ]
    for detail in view.tasks:
        base, tuned_score = detail.base_score, detail.tuned_score
        task = esc(detail.task)
        rows += [
            (
                f"{task}: split fingerprint",
                f"{_code(base['split_fingerprint'])} ({base['n_items']} {esc(base['split'])} "
                f"items, task v{esc(base['task_version'])})",
            ),
            (
                f"{task}: scores",
                f"base #{base['id']}, fine-tuned #{tuned_score['id']} "
                f"(prompt hash {_code(str(base['prompt_hash'])[:16])})",
            ),
            (f"{task}: base weights hash", _code(base["weights_hash"])),
            (f"{task}: fine-tuned weights hash", _code(tuned_score["weights_hash"])),
            (f"{task}: base eval command", _code(base["command"])),
            (f"{task}: fine-tuned eval command", _code(tuned_score["command"])),
        ]
    if view.versions:
        software = ", ".join(f"{k} {v}" for k, v in sorted(view.versions.items()))
        rows.append(("Software", esc(software)))
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<section><h2>Reproducibility</h2><table>{body}</table></section>"


# ---------------------------------------------------------------- the report


def render_html_report(view: ComparisonView) -> str:
    """The whole report as one self-contained HTML string (see the module docstring)."""
    tuned = view.tuned
    sections = [
        f"<h1>{esc(view.tuned_name)}</h1>",
        f"<p class='sub'>Fine-tuned from <b>{esc(view.base_name)}</b> with "
        f"{esc(method_label(view.facts.get('method')))} on "
        f"<b>{esc(tuned.trained_on_task or '—')}</b> · "
        f"report generated {esc(now_iso())} by the LLM Finance Leaderboard</p>",
    ]
    if view.empty:
        sections.append(
            "<p>No task was scored for both models on the same items yet: evaluate both on the "
            "same test split, then make this report again.</p>"
        )
    else:
        sections += [
            headline_section(view),
            table_section(view.table),
            chart_section(view.table),
            win_loss_section(view),
            confusion_section(view),
        ]
    sections.append(curve_section(view.curve))
    if not view.empty:
        sections.append(flips_section(view))
    sections.append(repro_section(view))
    sections.append(
        "<footer>Everything in this file was computed locally; it loads nothing from the "
        "network.</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(view.tuned_name)} vs {esc(view.base_name)}: fine-tuning report</title>"
        f"<style>{CSS}</style></head><body><main>" + "\n".join(sections) + "</main></body></html>\n"
    )


def report_filename(tuned_model_id: str) -> str:
    """A safe file name for the report of ``tuned_model_id``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tuned_model_id)
    return f"finboard-report-{safe}.html"
