"""The Report tab: the seed report's figures in its order (1-15), each drawn live from the shipped
models and the training histories shipped beside them, with a caption saying what the seed's
figure showed, what this one shows, and which of the seed's questions it answers.

Nothing here trains or measures anything slow (but for Fig. 13's toy flow, a few seconds once per
server): pictures of past epochs are the PNGs a run
recorded, curves are its metrics, and what is computed from a model (a manifold, the grid
posterior, interpolations) is cached per model, so the page redraws in well under a second.
"""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
import torch

from genapp import playground
from genapp.models import GAN, VAE
from genapp.playground import views
from genapp.runs import RunDir
from genapp.ui import charts, gan_tab, pictures, playground_charts, playground_tab, sources, vae_tab
from genapp.ui.resources import Settings, metrics_history

STATE_KEYS = ["vae-posterior-index"]
VAE_2D, VAE_20D, GAN_NAME, FLOW_NAME = "vae-z2", "vae-z20", "gan", "flow-mlp"
SEED_EPOCHS = {"vae": (1, 10, 20, 30, 40), "gan": (1, 12, 50, 110, 200), "flow": (1, 10, 20, 30, 40)}
INTERPOLATIONS = ((1, 2), (3, 4), (5, 6), (7, 8))  # Fig. 12: slerp between these seeds' latents
INTERPOLATION_STEPS = 10
TOY_FLOW_STEPS = 1500  # Fig. 13: the toy flow's training, about 5 s once on this CPU


# ----------------------------------------------------------------------------- small pieces


def figure_heading(number: int, title: str, question: str) -> None:
    st.markdown(f"#### Fig. {number} · {title}")
    st.caption(f"Answers the seed's {question}.")


def nearest(available: Sequence[int], wanted: Sequence[int]) -> list[int]:
    """For each wanted epoch, the nearest one ``available`` holds (in the order wanted, no repeats)."""
    chosen: list[int] = []
    for epoch in wanted:
        best = min(available, key=lambda e: (abs(e - epoch), e))
        if best not in chosen:
            chosen.append(best)
    return chosen


def epoch_row(run: RunDir | None, kinds: Sequence[str], wanted: Sequence[int], what: str) -> list[int]:
    """One column per wanted epoch (the nearest recorded), each stacking the ``kinds`` pictures
    the run recorded after it; returns the epochs shown (none, with a message, without a history)."""
    epochs = run.sample_epochs(kinds[0]) if run is not None else []
    if not epochs:
        st.info(f"No shipped history for {what}: its pictures per epoch are not here.")
        return []
    shown = nearest([e for e in epochs if e > 0] or epochs, wanted)
    for epoch, column in zip(shown, st.columns(len(shown))):
        for kind in kinds:
            path = run.sample_path(epoch, kind)
            if path.is_file():
                column.image(str(path), width="stretch")
        column.caption(f"epoch {epoch}")
    return shown


@st.cache_resource(max_entries=1, show_spinner="Training the toy flow of Fig. 13 (a few seconds, once)…")
def toy_flow_view() -> dict:
    """The playground's default flow trained on two moons (seeded: the same figure every time)."""
    model = playground.build("flow", seed=0)
    data = playground.make_data("two-moons", 2000, seed=0)
    playground.train_steps(model, data, TOY_FLOW_STEPS)
    return views.flow_view(model, data)


@st.cache_resource(max_entries=4, show_spinner=False)
def manifold_picture(_model: VAE, model_key: str, n: int = 20):
    return pictures.grid_picture(_model.manifold(n), nrow=n, scale=1)


@st.cache_resource(max_entries=4, show_spinner=False)
def interpolation_picture(_model: GAN, model_key: str):
    rows = []
    for start, end in INTERPOLATIONS:
        z0, z1 = (gan_tab.latent_from_seed(s, _model.latent_dim) for s in (start, end))
        rows.append(gan_tab.interpolation(_model, z0, z1, INTERPOLATION_STEPS, "slerp")[0])
    return pictures.grid_picture(torch.cat(rows), nrow=INTERPOLATION_STEPS, scale=2)


def layer_sizes(sizes: Sequence[int]) -> str:
    return " → ".join(f"{s:,}" for s in sizes)


# ----------------------------------------------------------------------------- graphs (Fig. 3, 4, 9)


def reparameterization_graph(latent_dim: int) -> str:
    """Fig. 3 as DOT: random nodes blue, deterministic ones white; the gradient reaches φ through
    the deterministic path only."""
    d = latent_dim
    return f"""digraph {{
  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=11];
  x [label="x\\n784 pixels"]; phi [label="encoder φ", shape=ellipse];
  mu [label="μ_φ(x)\\n{d}"]; sigma [label="σ_φ(x) = exp(½ log σ²)\\n{d}"];
  eps [label="ε ~ N(0, I)\\n{d}", fillcolor="#9ecae1"];
  z [label="z = μ + σ ⊙ ε\\n{d}"]; f [label="log p_θ(x | z)", shape=ellipse];
  x -> phi; phi -> mu; phi -> sigma; mu -> z; sigma -> z; eps -> z; z -> f;
  f -> z [style=dashed, color="#d62728", label="∂/∂z", fontcolor="#d62728", constraint=false];
  z -> mu [style=dashed, color="#d62728", constraint=false]; z -> sigma [style=dashed, color="#d62728", constraint=false];
}}"""


