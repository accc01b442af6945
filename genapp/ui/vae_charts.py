"""Plotly figures of the VAE tab: the latent scatter, the ELBO over training, the KL of each
latent dimension and the seed's Q1.4 (log p(x) estimates against the number of samples). Pure
functions of plain data: no streamlit, no torch."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from genapp.ui.charts import DIGIT_COLORS, PALETTE, Columns, figure, layout, series

def latent_scatter(points: np.ndarray, labels: np.ndarray, indices: np.ndarray, axis_titles: tuple[str, str],
                   selected: int | None = None, uirevision: str = "latent") -> go.Figure:
    """Encoded images as points coloured by digit; each point carries its image index.

    points float [n, 2]; labels int [n] in 0..9; indices int [n] (``customdata``, so a click
    tells which image it was); ``selected`` is an image index to ring, if it is among them.
    """
    fig = go.Figure()
    for digit in range(10):
        mask = labels == digit
        fig.add_scattergl(
            x=points[mask, 0], y=points[mask, 1], mode="markers", name=str(digit), customdata=indices[mask],
            marker=dict(size=5, color=DIGIT_COLORS[digit], opacity=0.75),
            hovertemplate=f"digit {digit}<br>image %{{customdata}}<extra></extra>",
        )
    if selected is not None and np.any(indices == selected):
        (row,) = np.flatnonzero(indices == selected)[:1]
        fig.add_scatter(x=[points[row, 0]], y=[points[row, 1]], mode="markers", name="selected", hoverinfo="skip", showlegend=False,
                        marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(width=3, color="black")))
    layout(fig, title="Test images by digit (click a point)", x=axis_titles[0], y=axis_titles[1],
            uirevision=uirevision, height=460, hovermode="closest")
    fig.update_layout(clickmode="event+select", margin_t=40,
                      legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top", title_text="digit"))
    return fig


def elbo_history(valid: Columns, uirevision: str = "elbo") -> go.Figure:
    """The validation negative ELBO per epoch as stacked reconstruction and KL terms (nats)."""
    fig = go.Figure()
    for name, color in (("recon", PALETTE[0]), ("kl", PALETTE[1])):
        epochs, values = series(valid, name, x="epoch")
        label = "reconstruction −log p(x|z)" if name == "recon" else "KL(q(z|x) ‖ p(z))"
        fig.add_scatter(x=epochs, y=values, name=label, mode="lines", stackgroup="elbo", line=dict(color=color))
    return layout(fig, title="−ELBO = reconstruction + KL (validation)", x="epoch", y="nats per image",
                   uirevision=uirevision)


def kl_per_dimension(kl: np.ndarray, active: np.ndarray) -> go.Figure:
    """Bar per latent dimension: mean KL in nats (kl float [d]), active units in colour (active bool [d])."""
    dims = np.arange(1, len(kl) + 1)
    colors = [PALETTE[0] if a else "lightgrey" for a in active]
    fig = go.Figure(go.Bar(x=dims, y=kl, marker_color=colors,
                           hovertemplate="z%{x}: %{y:.2f} nats<extra></extra>"))
    layout(fig, title=f"KL of each latent dimension: {int(active.sum())} of {len(kl)} active",
            x="latent dimension", y="nats per image", hovermode="closest")
    fig.update_xaxes(tickmode="linear" if len(kl) <= 32 else "auto")
    return fig


METHOD_LABELS = {"prior": "Monte Carlo, z ~ p(z)", "importance": "importance sampling, z ~ q(z|x)"}


def likelihood_estimates(ks: Sequence[int], means: dict[str, np.ndarray], stds: dict[str, np.ndarray],
                         counts: Sequence[int], best: float, uirevision: str = "q14") -> go.Figure:
    """Estimates of log p(x) against the number of samples k (log axis): for each method the mean
    of its estimates at each k with ± one standard deviation, and a dashed line at ``best`` (the
    importance-sampling estimate at the largest k).

    ``means`` and ``stds`` map "prior" / "importance" to float [len(ks)]; ``counts`` says how
    many independent estimates each k has.
    """
    data = [
        go.Scatter(x=list(ks), y=means[method], mode="lines+markers", name=METHOD_LABELS[method],
                   error_y=dict(type="data", array=stds[method], visible=True, thickness=1.5, width=6),
                   line=dict(color=PALETTE[i], width=2), marker=dict(size=8),
                   customdata=np.stack([stds[method], counts], 1),
                   hovertemplate="k = %{x:,}: %{y:.2f} ± %{customdata[0]:.2f} nats "
                                 "(%{customdata[1]:,} estimates)<extra></extra>")
        for i, method in enumerate(("prior", "importance"))
    ]
    line = dict(type="line", y0=best, y1=best, yref="y", x0=0, x1=1, xref="x domain",
                line=dict(dash="dash", color="grey", width=1))
    label = dict(text=f"best estimate {best:.2f}", y=best, yref="y", x=0, xref="x domain", xanchor="left",
                 yanchor="top", showarrow=False, font=dict(size=11, color="grey"))
    xaxis = dict(type="log", tickvals=list(ks), ticktext=[f"{k:,}" for k in ks])
    return figure(data, dict(shapes=[line], annotations=[label], xaxis=xaxis),
                   title="log p(x) of one image: estimates as the number of samples k grows", x="samples k",
                   y="estimate of log p(x) (nats)", uirevision=uirevision, height=420)


def posterior_contours(z1: np.ndarray, z2: np.ndarray, log_q: np.ndarray, log_posterior: np.ndarray, *,
                       prior_extent: float | None = None, uirevision: str = "posterior") -> go.Figure:
    """The seed's Fig. 2: contours of the encoder's q(z|x) and the true posterior p(z|x) on their
    grid (axes z1 [n], z2 [n]; log densities [n, n] indexed [z2, z1]) and, with ``prior_extent``,
    of the prior N(0, I) over ±extent, where the other two are specks.

    Each density is drawn at the levels that hold 50 %, 90 % and 99 % of its mass on its grid, so
    shapes of very different heights read on one chart."""
    fig = go.Figure()
    layers = [("encoder q(z|x)", z1, z2, log_q, PALETTE[0], "dash"),
              ("true posterior p(z|x)", z1, z2, log_posterior, PALETTE[1], "solid")]
    if prior_extent is not None:
        axis = np.linspace(-prior_extent, prior_extent, 161)
        log_prior = -0.5 * (axis[None, :] ** 2 + axis[:, None] ** 2)
        layers.insert(0, ("prior p(z)", axis, axis, log_prior, PALETTE[2], "dot"))
    for name, x, y, log_density, color, dash in layers:
        density = np.exp(log_density - log_density.max())
        for i, level in enumerate(mass_levels(density, (0.99, 0.9, 0.5))):  # one line per level
            fig.add_trace(go.Contour(
                x=x, y=y, z=density, name=name, legendgroup=name, showlegend=i == 0, showscale=False,
                hoverinfo="skip", contours=dict(coloring="none", start=level, end=level, size=1.0),
                line=dict(color=color, width=1 + i, dash=dash)))
    title = "In the prior's space" if prior_extent is not None else "Zoomed in on this image's posterior"
    fig = layout(fig, title=title, x="z1", y="z2", uirevision=uirevision, height=400, hovermode="closest")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def mass_levels(density: np.ndarray, masses: Sequence[float]) -> list[float]:
    """The density values whose upper level sets hold each of ``masses`` of the total (on a grid
    of equal cells), ascending."""
    values = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(values) / values.sum()
    return sorted(float(values[min(np.searchsorted(cumulative, m), len(values) - 1)]) for m in masses)
