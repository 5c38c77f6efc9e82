"""Charts more than one page draws (the same look everywhere)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core import format as fmt

CONFIG = {"displayModeBar": False}


def loss_curve(rows: list[dict], height: int = 300) -> go.Figure:
    """Train loss by optimizer step, and the validation loss where it was measured."""
    frame = pd.DataFrame(rows)
    fig = go.Figure()
    fig.add_scatter(
        x=frame["step"],
        y=frame["train_loss"],
        mode="lines+markers",
        name="train loss",
        line={"color": fmt.PALETTE["base"]},
    )
    validation = frame.dropna(subset=["val_loss"]) if "val_loss" in frame else frame.iloc[0:0]
    if not validation.empty:
        fig.add_scatter(
            x=validation["step"],
            y=validation["val_loss"],
            mode="lines+markers",
            name="validation loss",
            line={"color": fmt.PALETTE["tuned"]},
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
        xaxis={"title": "optimizer step"},
        yaxis={"title": "loss per completion token"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    return fig
