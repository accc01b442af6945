"""The "Your digit" tab: draw a digit (or pick a test image) and see it through every model.

The drawing is made into an MNIST digit (``genapp.evaluation.digit.to_mnist``: cropped, scaled
to 20 x 20, centred by mass in 28 x 28), then shown to the three families side by side: the
VAE's posterior (its mean and one-σ ellipse among the test images' means) and reconstruction;
the flow's bits per dimension and its percentile among the test images; the GAN's nearest image
(Adam on z) and what its discriminator says. The whole tab is one fragment, so a new stroke
reruns only it; every result is cached per model and digit.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from genapp import data
from genapp.evaluation import digit as digits
from genapp.evaluation.latent import encode_images
from genapp.ui import digit_charts, flow_tab, gan_tab, pictures, sources, vae_tab
from genapp.ui.resources import Settings, test_split
from genapp.ui.text import plain

DRAW, PICK = "Draw a digit", "Pick a test image"
STATE_KEYS = ["digit-input", "digit-test-index", "digit-vae-source", "digit-flow-source", "digit-gan-source",
              "digit-vae-frame"]
WHOLE, CLOSE_UP = "all test images", "close-up"
CANVAS_PX = 280  # ten canvas pixels to an MNIST pixel
STROKE_PX = 22  # about two MNIST pixels once the digit is scaled to its 20-pixel box
SCATTER_POINTS = 3000  # test images behind the VAE's posterior
BPD_CACHE_MODELS = 4  # test-set bits-per-dim distributions kept (one per flow model)
BPD_SECONDS = 20.0  # a slow flow measures the test images it gets through in this time
BPD_CHUNK = 250


# ----------------------------------------------------------------------------- the digit


def digit_from_canvas(image_data: np.ndarray | None) -> torch.Tensor:
    """The canvas's pixels (uint8 RGBA [H, W, 4], or None before any stroke) as an MNIST digit,
    uint8 [1,1,28,28]. Raises ``EmptyDrawingError`` when nothing is drawn."""
    if image_data is None:
        raise digits.EmptyDrawingError("Nothing drawn yet: draw a digit on the canvas (white on black).")
    return digits.to_mnist(image_data)


def digit_key(digit: torch.Tensor) -> str:
    """A short name for a digit's pixels, to key caches."""
    return hashlib.sha1(digit.numpy().tobytes()).hexdigest()[:16]


def _draw() -> torch.Tensor | None:
    """The canvas; returns the drawn digit, or None (with a message) when there is none.

    The canvas forgets its drawing when it is not drawn (another tab is open), so the last
    drawing is kept in the session and handed back to the canvas when it appears again.
    """
    from streamlit_drawable_canvas import st_canvas  # imports only under a running streamlit

    saved = st.session_state.get("digit-drawing")  # (canvas JSON, digit uint8 [1,1,28,28]) of the last drawing
    if "digit-canvas" not in st.session_state:  # the canvas is (re)appearing: start from the last drawing
        st.session_state["digit-canvas-initial"] = saved[0] if saved else None
    st.space("small")  # room for the canvas's toolbar, which floats above its top edge
    result = st_canvas(stroke_width=STROKE_PX, stroke_color="#FFFFFF", background_color="#000000",
                       height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw", return_image_data=True,
                       initial_drawing=st.session_state.get("digit-canvas-initial"), key="digit-canvas")
    st.caption("Draw one digit, large, in the middle of the box; let go of the mouse to see it through the "
               "models. The canvas's toolbar undoes a stroke or clears the drawing.")
    image = result.image_data
    if image is None and saved is not None and (result.json_data or {}).get("objects"):
        return saved[1]  # the restored drawing: the canvas sends its pixels only after the next stroke
    try:
        digit = digit_from_canvas(image)
    except digits.EmptyDrawingError as e:
        st.session_state.pop("digit-drawing", None)
        st.info(plain(e))
        return None
    st.session_state["digit-drawing"] = (result.json_data, digit)
    return digit


def _pick() -> tuple[torch.Tensor, str]:
    test = test_split()
    st.session_state.setdefault("digit-test-index", 0)
    index = st.number_input("Test image #", 0, len(test.images) - 1, step=1, key="digit-test-index")
    return test.images[index : index + 1].clone(), f"test image #{index} (a {int(test.labels[index])})"


# ----------------------------------------------------------------------------- cached work


@dataclass
class LatentBackdrop:
    """The test images' posterior means in a 2-D view, computed once per VAE."""

    means: np.ndarray  # float [SCATTER_POINTS, d]
    labels: np.ndarray  # int [SCATTER_POINTS]
    projection: digits.Projection
    axes: tuple[str, str]
    mean_elbo: float  # nats: the images' mean one-sample ELBO, to compare a digit's with


