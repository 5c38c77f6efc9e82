"""A one-file HTML report of base vs fine-tuned that a manager can open offline, or print.

    >>> html_text = render_html_report(db, "smollm2-135m-instruct", tuned_id)  # doctest: +SKIP
    >>> Path("report.html").write_text(html_text)                              # doctest: +SKIP

Self-contained: inline CSS and inline SVG charts, no script, font, stylesheet or image from
anywhere else, so it opens the same on a laptop without network. Every text that comes from
the store (model names, prompts, outputs, paths) goes through ``html.escape``.

Sections: headline (gain with its paired 95% CI, training time, energy, throughput), the
comparison table, a grouped bar chart, win/loss/tie, confusion matrices, the training curve,
a sample of the items that flipped, and the facts needed to reproduce every number.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlite_utils

from core import comparison as cmp
from core import registry, store

BASE_COLOR = "#4C78A8"
TUNED_COLOR = "#F58518"
GOOD, BAD, NEUTRAL = "#1a7f37", "#cf222e", "#57606a"
FLIP_SAMPLE = 8

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


def esc(value: Any) -> str:
    """Any value as escaped HTML text (None and NaN as a dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return html.escape(str(value), quote=True)


# ---------------------------------------------------------------- number formatting


def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def fmt_signed(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}".replace("-", "−")


def fmt_ci(ci: Sequence[float] | None, digits: int = 3) -> str:
    if not ci:
        return "—"
    return f"[{fmt_signed(ci[0], digits)}, {fmt_signed(ci[1], digits)}]"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_energy(kwh: float | None) -> str:
    if kwh is None:
        return "not measured"
    return f"{kwh:.4f} kWh" if kwh < 0.1 else f"{kwh:.2f} kWh"


# ---------------------------------------------------------------- inline SVG charts


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" style="max-width:100%;height:auto" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12">'
        f"<title>{esc(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: Any, anchor: str = "middle", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(text)}</text>'


def _ticks(top: float, count: int = 5) -> list[float]:
    step = top / count
    return [step * i for i in range(count + 1)]


def _nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 x 10^k apart) that cover [low, high].

    >>> _nice_ticks(6.2, 6.47)
    [6.2, 6.25, 6.3, 6.35, 6.4, 6.45, 6.5]
    """
    span = (high - low) or abs(high) or 1.0
    step = 10 ** math.floor(math.log10(span / most))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= most:
            step *= factor
            break
    first = math.floor(low / step + 1e-9) * step
    count = math.ceil((high - first) / step - 1e-9) + 1
    return [round(first + i * step, 10) for i in range(max(2, count))]


def _step_ticks(low: float, high: float, most: int = 8) -> list[int]:
    """Whole-number ticks 1, 2 or 5 x 10^k apart, at most about ``most`` of them.

    >>> _step_ticks(1, 8), _step_ticks(0, 120)
    ([1, 2, 3, 4, 5, 6, 7, 8], [0, 20, 40, 60, 80, 100, 120])
    """
    span = max(1.0, high - low)
    step = next(
        base * 10**power
        for power in range(12)
        for base in (1, 2, 5)
        if span / (base * 10**power) <= most
    )
    first = math.ceil(low / step) * step
    return list(range(int(first), int(high) + 1, step))


def _legend(entries: list[tuple[str, str]], x: float, y: float) -> list[str]:
    """A row of colour swatches with their names, starting at (x, y)."""
    parts = []
    for name, color in entries:
        parts.append(f'<rect x="{x}" y="{y}" width="11" height="11" fill="{color}"/>')
        parts.append(_text(x + 16, y + 10, name, "start"))
        x += 28 + 7 * len(name)
    return parts


def svg_grouped_bars(
    categories: list[str],
    series: list[tuple[str, str, list[float], list[list[float] | None]]],
    y_title: str,
    y_max: float | None = None,
) -> str:
    """Vertical grouped bars with 95% CI whiskers; ``series`` = (name, colour, values, cis)."""
    width, height, left, right, top, bottom = 720, 320, 56, 16, 16, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, _, vals, _ in series for v in vals if not math.isnan(v)]
    highs = [ci[1] for _, _, _, cis in series for ci in cis if ci]
    y_max = y_max or max([1e-9, *values, *highs]) * 1.1
    y = lambda v: top + plot_h * (1 - max(0.0, min(v, y_max)) / y_max)  # noqa: E731
    body = []
    for tick in _ticks(y_max):
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#e5e8eb"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, f"{tick:.2f}", "end", fill="#57606a"))
    group_w = plot_w / max(1, len(categories))
    bar_w = min(46.0, group_w * 0.7 / max(1, len(series)))
    for i, category in enumerate(categories):
        center = left + group_w * (i + 0.5)
        for j, (name, color, vals, cis) in enumerate(series):
            value = vals[i]
            x = center + (j - len(series) / 2) * bar_w
            if not math.isnan(value):
                body.append(
                    f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar_w - 3:.1f}" '
                    f'height="{y(0) - y(value):.1f}" fill="{color}">'
                    f"<title>{esc(f'{name} · {category}: {value:.3f}')}</title></rect>"
                )
                label_top = max(value, cis[i][1]) if cis[i] else value
                body.append(
                    _text(x + (bar_w - 3) / 2, y(label_top) - 5, f"{value:.3f}", font_size="10.5")
                )
            ci = cis[i]
            if ci:
                mid = x + (bar_w - 3) / 2
                body.append(
                    f'<path d="M{mid:.1f},{y(ci[0]):.1f}V{y(ci[1]):.1f}M{mid - 4:.1f},'
                    f'{y(ci[0]):.1f}h8M{mid - 4:.1f},{y(ci[1]):.1f}h8" stroke="#333" '
                    'stroke-width="1.3" fill="none" opacity="0.75"/>'
                )
        body.append(_text(center, height - bottom + 18, category, font_weight="600"))
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#8c959f"/>'
    )
    body.append(
        _text(14, top + plot_h / 2, y_title, transform=f"rotate(-90 14 {top + plot_h / 2:.1f})")
    )
    body += _legend([(name, color) for name, color, _, _ in series], left, height - 22)
    body.append(_text(width - right, height - 12, "whiskers: 95% CI", "end", fill="#57606a"))
    return _svg(width, height, body, y_title)


def svg_heatmap(labels: list[str], matrix: list[list[int]], title: str, color: str) -> str:
    """A confusion matrix: rows gold, columns predicted, shade = share of the gold row."""
    n = len(labels)
    cell = max(38, min(64, 300 // max(1, n)))
    left, top = 92, 40
    width, height = left + cell * n + 14, top + cell * n + 44
    body = [_text(left + cell * n / 2, 16, title, font_weight="600")]
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            body.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 2}" '
                f'height="{cell - 2}" fill="{color}" fill-opacity="{0.06 + 0.94 * share:.3f}">'
                f"<title>{esc(f'gold {labels[i]}, predicted {labels[j]}: {count}')}</title></rect>"
            )
            ink = "#fff" if share > 0.55 else "#1f2328"
            body.append(
                _text(
                    left + j * cell + cell / 2 - 1, top + i * cell + cell / 2 + 4, count, fill=ink
                )
            )
    for k, label in enumerate(labels):
        short = label if len(label) <= 11 else label[:10] + "…"
        body.append(_text(left - 6, top + k * cell + cell / 2 + 4, short, "end"))
        body.append(_text(left + k * cell + cell / 2 - 1, top + n * cell + 14, short))
    body.append(_text(left + cell * n / 2, height - 6, "predicted", fill="#57606a"))
    body.append(_text(10, top + 12, "gold ↓", "start", fill="#57606a"))
    return _svg(width, height, body, title)


def svg_lines(series: list[tuple[str, str, list[float], list[float]]], x_title: str) -> str:
    """Lines with markers; ``series`` = (name, colour, xs, ys)."""
    width, height, left, right, top, bottom = 720, 280, 56, 16, 16, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for _, _, sx, _ in series for x in sx]
    ys = [y for _, _, _, sy in series for y in sy]
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_ticks = _nice_ticks(min(ys), max(ys))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    digits = max(0, -math.floor(math.log10(y_ticks[1] - y_ticks[0]) + 1e-9))
    px = lambda v: left + plot_w * (v - x_lo) / (x_hi - x_lo)  # noqa: E731
    py = lambda v: top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))  # noqa: E731
    body = []
    for value in y_ticks:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(value):.1f}" y2="{py(value):.1f}" '
            'stroke="#e5e8eb"/>'
        )
        body.append(_text(left - 6, py(value) + 4, f"{value:.{digits}f}", "end", fill="#57606a"))
    for value in _step_ticks(x_lo, x_hi):
        body.append(_text(px(value), height - bottom + 16, f"{value:g}", fill="#57606a"))
    for name, color, sx, sy in series:
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(sx, sy))
        body.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        body += [
            f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{color}">'
            f"<title>{esc(f'{name}, step {a:.0f}: {b:.4f}')}</title></circle>"
            for a, b in zip(sx, sy)
        ]
    body.append(_text(left + plot_w / 2, height - bottom + 34, x_title, fill="#57606a"))
    body.append(_text(14, top + plot_h / 2, "loss", transform=f"rotate(-90 14 {top + plot_h / 2})"))
    body += _legend([(name, color) for name, color, _, _ in series], left, height - 16)
    return _svg(width, height, body, "training curve")


# ---------------------------------------------------------------- sections


def _tile(label: str, value: str, note: str = "", wide: bool = False) -> str:
    note_html = f'<div class="note">{esc(note)}</div>' if note else ""
    return (
        f'<div class="tile{" wide" if wide else ""}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div>{note_html}</div>'
    )


def _verdict_sentence(head: dict[str, Any], tuned_name: str) -> str:
    unit = f" {head['unit']}" if head["unit"] else ""
    gain = f"{fmt_signed(head['points'], 1)}{unit}"
    ci = head["points_ci"]
    interval = f" (95% CI {fmt_signed(ci[0], 1)} to {fmt_signed(ci[1], 1)})" if ci else ""
    where = f"{head['metric'].lower()} on {head['task']}"
    if head["verdict"] == "better":
        css, words = "good", f"improves {where} by {gain}{interval}: beyond chance."
    elif head["verdict"] == "worse":
        css, words = "bad", f"lowers {where} by {gain}{interval}: beyond chance."
    else:
        css, words = (
            "muted",
            (f"changes {where} by {gain}{interval}: within noise, the interval includes zero."),
        )
    return (
        f'<p class="verdict"><b>{esc(tuned_name)}</b> <span class="{css}">{esc(words)}</span></p>'
    )


def headline_section(
    head: dict[str, Any] | None, facts: dict[str, Any], tuned_name: str, n_items: int
) -> str:
    parts = ["<section>"]
    if head:
        parts.append(_verdict_sentence(head, tuned_name))
    tiles = []
    if head:
        unit = f" {head['unit']}" if head["unit"] else ""
        ci = head["points_ci"]
        note = f"95% CI {fmt_signed(ci[0], 1)} to {fmt_signed(ci[1], 1)}" if ci else ""
        tiles.append(
            _tile(
                f"{head['metric']} gain on {head['task']}",
                f"{fmt_signed(head['points'], 1)}{unit}",
                f"{note} · {n_items} test items",
                wide=True,
            )
        )
    tiles.append(
        _tile("Training time", fmt_seconds(facts.get("train_seconds")), facts_device(facts))
    )
    tiles.append(
        _tile(
            "Energy",
            fmt_energy(facts.get("energy_kwh")),
            "(no NVIDIA GPU)" if facts.get("energy_kwh") is None else "GPU energy of the job",
        )
    )
    rate = facts.get("tokens_per_s")
    tiles.append(_tile("Throughput", f"{rate:,.0f} tokens/s" if rate else "—", "while training"))
    memory = facts.get("peak_memory_mb")
    tiles.append(_tile("Peak memory", f"{memory:,.0f} MB" if memory else "—"))
    parts.append('<div class="tiles">' + "".join(tiles) + "</div></section>")
    return "".join(parts)


def facts_device(facts: dict[str, Any]) -> str:
    device, dtype = facts.get("device"), facts.get("dtype")
    return f"on {device} ({dtype})" if device else ""


def table_section(table: pd.DataFrame) -> str:
    head = (
        "<tr><th>Metric</th><th>Task</th><th>Base</th><th>Fine-tuned</th>"
        "<th>Improvement</th><th>95% CI of the difference</th><th>Verdict</th></tr>"
    )
    rows = []
    for _, row in table.iterrows():
        css = {"better": "good", "worse": "bad"}.get(row["verdict"], "muted")
        arrow = "↑" if row["higher_is_better"] else "↓"
        overall = ' class="overall"' if row["metric"] == "overall" else ""
        rows.append(
            f"<tr{overall}><td>{esc(row['Metric'])} <span class='muted'>{arrow}</span></td>"
            f"<td>{esc(row['Task'])}</td>"
            f"<td class='num'>{fmt_num(row['Base'])}</td>"
            f"<td class='num'>{fmt_num(row['Fine-tuned'])}</td>"
            f"<td class='num {css}'>{fmt_signed(row['Improvement'])}</td>"
            f"<td class='num'>{fmt_ci(row['95% CI of the difference'])}</td>"
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


def _primary_title(primary: pd.DataFrame) -> str:
    labels = sorted(set(primary.loc[primary["metric"] != "overall", "Metric"]))
    return labels[0].lower() if len(labels) == 1 else "primary metric"


def chart_section(table: pd.DataFrame) -> str:
    primary = table[table["primary"]]
    categories = [
        "Overall" if m == "overall" else t
        for m, t in zip(primary["metric"], primary["Task"], strict=True)
    ]
    chart = svg_grouped_bars(
        categories,
        [
            ("Base", BASE_COLOR, list(primary["Base"]), list(primary["base_ci"])),
            ("Fine-tuned", TUNED_COLOR, list(primary["Fine-tuned"]), list(primary["tuned_ci"])),
        ],
        _primary_title(primary),
        1.0 if primary[["Base", "Fine-tuned"]].stack().between(0, 1).all() else None,
    )
    return f"<section><h2>Primary metric by task</h2>{chart}</section>"


def win_loss_section(tallies: list[tuple[str, dict[str, int]]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(task)}</td><td class='num good'>{t['win']}</td>"
        f"<td class='num bad'>{t['loss']}</td><td class='num'>{t['both_right']}</td>"
        f"<td class='num'>{t['both_wrong']}</td><td class='num'>{t['n']}</td></tr>"
        for task, t in tallies
    )
    return (
        "<section><h2>Item by item</h2><table><tr><th>Task</th><th>Wins (now right)</th>"
        "<th>Losses (now wrong)</th><th>Ties: both right</th><th>Ties: both wrong</th>"
        f"<th>Items</th></tr>{rows}</table></section>"
    )


def confusion_section(pairs_of_matrices: list[tuple[str, Any, Any]]) -> str:
    if not pairs_of_matrices:
        return ""
    blocks = []
    for task, base, tuned in pairs_of_matrices:
        charts = [
            svg_heatmap(m["labels"], m["matrix"], name, color)
            for m, name, color in ((base, "Base", BASE_COLOR), (tuned, "Fine-tuned", TUNED_COLOR))
            if m
        ]
        blocks.append(f"<h3>{esc(task)}</h3><div class='charts'>{''.join(charts)}</div>")
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


def flips_section(flips: list[tuple[str, pd.DataFrame]]) -> str:
    blocks = []
    for task, frame in flips:
        for flip, title in (("win", "Now right (were wrong)"), ("loss", "Now wrong (were right)")):
            part = frame[frame["flip"] == flip]
            if part.empty:
                blocks.append(f"<h3>{esc(task)}: {esc(title)}</h3><p class='muted'>None.</p>")
                continue
            rows = "".join(
                f"<tr><td class='num'>{int(r.position) + 1}</td>"
                f"<td>{esc(cmp.prompt_snippet(r.prompt, 140))}</td><td>{esc(r.gold)}</td>"
                f"<td>{esc(r.base_answer if r.base_answer is not None else '(no answer)')}</td>"
                f"<td>{esc(r.tuned_answer if r.tuned_answer is not None else '(no answer)')}</td>"
                "</tr>"
                for r in part.head(FLIP_SAMPLE).itertuples()
            )
            more = f" (first {FLIP_SAMPLE} of {len(part)})" if len(part) > FLIP_SAMPLE else ""
            blocks.append(
                f"<h3>{esc(task)}: {esc(title)}{esc(more)}</h3><table><tr><th>#</th>"
                "<th>Item</th><th>Gold</th><th>Base answer</th><th>Fine-tuned answer</th>"
                f"</tr>{rows}</table>"
            )
    return "<section><h2>Items that flipped</h2>" + "".join(blocks) + "</section>"


def _code(value: Any) -> str:
    return f"<code>{esc(value)}</code>" if value else "—"


def repro_section(
    base_id: str,
    tuned: registry.ModelEntry,
    matches: list[dict[str, Any]],
    finetune_cmd: str | None,
) -> str:
    rows = [
        ("Base model id", _code(base_id)),
        ("Fine-tuned model id", _code(tuned.id)),
        ("Adapter", _code(tuned.adapter_path)),
        ("Fine-tune command", _code(finetune_cmd)),
    ]
    for match in matches:
        base, tuned_score = match["base"], match["tuned"]
        task = esc(match["task"])
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
    if matches:
        versions = json.loads(matches[0]["tuned"].get("versions_json") or "{}")
        rows.append(
            ("Software", esc(", ".join(f"{k} {v}" for k, v in sorted(versions.items()))) or "—")
        )
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<section><h2>Reproducibility</h2><table>{body}</table></section>"


# ---------------------------------------------------------------- the report


def render_html_report(db: sqlite_utils.Database, base_model_id: str, tuned_model_id: str) -> str:
    """The whole report as one self-contained HTML string (see the module docstring)."""
    tuned = registry.get_model(tuned_model_id, db)
    names = cmp.display_names(db)
    base_name = names.get(base_model_id, base_model_id)
    tuned_name = names.get(tuned_model_id, tuned_model_id)
    table = cmp.comparison_table(db, base_model_id, tuned_model_id)
    matches = cmp.matched_scores(db, base_model_id, tuned_model_id)
    facts = cmp.training_facts(tuned)
    head = cmp.headline(table, tuned.trained_on_task)
    trained = [m for m in matches if m["task"] == tuned.trained_on_task]
    n_items = trained[0]["tuned"]["n_items"] if trained else 0
    tallies, flips, confusions = [], [], []
    for match in matches:
        items = cmp.paired_items(db, match["base"]["id"], match["tuned"]["id"])
        tallies.append((match["task"], cmp.win_loss_tie(items)))
        flips.append((match["task"], cmp.flipped_items(items)))
        base_cm = cmp.confusion_matrices(db, match["base"]["id"])
        tuned_cm = cmp.confusion_matrices(db, match["tuned"]["id"])
        if base_cm or tuned_cm:
            confusions.append((match["task"], base_cm, tuned_cm))
    sections = [
        f"<h1>{esc(tuned_name)}</h1>",
        f"<p class='sub'>Fine-tuned from <b>{esc(base_name)}</b> with "
        f"{esc(facts.get('method') or '—')} on <b>{esc(tuned.trained_on_task or '—')}</b> · "
        f"report generated {esc(store.now_iso())} by the LLM Finance Leaderboard</p>",
    ]
    if table.empty:
        sections.append(
            "<p>No task was scored for both models on the same items yet: evaluate both on the "
            "same test split, then make this report again.</p>"
        )
    else:
        sections += [
            headline_section(head, facts, tuned_name, n_items),
            table_section(table),
            chart_section(table),
            win_loss_section(tallies),
            confusion_section(confusions),
        ]
    sections.append(curve_section(cmp.training_curve(db, tuned_model_id)))
    if not table.empty:
        sections.append(flips_section(flips))
    sections.append(repro_section(base_model_id, tuned, matches, cmp.finetune_command(tuned)))
    sections.append(
        "<footer>Everything in this file was computed locally; it loads nothing from the "
        "network.</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(tuned_name)} vs {esc(base_name)}: fine-tuning report</title>"
        f"<style>{CSS}</style></head><body><main>" + "\n".join(sections) + "</main></body></html>\n"
    )


def report_filename(tuned_model_id: str) -> str:
    """A safe file name for the report of ``tuned_model_id``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tuned_model_id)
    return f"finboard-report-{safe}.html"
