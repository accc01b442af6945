"""Plotly figures of the Playground tab: the plane of 2-D points with what each family knows
about it (D(x), the density, the decoded latent grid), the bent grids of the flow, and the
curves of a run. Pure functions of the arrays ``genapp.playground.views`` computes and of plain
lists: no streamlit, no torch. Each is built in one go (``charts.figure``), which keeps a frame
of every view within a few tens of milliseconds.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageColor, ImageDraw
from plotly.colors import get_colorscale, sample_colorscale

from genapp.ui import charts
from genapp.ui.charts import PALETTE

VIEW = (-3.0, 3.0)
REAL, FAKE, THIRD = "#444444", PALETTE[1], PALETTE[2]
D_EQUILIBRIUM = 2 * math.log(2)


def _plane_layout(span: tuple[float, float] = VIEW) -> dict:
    frame = dict(range=list(span), zeroline=False, showgrid=False, constrain="domain")
    return dict(xaxis=frame, yaxis=dict(frame, scaleanchor="x", scaleratio=1), margin=dict(t=40, b=70),
                legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0))


def _points(xy: np.ndarray, name: str, color, size: int = 4, opacity: float = 0.7, **extra) -> dict:
    return dict(type="scatter", x=xy[:, 0], y=xy[:, 1], mode="markers", name=name,
                marker=dict(size=size, color=color, opacity=opacity), hoverinfo="skip", **extra)


def _lines(xy: np.ndarray, name: str, color: str, width: float = 1.2, **extra) -> dict:
    return dict(type="scatter", x=xy[:, 0], y=xy[:, 1], mode="lines", name=name, hoverinfo="skip",
                line=dict(color=color, width=width), connectgaps=False, **extra)


def _heatmap(axis: np.ndarray, z: np.ndarray, name: str, colorscale, zmin=None, zmax=None, title: str = "") -> dict:
    return dict(type="heatmap", x=axis, y=axis, z=z, name=name, colorscale=colorscale, zmin=zmin, zmax=zmax,
                colorbar=dict(title=dict(text=title), thickness=12, len=0.8), hovertemplate=f"{name}: %{{z:.3f}}<extra></extra>")


def _figure(data: list[dict], settings: dict, title: str, uirevision: str, height: int, x: str = "", y: str = "") -> go.Figure:
    """A figure validated once, as a whole: the frame of ``charts.layout`` laid under ``settings``."""
    frame = dict(title=dict(text=title, font=dict(size=15), x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=8)),
                 height=height, margin=dict(l=10, r=10, t=80, b=10), uirevision=uirevision, hovermode="closest",
                 legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0),
                 xaxis=dict(title=dict(text=x)), yaxis=dict(title=dict(text=y)))
    return go.Figure(data=data, layout=charts.merged(frame, settings))


def plane(data: list[dict], title: str, uirevision: str, height: int = 460, raster: bool = False) -> go.Figure:
    """A square view of the toy plane with ``data``'s traces; with ``raster``, the traces drawn
    into one picture under the axes (``rasterize``), with their legend and colour bar kept: a
    browser redraws it at a fraction of the cost of hundreds of SVG markers (while playing)."""
    if not raster:
        return _figure(data, _plane_layout(), title, uirevision, height, "x₁", "x₂")
    lo, hi = VIEW
    settings = _plane_layout()
    settings["images"] = [dict(source=rasterize(data), xref="x", yref="y", x=lo, y=hi, sizex=hi - lo, sizey=hi - lo,
                               sizing="stretch", layer="below")]
    return _figure([_legend_only(trace) for trace in data], settings, title, uirevision, height, "x₁", "x₂")


RASTER_PIXELS = 360


@lru_cache(maxsize=8)
def _colour_table(name: str) -> np.ndarray:
    """A plotly colour scale as 256 RGB rows, uint8 [256, 3]."""
    colours = sample_colorscale(get_colorscale(name), list(np.linspace(0, 1, 256)), colortype="tuple")
    return (np.array(colours) * (255 if max(max(c) for c in colours) <= 1 else 1)).clip(0, 255).astype(np.uint8)


def _rgb(colour: str) -> tuple[int, int, int]:
    return ImageColor.getrgb(colour)[:3]


def rasterize(data: list[dict], span: tuple[float, float] = VIEW, pixels: int = RASTER_PIXELS) -> str:
    """The heatmaps, markers and lines of ``data`` (trace dicts as ``plane`` takes them) drawn in
    order into a ``pixels``-square PNG of the ``span`` square: a data: URI."""
    lo, hi = span
    scale = pixels / (hi - lo)
    picture = Image.new("RGBA", (pixels, pixels), (255, 255, 255, 0))
    for trace in data:
        if trace["type"] == "heatmap":
            z = np.asarray(trace["z"], dtype=float)
            zmin = trace.get("zmin") if trace.get("zmin") is not None else float(np.nanmin(z))
            zmax = trace.get("zmax") if trace.get("zmax") is not None else float(np.nanmax(z))
            index = np.clip((z - zmin) / max(zmax - zmin, 1e-12) * 255, 0, 255).astype(np.uint8)
            cells = Image.fromarray(_colour_table(trace["colorscale"])[index[::-1]], "RGB")
            picture.alpha_composite(cells.resize((pixels, pixels), Image.NEAREST).convert("RGBA"))
            continue
        layer = Image.new("RGBA", (pixels, pixels), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        px = (np.asarray(trace["x"], dtype=float) - lo) * scale
        py = (hi - np.asarray(trace["y"], dtype=float)) * scale
        if trace.get("mode") == "lines":
            colour = (*_rgb(trace["line"]["color"]), int(255 * trace.get("opacity", 1.0)))
            width = max(1, round(trace["line"].get("width", 1)))
            breaks = np.flatnonzero(~np.isfinite(px))
            for part_x, part_y in zip(np.split(px, breaks), np.split(py, breaks)):
                keep = np.isfinite(part_x)
                if keep.sum() >= 2:
                    draw.line(list(zip(part_x[keep].tolist(), part_y[keep].tolist())), fill=colour, width=width)
        else:
            marker = trace["marker"]
            alpha = int(255 * marker.get("opacity", 1.0))
            colours = marker["color"] if isinstance(marker["color"], (list, tuple)) else [marker["color"]] * len(px)
            radius = marker.get("size", 4) / 2
            for x, y, colour in zip(px.tolist(), py.tolist(), colours):
                if math.isfinite(x) and math.isfinite(y):
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*_rgb(colour), alpha))
        picture.alpha_composite(layer)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _legend_only(trace: dict) -> dict:
    """A trace's legend entry (or colour bar) without its points, for a rasterized plane."""
    if trace["type"] == "heatmap":  # its colour bar, from a cell off the plane
        return dict(type="heatmap", x=[100.0], y=[100.0], z=[[trace.get("zmin") or 0.0]], zmin=trace.get("zmin"),
                    zmax=trace.get("zmax") if trace.get("zmax") is not None else float(np.nanmax(trace["z"])),
                    colorscale=trace["colorscale"], colorbar=trace["colorbar"], hoverinfo="skip", name=trace["name"])
    entry = {k: v for k, v in trace.items() if k not in ("x", "y")}
    if "marker" in entry and isinstance(entry["marker"].get("color"), (list, tuple)):
        entry["marker"] = dict(entry["marker"], color=entry["marker"]["color"][0])
    return dict(entry, x=[None], y=[None])


