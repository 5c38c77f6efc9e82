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


def _legend(entries: list[tuple[str, str]], x: float, y: float, max_x: float = 710) -> list[str]:
    """Colour swatches with their names from (x, y), onto a new row when one is full."""
    parts, start = [], x
    for name, color in entries:
        step = 28 + 7 * len(name)
        if x + step > max_x and x > start:
            x, y = start, y + 16
        parts.append(f'<rect x="{x}" y="{y}" width="11" height="11" fill="{color}"/>')
        parts.append(_text(x + 16, y + 10, name, "start"))
        x += step
    return parts


def _legend_rows(entries: list[tuple[str, str]], x: float, max_x: float = 710) -> int:
    rows, position = 1, x
    for name, _ in entries:
        step = 28 + 7 * len(name)
        if position + step > max_x and position > x:
            rows, position = rows + 1, x
        position += step
    return rows


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


def _segments(xs: list[float], ys: list[float | None]) -> list[list[tuple[float, float]]]:
    """The points cut into runs at every missing value (a gap in the data is a gap drawn)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if y is None or (isinstance(y, float) and math.isnan(y)):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x, y))
    return [run for run in runs if run]


def _thinned(points: list, most: int | None) -> list:
    """About ``most`` of ``points``, evenly spaced, the last always kept (all when None).

    >>> _thinned(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    if most is None or len(points) <= most:
        return points
    every = math.ceil((len(points) - 1) / max(1, most - 1))
    kept = points[::every]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def svg_lines(
    series: list[tuple[str, str, list[float], list[float | None]]],
    x_title: str,
    y_title: str = "loss",
    x_label: Any = None,
    y_range: tuple[float, float] | None = None,
    y_format: str | None = None,
    markers: bool = True,
    title: str = "training curve",
    height: int = 280,
    max_markers: int | None = None,
) -> str:
    """Lines (with markers); ``series`` = (name, colour, xs, ys); a None in ys breaks the line.

    ``x_label`` formats an x tick (default: the number); ``y_range`` fixes the y axis;
    ``max_markers`` thins each line's markers (each a tooltip) to about that many, evenly
    spaced with the last kept: a long line's hundred circles cost the page more than they tell.

    >>> "<polyline" in svg_lines([("a", "#000", [1, 2, 3], [1.0, None, 2.0])], "step")
    True
    """
    width, left, right, top = 720, 56, 16, 16
    entries = [(name, color) for name, color, _, _ in series]
    extra_rows = _legend_rows(entries, left) - 1 if len(series) > 1 else 0
    height += 16 * extra_rows
    bottom = 56 + 16 * extra_rows
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for _, _, sx, _ in series for x in sx]
    ys = [y for _, _, _, sy in series for y in sy if y is not None and not math.isnan(y)]
    if not xs or not ys:
        return _svg(width, height, [_text(width / 2, height / 2, "no data yet", fill=MUTED)], title)
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_ticks = _nice_ticks(*(y_range or (min(ys), max(ys))))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    digits = max(0, -math.floor(math.log10(y_ticks[1] - y_ticks[0]) + 1e-9))
    px = lambda v: left + plot_w * (v - x_lo) / (x_hi - x_lo)  # noqa: E731
    py = lambda v: top + plot_h * (1 - (min(max(v, y_lo), y_hi) - y_lo) / (y_hi - y_lo))  # noqa: E731
    body = []
    for value in y_ticks:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(value):.1f}" y2="{py(value):.1f}" '
            'stroke="#e5e8eb"/>'
        )
        shown = format(value, y_format) if y_format else f"{value:.{digits}f}"
        body.append(_text(left - 6, py(value) + 4, shown, "end", fill=MUTED))
    ticks = _step_ticks(x_lo, x_hi) if x_label is None else _nice_ticks(x_lo, x_hi, most=6)[1:-1]
    for value in ticks:
        shown = f"{value:g}" if x_label is None else x_label(value)
        body.append(_text(px(value), height - bottom + 16, shown, fill=MUTED))
    for name, color, sx, sy in series:
        for run in _segments(sx, sy):
            points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in run)
            body.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
            if markers:
                body += [
                    f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{color}">'
                    f"<title>{esc(f'{name}: {b:.4g} at {a if x_label is None else x_label(a)}')}"
                    "</title></circle>"
                    for a, b in _thinned(run, max_markers)
                ]
    body.append(_text(left + plot_w / 2, height - bottom + 34, x_title, fill=MUTED))
    body.append(
        _text(14, top + plot_h / 2, y_title, transform=f"rotate(-90 14 {top + plot_h / 2})")
    )
    if len(series) > 1:
        body += _legend(entries, left, height - 16 - 16 * extra_rows)
    return _svg(width, height, body, title)


def _label_margin(labels: list[str], most: int = 300) -> int:
    return min(most, 16 + 7 * max((len(label) for label in labels), default=4))


