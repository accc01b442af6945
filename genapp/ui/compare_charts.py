"""Plotly bar charts of the Compare tab, from ``genapp.evaluation.catalog.comparison_rows``.
Pure functions of plain rows: no streamlit, no torch."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from genapp.axes import log_ticks
from genapp.ui.charts import PALETTE

FAMILY_COLORS = {"VAE": PALETTE[0], "GAN": PALETTE[1], "Flow": PALETTE[2]}
# (family, panel title): bits per dimension only compare within one kind of data.
LIKELIHOOD_PANELS = [
    ("VAE", "VAE: bits per binary pixel<br>(binarized MNIST)"),
    ("Flow", "Flow: bits per 8-bit pixel<br>(dequantized MNIST)"),
]
CAVEAT = ("The two panels model different data: a binarized pixel holds at most 1 bit, an 8-bit one at "
          "most 8, so a VAE's and a flow's bits/dim are not comparable (the GAN defines no likelihood). "
          "A VAE's value is an upper bound (IWAE or −ELBO); compare within a panel, at the same split.")


def _bar(rows: list[dict], value: str, text_format: str, hover: str) -> go.Bar:
    return go.Bar(
        x=[r["model"] for r in rows], y=[r[value] for r in rows],
        marker_color=[FAMILY_COLORS.get(r["family"], PALETTE[3]) for r in rows],
        marker_pattern_shape=["/" if r.get("source") == "run" else "" for r in rows],  # runs hatched
        text=[format(r[value], text_format) for r in rows], textposition="outside", cliponaxis=False,
        customdata=[[r.get("likelihood_data") or "", r.get("likelihood_estimate") or "", r.get("nll_nats") or 0.0,
                     r.get("quality_samples") or 0] for r in rows],
        hovertemplate=hover, showlegend=False,
    )


def _frame(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, font=dict(size=15), x=0, xanchor="left"), height=height,
                      margin=dict(l=10, r=10, t=90, b=10), bargap=0.35, uirevision="compare")
    fig.update_annotations(font_size=13)
    return fig


def likelihood_bars(rows: list[dict]) -> go.Figure:
    """Bits per dimension of every row that has a likelihood, one panel per kind of data."""
    panels = [(family, title, [r for r in rows if r["family"] == family and r["bpd"] is not None])
              for family, title in LIKELIHOOD_PANELS]
    fig = make_subplots(rows=1, cols=2, subplot_titles=[title for _, title, _ in panels], horizontal_spacing=0.12)
    hover = ("%{x}<br>%{y:.3f} bits/dim = %{customdata[2]:.2f} nats<br>%{customdata[1]}"
             "<br>%{customdata[0]}<extra></extra>")
    for col, (_, _, chosen) in enumerate(panels, start=1):
        if chosen:
            fig.add_trace(_bar(chosen, "bpd", ".3f", hover), row=1, col=col)
        fig.update_yaxes(title_text="bits/dim (lower is better)", rangemode="tozero", row=1, col=col)
    return _frame(fig, "Negative log-likelihood in bits per dimension", height=420)


def quality_bars(rows: list[dict]) -> go.Figure:
    """FID (log axis, with the real-data floor), Inception Score (with the real test set's) and
    label KL of every row the classifier scored."""
    scored = [r for r in rows if r["fid"] is not None]
    floor = next((r["fid_real_floor"] for r in scored if r["fid_real_floor"] is not None), None)
    real_is = next((r["inception_score_real"] for r in scored if r["inception_score_real"] is not None), None)
    titles = ["FID ↓ (classifier features)" + (f"<br>dashed: real data {floor:.2f}" if floor is not None else ""),
              "Inception Score ↑" + (f"<br>dashed: real test set {real_is:.2f}" if real_is is not None else ""),
              "Label KL ↓<br>0 = every digit equally often"]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=titles)
    samples = "<br>%{customdata[3]:,} samples<extra></extra>"
    for col, (value, text_format) in enumerate((("fid", ".1f"), ("inception_score", ".2f"), ("label_kl", ".3f")),
                                               start=1):
        chosen = [r for r in scored if r[value] is not None]
        if chosen:
            fig.add_trace(_bar(chosen, value, text_format, "%{x}: %{y:" + text_format + "}" + samples), row=1, col=col)
    fids = [r["fid"] for r in scored if r["fid"] and r["fid"] > 0] + ([floor] if floor else [])
    fig.update_yaxes(type="log", row=1, col=1)
    if fids:
        ticks = log_ticks(min(fids) / 1.6, max(fids) * 1.6)
        fig.update_yaxes(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], row=1, col=1,
                         range=[math.log10(min(fids) / 1.6), math.log10(max(fids) * 1.6)])
    fig.update_yaxes(range=[0, 10.9], row=1, col=2)
    for value, col in ((floor, 1), (real_is, 2)):
        if value is not None:  # shapes take data values, also on a log axis; add_hline costs ~45 ms
            axis = "" if col == 1 else str(col)
            fig.add_shape(type="line", xref=f"x{axis} domain", x0=0, x1=1, yref=f"y{axis}", y0=value, y1=value,
                          line=dict(dash="dash", color="grey"))
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    return _frame(fig, "Sample quality judged by the MNIST classifier", height=440)