@st.cache_resource(max_entries=4, show_spinner="Encoding the test images…")
def latent_backdrop(_model, model_key: str) -> LatentBackdrop:
    test = test_split()
    images = test.images[:SCATTER_POINTS]
    means = encode_images(_model, images).mean.numpy()
    axes = ("z1", "z2") if _model.latent_dim <= 2 else ("principal component 1", "principal component 2")
    with torch.no_grad():
        elbo = _model.elbo(data.fixed_binarization(images), torch.Generator().manual_seed(0)).mean().item()
    return LatentBackdrop(means, test.labels[:SCATTER_POINTS].numpy(), digits.latent_projection(means), axes, elbo)


@st.cache_resource(max_entries=32, show_spinner=False)
def vae_view(_model, model_key: str, _digit: torch.Tensor, key: str) -> digits.PosteriorView:
    return digits.vae_posterior(_model, _digit)


@st.cache_resource(max_entries=32, show_spinner=False)
def flow_view(_model, model_key: str, _digit: torch.Tensor, key: str) -> float:
    return digits.flow_bits_per_dim(_model, _digit)


@dataclass
class GanView:
    nearest: digits.Nearest
    d_digit: float  # D(your digit)
    d_nearest: float  # D(G(z*))
    seconds: float  # time of the search for z


@st.cache_resource(max_entries=32, show_spinner="Searching the generator's latent space…")
def gan_view(_model, model_key: str, _digit: torch.Tensor, key: str) -> GanView:
    target = data.to_unit(_digit)
    start = time.perf_counter()
    nearest = digits.nearest_generated(_model, target)
    seconds = time.perf_counter() - start
    scores = digits.discriminator_scores(_model, torch.cat([target, nearest.image]))
    return GanView(nearest, float(scores[0]), float(scores[1]), seconds)


@st.cache_resource
def _test_bpd_store() -> dict[str, np.ndarray]:
    """Server-wide: model key -> bits per dimension of every test image (float [10000])."""
    return {}


def bpd_distribution(model, model_key: str) -> np.ndarray:
    """The test images' bits per dimension under ``model``: measured once per model with a progress
    bar, then kept for every session. All 10,000 for flow-mlp (about a second on a 2-core CPU);
    as many as ``BPD_SECONDS`` allow for a slower flow (flow-conv: 1,000 in 22 s)."""
    store = _test_bpd_store()
    if model_key not in store:
        text = f"Measuring the bits per dimension of the test images (once per model, {BPD_SECONDS:.0f} s at most)…"
        bar = st.progress(0.0, text=text)
        values = digits.images_bits_per_dim(model, test_split().images, chunk=BPD_CHUNK, seconds=BPD_SECONDS,
                                            progress=lambda share: bar.progress(share, text=text))
        bar.empty()
        while len(store) >= BPD_CACHE_MODELS:
            store.pop(next(iter(store)))
        store[model_key] = values
    return store[model_key]


# ----------------------------------------------------------------------------- the three views


def typicality(percent: float) -> str:
    """Words for a percentile of bits per dimension among the test images."""
    if percent <= 50:
        return "as typical as a test digit, or more"
    if percent <= 90:
        return "a little unusual"
    if percent <= 99:
        return "unusual"
    return "stranger than almost every test image"


def show_vae(settings: Settings, digit: torch.Tensor, key: str) -> None:
    st.markdown("#### VAE")
    chosen = sources.choose_model(settings, "vae", vae_tab.PRETRAINED, prefix="digit-vae")
    if chosen is None:
        return
    model, model_key, _ = chosen
    view = vae_view(model, model_key, digit, key)
    backdrop = latent_backdrop(model, model_key)
    projection = backdrop.projection
    st.session_state.setdefault("digit-vae-frame", WHOLE)
    frame = st.radio("Frame", [WHOLE, CLOSE_UP], key="digit-vae-frame", horizontal=True, label_visibility="collapsed",
                     help="The one-σ ellipse is often tiny beside the spread of the test images: the close-up "
                          "frames it.")
    fig = digit_charts.posterior_on_latents(
        projection.points(backdrop.means), backdrop.labels, projection.points(view.mean[None])[0],
        digits.sigma_ellipse(view, projection), backdrop.axes, close_up=frame == CLOSE_UP, uirevision=model_key)
    st.plotly_chart(fig, key="digit-vae-latent", config={"displaylogo": False})
    seen, rebuilt = st.columns(2)
    seen.image(pictures.digit_picture(data.fixed_binarization(digit)[0], scale=4), width=112,
               caption="as the VAE sees it (binarized)")
    rebuilt.image(pictures.digit_picture(view.reconstruction[0], scale=4), width=112,
                  caption="its reconstruction")
    if len(view.mean) == 2:
        where = (f"Posterior mean z = ({view.mean[0]:.2f}, {view.mean[1]:.2f}), "
                 f"σ = ({view.std[0]:.2f}, {view.std[1]:.2f})")
    else:
        where = (f"{len(view.mean)}-D posterior seen along the first two principal components of the test "
                 f"means; mean σ {view.std.mean():.2f}")
    st.caption(f"The star is q(z|x)'s mean and the shaded ellipse its one-σ region (often hidden under the star: "
               f"see the close-up); the dots are {SCATTER_POINTS:,} test images' means, by digit. {where}. "
               f"ELBO of your digit: {view.elbo:.1f} nats (the test images average {backdrop.mean_elbo:.1f}).")


