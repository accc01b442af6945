"""The GAN tab: explore a trained GAN (pretrained, any run's checkpoint, or an upload), and train.

Explore shows the run's adversarial game (both losses, and what D says about real and generated
images), a numbered grid of samples with a "new samples" button, interpolation between two latents
(chosen by seed or as two cells of that grid; linear or spherical), and sample quality as judged
by the project's MNIST classifier. Each section is a fragment, so its controls rerun it alone.
"""
from __future__ import annotations

import secrets

import streamlit as st
import torch
import torch.nn.functional as F

from genapp import data
from genapp.models import GAN
from genapp.models.gan import interpolate_latents
from genapp.ui import family_tab, formulas, gan_charts, pictures, run_monitor, sources
from genapp.ui.resources import Settings, test_split
from genapp.ui.sources import Source
from genapp.ui.text import plain
from genapp.ui import url_state

FAMILY = "gan"
PRETRAINED = {"gan": "python -m train gan --run-name gan && python -m train export gan --name gan"}
SAMPLE_COUNT = 24  # numbered cells: few enough to tell apart, enough to find two digits worth joining
FIXED_NOISE_SEED = 0
GAME_BATCH = 2000  # test images and fixed-noise samples behind the value of the game
QUALITY_SAMPLES = 2000  # scoring in the UI: a few seconds, noisier than the manifest's 10k
BY_SEED, BY_GRID = "two seeds", "two samples of the grid"
STATE_KEYS = ["gan-view", "gan-source", "gan-samples-seed", "gan-endpoints", "gan-seed-start", "gan-seed-end",
              "gan-cell-start", "gan-cell-end", "gan-steps", "gan-mode", "gan-frame", "gan-explore-smoothing"]
# (result key, manifest key, label, help)
QUALITY_FIGURES = [
    ("fid", "quality_fid", "FID (classifier features)", "Fréchet distance between Gaussians fitted to the "
     "classifier's features of the samples and of the test images; lower is better."),
    ("inception_score", "quality_inception_score", "Inception score", "exp E KL(p(y|x) ‖ p(y)): 10 when every "
     "sample is a confident digit and the digits are evenly spread."),
    ("smallest_class_share", "quality_smallest_class_share", "Rarest digit's share", "0.10 when every digit is "
     "drawn equally often; small values mean mode collapse."),
    ("confidence", "quality_confidence", "Classifier confidence", "Mean max p(y|x): how digit-like the samples are."),
]


# ----------------------------------------------------------------------------- pure helpers


def latent_from_seed(seed: int, latent_dim: int) -> torch.Tensor:
    """z ~ N(0, I) drawn with ``seed``: float [latent_dim]."""
    return torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(seed)))


def sample_latents(seed: int, n: int, latent_dim: int) -> torch.Tensor:
    """The latents of the numbered sample grid: float [n, latent_dim], row i is cell #(i+1)."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(int(seed)))


@torch.no_grad()
def interpolation(model: GAN, z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images float [steps,1,28,28] in [0,1], |z| of each latent on the path [steps])."""
    path = interpolate_latents(z0, z1, steps, mode)
    return model.generate(path.to(model.device)).cpu(), path.norm(dim=1)


