"""The flow tab: explore a trained RealNVP flow (pretrained, any run's checkpoint, or an upload), and train.

Explore shows the run's bits per dimension against two reference lines, samples at a chosen
temperature, interpolation in z between two test images, and "inside the flow": one image after
every layer in both directions, with each layer's log|det J| and how they add up to the image's
bits per dimension. Each section is a fragment, so its controls rerun it alone.
"""
from __future__ import annotations

import math
import secrets

import pandas as pd
import streamlit as st
import torch

from genapp import data
from genapp.data import PIXELS
from genapp.models import Flow
from genapp.models.flow import LOG_256, bits_per_dim
from genapp.ui import charts, family_tab, flow_charts, formulas, pictures, run_monitor, sources
from genapp.ui.resources import Settings, test_split
from genapp.ui.sources import Source
from genapp.ui.text import plain
from genapp.ui import url_state

FAMILY = "flow"
# flow-mlp first: it draws 64 samples in 20 ms on a laptop CPU; the conv flow (far better: 1.27
# against 2.39 bits/dim) takes about 1.3 s, so it is the second choice.
PRETRAINED = {"flow-mlp": "python -m train flow --preset mlp --run-name flow-mlp && "
                          "python -m train export flow-mlp --name flow-mlp",
              "flow-conv": "python -m train flow --preset conv --blocks 2 --batch-size 256 --lr-schedule cosine "
                           "--epochs 37 --device cuda --run-name flow-conv && "
                           "python -m train export flow-conv --name flow-conv --half"}
UNIFORM_BPD = 8.0  # a model that spreads its mass evenly over the 256 levels of every pixel
TARGET_BPD = 1.85  # what the seed's flow reached on the test set
SAMPLE_COUNT = 64
FIXED_NOISE_SEED = 0
DEQUANTIZE_SEED = 0  # one fixed dequantization draw, so a test image always maps to the same z
TRACE_TEMPERATURE = 0.7  # the sample followed through the flow
STATE_WIDTH_PX = 96
STATE_KEYS = ["flow-view", "flow-source", "flow-temperature", "flow-noise-seed", "flow-start", "flow-end",
              "flow-steps", "flow-frame", "flow-follow", "flow-trace-index", "flow-trace-seed"]


# ----------------------------------------------------------------------------- pure helpers


@torch.no_grad()
def encode_test_images(model: Flow, images: torch.Tensor) -> torch.Tensor:
    """uint8 images [n,1,28,28] -> z = f(dequantized x) in the flow's latent shape [n, *latent_shape],
    with a fixed dequantization draw."""
    x = data.dequantize(images, torch.Generator().manual_seed(DEQUANTIZE_SEED))
    return model(x.to(model.device))[0].cpu()


