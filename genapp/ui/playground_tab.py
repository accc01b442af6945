"""The Playground tab: 2-D toy versions of the three families, trained live in this browser
session (``genapp.playground``), with a failure-mode lab.

The controls sit outside the live part: changing one reruns the page once and takes effect at
the next step. The live part is a fragment that, while playing, reruns itself every
``FRAME_SECONDS``: a few training steps on the server's CPU, then every view redrawn. The
session's model lives in ``st.session_state`` (nothing on disk; a refresh starts over), so other
sessions and the MNIST jobs are untouched, and a frame holds the server for tens of milliseconds.
"""
from __future__ import annotations

import dataclasses
import time
import typing

import numpy as np
import streamlit as st
import torch

from genapp.config import ConfigError, choices, field_help, field_label
from genapp.playground import LABELS, TOY_FAMILIES, views
from genapp.playground.data import DATASETS, DISCRETE_STEP, LABELS as DATA_LABELS, points_around
from genapp.playground.presets import PRESETS, presets_for
from genapp.playground.session import PlaygroundSession
from genapp.ui import playground_charts as charts
from genapp.ui.text import plain

FRAME_SECONDS = 0.2  # 5 frames a second while playing
CURVES_EVERY = 5  # frames between two redraws of the curves while playing (once a second)
SESSION = "pg-session"
LINK_KEY = "playground-preset"  # the preset a shared link opens (genapp.ui.url_state)
NO_PRESET = "None: free play"
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024]
CONFIG = {"displaylogo": False}


def session() -> PlaygroundSession:
    """This browser session's playground, made on first use (on the preset a shared link names,
    ``LINK_KEY``, when it names one); the open preset goes back to ``LINK_KEY`` for the next link."""
    if SESSION not in st.session_state:
        made = st.session_state[SESSION] = PlaygroundSession()
        st.session_state["pg-playing"] = False
        if st.session_state.get(LINK_KEY) in PRESETS:
            made.open_preset(st.session_state[LINK_KEY])
            _sync_widgets(made)
    current = st.session_state[SESSION]
    st.session_state[LINK_KEY] = current.preset or ""
    return current


def _sync_widgets(s: PlaygroundSession) -> None:
    """Set every widget from the session (after a reset, a preset or a family change)."""
    st.session_state.update({"pg-family": s.family, "pg-data": s.dataset, "pg-points": s.points, "pg-seed": s.seed,
                             "pg-lr": s.lr, "pg-batch": s.batch_size, "pg-steps": s.steps_per_frame,
                             "pg-preset": s.preset or NO_PRESET})
    for name, value in s.option_values().items():
        st.session_state[_option_key(s.family, name)] = value


def _option_key(family: str, name: str) -> str:
    return f"pg-{family}-{name}"


# ----------------------------------------------------------------------------- callbacks


def _message(text: str) -> None:
    st.session_state["pg-message"] = text


def _choose() -> None:
    s = session()
    try:
        if st.session_state["pg-family"] != s.family:  # a family opens on its own data
            s.choose(family=st.session_state["pg-family"])
        else:
            s.choose(dataset=st.session_state["pg-data"], points=int(st.session_state["pg-points"]),
                     seed=int(st.session_state["pg-seed"]))
    except ConfigError as e:
        _message(str(e))
    _sync_widgets(s)


def _open_preset() -> None:
    s = session()
    name = st.session_state["pg-preset"]
    if name == NO_PRESET:
        s.preset, s.fix_on = None, False
    else:
        s.open_preset(name)
    _sync_widgets(s)


def _set_training() -> None:
    session().set_training(lr=float(st.session_state["pg-lr"]), batch_size=int(st.session_state["pg-batch"]),
                           steps_per_frame=int(st.session_state["pg-steps"]))


def _set_option(name: str) -> None:
    s = session()
    try:
        if not s.set_option(name, st.session_state[_option_key(s.family, name)]):
            _message(f"{field_label(_fields(s.family)[name])} changes the networks' shape: the model started over.")
    except ConfigError as e:
        _message(str(e))
    _sync_widgets(s)