def vae_graph(model: VAE) -> str:
    """Fig. 4 as DOT with the model's own layer sizes."""
    hidden, d = list(model.config.hidden), model.latent_dim
    encoder = layer_sizes([784, *hidden])
    decoder = layer_sizes([d, *hidden[::-1], 784])
    return f"""digraph {{
  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=12];
  x [label="x\n784 binary pixels"]; enc [label="encoder MLP\n{encoder}, ReLU"];
  q [label="q(z|x) = N(μ, σ²)\nμ, log σ²: {d} each"]; eps [label="ε ~ N(0, I)", fillcolor="#9ecae1"];
  z [label="z = μ + σ ⊙ ε\n{d}"]; dec [label="decoder MLP\n{decoder}, ReLU"];
  px [label="p(x|z): 784 Bernoulli\nmeans (sigmoid)"];
  loss [label="−ELBO = −log p(x|z) + KL(q(z|x) ‖ N(0, I))", shape=note, fillcolor="#fdd0a2"];
  x -> enc -> q -> z -> dec -> px -> loss; eps -> z; q -> loss [label="KL, closed form"];
}}"""


def gan_graph(model: GAN) -> str:
    """Fig. 9 as DOT with the model's own layer sizes."""
    c = model.config
    generator = layer_sizes([c.latent_dim, *c.generator_hidden, 784])
    discriminator = layer_sizes([784, *c.discriminator_hidden, 1])
    return f"""digraph {{
  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=11];
  z [label="z ~ N(0, I)\\n{c.latent_dim}", fillcolor="#9ecae1"];
  g [label="generator G\\n{generator}\\nLeakyReLU, batch norm, tanh"];
  fake [label="G(z)\\n28 × 28"]; real [label="x ~ MNIST\\nscaled to [−1, 1]"];
  d [label="discriminator D\\n{discriminator}\\nLeakyReLU, dropout {c.dropout:g}"];
  p [label="D(·) = P(real)"]; dl [label="D's loss: −log D(x) − log(1 − D(G(z)))", shape=note, fillcolor="#fdd0a2"];
  gl [label="G's loss: {'−log D(G(z))' if c.generator_loss == 'non_saturating' else 'log(1 − D(G(z)))'}", shape=note, fillcolor="#fdd0a2"];
  z -> g -> fake -> d; real -> d; d -> p; p -> dl; p -> gl;
}}"""


# ----------------------------------------------------------------------------- the sections


def vae_figures(settings: Settings) -> None:
    st.subheader("1 · Variational autoencoder")
    figure_heading(1, "A plain autoencoder's codes: clusters with gaps", "Q1.1")
    st.caption("The seed showed a trained autoencoder's 2-D codes falling into separate clusters and marked the "
               "empty space between them, where a decoded point is garbage. Here ae-z2 (the networks of vae-z2 "
               "trained without sampling or KL) is drawn beside vae-z2: the codes of 3,000 test images, and "
               "below each the decodings of an even grid over the box its codes fill.")
    vae_tab.autoencoder_section(settings, title=False)

    small = sources.shipped(settings, VAE_2D, "vae")
    figure_heading(2, "The prior, the encoder and the true posterior", "Q1.4 and Q1.8")
    st.caption("The seed sketched the prior's wide contours around a small posterior to explain why sampling z "
               "from the prior wastes nearly every sample. Here the three densities of vae-z2 for one test image "
               "are computed exactly on a grid: the true posterior p(z|x) ∝ p(x|z)p(z), the encoder's Gaussian "
               "q(z|x), and N(0, I). The gap between log p(x) and the ELBO is KL(q ‖ p(z|x)).")
    if small is not None:
        vae_tab.posterior_section(small[0], small[1], title=False)

    big = sources.shipped(settings, VAE_20D, "vae")
    figure_heading(3, "The reparameterization trick", "Q1.11")
    st.caption("The seed's diagram: ε is the only random node, so z = μ + σ ⊙ ε is a deterministic function of "
               "the encoder's outputs and the gradient of the reconstruction term flows back into them (red). "
               "Drawn with vae-z20's latent size.")
    st.graphviz_chart(reparameterization_graph(big[0].latent_dim if big else 20))

    figure_heading(4, "The VAE pipeline", "Q1.12")
    st.caption("The seed's block diagram of encoder, sampling, decoder and the two loss terms, here with the "
               "layer sizes of the shipped vae-z20 (the seed's: 500 and 250 hidden units, ReLU).")
    if big is not None:
        st.graphviz_chart(vae_graph(big[0]))

    figure_heading(5, "The ELBO per epoch", "Q1.13")
    st.caption("The seed's 20-D VAE fell from about 180 to about 100 nats by epoch 12 and then slowly. Here is "
               "the run that made vae-z20: the training loss averaged over each epoch and the validation "
               "−ELBO after it.")
    run = big[2] if big else None
    if run is not None:
        history = metrics_history(str(run.path))
        history.refresh()
        st.plotly_chart(charts.per_epoch(history.columns("train"), history.columns("valid"), "loss",
                                         title="−ELBO per epoch (vae-z20)", y="nats per image", uirevision="report-5"),
                        key="report-fig5", config={"displaylogo": False})
    else:
        st.info("vae-z20's training history is not here.")

    for number, kind, noise in ((6, "fixed", "the same latents at every epoch"),
                                (7, "fresh", "new latents at every epoch")):
        figure_heading(number, f"VAE samples over training, {kind} noise", "Q1.14")
        st.caption(f"The seed's grids after epochs 1, 10, 20, 30 and 40, from {noise}: Bernoulli draws above "
                   "their means. These are vae-z20's, recorded by its run after those epochs.")
        epoch_row(run, [f"{kind}-draws", kind], SEED_EPOCHS["vae"], VAE_20D)

    figure_heading(8, "The learned manifold", "Q1.15")
    st.caption("The seed's 2-D manifold: every digit appears, with smooth changes between neighbours. This is "
               "vae-z2's: decodings of a 20 × 20 grid evenly spaced in probability under the prior.")
    if small is not None:
        st.image(manifold_picture(small[0], small[1]), width=560)