def interpolate_z(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Linear path from z0 to z1 (same shape S), both ends included: [steps, *S]."""
    t = torch.linspace(0.0, 1.0, steps).reshape(steps, *([1] * z0.dim()))
    return (1 - t) * z0 + t * z1


def display_image(image: torch.Tensor) -> torch.Tensor:
    """An intermediate state [1,28,28] (any real values) stretched to [0,1] by its own min and max."""
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else torch.zeros_like(image)


def state_name(name: str) -> str:
    """A layer's name from ``Flow.trace`` short enough to caption a small picture."""
    short = {"HalfCoupling": "coupling", "AffineCoupling": "coupling", "Permutation": "reorder", "^-1": "⁻¹"}
    for long, brief in short.items():
        name = name.replace(long, brief)
    return name


def log_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) of each row of z [n, ...], nats: [n]."""
    return -0.5 * (z.square() + math.log(2 * math.pi)).flatten(1).sum(1)


def layer_log_dets(states: list[dict]) -> pd.DataFrame:
    """One row per layer of a ``Flow.trace`` of one image (the input itself is not a layer):
    columns layer, log_det (nats) and total (the running sum)."""
    rows = [(state_name(s["name"]), float(s["log_det"][0])) for s in states[1:]]
    table = pd.DataFrame(rows, columns=["layer", "log_det"])
    table["total"] = table["log_det"].cumsum()
    return table


def bits_per_dim_parts(z: torch.Tensor, log_det: float) -> dict[str, float]:
    """How one image's bpd is made: bpd = -(log N(z) + Σ log|det J| - 784 ln 256) / (784 ln 2).

    z is the image's latent [1, ...]; ``log_det`` the sum of its layers' log|det J| (nats). The
    -784 ln 256 moves the density from (0,1)^784 to the 8-bit scale (each level is 1/256 wide).
    """
    log_pz = float(log_normal(z)[0])
    return {"log_pz": log_pz, "log_det": log_det, "scale": -PIXELS * LOG_256, "bpd": bits_per_dim(log_pz + log_det)}


# ----------------------------------------------------------------------------- sections


def describe(model: Flow, source: Source) -> str:
    info = getattr(model, "checkpoint_info", {}) or {}
    c = model.config
    if c.preset == "mlp":
        parts = [f"**{c.couplings}** MLP couplings", f"hidden {c.hidden} × {c.mlp_layers}"]
    else:
        parts = [f"convolutional (width {c.width}, {c.blocks} blocks)"]
    if info.get("epoch") is not None:
        parts.append(sources.training_summary(info))
    bpd = (info.get("metrics") or {}).get("bpd")
    if bpd is not None:
        parts.append(f"validation {bpd:.3f} bits/dim")
    test = (source.manifest or {}).get("test", {})
    if test.get("test_bpd") is not None:
        parts.append(f"test {test['test_bpd']:.3f} bits/dim")
    return " · ".join(parts)


def training_section(source: Source, model_key: str) -> None:
    st.subheader("Bits per dimension during training")
    train, valid = sources.run_columns(source, "train"), sources.run_columns(source, "valid")
    if not len(train.get("bpd", ())):
        sources.no_history(source)
        return
    fig = charts.training_curves(train, valid, "bpd", uirevision=model_key)
    charts.with_reference_lines(fig, [(UNIFORM_BPD, f"uniform noise: {UNIFORM_BPD:g}"),
                                          (TARGET_BPD, f"the seed's target: {TARGET_BPD:g}")])
    st.plotly_chart(fig, key="flow-bpd", config={"displaylogo": False})
    st.caption(f"Bits per dimension on the 8-bit scale (lower is better), from run {plain(source.run.name)}. "
               f"{UNIFORM_BPD:g} is what a model that knows nothing pays (every one of 256 levels equally likely); "
               f"{TARGET_BPD:g} is the test figure the seed's flow reached.")
    run_monitor.picture_history(source.run, key="flow-explore")


@st.fragment
def samples_section(model: Flow) -> None:
    st.subheader("Samples at a temperature")
    st.session_state.setdefault("flow-temperature", 0.7)
    st.session_state.setdefault("flow-noise-seed", FIXED_NOISE_SEED)
    controls, grid = st.columns([1, 2], gap="large")
    with controls:
        temperature = st.slider("Temperature T", 0.0, 1.2, step=0.05, key="flow-temperature",
                                help="x = f⁻¹(T·z), z ~ N(0, I). Below 1 the samples come from nearer the mode: "
                                     "cleaner strokes, less variety; T = 0 is the single most likely latent.")
        if st.button("New noise", key="flow-new-noise", help="Draw fresh z (the same z at every temperature)."):
            st.session_state["flow-noise-seed"] = secrets.randbits(31)
    seed = st.session_state["flow-noise-seed"]
    images = model.sample(SAMPLE_COUNT, temperature=temperature, generator=torch.Generator().manual_seed(seed))
    grid.image(pictures.grid_picture(images.cpu(), nrow=8),
               caption=f"{SAMPLE_COUNT} samples at T = {temperature:.2f} "
                       f"({'fixed noise' if seed == FIXED_NOISE_SEED else f'noise seed {seed}'})")
    url_state.publish()  # a control changed inside this fragment: the link follows


@st.fragment
def interpolation_section(model: Flow) -> None:
    st.subheader("Interpolation in z between two test images")
    for key, default in (("flow-start", 0), ("flow-end", 1), ("flow-steps", 10), ("flow-frame", 1)):
        st.session_state.setdefault(key, default)
    test = test_split()
    last = len(test.images) - 1
    controls, strip = st.columns([1, 2], gap="large")
    with controls:
        left, right = st.columns(2)
        start = left.number_input("Start test image #", 0, last, step=1, key="flow-start")
        end = right.number_input("End test image #", 0, last, step=1, key="flow-end")
        steps = st.slider("Steps", 3, 24, key="flow-steps", help="Images on the path, both ends included.")
        left.image(pictures.digit_picture(test.images[start].float() / 255.0, scale=3),
                   caption=f"#{start}: digit {int(test.labels[start])}")
        right.image(pictures.digit_picture(test.images[end].float() / 255.0, scale=3),
                    caption=f"#{end}: digit {int(test.labels[end])}")
    z = encode_test_images(model, test.images[[start, end]])
    with torch.no_grad():
        images = model.inverse(interpolate_z(z[0], z[1], steps).to(model.device)).cpu()
    with strip:
        st.image(pictures.grid_picture(images, nrow=steps, scale=2),
                 caption=f"f⁻¹((1 − t)·z₀ + t·z₁), z = f(x) of the dequantized images, {steps} steps")
        st.session_state["flow-frame"] = min(st.session_state["flow-frame"], steps)
        frame = st.slider("Frame", 1, steps, key="flow-frame")
        st.image(pictures.digit_picture(images[frame - 1]), width=168,
                 caption=f"frame {frame} of {steps} (t = {(frame - 1) / (steps - 1):.2f})")


@st.fragment
def inside_section(model: Flow) -> None:
    st.subheader("Inside the flow")
    for key, default in (("flow-follow", "a test image"), ("flow-trace-index", 0), ("flow-trace-seed", 0)):
        st.session_state.setdefault(key, default)
    left, right = st.columns([1, 2])
    follow = left.radio("Follow", ["a test image", "a sample"], key="flow-follow", horizontal=True)
    if follow == "a test image":
        test = test_split()
        index = right.number_input("Test image #", 0, len(test.images) - 1, step=1, key="flow-trace-index")
        x = data.dequantize(test.images[index : index + 1], torch.Generator().manual_seed(DEQUANTIZE_SEED))
        what = f"test image #{index} (digit {int(test.labels[index])}, dequantized)"
    else:
        seed = right.number_input("Sample seed", 0, 2**31 - 1, step=1, key="flow-trace-seed")
        x = model.sample(1, temperature=TRACE_TEMPERATURE, generator=torch.Generator().manual_seed(seed)).cpu()
        what = f"a sample (seed {seed}, T = {TRACE_TEMPERATURE})"
    x = x.to(model.device)
    with torch.no_grad():
        z, _ = model(x)
    forward, inverse = model.trace(x), model.trace_inverse(z)
    st.markdown(f"**Data → latent**: {what} after each layer, x → z = f(x)")
    st.image([pictures.digit_picture(display_image(s["image"][0]), scale=4) for s in forward],
             caption=[state_name(s["name"]) for s in forward], width=STATE_WIDTH_PX)
    st.markdown("**Latent → data**: the same z through the inverse layers, z → x = f⁻¹(z)")
    st.image([pictures.digit_picture(display_image(s["image"][0]), scale=4) for s in inverse],
             caption=[state_name(s["name"]) for s in inverse], width=STATE_WIDTH_PX)
    st.caption("Each state is stretched to its own darkest and lightest values for display: logit and latent "
               "values are unbounded.")
    table = layer_log_dets(forward)
    parts = bits_per_dim_parts(z.cpu(), float(table["total"].iloc[-1]))
    chart, numbers = st.columns([3, 2], gap="large")
    chart.plotly_chart(flow_charts.log_det_bars(table["layer"], table["log_det"]), key="flow-log-dets",
                       config={"displaylogo": False})
    with numbers:
        st.dataframe(table.rename(columns={"log_det": "log|det J| (nats)", "total": "running total"}),
                     hide_index=True, key="flow-log-det-table")
        st.caption("log|det J| says how much a layer stretches volume around this image: stretching the data "
                   "into a space where N(0, I) is dense is how a flow gives it high likelihood.")
    for line in formulas.change_of_variables(parts["log_pz"], list(table["layer"]), list(table["log_det"]),
                                             parts["bpd"]):
        st.latex(line)
    st.caption(f"The change of variables for {what}, in nats: log p_Z(f(x)) = log N(z; 0, I) of its latent plus "
               "each layer's log|det J|. The last line moves the density to the 8-bit scale (each of the 256 "
               "levels is 1/256 wide) and to bits per dimension.")


# ----------------------------------------------------------------------------- the tab


def explore(settings: Settings) -> None:
    chosen = sources.choose_model(settings, FAMILY, PRETRAINED, prefix="flow")
    if chosen is None:
        return
    model, model_key, source = chosen
    st.markdown(describe(model, source))
    training_section(source, model_key)
    st.divider()
    samples_section(model)
    st.divider()
    interpolation_section(model)
    st.divider()
    inside_section(model)


def render(settings: Settings) -> None:
    """Explore and Train sub-tabs; only the open one runs."""
    family_tab.render_with_explorer(FAMILY, settings, explore)


def state_keys() -> list[str]:
    return [*STATE_KEYS, *family_tab.state_keys(FAMILY)]