def _fix() -> None:
    s = session()
    s.switch_fix_on()
    _sync_widgets(s)


def _play() -> None:
    st.session_state["pg-playing"] = not st.session_state.get("pg-playing", False)


def _step() -> None:
    st.session_state["pg-playing"] = False
    st.session_state["pg-last-step"] = session().step()


def _reset() -> None:
    s = session()
    s.reset()
    _sync_widgets(s)


def _fields(family: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TOY_FAMILIES[family].Options)}


# ----------------------------------------------------------------------------- the page


def flow_layer_charts(view: dict, revision: str, key: str) -> None:
    """A toy flow's grid pushed through it layer by layer, both ways (the seed's Fig. 13), from
    ``views.flow_view``; chart keys ``<key>-forward`` and ``<key>-inverse``."""
    total = sum(view["log_dets"])
    forward_titles = ["x (data space)", *[f"{n}<br>log|det J| {ld:+.2f}" for n, ld in zip(view["names"], view["log_dets"])]]
    st.plotly_chart(charts.flow_layers(view["forward"], forward_titles,
                                       f"Inference x → z, layer by layer (each panel scaled to fit; total log|det J| on the data {total:+.2f} nats)",
                                       revision + "-f"), key=f"{key}-forward", config=CONFIG)
    inverse_titles = ["z (base N(0, I))", *[f"after {n.split(':')[0]}" for n in reversed(view["names"])]]
    st.plotly_chart(charts.flow_layers(view["inverse"], inverse_titles, "Sampling z → x, layer by layer (each panel scaled to fit)",
                                       revision + "-i"), key=f"{key}-inverse", config=CONFIG)


def render(settings=None) -> None:
    """The tab (``settings``, the sidebar's, are not needed: nothing here trains a job or reads runs)."""
    s = session()
    if "pg-family" not in st.session_state:
        _sync_widgets(s)
    st.caption("Toy 2-D versions of the three families, learning in seconds on this server's CPU, in your "
               "browser session only (a refresh starts over). Press Play, change any knob while it runs, or "
               "open a failure from the lab.")
    top = st.columns([1.2, 1.4, 1, 0.8, 2.2])
    top[0].selectbox("Family", list(TOY_FAMILIES), format_func=LABELS.get, key="pg-family", on_change=_choose)
    top[1].selectbox("Data", [*DATASETS, "custom"], format_func=lambda d: DATA_LABELS.get(d, "Your own points"),
                     key="pg-data", on_change=_choose)
    top[2].number_input("Points", 100, 20_000, step=500, key="pg-points", on_change=_choose)
    top[3].number_input("Seed", 0, 10_000, step=1, key="pg-seed", on_change=_choose)
    top[4].selectbox("Failure-mode lab", [NO_PRESET, *presets_for(s.family), *[p for p in PRESETS if p not in presets_for(s.family)]],
                     key="pg-preset", on_change=_open_preset,
                     help="Presets that open on a failure, with what to watch, why, and the fix.")
    if s.dataset == "custom":
        _custom_points(s)
    message = st.session_state.pop("pg-message", None)
    if message:
        st.warning(plain(message))
    knobs, live_area = st.columns([1.25, 3.4], gap="medium")
    with knobs:
        _controls(s)
    with live_area:
        _preset_text(s)
        _live(st.session_state.get("pg-playing", False))


