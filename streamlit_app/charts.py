"""Charts on the pages: inline SVG from ``core.analysis.svg``, the same charts the report draws.

Inline SVG draws at once and needs no chart library in the browser (a plotly chart costs about
a second of every page load on a small machine); each mark carries its value as a tooltip.
"""

from __future__ import annotations

import streamlit as st

from core import format as fmt
from core.analysis import svg


def show(picture: str, container=None) -> None:
    """Draw an SVG string (from ``core.analysis.svg``) in the page or in ``container``."""
    (container or st).markdown(f'<div class="fb-chart">{picture}</div>', unsafe_allow_html=True)


def loss_curve(rows: list[dict], height: int = 280) -> str:
    """Train loss by optimizer step, and the validation loss where it was measured."""
    train = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    series = [
        (name, color, [p[0] for p in points], [p[1] for p in points])
        for name, color, points in (
            ("train loss", fmt.PALETTE["base"], train),
            ("validation loss", fmt.PALETTE["tuned"], val),
        )
        if points
    ]
    return svg.svg_lines(series, "optimizer step", "loss per completion token", height=height)