# ----------------------------------------------------------------------------- GAN


def gan_plane(view: dict, segments: np.ndarray, uirevision: str = "pg-gan", raster: bool = False) -> go.Figure:
    """Real and generated points over the heatmap of D(x), with G's gradient as arrows."""
    return plane([
        _heatmap(view["axis"], view["d_surface"], "D(x)", "RdBu", 0.0, 1.0, "D(x)"),
        _points(view["real"], "real data", REAL, 4, 0.55),
        _points(view["fake"], "generated G(z)", FAKE, 5, 0.9),
        _lines(segments, "−∇ G loss (where D pushes G's points)", "#111111", 1.0),
    ], "D(x) (blue: real, red: fake) under G's samples", uirevision, raster=raster)


# ----------------------------------------------------------------------------- VAE


def vae_plane(view: dict, uirevision: str = "pg-vae", raster: bool = False) -> go.Figure:
    """Data, reconstructions, samples, and the decoder's image of a latent grid."""
    return plane([
        _lines(view["manifold"], "decoded latent grid", PALETTE[4], 1.0, opacity=0.7),
        _points(view["data"], "data", REAL, 4, 0.45),
        _points(view["recon"], "reconstructions", PALETTE[0], 4, 0.8),
        _points(view["samples"], "samples", FAKE, 4, 0.7),
    ], "Data space: reconstructions, samples, grid", uirevision, raster=raster)


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
    return _figure([_points(codes, "codes (mean of q(z|x))", colours, 5, 0.85)], settings,
                   "Latent space: codes, coloured by position", uirevision, 460,
                   "z₁", y_title)


