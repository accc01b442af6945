"""Plotly figures of the Playground tab: the plane of 2-D points with what each family knows
about it (D(x), the density, the decoded latent grid), the bent grids of the flow, and the
curves of a run. Pure functions of the arrays ``genapp.playground.views`` computes and of plain
lists: no streamlit, no torch. Each is built in one go (``charts.figure``), which keeps a frame
of every view within a few tens of milliseconds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from genapp.ui import charts
from genapp.ui.charts import PALETTE

VIEW = (-3.0, 3.0)
REAL, FAKE, THIRD = "#444444", PALETTE[1], PALETTE[2]
D_EQUILIBRIUM = 2 * math.log(2)


def _plane_layout(span: tuple[float, float] = VIEW) -> dict:
    frame = dict(range=list(span), zeroline=False, showgrid=False, constrain="domain")
    return dict(xaxis=frame, yaxis=dict(frame, scaleanchor="x", scaleratio=1),
                legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0))


def _points(xy: np.ndarray, name: str, color, size: int = 4, opacity: float = 0.7, **extra) -> dict:
    return dict(type="scattergl" if False else "scatter", x=xy[:, 0], y=xy[:, 1], mode="markers", name=name,
                marker=dict(size=size, color=color, opacity=opacity), hoverinfo="skip", **extra)


def _lines(xy: np.ndarray, name: str, color: str, width: float = 1.2, **extra) -> dict:
    return dict(type="scatter", x=xy[:, 0], y=xy[:, 1], mode="lines", name=name, hoverinfo="skip",
                line=dict(color=color, width=width), connectgaps=False, **extra)


def _heatmap(axis: np.ndarray, z: np.ndarray, name: str, colorscale, zmin=None, zmax=None, title: str = "") -> dict:
    return dict(type="heatmap", x=axis, y=axis, z=z, name=name, colorscale=colorscale, zmin=zmin, zmax=zmax,
                colorbar=dict(title=dict(text=title), thickness=12, len=0.8), hovertemplate=f"{name}: %{{z:.3f}}<extra></extra>")


def plane(data: list[dict], title: str, uirevision: str, height: int = 460) -> go.Figure:
    """A square view of the toy plane with ``data``'s traces."""
    return charts.figure(data, _plane_layout(), title=title, x="x₁", y="x₂", uirevision=uirevision, height=height)


# ----------------------------------------------------------------------------- GAN


def gan_plane(view: dict, segments: np.ndarray, uirevision: str = "pg-gan") -> go.Figure:
    """Real and generated points over the heatmap of D(x), with G's gradient as arrows."""
    return plane([
        _heatmap(view["axis"], view["d_surface"], "D(x)", "RdBu", 0.0, 1.0, "D(x)"),
        _points(view["real"], "real data", REAL, 4, 0.55),
        _points(view["fake"], "generated G(z)", FAKE, 5, 0.9),
        _lines(segments, "−∇ G loss (where D pushes G's points)", "#111111", 1.0),
    ], "Discriminator D(x) (blue: real, red: fake) and the generator's samples", uirevision)


# ----------------------------------------------------------------------------- VAE


def vae_plane(view: dict, uirevision: str = "pg-vae") -> go.Figure:
    """Data, reconstructions, samples, and the decoder's image of a latent grid."""
    return plane([
        _lines(view["manifold"], "decoded latent grid", PALETTE[4], 1.0, opacity=0.7),
        _points(view["data"], "data", REAL, 4, 0.45),
        _points(view["recon"], "reconstructions", PALETTE[0], 4, 0.8),
        _points(view["samples"], "samples", FAKE, 4, 0.7),
    ], "Data space: reconstructions, samples and the decoded latent grid", uirevision)


def vae_codes(view: dict, colours: list[str], uirevision: str = "pg-vae-codes") -> go.Figure:
    """The encoder's mean codes, each coloured by where its point lies in data space."""
    codes = view["codes"]
    if codes.shape[1] == 1:  # one dimension: spread the codes vertically by their point's x₂
        codes = np.concatenate([codes, view["data"][:, 1:2]], 1)
        y_title = "the point's x₂ (to spread them)"
    else:
        y_title = "z₂"
    span = (-3.5, 3.5)
    settings = _plane_layout(span)
    fig = charts.figure([_points(codes, "codes (mean of q(z|x))", colours, 5, 0.85)], settings,
                        title="Latent space: codes coloured by their point's position (red → x₁, blue → x₂)",
                        x="z₁", y=y_title, uirevision=uirevision, height=460)
    return fig


