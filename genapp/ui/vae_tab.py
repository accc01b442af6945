"""The VAE tab: explore a trained VAE (pretrained, any run's checkpoint, or an upload), and train.

Explore shows the 2-D manifold with a latent you steer, the test images in latent space (click a
point for its image and reconstruction), samples from fixed or fresh noise as Bernoulli means and
draws, reconstructions, the ELBO over training and the KL of each latent dimension. Every
section is a fragment, so moving one of its controls reruns that section only, and everything
derived from a model is cached per model.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from genapp import data
from genapp.evaluation import monte_carlo
from genapp.evaluation.latent import (
    active_units, code_box, decode_box, encode_images, kl_per_dimension, project_2d, reconstruct,
)
from genapp.evaluation.posterior import GridPosterior, grid_posterior
from genapp.models import VAE
from genapp.ui import family_tab, formulas, pictures, run_monitor, sources, vae_charts
from genapp.ui.resources import Settings, test_split
from genapp.ui.sources import Source
from genapp.ui.text import plain
from genapp.ui import url_state

FAMILY = "vae"
# The pretrained checkpoints the tab offers first, with the commands that make them when
# checkpoints/MANIFEST.json does not say (it records the exact command of each shipped file).
PRETRAINED = {
    "vae-z2": "python -m train vae --latent-dim 2 --epochs 100 --lr-schedule cosine --compile true "
              "--run-name vae-z2 && python -m train export vae-z2 --name vae-z2",
    "vae-z20": "python -m train vae --latent-dim 20 --epochs 200 --lr-schedule cosine --compile true "
               "--run-name vae-z20 && python -m train export vae-z20 --name vae-z20",
}
SCATTER_POINTS = 3000  # test images in the latent scatter
SAMPLE_COUNT = 64
RECON_COUNT = 32
FIXED_NOISE_SEED = 0
MANIFOLD_WIDTH_PX = 480  # small grids are enlarged (whole pixels) to about this width
STATE_KEYS = ["vae-view", "vae-source", "vae-manifold-n", "vae-z1", "vae-z2", "vae-noise", "vae-picked",
              "vae-q14-index", "vae-epoch", "vae-latent-epoch", "vae-posterior-index"]
# The seed's Fig. 1: a plain autoencoder's codes beside a VAE's, both shipped.
AUTOENCODER, ITS_VAE = "ae-z2", "vae-z2"
BOX_GRID = 16  # decodings across the box of an autoencoder's codes


# ----------------------------------------------------------------------------- the model


def describe(model: VAE, source: Source) -> str:
    info = getattr(model, "checkpoint_info", {}) or {}
    parts = [f"latent dimensions **{model.latent_dim}**", f"hidden {', '.join(map(str, model.config.hidden))}"]
    if info.get("epoch") is not None:
        parts.append(sources.training_summary(info))
    loss = (info.get("metrics") or {}).get("loss")
    if loss is not None:
        parts.append(f"validation −ELBO {loss:.2f} nats")
    nll = manifest_nll(source)
    if nll is not None:
        parts.append(f"test NLL {nll[1]:.2f} nats (IWAE, k={nll[0]})")
    return " · ".join(parts)


def manifest_nll(source: Source) -> tuple[str, float] | None:
    """(k, the test IWAE NLL in nats) that MANIFEST.json records for a pretrained checkpoint."""
    test = (source.manifest or {}).get("test", {})
    nll = next(((k, v) for k, v in test.items() if k.startswith("test_iwae_nll")), None)
    if nll is None:
        return None
    return nll[0].removeprefix("test_iwae_nll_k").removesuffix("_nats"), nll[1]


# ----------------------------------------------------------------------------- cached analysis


@dataclass
class LatentAnalysis:
    """What the tab shows about the test set, computed once per model."""

    points: np.ndarray  # float [SCATTER_POINTS, 2]: latent means, or their first two principal components
    axes: tuple[str, str]
    caption: str
    labels: np.ndarray  # int [SCATTER_POINTS]
    kl: np.ndarray  # float [d]: mean KL of each latent dimension, nats
    active: np.ndarray  # bool [d]
    figures: dict  # the model's validate() on the test set: loss, recon, kl


@st.cache_resource(max_entries=4, show_spinner="Encoding the test images…")
def latent_analysis(_model: VAE, model_key: str) -> LatentAnalysis:
    test = test_split()
    encodings = encode_images(_model, test.images)
    points, caption = project_2d(encodings.mean[:SCATTER_POINTS])
    axes = ("z1", "z2") if _model.latent_dim <= 2 else ("principal component 1", "principal component 2")
    return LatentAnalysis(
        points=points.numpy(), axes=axes, caption=caption, labels=test.labels[:SCATTER_POINTS].numpy(),
        kl=kl_per_dimension(encodings).numpy(), active=active_units(encodings).numpy(),
        figures=_model.validate(test.images),
    )


@st.cache_resource(max_entries=16)
def manifold_base(_model: VAE, model_key: str, n: int) -> tuple[np.ndarray, int]:
    """(the n x n manifold as a picture enlarged to about MANIFOLD_WIDTH_PX, the enlargement factor)."""
    grid_px = n * (pictures.CELL + pictures.PAD) + pictures.PAD
    scale = max(1, round(MANIFOLD_WIDTH_PX / grid_px))
    return pictures.manifold_picture(_model.manifold(n), n, scale), scale


@torch.no_grad()
def decode_mean(model: VAE, z: list[float]) -> torch.Tensor:
    """Bernoulli mean of the decoding of one latent z (length latent_dim): float [1,1,28,28]."""
    return torch.sigmoid(model.decode(torch.tensor([z], dtype=torch.float32)))


@torch.no_grad()
def samples(model: VAE, seed: int, n: int = SAMPLE_COUNT) -> tuple[torch.Tensor, torch.Tensor]:
    """(Bernoulli means, one Bernoulli draw from each) of n decodings of z ~ N(0, I) drawn with
    ``seed``: float [n,1,28,28] each, in [0,1]."""
    generator = torch.Generator().manual_seed(seed)
    means = model.sample(n, generator=generator)
    return means, torch.bernoulli(means, generator=generator)


# ----------------------------------------------------------------------------- sections


@st.fragment
def manifold_section(model: VAE, model_key: str) -> None:
    url_state.publish()  # a slider moved inside this fragment: the link follows
    st.subheader("The 2-D latent manifold")
    if model.latent_dim != 2:
        st.info(f"The manifold needs a 2-D latent space; this model has {model.latent_dim} dimensions. "
                "Pick a model with latent dimensions 2 (such as vae-z2 or a Quick run).")
        return
    grid_column, controls = st.columns([3, 2], gap="large")
    with controls:
        for key, default in (("vae-manifold-n", 15), ("vae-z1", 0.0), ("vae-z2", 0.0)):
            st.session_state.setdefault(key, default)  # not as widget defaults: the values outlive tab switches
        n = st.slider("Grid size n (n × n decodings)", 5, 30, key="vae-manifold-n")
        z1 = st.slider("z1", -3.0, 3.0, step=0.05, key="vae-z1")
        z2 = st.slider("z2", -3.0, 3.0, step=0.05, key="vae-z2")
        st.image(pictures.digit_picture(decode_mean(model, [z1, z2])), width=168, output_format="PNG",
                 caption=f"decoded at z = ({z1:.2f}, {z2:.2f})")
    with grid_column:
        base, scale = manifold_base(model, model_key, n)
        st.image(pictures.png_bytes(pictures.mark_latent(base, n, scale, z1, z2)), width="content",
                 caption="Decodings on a grid evenly spaced in probability (z = Φ⁻¹ of the cell centre); "
                         "z1 grows to the right, z2 upwards. The red square marks (z1, z2).")


def _remember_pick() -> None:
    """Scatter selection callback: keep the clicked image's index (the chart forgets it when redrawn)."""
    points = st.session_state["vae-latent"].selection.points
    if points:
        st.session_state["vae-picked"] = int(points[0]["customdata"])