def _controls(s: PlaygroundSession) -> None:
    playing = st.session_state.get("pg-playing", False)
    buttons = st.columns(3)
    buttons[0].button("Pause" if playing else "Play", key="pg-play", type="primary", on_click=_play,
                      use_container_width=True)
    buttons[1].button("Step", key="pg-step", on_click=_step, use_container_width=True,
                      help="One training step (for the GAN: the discriminator's, then the generator's).")
    buttons[2].button("Reset", key="pg-reset", on_click=_reset, use_container_width=True)
    st.select_slider("Learning rate", LEARNING_RATES, key="pg-lr", on_change=_set_training, format_func="{:g}".format)
    st.select_slider("Batch size", BATCH_SIZES, key="pg-batch", on_change=_set_training)
    st.slider("Steps per frame", 1, 100, key="pg-steps", on_change=_set_training,
              help=f"Training steps between two pictures ({1 / FRAME_SECONDS:.0f} pictures a second while playing).")
    with st.expander(f"{LABELS[s.family]} options", expanded=True):
        hints = typing.get_type_hints(TOY_FAMILIES[s.family].Options)
        for name, f in _fields(s.family).items():
            key, hint = _option_key(s.family, name), hints[name]
            common = dict(key=key, help=field_help(f), on_change=_set_option, args=(name,))
            allowed = choices(hint)
            if hint is bool:
                st.checkbox(field_label(f), **common)
            elif allowed is not None:
                st.selectbox(field_label(f), allowed, **common)
            elif hint is int:
                st.number_input(field_label(f), step=1, **common)
            else:
                st.number_input(field_label(f), step=0.05, format="%g", **common)


def _preset_text(s: PlaygroundSession) -> None:
    if s.preset is None:
        return
    p = PRESETS[s.preset]
    with st.container(border=True, key="pg-preset-box"):
        st.markdown(f"**{p.name}**")
        st.markdown(f"**What to watch.** {p.watch}")
        st.markdown(f"**Why.** {p.why}")
        st.markdown(f"**The fix.** {p.fix_text}")
        if s.fix_on:
            st.success("The fix is on.")
        else:
            st.button("Switch the fix on", key="pg-fix", on_click=_fix)


def _custom_points(s: PlaygroundSession) -> None:
    """Your own data: select cells of a grid (click, box or lasso) and each fills with points."""
    st.caption("Click a point of the grid, or draw a box or a lasso around some, to fill them with points "
               "(20 each); Reset trains on them.")
    grid = views.grid_points(30).numpy()
    fig = charts.plane([dict(type="scatter", x=grid[:, 0], y=grid[:, 1], mode="markers", name="grid",
                             marker=dict(size=7, color="lightgrey", opacity=0.5)),
                        *([charts._points(s.custom_points.numpy(), "your points", charts.REAL, 4, 0.7)]
                          if s.custom_points is not None else [])],
                       "Your points", "pg-custom", height=420)
    event = st.plotly_chart(fig, key="pg-custom-chart", on_select="rerun", selection_mode=("points", "box", "lasso"),
                            config=CONFIG)
    chosen = [p["point_index"] for p in (event.selection.points if event else []) if p.get("curve_number") == 0]
    if chosen and st.session_state.get("pg-custom-last") != chosen:
        st.session_state["pg-custom-last"] = chosen
        new = points_around(np.asarray(grid[chosen]), 20, 0.08, seed=len(chosen))
        add_custom_points(s, new)


def add_custom_points(s: PlaygroundSession, new) -> None:
    """Add points [m, 2] to the user's own data and start over on it."""
    s.custom_points = new if s.custom_points is None else torch.cat([s.custom_points, new])
    s.reset()


# ----------------------------------------------------------------------------- the live part


def _live(playing: bool) -> None:
    @st.fragment(run_every=FRAME_SECONDS if playing else None)
    def frame() -> None:
        s = session()
        started = time.perf_counter()
        if st.session_state.get("pg-playing") and not s.model.diverged:
            s.frame()
        draw(s, playing=bool(st.session_state.get("pg-playing")))
        elapsed = time.perf_counter() - started
        note = st.session_state.pop("pg-last-step", None)
        status = [f"step {s.model.steps:,}", f"frame {s.frames:,}", f"{elapsed * 1000:.0f} ms this frame"]
        if s.family == "gan":
            status.append("next Step: " + ("the discriminator's" if s.phase == "d" else "the generator's"))
        if note:
            status.append(f"did {note}")
        if s.model.diverged:
            status.append("**stopped: a loss became infinite (Reset)**")
        with st.container(key="pg-status"):
            st.caption(" · ".join(status))

    frame()


