"""Plotly figures of the Your-digit tab: where the encoder puts a digit among the test images,
and where its bits per dimension fall among theirs. Pure functions of plain data: no streamlit,
no torch."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from genapp.ui.charts import DIGIT_COLORS, PALETTE, figure


def posterior_on_latents(points: np.ndarray, labels: np.ndarray, mean: np.ndarray, ellipse: np.ndarray,
                         axis_titles: tuple[str, str], close_up: bool = False,
                         uirevision: str = "digit-posterior") -> go.Figure:
    """Test images' posterior means (faint, coloured by digit) and one digit's posterior: its mean
    (a star) and its one-σ ellipse; ``close_up`` frames the ellipse (four times its size).

    points float [n, 2]; labels int [n]; mean float [2]; ellipse float [m, 2] (a closed curve).
    """
    data, annotations = [], []
    for digit in range(10):
        mask = labels == digit
        data.append(go.Scattergl(x=points[mask, 0], y=points[mask, 1], mode="markers", name=str(digit),
                                 showlegend=False, hovertemplate=f"test image of a {digit}<extra></extra>",
                                 marker=dict(size=8 if close_up else 4, color=DIGIT_COLORS[digit], opacity=0.35)))
        if mask.any():  # the digit's name where its images gather, instead of a legend
            centre = np.median(points[mask], axis=0)
            annotations.append(dict(x=centre[0], y=centre[1], text=f"<b>{digit}</b>", showarrow=False,
                                    font=dict(size=15, color=DIGIT_COLORS[digit]), bgcolor="rgba(255,255,255,0.7)"))
    data.append(go.Scatter(x=ellipse[:, 0], y=ellipse[:, 1], mode="lines", name="one σ of q(z|x)", fill="toself",
                           fillcolor="rgba(0,0,0,0.15)", line=dict(color="black", width=2), hoverinfo="skip"))
    data.append(go.Scatter(x=[mean[0]], y=[mean[1]], mode="markers", name="your digit: mean of q(z|x)",
                           marker=dict(symbol="star", size=16, color="black", line=dict(color="white", width=1)),
                           hovertemplate="posterior mean (%{x:.2f}, %{y:.2f})<extra></extra>"))
    xaxis, yaxis = {}, dict(scaleanchor="x", scaleratio=1)  # true shapes: a round posterior looks round
    if close_up:
        half = 4 * max(float(np.abs(ellipse - mean).max()), 1e-3)
        xaxis["range"] = [mean[0] - half, mean[0] + half]
        yaxis["range"] = [mean[1] - half, mean[1] + half]
    return figure(data, dict(annotations=annotations, xaxis=xaxis, yaxis=yaxis), title="Where the encoder puts it",
                   x=axis_titles[0], y=axis_titles[1], uirevision=f"{uirevision}:{close_up}", height=420,
                   margin_top=70)


def bits_per_dim_histogram(test_bpd: np.ndarray, value: float, percent: float,
                           uirevision: str = "digit-bpd") -> go.Figure:
    """Histogram of the test images' bits per dimension with a line at ``value`` (one digit's).

    The x axis stops at the 99th percentile (or at the digit, if further): the worst 1% of the
    test images spread over a range 20 times wider and would squash the histogram.
    """
    low, high = np.percentile(test_bpd, [0.0, 99.0])
    low, high = min(low, value), max(high, value)
    histogram = go.Histogram(x=test_bpd[test_bpd <= high], nbinsx=50, marker_color=PALETTE[0], opacity=0.75,
                             name="test images", hovertemplate="%{x} bits/dim: %{y} images<extra></extra>")
    left = value < (low + high) / 2
    line = dict(type="line", x0=value, x1=value, xref="x", y0=0, y1=1, yref="y domain", line=dict(color="black", width=3))
    label = dict(x=value, y=1, yref="y domain", text=f"yours: {value:.2f}<br>percentile {percent:.0f}",
                 showarrow=False, xanchor="left" if left else "right", yanchor="top", xshift=6 if left else -6,
                 align="left", font=dict(size=12), bgcolor="rgba(255,255,255,0.8)")
    return figure([histogram], dict(shapes=[line], annotations=[label], showlegend=False, bargap=0.02),
                   title="The test images' bits/dim", x="bits per dimension", y="test images",
                   uirevision=uirevision, height=300, margin_top=40)