@st.fragment
def latent_section(model: VAE, model_key: str) -> None:
    st.subheader("Test images in latent space")
    analysis = latent_analysis(model, model_key)
    picked = st.session_state.get("vae-picked")
    chart, detail = st.columns([3, 2], gap="large")
    with chart:
        fig = vae_charts.latent_scatter(analysis.points, analysis.labels, np.arange(len(analysis.points)),
                                    analysis.axes, selected=picked, uirevision=model_key)
        st.plotly_chart(fig, key="vae-latent", on_select=_remember_pick, selection_mode="points",
                        config={"displaylogo": False})
        st.caption(f"{len(analysis.points):,} test images; axes: {analysis.caption}.")
    with detail:
        if picked is None or picked >= len(analysis.points):
            st.info("Click a point to see that test image and its reconstruction.")
            return
        show_reconstruction(model, picked)


def show_reconstruction(model: VAE, index: int) -> None:
    """Test image ``index`` beside its reconstruction from the posterior mean."""
    test = test_split()
    image = test.images[index : index + 1]
    original, rebuilt = st.columns(2)
    original.image(pictures.digit_picture(image.float() / 255.0), width=168,
                   caption=f"test image {index} (digit {int(test.labels[index])})")
    rebuilt.image(pictures.digit_picture(reconstruct(model, image)), width=168, caption="its reconstruction")