def _x_axis(
    body: list[str], x, ticks: list[float], top: float, bottom: float, fmt: Any, most: float
) -> None:
    """Vertical grid lines with their labels, for the ticks inside the axis (up to ``most``)."""
    for tick in (t for t in ticks if t <= most + 1e-9):
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" '
            'stroke="#e5e8eb"/>'
        )
        body.append(_text(x(tick), bottom + 14, fmt(tick), fill=MUTED))


def svg_hbars(
    rows: list[tuple[str, float, list[float] | None, str]],
    x_title: str,
    x_max: float | None = None,
    value_format: str = ".3f",
    title: str = "bars",
) -> str:
    """Horizontal bars, one per row (label, value, 95% CI or None, colour), first on top.

    >>> "0.870" in svg_hbars([("tuned", 0.87, [0.82, 0.92], "#F58518")], "accuracy", 1.0)
    True
    """
    labels = [label for label, _, _, _ in rows]
    left, right, top, row_h = _label_margin(labels), 70, 8, 26
    width, height = 720, top + row_h * len(rows) + 44
    highs = [ci[1] for _, _, ci, _ in rows if ci] + [v for _, v, _, _ in rows if not math.isnan(v)]
    x_max = x_max or (max(highs, default=1.0) * 1.1 or 1.0)
    x = lambda v: left + (width - left - right) * max(0.0, min(v, x_max)) / x_max  # noqa: E731
    body: list[str] = []
    bottom = top + row_h * len(rows)
    _x_axis(body, x, _nice_ticks(0, x_max, most=5), top, bottom, lambda t: f"{t:g}", x_max)
    for index, (label, value, ci, color) in enumerate(rows):
        y = top + index * row_h
        short = label if len(label) <= 42 else label[:41] + "…"
        body.append(_text(left - 8, y + row_h / 2 + 4, short, "end"))
        if math.isnan(value):
            continue
        tip = f"{label}: {value:{value_format}}" + (
            f" (95% CI {ci[0]:{value_format}} to {ci[1]:{value_format}})" if ci else ""
        )
        body.append(
            f'<rect x="{left}" y="{y + 4}" width="{x(value) - left:.1f}" height="{row_h - 8}" '
            f'fill="{color}"><title>{esc(tip)}</title></rect>'
        )
        if ci:
            mid = y + row_h / 2
            body.append(
                f'<path d="M{x(ci[0]):.1f},{mid:.1f}H{x(ci[1]):.1f}M{x(ci[0]):.1f},{mid - 5:.1f}v10'
                f'M{x(ci[1]):.1f},{mid - 5:.1f}v10" stroke="#333" stroke-width="1.3" fill="none"/>'
            )
        end = x(max(value, ci[1] if ci else value))
        body.append(_text(end + 6, y + row_h / 2 + 4, f"{value:{value_format}}", "start"))
    body.append(_text(left + (width - left - right) / 2, height - 6, x_title, fill=MUTED))
    return _svg(width, height, body, title)


