"""Plotly building blocks and the charts every tab shares: a figure's frame, reference lines,
smoothing, and the training curves of one run or several. Pure functions of plain data: no
streamlit, no torch. Each family's and tab's own charts are in ``<family>_charts.py`` /
``<tab>_charts.py`` beside this module.

Every figure that is redrawn while the user looks at it takes a ``uirevision``: plotly keeps
the user's zoom, pan and hidden legend entries for as long as that value stays the same.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from genapp.axes import log_ticks
from genapp.smoothing import DEFAULT_WEIGHT, debiased_ema

MAX_POINTS = 2000  # per trace; a 300-epoch run logs over 100k steps
WARMUP_MIN_STEPS = 200  # longer curves get a y axis fitted to what follows their first steps
WARMUP_FRACTION = 0.02
# A run's history: "step", "epoch", "time" and each metric, one value per record (see MetricsHistory).
Columns = dict[str, "np.ndarray | Sequence[float]"]
PALETTE = qualitative.Plotly
DIGIT_COLORS = qualitative.D3  # ten distinct colours, one per digit


def layout(fig: go.Figure, *, title: str, x: str, y: str, uirevision: str | None = None, height: int = 360,
            hovermode: str = "x unified") -> go.Figure:
    # The title sits at the very top and the legend between it and the plot, so they never overlap.
    settings = dict(
        title=dict(text=title, font=dict(size=15), x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=8)),
        height=height, margin=dict(l=10, r=10, t=80, b=10),
        xaxis=dict(title=dict(text=x)), yaxis=dict(title=dict(text=y)), uirevision=uirevision,
        legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0),
        hovermode=hovermode,
    )
    # One new Layout, not update_layout: plotly's relayout of an existing figure validates key
    # by key and costs ~50-100 ms here, a whole new Layout ~5 ms (measured on this CPU).
    current = fig.layout.to_plotly_json()
    current.pop("template", None)  # the default one comes back by itself, without its validation
    fig.layout = go.Layout(merged(current, settings))
    return fig


def merged(base: dict, update: dict) -> dict:
    """``base`` with ``update`` laid over it, nested dictionaries merged key by key."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def figure(data: list, settings: dict, *, title: str, x: str, y: str, uirevision: str, height: int,
            margin_top: int | None = None) -> go.Figure:
    """A figure built in one go: its traces, layout ``settings`` laid under ``layout``'s frame, and
    the top margin last. Adding annotations and lines one at a time costs plotly tens of
    milliseconds each; a figure made whole costs a few."""
    fig = layout(go.Figure(data=data, layout=settings), title=title, x=x, y=y, uirevision=uirevision,
                 height=height, hovermode="closest")
    if margin_top is not None:
        fig.layout.margin.t = margin_top
    return fig


def rule(fig: go.Figure, *, y: float | None = None, x: float | None = None, line: dict, text: str | None = None,
         position: str = "top right", font: dict | None = None) -> go.Figure:
    """A line across the plot at ``y`` (or ``x``), labelled with ``text`` at ``position``.

    What ``add_hline``/``add_vline`` draw, as one shape and one annotation: plotly's axis-spanning
    bookkeeping makes those ~45 ms a line here, this ~2 ms (measured on this CPU).
    """
    vertical = y is None
    value = x if vertical else y
    if vertical:
        fig.add_shape(type="line", x0=value, x1=value, xref="x", y0=0, y1=1, yref="y domain", line=line)
    else:
        fig.add_shape(type="line", y0=value, y1=value, yref="y", x0=0, x1=1, xref="x domain", line=line)
    if text:
        top, right = position.startswith("top"), position.endswith("right")
        axis = fig.layout.xaxis if vertical else fig.layout.yaxis
        at = math.log10(value) if axis.type == "log" else value  # annotations sit at log10 on a log axis
        where = (dict(x=at, xref="x", y=1 if top else 0, yref="y domain", xanchor="left" if right else "right",
                      yanchor="top" if top else "bottom") if vertical else
                 dict(y=at, yref="y", x=1 if right else 0, xref="x domain", xanchor="right" if right else "left",
                      yanchor="bottom" if top else "top"))
        fig.add_annotation(text=text, showarrow=False, font=font or dict(size=11, color="grey"), **where)
    return fig


def with_reference_lines(fig: go.Figure, lines: Sequence[tuple[float, str]]) -> go.Figure:
    """Dashed horizontal lines (value, label) on a figure; the y range grows to show them all."""
    log = fig.layout.yaxis.type == "log"
    for i, (value, label) in enumerate(lines):
        rule(fig, y=value, line=dict(dash="dash", color=PALETTE[(i + 3) % len(PALETTE)], width=1),
                    text=label, position="top right")
    if fig.layout.yaxis.range is not None:  # charts fits the axis to the curve; widen it to the references
        ys = [math.log10(v) if log else v for v, _ in lines]
        low, high = fig.layout.yaxis.range
        span = abs(high - low)
        fig.update_yaxes(range=[min(low, *ys) - 0.02 * span, max(high, *ys) + 0.05 * span])
    return fig