def show_flow(settings: Settings, digit: torch.Tensor, key: str) -> None:
    st.markdown("#### Flow")
    chosen = sources.choose_model(settings, "flow", flow_tab.PRETRAINED, prefix="digit-flow")
    if chosen is None:
        return
    model, model_key, _ = chosen
    distribution = bpd_distribution(model, model_key)
    value = flow_view(model, model_key, digit, key)
    percent = digits.percentile(value, distribution)
    left, right = st.columns(2)
    left.metric("bits/dim", f"{value:.3f}", help="−log₂ p(x) / 784 on the 8-bit scale, averaged over "
                "8 dequantization draws: what the flow would pay, in bits per pixel, to encode your digit.")
    right.metric("percentile", f"{percent:.0f}",
                 help=f"The share of the {len(distribution):,} test images measured that cost the flow as few "
                      "bits or fewer.")
    st.plotly_chart(digit_charts.bits_per_dim_histogram(distribution, value, percent, uirevision=model_key),
                    key="digit-flow-bpd", config={"displaylogo": False})
    hidden = int((distribution > max(np.percentile(distribution, 99.0), value)).sum())
    measured = len(distribution)
    among = "the test images" if measured == len(test_split().images) else \
        f"the first {measured:,} test images (all this flow could measure in {BPD_SECONDS:.0f} s here)"
    st.caption(f"How typical is it? It costs more bits than {percent:.0f}% of {among}: "
               f"{typicality(percent)}. The test images' median is {np.median(distribution):.2f} bits/dim "
               f"({hidden} images beyond the chart's right edge). "
               "A flow's density tracks low-level statistics (stroke width, how much is blank) as much "
               "as the digit's shape.")


def show_gan(settings: Settings, digit: torch.Tensor, key: str) -> None:
    st.markdown("#### GAN")
    chosen = sources.choose_model(settings, "gan", gan_tab.PRETRAINED, prefix="digit-gan")
    if chosen is None:
        return
    model, model_key, _ = chosen
    view = gan_view(model, model_key, digit, key)
    nearest = view.nearest
    yours, made = st.columns(2)
    yours.image(pictures.digit_picture(data.to_unit(digit)[0], scale=4), width=112, caption="your digit")
    made.image(pictures.digit_picture(nearest.image[0], scale=4), width=112,
               caption=f"nearest G(z): RMSE {nearest.rmse:.3f}")
    left, right = st.columns(2)
    left.metric("D(your digit)", f"{view.d_digit:.2f}", help="The discriminator's probability that the image "
                "is a real MNIST digit.")
    right.metric("D(nearest G(z))", f"{view.d_nearest:.2f}")
    d = model.latent_dim
    st.caption(f"The nearest image the generator can make: Adam on z (pixels' squared error plus a little of "
               f"|z|²), {nearest.restarts} starting points × {nearest.steps} steps in {view.seconds:.1f} s; "
               f"|z| = {float(nearest.z.norm()):.1f}, typical draws have |z| ≈ √{d} ≈ {d ** 0.5:.1f}. "
               "What G cannot get close to lies outside what it learned to draw. D is no calibrated judge: "
               "near the equilibrium it says about ½ to everything.")


# ----------------------------------------------------------------------------- the tab


@st.fragment
def digit_section(settings: Settings) -> None:
    st.session_state.setdefault("digit-input", DRAW)
    source, seen = st.columns([3, 2], gap="large")
    with source:
        mode = st.radio("Your digit", [DRAW, PICK], key="digit-input", horizontal=True,
                        help="Draw on the canvas, or take an MNIST test image to compare with.")
        if mode == DRAW:
            digit, what = _draw(), "your drawing"
        else:
            digit, what = _pick()
    if digit is None:
        return
    with seen:
        st.image(pictures.digit_picture(data.to_unit(digit)[0], scale=6), width=168,
                 caption=f"What the models see: {what} as a 28 × 28 MNIST digit")
        if mode == DRAW:
            st.caption("Cropped to its ink, scaled to fit 20 × 20 keeping its shape and centred by its centre "
                       "of mass, as the MNIST digits were made.")
    st.divider()
    key = digit_key(digit)
    for column, show in zip(st.columns(3, gap="large"), (show_vae, show_flow, show_gan)):
        with column:
            show(settings, digit, key)


def render(settings: Settings) -> None:
    st.markdown("Draw a digit, or pick a test image, and see it through all three models at once.")
    digit_section(settings)
