"""How numbers, money, durations and colours are shown: one module for the CLI, pages and report.

    >>> fmt_score(0.47512), fmt_ci(0.475, 0.41, 0.54), fmt_ci(0.475, 0.41, 0.54, style="pm")
    ('0.475', '0.475 [0.41, 0.54]', '0.475 ± 0.07')
    >>> fmt_signed(0.0451), fmt_signed(-0.02, 1), fmt_interval([-0.01, 0.08], scale=100, digits=1)
    ('+0.045', '-0.0', '[-1.0, +8.0]')
    >>> fmt_params(134_515_008), fmt_params(3_212_749_824), fmt_params(None)
    ('135M', '3.21B', '—')
    >>> fmt_duration(4.2), fmt_duration(75), fmt_duration(900), fmt_duration(9000)
    ('4.2 s', '75 s', '15.0 min', '2.5 h')
    >>> fmt_money(1234.5), fmt_money(9), fmt_money(0.004), fmt_money(0), fmt_money(-12.3)
    ('$1,234', '$9.00', '<$0.01', '$0', '-$12.30')
    >>> fmt_energy(None), fmt_energy(0.00042), fmt_energy(1.5)
    ('not measured', '0.00042 kWh', '1.50 kWh')

Missing values (None, NaN) are shown as ``MISSING`` everywhere. ``PALETTE`` holds the colours
every chart uses for the same things (base vs fine-tuned, better vs worse).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MISSING = "—"

PALETTE = {
    "base": "#4C78A8",
    "tuned": "#F58518",
    "good": "#1a7f37",
    "bad": "#cf222e",
    "neutral": "#57606a",
    "grid": "rgba(128,128,128,0.2)",
    "series": ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B"),
}


def is_missing(value: Any) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_score(value: float | None, digits: int = 3) -> str:
    return MISSING if is_missing(value) else f"{value:.{digits}f}"


def fmt_ci(
    value: float | None, low: float | None, high: float | None, style: str = "interval"
) -> str:
    """A score with its 95% CI: ``"0.475 [0.41, 0.54]"``, or ``"0.475 ± 0.07"`` (``style="pm"``)."""
    if is_missing(value):
        return MISSING
    if is_missing(low) or is_missing(high):
        return fmt_score(value)
    if style == "pm":
        return f"{value:.3f} ± {(high - low) / 2:.2f}"
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


def fmt_signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign: ``+0.045``, ``-0.020``."""
    return MISSING if is_missing(value) else f"{value:+.{digits}f}"


def fmt_interval(ci: Sequence[float] | None, scale: float = 1.0, digits: int = 3) -> str:
    """The 95% CI of a difference: ``[-0.010, +0.080]`` (``scale=100`` for points)."""
    if not ci or any(is_missing(bound) for bound in ci):
        return MISSING
    return f"[{fmt_signed(ci[0] * scale, digits)}, {fmt_signed(ci[1] * scale, digits)}]"


def fmt_points(value: float | None, digits: int = 1) -> str:
    """A share difference in percentage points: ``+4.5 points``."""
    return MISSING if is_missing(value) else f"{fmt_signed(100 * value, digits)} points"


def fmt_params(count: int | float | None) -> str:
    """A parameter count the way people say it: ``135M``, ``3.21B``, ``40K``."""
    if is_missing(count):
        return MISSING
    count = float(count)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= threshold * 0.9995:  # 999.6M reads as 1B, not 1e+03M
            return f"{count / threshold:.3g}{suffix}"
    return f"{count:.0f}"


def fmt_share(part: float | None, whole: float | None, digits: int = 2) -> str:
    """``part`` as a percentage of ``whole``: ``3.50%``."""
    if is_missing(part) or is_missing(whole) or not whole:
        return MISSING
    return f"{100 * part / whole:.{digits}f}%"


def fmt_duration(seconds: float | None) -> str:
    """A duration: ``4.2 s``, ``75 s``, ``15.0 min``, ``2.5 h``."""
    if is_missing(seconds):
        return MISSING
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_ms(value: float | None) -> str:
    return MISSING if is_missing(value) else f"{value:,.1f} ms"


def fmt_rate(value: float | None, unit: str = "") -> str:
    """A throughput: ``41.3/s``, or ``41.3 items/s`` with a unit."""
    if is_missing(value):
        return MISSING
    return f"{value:,.1f} {unit}/s" if unit else f"{value:,.1f}/s"


def fmt_mb(value: float | None) -> str:
    return MISSING if is_missing(value) or not value else f"{value:,.0f} MB"


def fmt_energy(kwh: float | None) -> str:
    """Energy in kWh; ``not measured`` when there is no reading (never a false 0)."""
    if is_missing(kwh):
        return "not measured"
    return f"{kwh:.2g} kWh" if kwh < 0.1 else f"{kwh:.2f} kWh"


def short_hash(value: str | None, length: int = 12) -> str:
    return MISSING if not value else value[:length]


def fmt_money(value: float | None, symbol: str = "$") -> str:
    """Money the way a budget shows it: ``$1,234``, ``$9.00``, ``<$0.01``, ``$0``."""
    if is_missing(value):
        return MISSING
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount == 0:
        return f"{symbol}0"
    if amount < 0.01:
        return f"{sign}<{symbol}0.01"
    if amount < 100:
        return f"{sign}{symbol}{amount:,.2f}"
    return f"{sign}{symbol}{amount:,.0f}"


def fmt_months(value: float | None) -> str:
    """A duration in months: ``less than a month``, ``4.5 months``, ``17 months``, ``never``.

    >>> fmt_months(0.4), fmt_months(1.0), fmt_months(4.54), fmt_months(16.7), fmt_months(None)
    ('less than a month', '1 month', '4.5 months', '17 months', 'never')
    >>> fmt_months(10236.9)
    '10,237 months'
    """
    if value is None or math.isinf(value):
        return "never"
    if value < 1:
        return "less than a month"
    shown = round(value, 1) if value < 10 else round(value)
    text = f"{shown:,.0f}" if shown == int(shown) else f"{shown:.1f}"
    return f"{text} month{'' if shown == 1 else 's'}"


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns (for the CLI).

    >>> print(text_table(["a", "bb"], [["1", "2"]]))
    a  bb
    -  --
    1  2
    """
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines
    )