@st.fragment
def samples_section(model: VAE) -> None:
    st.subheader("Samples and reconstructions")
    noise = st.radio("Noise", ["fixed", "fresh"], horizontal=True, key="vae-noise",
                     format_func=lambda v: "fixed (the same every time)" if v == "fixed" else "fresh",
                     help="Fixed noise shows how different models treat the same latents.")
    if noise == "fresh":
        if st.button("Draw new noise", key="vae-new-noise") or "vae-fresh-seed" not in st.session_state:
            st.session_state["vae-fresh-seed"] = secrets.randbits(31)
        seed = st.session_state["vae-fresh-seed"]
    else:
        seed = FIXED_NOISE_SEED
    means, draws = samples(model, seed)
    left, right = st.columns(2)
    left.image(pictures.grid_picture(means, nrow=8), caption="Bernoulli means p(x|z) of z ~ N(0, I)")
    right.image(pictures.grid_picture(draws, nrow=8), caption="Bernoulli draws x ~ p(x|z) from the same z")
    test = test_split()
    images = test.images[:RECON_COUNT]
    left, right = st.columns(2)
    left.image(pictures.grid_picture(images.float() / 255.0, nrow=8), caption=f"The first {RECON_COUNT} test images")
    right.image(pictures.grid_picture(reconstruct(model, images), nrow=8),
                caption="Their reconstructions (decoded posterior means)")


def elbo_section(model: VAE, model_key: str, source: Source) -> None:
    st.subheader("The ELBO and active units")
    analysis = latent_analysis(model, model_key)
    figures = analysis.figures
    columns = st.columns(3)
    columns[0].metric("Test −ELBO (nats)", f"{figures['loss']:.2f}")
    columns[1].metric("Reconstruction (nats)", f"{figures['recon']:.2f}")
    columns[2].metric("KL (nats)", f"{figures['kl']:.2f}")
    with st.expander("The objective, with this model's numbers"):
        nll = manifest_nll(source)
        st.latex(formulas.elbo(figures["recon"], figures["kl"], nll[1] if nll else None))
        st.caption("Per-image means over the 10,000 test images (one fixed binarization, one z ~ q(z|x) each), "
                   "in nats. Training maximises the ELBO: the reconstruction term wants q(z|x) to pick z that "
                   "explain x, the KL term wants q(z|x) close to the prior N(0, I)."
                   + (f" The bound sits {figures['recon'] + figures['kl'] - nll[1]:.2f} nats below log p(x), "
                      f"estimated by importance sampling with k = {nll[0]} (MANIFEST.json)." if nll else ""))
    history, units = st.columns(2, gap="large")
    with history:
        valid = sources.run_columns(source, "valid")
        if len(valid.get("epoch", ())):
            st.plotly_chart(vae_charts.elbo_history(valid, uirevision=model_key), key="vae-elbo",
                            config={"displaylogo": False})
            st.caption(f"From run {plain(source.run.name)}'s validation records.")
        else:
            sources.no_history(source)
    with units:
        st.plotly_chart(vae_charts.kl_per_dimension(analysis.kl, analysis.active), key="vae-kl-dims",
                        config={"displaylogo": False})
        st.caption("Mean KL(q(z_j|x) ‖ N(0,1)) over the test images. A dimension is active when its posterior "
                   "mean varies over the images (variance > 0.01); the others the decoder ignores.")


