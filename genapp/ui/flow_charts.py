"""Plotly figures of the flow tab: each layer's log|det J| for one image. Pure functions of plain
data: no streamlit, no torch."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from genapp.ui.charts import PALETTE, layout


def log_det_bars(names: Sequence[str], log_dets: Sequence[float], uirevision: str = "flow-log-dets") -> go.Figure:
    """One bar per layer: its log|det J| in nats for one image, and the running total as a line."""
    totals = np.cumsum(np.asarray(log_dets, dtype=float))
    fig = go.Figure()
    fig.add_bar(x=list(names), y=list(log_dets), name="log|det J| of the layer", marker_color=PALETTE[0],
                hovertemplate="%{x}: %{y:.1f} nats<extra></extra>")
    fig.add_scatter(x=list(names), y=totals, name="running total", mode="lines+markers",
                    line=dict(color=PALETTE[1], width=2), hovertemplate="total after %{x}: %{y:.1f} nats<extra></extra>")
    return layout(fig, title="log|det J| of each layer (one image)", x="layer", y="nats",
                          uirevision=uirevision, hovermode="closest")