def smoothing_span(n: int) -> int:
    """Span of the moving average for a series of n steps: ~2% of it, within 10..500."""
    return int(min(500, max(10, n / 50)))


def smooth(values: Sequence[float]) -> np.ndarray:
    """Exponential moving average of a noisy per-step series (see ``smoothing_span``)."""
    return pd.Series(values, dtype="float64").ewm(span=smoothing_span(len(values))).mean().to_numpy()


def thin(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread points of n, always keeping the last."""
    if n <= max_points:
        return np.arange(n)
    index = np.arange(0, n, math.ceil(n / max_points))
    return index if index[-1] == n - 1 else np.append(index, n - 1)


# The x axes a curve can be drawn against, as TensorBoard offers them: the global step, the epoch
# (fractional for per-step values), and the wall time since the run's first record.
X_AXES = {"step": "step", "epoch": "epoch", "relative": "wall time since the start (min)"}


def start_time(*histories: Columns) -> float | None:
    """The earliest record time (Unix seconds) of these columns, or None when none has times."""
    firsts = [float(np.nanmin(c["time"])) for c in histories
              if len(c.get("time", [])) and np.isfinite(np.asarray(c["time"], dtype=float)).any()]
    return min(firsts) if firsts else None


def curve(columns: Columns, metric: str, x: str, *, steps_per_epoch: float | None = None,
          start: float | None = None, per_step: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(x, metric) for the x axis ``x`` (a key of ``X_AXES``), records lacking either dropped.

    ``per_step`` columns (training) get a fractional epoch, ``(step + 1) / steps_per_epoch``,
    as their records end at those steps; epoch records carry their epoch. Relative wall time is
    in minutes since ``start``.
    """
    if x == "step":
        return series(columns, metric)
    if x == "epoch":
        if per_step:
            if not steps_per_epoch:
                return np.empty(0), np.empty(0)
            steps, values = series(columns, metric)
            return (steps + 1) / steps_per_epoch, values
        return series(columns, metric, x="epoch")
    if x == "relative":
        if start is None:
            return np.empty(0), np.empty(0)
        times, values = series(columns, metric, x="time")
        keep = np.isfinite(times)
        return (times[keep] - start) / 60.0, values[keep]
    raise ValueError(f"unknown x axis {x!r}; choose one of {sorted(X_AXES)}")


def series(columns: Columns, metric: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """(x, metric) as float arrays, without the records that lack the metric (NaN or None)."""
    if metric not in columns or x not in columns:
        return np.empty(0), np.empty(0)
    xs, ys = np.asarray(columns[x], dtype=float), np.asarray(columns[metric], dtype=float)
    keep = np.isfinite(ys)
    return xs[keep], ys[keep]


def _log_if_positive(fig: go.Figure, *arrays: np.ndarray) -> bool:
    """A logarithmic y axis when every value is positive; returns whether it is one."""
    values = np.concatenate([a for a in arrays if len(a)]) if any(len(a) for a in arrays) else np.empty(0)
    log = bool(len(values)) and bool(np.all(values > 0))
    if log:
        fig.update_yaxes(type="log")
        low, high = float(values.min()), float(values.max())
        if high / low >= 10:  # over a decade plotly labels 20 as "2": name the ticks in full
            ticks = log_ticks(low, high)
            fig.update_yaxes(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    return log


def training_curves(train: Columns, valid: Columns, metric: str, uirevision: str,
                    smoothing: float = DEFAULT_WEIGHT, x: str = "step") -> go.Figure:
    """Per-step ``metric`` (raw, faint, and smoothed as TensorBoard does with weight ``smoothing``)
    and per-epoch validation ``metric``, against ``x`` (a key of ``X_AXES``).

    ``train`` and ``valid`` are the columns of a run's history (see ``MetricsHistory``).
    The y axis is logarithmic when every value is positive: losses fall by orders of magnitude
    in the first steps and would flatten the rest of the curve. The zoom is kept while
    ``uirevision`` and the x axis stay the same (a new slider value keeps it).
    """
    fig = go.Figure()
    start, per_epoch = start_time(train, valid), _steps_per_epoch(valid)
    xs, values = curve(train, metric, x, steps_per_epoch=per_epoch, start=start, per_step=True)
    smoothed = debiased_ema(values, smoothing)
    if len(xs):
        keep = thin(len(xs))
        fig.add_scatter(x=xs[keep], y=values[keep], name="per step", mode="lines",
                        line=dict(width=1, color=PALETTE[0]), opacity=0.3)
        fig.add_scatter(x=xs[keep], y=smoothed[keep], name="smoothed", mode="lines",
                        line=dict(width=2, color=PALETTE[0]))
    valid_xs, valid_values = curve(valid, metric, x, start=start)
    epochs, _ = series(valid, metric, x="epoch")
    if len(valid_xs):
        fig.add_scatter(x=valid_xs, y=valid_values, name="validation (per epoch)", mode="lines+markers",
                        line=dict(width=2, color=PALETTE[1]), marker=dict(size=7),
                        customdata=epochs[: len(valid_xs)],
                        hovertemplate="epoch %{customdata}: %{y:.2f}<extra>validation</extra>")
    log = _log_if_positive(fig, values, valid_values)
    if len(values) > WARMUP_MIN_STEPS:
        _focus_after_warmup(fig, smoothed, values, valid_values, log)
    revision = uirevision if x == "step" else f"{uirevision}:{x}"  # a new axis starts unzoomed
    return layout(fig, title=f"{metric} during training", x=X_AXES[x], y=metric, uirevision=revision, height=420)


def _focus_after_warmup(fig: go.Figure, smoothed: np.ndarray, raw: np.ndarray, valid: np.ndarray, log: bool) -> None:
    """Fit the y axis to the curve after its first steps, whose values are often many times
    larger and would flatten the rest (a double click on the chart still shows everything)."""
    # Past 3 spans the average has forgotten the first steps (their weight is below 0.3%).
    skip = min(len(smoothed) // 2, max(int(len(smoothed) * WARMUP_FRACTION), 3 * smoothing_span(len(smoothed))))
    low = min(raw[skip:].min(), valid.min() if len(valid) else np.inf)
    high = max(smoothed[skip:].max(), valid[1:].max() if len(valid) > 1 else -np.inf)
    if log and low > 0:
        fig.update_yaxes(range=[math.log10(low) - 0.01, math.log10(high) + 0.02])
    else:
        margin = 0.05 * (high - low or 1.0)
        fig.update_yaxes(range=[low - margin, high + margin])


def overlay_curves(histories: dict[str, tuple[Columns, Columns]], metric: str, uirevision: str = "overlay",
                   smoothing: float = DEFAULT_WEIGHT, x: str = "epoch") -> go.Figure:
    """Several runs on one chart: validation ``metric`` (solid, markers) and the training
    ``metric`` smoothed as TensorBoard does (dotted, its raw values faint behind), one colour per
    run, against ``x`` (a key of ``X_AXES``; relative wall time counts from each run's own start).

    ``histories`` maps a run name to its (train, valid) columns. Epoch is the default axis
    because runs with other batch or training-set sizes take different numbers of steps per epoch.
    """
    fig = go.Figure()
    plotted: list[np.ndarray] = []
    for i, (name, (train, valid)) in enumerate(histories.items()):
        color = PALETTE[i % len(PALETTE)]
        start, per_epoch = start_time(train, valid), _steps_per_epoch(valid)
        xs, values = curve(train, metric, x, steps_per_epoch=per_epoch, start=start, per_step=True)
        if len(xs):
            keep = thin(len(xs))
            smoothed = debiased_ema(values, smoothing)[keep]
            fig.add_scatter(x=xs[keep], y=values[keep], mode="lines", name=f"{name} train (raw)", legendgroup=name,
                            showlegend=False, hoverinfo="skip", opacity=0.15, line=dict(color=color, width=1))
            fig.add_scatter(x=xs[keep], y=smoothed, mode="lines",
                            name=f"{name} train", legendgroup=name, line=dict(color=color, width=1.5, dash="dot"))
            plotted.append(smoothed)
        valid_xs, valid_values = curve(valid, metric, x, start=start)
        if len(valid_xs):
            fig.add_scatter(x=valid_xs, y=valid_values, mode="lines+markers", name=f"{name} validation",
                            legendgroup=name, line=dict(color=color, width=2))
            plotted.append(valid_values)
    _log_if_positive(fig, *plotted)
    return layout(fig, title=f"{metric}: validation (solid) and smoothed training (dotted)", x=X_AXES[x],
                   y=metric, uirevision=f"{uirevision}:{x}", height=420, hovermode="closest")


def _steps_per_epoch(valid: Columns) -> float | None:
    """Steps per epoch, from the first validation record (logged at the end of its epoch)."""
    steps, epochs = valid.get("step", []), valid.get("epoch", [])
    if len(steps) and len(epochs) and epochs[0]:
        return float(steps[0]) / float(epochs[0])
    return None


def per_epoch(train: Columns, valid: Columns, metric: str, *, title: str, y: str, uirevision: str) -> go.Figure:
    """The mean of the per-step ``metric`` over each epoch beside the validation figure after it,
    against the epoch: a training curve drawn as a report draws it."""
    fig = go.Figure()
    epochs, values = series(train, metric, x="epoch")
    if len(epochs):
        numbers = np.unique(epochs)
        means = [values[epochs == e].mean() for e in numbers]
        fig.add_scatter(x=numbers, y=means, name="training (mean over the epoch)", mode="lines",
                        line=dict(width=2, color=PALETTE[0]))
    valid_epochs, valid_values = series(valid, metric, x="epoch")
    if len(valid_epochs):
        fig.add_scatter(x=valid_epochs, y=valid_values, name="validation", mode="lines+markers",
                        line=dict(width=2, color=PALETTE[1]), marker=dict(size=5))
    return layout(fig, title=title, x="epoch", y=y, uirevision=uirevision, height=380)
