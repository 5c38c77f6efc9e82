"""Inline SVG charts for self-contained HTML (no script, no font, no file from anywhere else).

    >>> chart = svg_grouped_bars(["t"], [("Base", "#000", [0.5], [[0.4, 0.6]])], "accuracy", 1.0)
    >>> chart.startswith("<svg") and "accuracy" in chart
    True

Every text that goes into a chart passes through ``esc`` (``html.escape``).
"""

from __future__ import annotations

import html
import math
from typing import Any

from core.format import PALETTE, is_missing

MUTED = PALETTE["neutral"]  # axis labels and notes


def esc(value: Any) -> str:
    """Any value as escaped HTML text (None and NaN as a dash)."""
    if is_missing(value):
        return "—"
    return html.escape(str(value), quote=True)


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
        body.append(_text(left - 6, y(tick) + 4, f"{tick:.2f}", "end", fill=MUTED))
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
    body.append(_text(width - right, height - 12, "whiskers: 95% CI", "end", fill=MUTED))
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
    body.append(_text(left + cell * n / 2, height - 6, "predicted", fill=MUTED))
    body.append(_text(10, top + 12, "gold ↓", "start", fill=MUTED))
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
        body.append(_text(left - 6, py(value) + 4, f"{value:.{digits}f}", "end", fill=MUTED))
    for value in _step_ticks(x_lo, x_hi):
        body.append(_text(px(value), height - bottom + 16, f"{value:g}", fill=MUTED))
    for name, color, sx, sy in series:
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(sx, sy))
        body.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        body += [
            f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{color}">'
            f"<title>{esc(f'{name}, step {a:.0f}: {b:.4f}')}</title></circle>"
            for a, b in zip(sx, sy)
        ]
    body.append(_text(left + plot_w / 2, height - bottom + 34, x_title, fill=MUTED))
    body.append(_text(14, top + plot_h / 2, "loss", transform=f"rotate(-90 14 {top + plot_h / 2})"))
    body += _legend([(name, color) for name, color, _, _ in series], left, height - 16)
    return _svg(width, height, body, "training curve")