def pick_test_image(key: str) -> int:
    """A test image's number (widget ``key``, 0 at first) and the image as binarized; returns the number."""
    st.session_state.setdefault(key, 0)
    test = test_split()
    index = int(st.number_input("Test image #", 0, len(test.images) - 1, step=1, key=key))
    st.image(pictures.digit_picture(data.fixed_binarization(test.images[index : index + 1])[0], scale=4),
             width=112, caption=f"#{index}: a {int(test.labels[index])}, binarized")
    return index


@st.cache_resource(max_entries=16, show_spinner=f"Estimating log p(x) from {monte_carlo.SAMPLES:,} samples per method…")
def likelihood_estimates(_model: VAE, model_key: str, index: int) -> monte_carlo.Estimates:
    """Q1.4's estimates for test image ``index`` (its fixed binarization), cached per model and image."""
    x = data.fixed_binarization(test_split().images[index : index + 1])
    return monte_carlo.log_likelihood_estimates(_model, x)


@st.fragment
def estimators_section(model: VAE, model_key: str) -> None:
    st.subheader("How many samples does log p(x) need? Prior against importance sampling")
    controls, chart = st.columns([1, 4], gap="large")
    with controls:
        index = pick_test_image("vae-q14-index")
    estimates = likelihood_estimates(model, model_key, int(index))
    best = float(estimates.mean("importance")[-1])
    methods = monte_carlo.METHODS
    with chart:
        fig = vae_charts.likelihood_estimates(estimates.ks, {m: estimates.mean(m) for m in methods},
                                                {m: estimates.std(m) for m in methods}, estimates.count(), best,
                                                uirevision=f"{model_key}:{index}")
        st.plotly_chart(fig, key="vae-q14", config={"displaylogo": False})
        st.latex(r"\hat p_\text{MC} = \frac1k \sum_{i=1}^k p(x \mid z_i),\;\; z_i \sim p(z) \qquad\qquad "
                 r"\hat p_\text{IS} = \frac1k \sum_{i=1}^k \frac{p(x \mid z_i)\,p(z_i)}{q(z_i \mid x)},\;\; z_i \sim q(z \mid x)")
        st.caption(estimators_summary(estimates, best))


def estimators_summary(estimates: monte_carlo.Estimates, best: float, within: float = 1.0) -> str:
    """What the Q1.4 chart shows, in words: how many samples each method needs to come within
    ``within`` nats of the best estimate."""
    counts = estimates.count()
    needs = {}
    for method in monte_carlo.METHODS:
        close = [k for k, mean in zip(estimates.ks, estimates.mean(method)) if best - mean <= within]
        needs[method] = close[0] if close else None
    prior_last = float(estimates.mean("prior")[-1])
    if needs["prior"] is None:
        prior = (f"sampling z from the prior is still {best - prior_last:.1f} nats below at k = {estimates.ks[-1]:,}: "
                 "almost every z it draws explains nothing of this image")
    else:
        prior = (f"sampling z from the prior needs k = {needs['prior']:,}, because most z it draws explain nothing "
                 "of this image")
    ours = f"k = {needs['importance']:,}" if needs["importance"] is not None else "more samples than this"
    return (f"Each point is the mean of log p̂ over independent estimates ({counts[0]:,} at k = 1, {counts[-1]} at "
            f"k = {estimates.ks[-1]:,}); the bars are ± one standard deviation. Both p̂ are unbiased for p(x), so "
            f"log p̂ is biased low and climbs as k grows. Importance sampling from q(z|x), which puts its samples "
            f"where p(z|x) is, comes within {within:g} nat of the best estimate ({best:.2f}) with {ours}; {prior}. "
            f"The gap widens with the latent dimension: compare vae-z2 with vae-z20.")