def gan_figures(settings: Settings) -> None:
    st.subheader("2 · Generative adversarial network")
    gan = sources.shipped(settings, GAN_NAME, "gan")
    figure_heading(9, "The GAN pipeline", "Q2.1")
    st.caption("The seed's diagram of noise, generator, discriminator and the real images, here with the shipped "
               "GAN's own layer sizes and its generator loss.")
    if gan is None:
        return
    model, key, run = gan
    st.graphviz_chart(gan_graph(model))
    for number, kind, noise in ((10, "fixed", "fixed latents"), (11, "fresh", "fresh latents")):
        figure_heading(number, f"GAN samples over training, {kind} noise", "Q2.6")
        st.caption(f"The seed's samples after epochs 1, 12, 50, 110 and 200 from {noise}, the last almost "
                   "indistinguishable from real digits. These are the shipped GAN's run's, at those epochs.")
        epoch_row(run, [kind], SEED_EPOCHS["gan"], GAN_NAME)
    figure_heading(12, "Interpolations in latent space", "Q2.7")
    st.caption("The seed's four interpolations between two digits, which pass through other plausible digits: "
               "a continuous latent space. Here four spherical paths (slerp) between the latents of seeds "
               f"{', '.join(f'{a}→{b}' for a, b in INTERPOLATIONS)}, {INTERPOLATION_STEPS} steps each.")
    st.image(interpolation_picture(model, key), width="stretch")


def flow_figures(settings: Settings) -> None:
    st.subheader("3 · Normalizing flow (RealNVP)")
    figure_heading(13, "A flow bending space: inference one way, sampling the other", "Q3.5")
    st.caption("The seed's illustration of f mapping data to a Gaussian and f⁻¹ mapping it back, with the space "
               "distorted in between. This is the 2-D playground's RealNVP (its defaults) after "
               f"{TOY_FLOW_STEPS:,} steps on two moons: its density with samples, then a grid of lines pushed "
               "through it layer by layer, data to latent and back. The Playground tab trains it live.")
    view = toy_flow_view()
    left, _ = st.columns([1.2, 1])
    left.plotly_chart(playground_charts.flow_plane(view, "report-13"), key="report-fig13-plane",
                      config={"displaylogo": False})
    playground_tab.flow_layer_charts(view, "report-13", "report-fig13")
    flow = sources.shipped(settings, FLOW_NAME, "flow")
    run = flow[2] if flow else None
    figure_heading(14, "Bits per dimension over 40 epochs", "Q3.8")
    st.caption("The seed's flow fell below 2.0 bits/dim early and then improved slowly. This is the run that made "
               "the shipped flow-mlp: the training loss averaged per epoch and the validation figure after it.")
    if run is not None:
        history = metrics_history(str(run.path))
        history.refresh()
        fig = charts.per_epoch(history.columns("train"), history.columns("valid"), "bpd",
                               title="bits per dimension per epoch (flow-mlp)", y="bits/dim", uirevision="report-14")
        st.plotly_chart(fig, key="report-fig14", config={"displaylogo": False})
    else:
        st.info("flow-mlp's training history is not here.")
    figure_heading(15, "Flow samples over training", "Q3.8")
    st.caption("The seed's samples after epochs 1, 10, 20, 30 and 40: digits take shape but stay blurry. These are "
               "flow-mlp's, from the same noise after each of those epochs.")
    epoch_row(run, ["fixed"], SEED_EPOCHS["flow"], FLOW_NAME)


def render(settings: Settings) -> None:
    st.markdown("The seed report's figures, in its order, drawn from the models that ship with genapp and the "
                "runs that trained them. Each caption says what the seed's figure showed and what this one shows.")
    vae_figures(settings)
    st.divider()
    gan_figures(settings)
    st.divider()
    flow_figures(settings)