@torch.no_grad()
def game_terms(model: GAN, real: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
    """The two halves of V(D, G) and the mean outputs of D: on real images (uint8 [n,1,28,28]) and
    on G(z) for latents z [m, latent_dim]. Keys d_real, d_fake (means of D), log_d_real (mean of
    log D(x)) and log_one_minus_d_fake (mean of log(1 - D(G(z)))), in nats."""
    real_logits = model.discriminate(data.to_unit(real).to(model.device))
    fake_logits = model.discriminate(model.generate(z.to(model.device)))
    return {"d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item(),
            "log_d_real": F.logsigmoid(real_logits).mean().item(),
            "log_one_minus_d_fake": F.logsigmoid(-fake_logits).mean().item()}


def quality_rows(figures: dict, manifest: bool) -> list[tuple[str, str, str]]:
    """(label, value, help) for each quality figure present in ``figures`` (the manifest's
    ``quality_*`` keys when ``manifest``, else ``sample_quality``'s keys)."""
    rows = []
    for key, manifest_key, label, help_text in QUALITY_FIGURES:
        value = figures.get(manifest_key if manifest else key)
        if value is not None:
            rows.append((label, f"{value:.3g}" if key != "fid" else f"{value:.1f}", help_text))
    return rows


# ----------------------------------------------------------------------------- cached work


@st.cache_resource(max_entries=8, show_spinner="Scoring samples with the MNIST classifier…")
def quality_of(_model: GAN, model_key: str, n: int = QUALITY_SAMPLES) -> dict:
    """``sample_quality`` of n seeded samples; the first call also measures the test set (10-30 s)."""
    from genapp.evaluation.quality import sample_quality  # loads the classifier: only when asked

    return sample_quality(_model, n=n, seed=0)


@st.cache_resource(max_entries=8, show_spinner=False)
def game_numbers(_model: GAN, model_key: str) -> dict[str, float]:
    """``game_terms`` on the first GAME_BATCH test images and as many fixed-noise samples."""
    z = sample_latents(FIXED_NOISE_SEED, GAME_BATCH, _model.latent_dim)
    return game_terms(_model, test_split().images[:GAME_BATCH], z)


# ----------------------------------------------------------------------------- sections


def describe(model: GAN) -> str:
    info = getattr(model, "checkpoint_info", {}) or {}
    c = model.config
    parts = [f"latent dimensions **{model.latent_dim}**", f"generator {', '.join(map(str, c.generator_hidden))}",
             f"discriminator {', '.join(map(str, c.discriminator_hidden))}"]
    if c.ema:
        parts.append(f"pictures from a moving average of G's weights (decay {c.ema:g})")
    if info.get("epoch") is not None:
        parts.append(sources.training_summary(info))
    return " · ".join(parts)


def math_section(model: GAN, model_key: str) -> None:
    with st.expander("The game, with this model's numbers"):
        terms = game_numbers(model, model_key)
        for line in formulas.gan_value(**terms):
            st.latex(line)
        value = terms["log_d_real"] + terms["log_one_minus_d_fake"]
        st.caption(f"Means over {GAME_BATCH:,} test images x and {GAME_BATCH:,} samples G(z) of fixed noise, in nats. "
                   "D maximises V and G minimises it. For a fixed G the best D is D*, and then "
                   "V(D*, G) = −log 4 + 2·JS(p_data ‖ p_g); since no D does better than D*, this D shows "
                   f"JS(p_data ‖ p_g) ≥ (V + log 4) / 2 = {formulas.js_lower_bound(value):.3f} nats"
                   + (" (a bound below zero says nothing: this D is far from D*)."
                      if formulas.js_lower_bound(value) < 0 else ".")
                   + (" G is the moving average of the generator, whose samples this page shows; D was trained "
                      "against the live generator, so it plays a slightly different G here." if model.config.ema else ""))


def training_section(source: Source, model_key: str) -> None:
    st.subheader("The adversarial game during training")
    train = sources.run_columns(source, "train")
    if not len(train.get("d_loss", ())):
        sources.no_history(source)
        return
    with st.columns([1, 2])[0]:
        smoothing = run_monitor.smoothing_slider("gan-explore")
    losses, outputs = st.columns(2, gap="large")
    losses.plotly_chart(gan_charts.gan_losses(train, uirevision=model_key, smoothing=smoothing), key="gan-losses",
                        config={"displaylogo": False})
    losses.caption("Dashed lines: the losses when D outputs ½ for every image, which the best discriminator "
                   "does once generated images are indistinguishable from real ones: 2·ln 2 ≈ 1.39 for D "
                   "(−log ½ on real plus −log ½ on generated) and ln 2 for G. A D loss far below its line means "
                   "D is winning easily; curves that hover near the lines mean a balanced game.")
    outputs.plotly_chart(gan_charts.discriminator_outputs(train, uirevision=model_key, smoothing=smoothing),
                         key="gan-d-outputs",
                         config={"displaylogo": False})
    outputs.caption("Mean D(x) on a batch of real images and D(G(z)) on generated ones, smoothed over steps "
                    "(TensorBoard's debiased moving average at the slider's weight). "
                    f"From run {plain(source.run.name)}'s per-step records.")
    run_monitor.picture_history(source.run, key="gan-explore")


def then_and_now_pictures(model: GAN, model_key: str) -> None:
    """One model's fixed-noise samples and a fixed slerp path: what ``then_and_now`` draws per epoch."""
    with torch.no_grad():
        images = model.generate(sample_latents(FIXED_NOISE_SEED, 16, model.latent_dim).to(model.device)).cpu()
    st.image(pictures.grid_picture(images, nrow=8), caption="G(z) of the fixed noise", width="stretch")
    path, _ = interpolation(model, latent_from_seed(1, model.latent_dim), latent_from_seed(2, model.latent_dim), 8, "slerp")
    st.image(pictures.grid_picture(path, nrow=8), caption="slerp from seed 1 to seed 2", width="stretch")


def _new_samples() -> None:
    st.session_state["gan-samples-seed"] = secrets.randbits(31)


@st.fragment
def samples_section(model: GAN) -> None:
    st.subheader("Samples")
    st.session_state.setdefault("gan-samples-seed", FIXED_NOISE_SEED)
    seed = st.session_state["gan-samples-seed"]
    if st.button("New samples", key="gan-new-samples", help="Draw fresh noise z ~ N(0, I)."):
        _new_samples()
        st.rerun()  # the whole page: the interpolation below picks its endpoints from this grid
    z = sample_latents(seed, SAMPLE_COUNT, model.latent_dim)
    with torch.no_grad():
        images = model.generate(z.to(model.device)).cpu()
    st.image([pictures.digit_picture(image, scale=2) for image in images], caption=[f"#{i + 1}" for i in range(len(images))])
    st.caption(f"G(z) for {SAMPLE_COUNT} draws z ~ N(0, I) ({'fixed noise' if seed == FIXED_NOISE_SEED else f'seed {seed}'}); "
               "the numbers name the cells for the interpolation below.")


def _endpoints(model: GAN) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The two latents to join (each [latent_dim]) and how to describe them."""
    by = st.radio("Endpoints", [BY_SEED, BY_GRID], key="gan-endpoints", horizontal=True)
    left, right = st.columns(2)
    if by == BY_SEED:
        start = left.number_input("Start seed", 0, 2**31 - 1, step=1, key="gan-seed-start")
        end = right.number_input("End seed", 0, 2**31 - 1, step=1, key="gan-seed-end")
        return latent_from_seed(start, model.latent_dim), latent_from_seed(end, model.latent_dim), f"seeds {start} → {end}"
    cells = list(range(1, SAMPLE_COUNT + 1))
    start = left.selectbox("Start sample #", cells, key="gan-cell-start")
    end = right.selectbox("End sample #", cells, key="gan-cell-end")
    z = sample_latents(st.session_state["gan-samples-seed"], SAMPLE_COUNT, model.latent_dim)
    return z[start - 1], z[end - 1], f"samples #{start} → #{end}"


@st.fragment
def interpolation_section(model: GAN) -> None:
    st.subheader("Interpolation in latent space")
    for key, default in (("gan-endpoints", BY_SEED), ("gan-seed-start", 1), ("gan-seed-end", 2),
                         ("gan-cell-start", 1), ("gan-cell-end", 2), ("gan-steps", 10), ("gan-mode", "slerp"),
                         ("gan-frame", 1)):
        st.session_state.setdefault(key, default)  # not as widget defaults: the values outlive tab switches
    controls, strip = st.columns([1, 2], gap="large")
    with controls:
        z0, z1, described = _endpoints(model)
        steps = st.slider("Steps", 3, 24, key="gan-steps", help="Images on the path, both ends included.")
        mode = st.radio("Path", ["linear", "slerp"], key="gan-mode", horizontal=True,
                        format_func=lambda m: "linear" if m == "linear" else "slerp (spherical)",
                        help="Linear blends the vectors, so halfway the latent is shorter than typical "
                             "ones; slerp turns along a great circle and keeps the length.")
    images, norms = interpolation(model, z0, z1, steps, mode)
    with strip:
        st.image(pictures.grid_picture(images, nrow=steps, scale=2), caption=f"{mode} path, {described}, {steps} steps")
        typical = model.latent_dim ** 0.5
        st.caption(f"|z| along the path: {norms[0]:.1f} → {norms[steps // 2]:.1f} (middle) → {norms[-1]:.1f}; "
                   f"draws from N(0, I) have |z| ≈ √{model.latent_dim} ≈ {typical:.1f}.")
        st.session_state["gan-frame"] = min(st.session_state["gan-frame"], steps)
        frame = st.slider("Frame", 1, steps, key="gan-frame")
        t = (frame - 1) / (steps - 1)
        st.image(pictures.digit_picture(images[frame - 1]), width=168, caption=f"frame {frame} of {steps} (t = {t:.2f})")
    url_state.publish()  # a control changed inside this fragment: the link follows


@st.fragment
def quality_section(model: GAN, model_key: str, source: Source) -> None:
    st.subheader("Sample quality")
    test = (source.manifest or {}).get("test", {})
    if quality_rows(test, manifest=True):
        _show_quality(quality_rows(test, manifest=True))
        st.caption(f"Measured when the checkpoint was exported, on {test.get('quality_samples', 10_000):,} samples "
                   f"(checkpoints/MANIFEST.json). Real test images score an Inception score of "
                   f"{test.get('quality_inception_score_real', 9.8):.2f}.")
        return
    computed = st.session_state.get("gan-quality-for") == model_key
    if st.button(f"Score {QUALITY_SAMPLES:,} samples", key="gan-score", disabled=computed,
                 help="Classifies samples with the shipped MNIST classifier. The first time also measures the "
                      "test set: 10-30 s."):
        st.session_state["gan-quality-for"] = model_key
        computed = True
    if not computed:
        st.info(f"No recorded quality for this model: score {QUALITY_SAMPLES:,} samples on demand.")
        return
    figures = quality_of(model, model_key)
    _show_quality(quality_rows(figures, manifest=False))
    st.caption(f"On {QUALITY_SAMPLES:,} samples (seed 0): noisier than the 10k-sample figures of the pretrained "
               f"checkpoints, and FID is biased upwards at small n. The real-data floor of FID is "
               f"{figures['fid_real_floor']:.1f}; real test images score an Inception score of "
               f"{figures['inception_score_real']:.2f}.")


def _show_quality(rows: list[tuple[str, str, str]]) -> None:
    for column, (label, value, help_text) in zip(st.columns(len(rows)), rows):
        column.metric(label, value, help=help_text)


# ----------------------------------------------------------------------------- the tab


def explore(settings: Settings) -> None:
    chosen = sources.choose_model(settings, FAMILY, PRETRAINED, prefix="gan")
    if chosen is None:
        return
    model, model_key, source = chosen
    st.markdown(describe(model))
    math_section(model, model_key)
    training_section(source, model_key)
    sources.then_and_now(model, model_key, source, FAMILY, "gan", then_and_now_pictures)
    st.divider()
    samples_section(model)
    st.divider()
    interpolation_section(model)
    st.divider()
    quality_section(model, model_key, source)


def render(settings: Settings) -> None:
    """Explore and Train sub-tabs; only the open one runs."""
    family_tab.render_with_explorer(FAMILY, settings, explore)


def state_keys() -> list[str]:
    return [*STATE_KEYS, *family_tab.state_keys(FAMILY)]