# ----------------------------------------------------------------------------- flow


def flow_plane(view: dict, uirevision: str = "pg-flow") -> go.Figure:
    """The exact density p(x) as a heatmap with the flow's samples over it."""
    return plane([
        _heatmap(view["axis"], view["density"], "p(x)", "Viridis", 0.0, None, "p(x)"),
        _points(view["samples"], "samples x = f⁻¹(z)", "#ffffff", 3, 0.8),
    ], "Exact density p(x) and samples", uirevision)


def flow_layers(states: Sequence[np.ndarray], titles: Sequence[str], title: str, uirevision: str,
                columns: int = 5) -> go.Figure:
    """Small multiples: the grid's lines after each layer, left to right, ``columns`` a row."""
    n = len(states)
    rows = math.ceil(n / columns)
    gap = 0.02
    width, height = (1 - gap * (columns - 1)) / columns, (1 - 0.08 * (rows - 1)) / rows
    settings: dict = {"showlegend": False, "annotations": []}
    data = []
    for i, (xy, name) in enumerate(zip(states, titles)):
        r, c = divmod(i, columns)
        suffix = "" if i == 0 else str(i + 1)
        x0, y1 = c * (width + gap), 1 - r * (height + 0.08)
        finite = xy[np.isfinite(xy[:, 0])]
        lo, hi = (np.percentile(finite, [1, 99], axis=0) if len(finite) else (np.array([-3, -3]), np.array([3, 3])))
        half = max(float((hi - lo).max()) / 2 * 1.1, 0.5)
        mid = (hi + lo) / 2
        settings[f"xaxis{suffix}"] = dict(domain=[max(0.0, x0), min(1.0, x0 + width)], anchor=f"y{suffix}", showticklabels=False,
                                          range=[mid[0] - half, mid[0] + half], showgrid=False, zeroline=False)
        settings[f"yaxis{suffix}"] = dict(domain=[max(0.0, y1 - height), min(1.0, y1)], anchor=f"x{suffix}", showticklabels=False,
                                          range=[mid[1] - half, mid[1] + half], showgrid=False, zeroline=False,
                                          scaleanchor=f"x{suffix}")
        k = len(xy) // 2  # the first half of the rows are the horizontal lines
        data.append(dict(_lines(xy[:k], "", PALETTE[0], 1.0), xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        data.append(dict(_lines(xy[k:], "", PALETTE[1], 1.0), xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        settings["annotations"].append(dict(text=name, x=x0 + width / 2, y=y1, xref="paper", yref="paper",
                                            xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=11)))
    fig = charts.figure(data, settings, title=title, x="", y="", uirevision=uirevision, height=190 * rows + 70)
    fig.layout.xaxis.title = None
    fig.layout.yaxis.title = None
    return fig


# ----------------------------------------------------------------------------- curves


def columns(history: Sequence[dict]) -> dict[str, np.ndarray]:
    """A run's per-frame records (dicts of step and losses) as arrays by name (NaN where missing)."""
    names = sorted({name for record in history for name in record})
    return {name: np.array([record.get(name, np.nan) for record in history], dtype=float) for name in names}


def curves(history: Sequence[dict], metrics: dict[str, str], title: str, y: str, uirevision: str,
           references: Sequence[tuple[float, str]] = (), height: int = 300, floor: float | None = None) -> go.Figure:
    """``metrics`` (name -> label) of ``history`` against step, with dashed reference lines."""
    cols = columns(history)
    steps = cols.get("step", np.empty(0))
    data = [dict(type="scatter", x=steps, y=cols[name], mode="lines", name=label, line=dict(width=2, color=PALETTE[i]))
            for i, (name, label) in enumerate(metrics.items()) if name in cols]
    settings: dict = {"shapes": [], "annotations": []}
    for value, text in references:
        settings["shapes"].append(dict(type="line", y0=value, y1=value, yref="y", x0=0, x1=1, xref="x domain",
                                       line=dict(dash="dash", color="grey", width=1)))
        settings["annotations"].append(dict(text=text, y=value, yref="y", x=1, xref="x domain", xanchor="right",
                                            yanchor="bottom", showarrow=False, font=dict(size=11, color="grey")))
    if floor is not None:
        settings["yaxis"] = dict(rangemode="normal")
    return charts.figure(data, settings, title=title, x="step", y=y, uirevision=uirevision, height=height)