# ----------------------------------------------------------------------------- training


def then_and_now_pictures(model: VAE, model_key: str) -> None:
    """One model's manifold (2-D latents) and fixed-noise samples: what ``then_and_now`` draws per epoch."""
    if model.latent_dim == 2:
        st.image(pictures.grid_picture(model.manifold(15), nrow=15, scale=1), width="stretch",
                 caption="the 15 × 15 manifold")
    means, draws = samples(model, FIXED_NOISE_SEED, 16)
    st.image(pictures.grid_picture(torch.cat([draws, means]), nrow=16, scale=1), width="stretch",
             caption="fixed noise: Bernoulli draws above their means")


def training_section(source: Source) -> None:
    st.subheader("Training, epoch by epoch")
    if source.run is None:
        sources.no_history(source)
        return
    run_monitor.picture_history(source.run, key="vae-explore")
    epochs = source.run.latent_epochs()
    if epochs:
        latent_history(source, epochs)


@st.fragment
def latent_history(source: Source, epochs: list[int]) -> None:
    """The codes of validation images after each recorded epoch: the clusters forming."""
    key = "vae-latent-epoch"
    if st.session_state.get(key) not in epochs:
        st.session_state[key] = epochs[-1]
    epoch = st.select_slider("Codes after epoch", epochs, key=key)
    recorded = source.run.read_latents(int(epoch))
    if recorded is None:
        st.warning(f"The codes of epoch {epoch} cannot be read.")
        return
    points, labels = recorded
    fig = vae_charts.latent_scatter(points, labels, np.arange(len(points)), ("z1", "z2"), uirevision=f"{source.run.path}")
    st.plotly_chart(fig, key="vae-latent-history", config={"displaylogo": False})
    st.caption(f"Posterior means of {len(points):,} validation images after epoch {epoch}, coloured by digit.")


# ----------------------------------------------------------------------------- the seed's Fig. 1 and 2


@st.cache_resource(max_entries=4, show_spinner="Decoding the box of the codes…")
def box_decodings(_model: VAE, model_key: str) -> tuple[np.ndarray, list[float], list[float]]:
    """(the decodings of an even grid over the box of the model's test codes as a picture, low, high)."""
    low, high = code_box(torch.from_numpy(latent_analysis(_model, model_key).points))
    return pictures.grid_picture(decode_box(_model, low, high, BOX_GRID), nrow=BOX_GRID, scale=1), low, high


def codes_panel(model: VAE, model_key: str, name: str) -> None:
    """A 2-D model's test codes and the decodings of the box they fill."""
    analysis = latent_analysis(model, model_key)
    fig = vae_charts.latent_scatter(analysis.points, analysis.labels, np.arange(len(analysis.points)),
                                    ("z1", "z2"), uirevision=f"codes-{model_key}")
    st.plotly_chart(fig, key=f"vae-codes-{name}", config={"displaylogo": False})
    picture, low, high = box_decodings(model, model_key)
    st.image(picture, width="stretch",
             caption=f"{name}: decodings of an even {BOX_GRID} × {BOX_GRID} grid over z1 ∈ [{low[0]:.1f}, {high[0]:.1f}], "
                     f"z2 ∈ [{low[1]:.1f}, {high[1]:.1f}], the box of its codes")