# ----------------------------------------------------------------------------- flow


def flow_plane(view: dict, uirevision: str = "pg-flow", raster: bool = False) -> go.Figure:
    """The exact density p(x) as a heatmap with the flow's samples over it."""
    return plane([
        _heatmap(view["axis"], view["density"], "p(x)", "Viridis", 0.0, None, "p(x)"),
        _points(view["samples"], "samples x = f⁻¹(z)", "#ffffff", 3, 0.8),
    ], "Exact density p(x) and samples", uirevision, raster=raster)


def _fitted(xy: np.ndarray) -> np.ndarray:
    """A panel's lines moved and scaled (the same in x and y) into the unit square around 0.5:
    its 1st to 99th percentiles fill it, so every layer's picture is readable whatever its scale."""
    finite = xy[np.isfinite(xy[:, 0])]
    if not len(finite):
        return xy
    lo, hi = np.percentile(finite, [1, 99], axis=0)
    half = max(float((hi - lo).max()) / 2 * 1.08, 1e-6)
    return (xy - (hi + lo) / 2) / (2 * half) + 0.5


def flow_layers(states: Sequence[np.ndarray], titles: Sequence[str], title: str, uirevision: str,
                columns: int = 4) -> go.Figure:
    """Small multiples on one pair of axes: the grid's lines after each layer, left to right,
    ``columns`` a row, each panel scaled to fit (one trace per line family, not per panel: a
    figure of a few traces costs plotly a few milliseconds, one of dozens of axes a hundred)."""
    pitch, rows = 1.18, math.ceil(len(states) / columns)
    panels = {0: [], 1: []}
    label_x, label_y = [], []
    for i, xy in enumerate(states):
        r, c = divmod(i, columns)
        fitted = _fitted(xy) + np.array([c * pitch, -r * pitch * 1.2])
        k = len(xy) // 2  # the first half of the rows are the horizontal lines
        panels[0].append(fitted[:k])
        panels[1].append(fitted[k:])
        label_x.append(c * pitch + 0.5)
        label_y.append(-r * pitch * 1.2 + 1.04)
    data = [_lines(np.concatenate(panels[0]), "lines that start horizontal", PALETTE[0], 1.0),
            _lines(np.concatenate(panels[1]), "lines that start vertical", PALETTE[1], 1.0),
            dict(type="scatter", x=label_x, y=label_y, text=list(titles), mode="text", textposition="top center",
                 textfont=dict(size=11), showlegend=False, hoverinfo="skip")]
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False)
    settings = dict(xaxis=dict(hidden, range=[-0.05, columns * pitch - 0.1]),
                    yaxis=dict(hidden, range=[-(rows - 1) * pitch * 1.2 - 0.05, 1.3], scaleanchor="x"))
    return _figure(data, settings, title, uirevision, 250 * rows + 90)


# ----------------------------------------------------------------------------- curves


def columns(history: Sequence[dict]) -> dict[str, np.ndarray]:
    """A run's per-frame records (dicts of step and losses) as arrays by name (NaN where missing)."""
    names = sorted({name for record in history for name in record})
    return {name: np.array([record.get(name, np.nan) for record in history], dtype=float) for name in names}


def curves(history: Sequence[dict], metrics: dict[str, str], title: str, y: str, uirevision: str,
           references: Sequence[tuple[float, str]] = (), height: int = 300) -> go.Figure:
    """``metrics`` (name -> label) of ``history`` against step, with dashed reference lines; the
    y axis fits the curves after their first fifth (a double click shows everything)."""
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
    values = [cols[name] for name in metrics if name in cols]
    if values and len(steps) > 20:  # fit the y axis to what follows the first fifth: the start is far above
        tail = np.concatenate([v[len(v) // 5:] for v in values])
        tail = tail[np.isfinite(tail)]
        if len(tail):
            refs = [value for value, _ in references]
            low, high = min([float(tail.min()), *refs]), max([float(tail.max()), *refs])
            margin = 0.08 * (high - low or 1.0)
            settings["yaxis"] = dict(range=[low - margin, high + margin])
    return _figure(data, settings, title, uirevision, height, "step", y)