def svg_dots(
    rows: list[tuple[str, float, list[float] | None, str]],
    x_title: str,
    value_format: str = "+.1f",
    title: str = "differences",
) -> str:
    """One dot per row (label, value, 95% CI, colour) with its interval, and the zero line.

    >>> "M" in svg_dots([("accuracy", 4.5, [1.0, 8.0], "#1a7f37")], "points")
    True
    """
    labels = [label for label, _, _, _ in rows]
    left, right, top, row_h = _label_margin(labels, 240), 20, 8, 30
    width, height = 620, top + row_h * len(rows) + 44
    bounds = [b for _, v, ci, _ in rows for b in (ci or [v]) if not math.isnan(b)] + [0.0]
    ticks = _nice_ticks(min(bounds), max(bounds), most=6)
    lo, hi = ticks[0], ticks[-1]
    x = lambda v: left + (width - left - right) * (v - lo) / ((hi - lo) or 1.0)  # noqa: E731
    body: list[str] = []
    bottom = top + row_h * len(rows)
    _x_axis(body, x, ticks, top, bottom, lambda t: f"{t:g}", hi)
    body.append(
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" y2="{bottom}" stroke="#8c959f" '
        'stroke-dasharray="3 3"/>'
    )
    for index, (label, value, ci, color) in enumerate(rows):
        mid = top + index * row_h + row_h / 2
        body.append(
            _text(left - 8, mid + 4, label if len(label) <= 34 else label[:33] + "…", "end")
        )
        if ci:
            body.append(
                f'<path d="M{x(ci[0]):.1f},{mid:.1f}H{x(ci[1]):.1f}" stroke="{color}" '
                'stroke-width="2"/>'
            )
        tip = f"{label}: {value:{value_format}}" + (
            f" (95% CI {ci[0]:{value_format}} to {ci[1]:{value_format}})" if ci else ""
        )
        body.append(
            f'<circle cx="{x(value):.1f}" cy="{mid:.1f}" r="5" fill="{color}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    body.append(_text(left + (width - left - right) / 2, height - 6, x_title, fill=MUTED))
    return _svg(width, height, body, title)


def svg_stacked_hbars(
    labels: list[str],
    parts: list[tuple[str, str, list[float]]],
    x_title: str,
    value_label: Any = None,
    title: str = "stacked bars",
) -> str:
    """Horizontal stacked bars: one row per label, one segment per part (name, colour, values).

    ``value_label`` formats the total written at each bar's end.

    >>> "Total" not in svg_stacked_hbars(["a"], [("x", "#000", [1.0])], "cost")
    True
    """
    left, right, top, row_h = _label_margin(labels), 90, 30, 30
    width, height = 720, top + row_h * len(labels) + 44
    totals = [sum(values[i] for _, _, values in parts) for i in range(len(labels))]
    x_max = max(totals, default=1.0) * 1.05 or 1.0
    x = lambda v: left + (width - left - right) * v / x_max  # noqa: E731
    fmt = value_label or (lambda v: f"{v:,.2f}")
    body = _legend([(name, color) for name, color, values in parts if any(values)], left, 6)
    bottom = top + row_h * len(labels)
    _x_axis(body, x, _nice_ticks(0, x_max, most=5), top, bottom, fmt, x_max)
    for index, label in enumerate(labels):
        y = top + index * row_h
        body.append(_text(left - 8, y + row_h / 2 + 4, label, "end"))
        start = 0.0
        for name, color, values in parts:
            value = values[index]
            if value <= 0:
                continue
            body.append(
                f'<rect x="{x(start):.1f}" y="{y + 5}" width="{x(start + value) - x(start):.1f}" '
                f'height="{row_h - 10}" fill="{color}"><title>{esc(f"{label} · {name}: {fmt(value)}")}'
                "</title></rect>"
            )
            start += value
        body.append(_text(x(start) + 6, y + row_h / 2 + 4, fmt(totals[index]), "start"))
    body.append(_text(left + (width - left - right) / 2, height - 6, x_title, fill=MUTED))
    return _svg(width, height, body, title)


def svg_histogram(
    series: list[tuple[str, str, list[float]]],
    x_title: str,
    bins: int = 30,
    share: bool = False,
    title: str = "histogram",
) -> str:
    """Counts (or, with ``share``, percent of each series) of values in equal bins.

    >>> "<rect" in svg_histogram([("lengths", "#72B7B2", [1, 2, 2, 3])], "tokens", bins=3)
    True
    """
    values = [v for _, _, vals in series for v in vals]
    if not values:
        return _svg(720, 80, [_text(360, 40, "no data", fill=MUTED)], title)
    lo, hi = min(values), max(values)
    step = (hi - lo) / bins or 1.0
    counts = []
    for _, _, vals in series:
        row = [0.0] * bins
        for v in vals:
            row[min(bins - 1, int((v - lo) / step))] += 1
        if share and vals:
            row = [100 * c / len(vals) for c in row]
        counts.append(row)
    width, height, left, right, top, bottom = 720, 260, 56, 16, 28, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    y_ticks = _nice_ticks(0, max(max(row) for row in counts) or 1, most=5)
    y = lambda v: top + plot_h * (1 - v / y_ticks[-1])  # noqa: E731
    x = lambda v: left + plot_w * (v - lo) / ((hi - lo) or 1.0)  # noqa: E731
    body = _legend([(name, color) for name, color, _ in series], left, 6) if len(series) > 1 else []
    for tick in y_ticks:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#e5e8eb"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, f"{tick:g}", "end", fill=MUTED))
    bar = plot_w / bins
    for (name, color, _), row in zip(series, counts):
        opacity = 0.6 if len(series) > 1 else 1.0
        for index, count in enumerate(row):
            if count <= 0:
                continue
            edge = lo + index * step
            body.append(
                f'<rect x="{left + index * bar:.1f}" y="{y(count):.1f}" width="{bar - 1:.1f}" '
                f'height="{y(0) - y(count):.1f}" fill="{color}" fill-opacity="{opacity}">'
                f"<title>{esc(f'{name}: {count:g} in [{edge:g}, {edge + step:g})')}</title></rect>"
            )
    for tick in _nice_ticks(lo, hi, most=6):
        if lo <= tick <= hi:
            body.append(_text(x(tick), height - bottom + 16, f"{tick:g}", fill=MUTED))
    body.append(_text(left + plot_w / 2, height - 8, x_title, fill=MUTED))
    y_title = "% of the split" if share else "rows"
    body.append(
        _text(14, top + plot_h / 2, y_title, transform=f"rotate(-90 14 {top + plot_h / 2})")
    )
    return _svg(width, height, body, title)
