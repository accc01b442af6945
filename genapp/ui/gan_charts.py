"""Plotly figures of the GAN tab: the two players' losses and what the discriminator says. Pure
functions of plain data: no streamlit, no torch.

Built like ``charts``: a run's columns (``MetricsHistory.columns``) in, a figure out, with a
``uirevision`` so a redraw keeps the user's zoom.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from genapp.smoothing import debiased_ema
from genapp.ui import charts
from genapp.ui.charts import PALETTE, Columns

# The discriminator's loss BCE(D(x),1) + BCE(D(G(z)),0) when D outputs 1/2 everywhere, which is
# what the optimal D does once the generator matches the data: the GAN's equilibrium.
D_LOSS_EQUILIBRIUM = 2 * math.log(2)
G_LOSS_EQUILIBRIUM = math.log(2)  # the non-saturating -log D(G(z)) at D = 1/2


def _smoothed(fig: go.Figure, columns: Columns, metric: str, name: str, color: str,
              smoothing: float | None = None) -> np.ndarray:
    """Add the raw (faint) and smoothed per-step ``metric`` (TensorBoard's debiased moving average
    with weight ``smoothing``, else the default span); returns the smoothed values plotted."""
    steps, values = charts.series(columns, metric)
    if not len(steps):
        return np.empty(0)
    keep = charts.thin(len(steps))
    smoothed = (charts.smooth(values) if smoothing is None else debiased_ema(values, smoothing))[keep]
    fig.add_scatter(x=steps[keep], y=values[keep], name=f"{name} per step", mode="lines", legendgroup=name,
                    showlegend=False, hoverinfo="skip", line=dict(width=1, color=color), opacity=0.25)
    fig.add_scatter(x=steps[keep], y=smoothed, name=name, mode="lines", legendgroup=name,
                    line=dict(width=2, color=color))
    return smoothed


def gan_losses(train: Columns, uirevision: str = "gan-losses", smoothing: float | None = None) -> go.Figure:
    """Per-step discriminator and generator losses (faint) and their moving averages, with dashed
    lines at their values at the equilibrium D = 1/2 (2 ln 2 for D, ln 2 for G)."""
    fig = go.Figure()
    _smoothed(fig, train, "d_loss", "D loss", PALETTE[0], smoothing)
    _smoothed(fig, train, "g_loss", "G loss", PALETTE[1], smoothing)
    charts.rule(fig, y=D_LOSS_EQUILIBRIUM, line=dict(dash="dash", color=PALETTE[0], width=1),
                text="D loss at D = ½: 2·ln 2 ≈ 1.39", position="top left")
    charts.rule(fig, y=G_LOSS_EQUILIBRIUM, line=dict(dash="dash", color=PALETTE[1], width=1),
                text="G loss at D = ½: ln 2 ≈ 0.69", position="bottom left")
    return charts.layout(fig, title="Discriminator and generator losses", x="step", y="loss (nats)",
                          uirevision=uirevision)


def discriminator_outputs(train: Columns, uirevision: str = "gan-d", smoothing: float | None = None) -> go.Figure:
    """Mean D(x) on real and D(G(z)) on generated images per step (smoothed), in [0, 1]."""
    fig = go.Figure()
    _smoothed(fig, train, "d_real", "D(x), real", PALETTE[2], smoothing)
    _smoothed(fig, train, "d_fake", "D(G(z)), generated", PALETTE[3], smoothing)
    charts.rule(fig, y=0.5, line=dict(dash="dot", color="grey", width=1), text="½: D cannot tell",
                position="bottom right")
    fig.update_yaxes(range=[0, 1])
    return charts.layout(fig, title="What the discriminator says", x="step", y="mean probability 'real'",
                          uirevision=uirevision)