def autoencoder_section(settings: Settings, title: bool = True) -> None:
    if title:
        st.subheader("Why not a plain autoencoder? Its codes beside a VAE's")
    pair = [(name, sources.shipped(settings, name, FAMILY)) for name in (AUTOENCODER, ITS_VAE)]
    if any(loaded is None for _, loaded in pair):
        return
    for (name, (model, key, _)), column in zip(pair, st.columns(2, gap="large")):
        with column:
            st.markdown(f"**{name}**: " + ("the same networks as a plain autoencoder (z = the encoder's mean, no KL)"
                                           if model.config.autoencoder else "the VAE"))
            codes_panel(model, key, name)
    st.caption("The autoencoder puts each digit wherever reconstruction is easiest: tight clusters far apart, "
               "with empty space between them that the decoder never saw, so the grid decodes to smudges there "
               "and there is no distribution to sample from. The KL term pulls a VAE's codes into the prior's "
               "N(0, I): its clusters touch, and every point of the box decodes to a digit-like image.")


@st.cache_resource(max_entries=16, show_spinner="Evaluating the posterior on a grid…")
def posterior_of(_model: VAE, model_key: str, index: int) -> GridPosterior:
    return grid_posterior(_model, data.fixed_binarization(test_split().images[index : index + 1]))


@st.fragment
def posterior_section(model: VAE, model_key: str, title: bool = True) -> None:
    if title:
        st.subheader("The true posterior, on a grid: what the ELBO leaves out")
    if model.latent_dim != 2 or model.config.autoencoder:
        st.info("The grid needs a VAE with a 2-D latent space (vae-z2, or a run with latent dimensions 2).")
        return
    controls, numbers = st.columns([1, 3], gap="large")
    with controls:
        index = pick_test_image("vae-posterior-index")
    grid = posterior_of(model, model_key, int(index))
    with numbers:
        show_posterior_numbers(grid)
    shapes = (grid.z1.numpy(), grid.z2.numpy(), grid.log_q.numpy(), grid.log_posterior.numpy())
    wide, zoomed = st.columns(2, gap="large")
    wide.plotly_chart(vae_charts.posterior_contours(*shapes, prior_extent=4.0, uirevision=f"{model_key}:{index}"),
                      key="vae-posterior", config={"displaylogo": False})
    zoomed.plotly_chart(vae_charts.posterior_contours(*shapes, uirevision=f"{model_key}:{index}:zoom"),
                        key="vae-posterior-zoom", config={"displaylogo": False})


def show_posterior_numbers(grid: GridPosterior) -> None:
    columns = st.columns(3)
    columns[0].metric("log p(x), from the grid", f"{grid.log_px:.2f} nats")
    columns[1].metric("ELBO", f"{grid.elbo:.2f} nats")
    columns[2].metric("KL(q(z|x) ‖ p(z|x))", f"{grid.kl:.3f} nats")
    st.caption(f"p(z|x) ∝ p(x|z) p(z), normalised over {grid.z1.numel()} × {grid.z2.numel()} points around it: "
               f"log p(x) − ELBO = {grid.gap:.3f} nats, exactly the KL from q to the true posterior, so the ELBO "
               "is tight where q matches it. Contours hold 50, 90 and 99 % of each density's mass; next to the "
               "prior, the posterior of a trained model is a speck, which is why sampling z from the prior "
               "almost never lands where this image is explained.")


# ----------------------------------------------------------------------------- the tab


def explore(settings: Settings) -> None:
    chosen = sources.choose_model(settings, FAMILY, PRETRAINED, prefix="vae")
    if chosen is None:
        return
    model, model_key, source = chosen
    st.markdown(describe(model, source))
    manifold_section(model, model_key)
    sources.then_and_now(model, model_key, source, FAMILY, "vae", then_and_now_pictures)
    st.divider()
    latent_section(model, model_key)
    st.divider()
    samples_section(model)
    st.divider()
    elbo_section(model, model_key, source)
    training_section(source)
    st.divider()
    posterior_section(model, model_key)
    st.divider()
    autoencoder_section(settings)
    st.divider()
    estimators_section(model, model_key)


def render(settings: Settings) -> None:
    """Explore and Train sub-tabs; only the open one runs."""
    family_tab.render_with_explorer(FAMILY, settings, explore)


def state_keys() -> list[str]:
    return [*STATE_KEYS, *family_tab.state_keys(FAMILY)]