def symptom_text(s: PlaygroundSession) -> str | None:
    """The open preset's symptom, measured now, else the ring's modes for a GAN on the ring."""
    if s.preset is not None:
        p = PRESETS[s.preset]
        value = p.symptom(s.model, s.data)
        verdict = "failing" if p.failing(value) else "not failing"
        return f"{p.symptom_label}: **{value:.3g}** ({verdict})"
    if s.family == "gan" and s.dataset == "ring":
        return f"modes covered (of 8): **{PRESETS['GAN: mode collapse on the ring'].symptom(s.model, s.data):.0f}**"
    return None


def draw(s: PlaygroundSession, playing: bool = False) -> None:
    """Every view of the current family. While ``playing`` the planes are pictures under plotly's
    axes (hundreds of SVG markers a frame would hold the browser), and the curves grow every
    ``CURVES_EVERY`` frames: in between their figures are the same, and the browser skips them.
    Paused, every chart is plotly's own, to zoom and hover."""
    history = s.history[: len(s.history) // CURVES_EVERY * CURVES_EVERY] if playing else s.history
    symptom = symptom_text(s)
    if symptom:
        st.markdown(symptom)
    revision = f"{s.family}-{s.dataset}-{s.seed}"
    if s.family == "gan":
        view = views.gan_view(s.model, s.data)
        left, right = st.columns([1.25, 1])
        left.plotly_chart(charts.gan_plane(view, views.arrow_segments(view["fake"], view["arrows"]), revision,
                                           raster=playing),
                          key="pg-gan-plane", config=CONFIG)
        right.plotly_chart(charts.curves(history, {"d_loss": "D loss", "g_loss": "G loss"}, "Losses", "nats",
                                         revision + "-l", [(charts.D_EQUILIBRIUM, "2·ln 2: D loss at D = ½")], 230),
                           key="pg-gan-losses", config=CONFIG)
        right.plotly_chart(charts.curves(history, {"d_real": "mean D(x)", "d_fake": "mean D(G(z))"},
                                         "What D says", "probability 'real'", revision + "-d", [(0.5, "½")], 230),
                           key="pg-gan-d", config=CONFIG)
    elif s.family == "vae":
        view = views.vae_view(s.model, s.data)
        left, right = st.columns(2)
        left.plotly_chart(charts.vae_plane(view, revision, raster=playing), key="pg-vae-plane", config=CONFIG)
        right.plotly_chart(charts.vae_codes(view, views.position_colours(view["data"]), revision + "-z"),
                           key="pg-vae-codes", config=CONFIG)
        st.plotly_chart(charts.curves(history, {"recon": "reconstruction −E log p(x|z)", "kl": "KL(q ‖ p)",
                                                  "loss": "−ELBO"}, "The ELBO's parts (per point)", "nats",
                                      revision + "-l", [(0.0, "0")], 260), key="pg-vae-losses", config=CONFIG)
        st.caption(f"σ of p(x|z): {', '.join(f'{v:.3f}' for v in view['sigma'])} · β now {s.model.beta:.2f}")
    else:
        view = views.flow_view(s.model, s.data)
        left, right = st.columns([1.25, 1])
        left.plotly_chart(charts.flow_plane(view, revision, raster=playing), key="pg-flow-plane", config=CONFIG)
        references = []
        if s.dataset == "discrete":
            references.append((views.nll_floor(s.data, DISCRETE_STEP), "floor on the grid's cells"))
        right.plotly_chart(charts.curves(history, {"nll": "NLL −log p(x)"}, "Negative log-likelihood", "nats",
                                         revision + "-l", references, 460), key="pg-flow-nll", config=CONFIG)
        flow_layer_charts(view, revision, "pg-flow")
