"""The failure-mode lab: presets that open the playground on a failure, each with what to watch,
why it happens and the fix, which the tab can switch on mid-run (``fix``: the options it sets).

Each preset names a ``symptom``: a number measured on the model and its data, and the test that
says the failure shows (``failing``). The tests train each preset for its ``steps`` and check
that it fails, and that with its fix it does not.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from genapp.playground.base import DEFAULT_BATCH, DEFAULT_LR, ToyModel
from genapp.playground.data import DISCRETE_STEP, RING_MODES, modes_covered

SYMPTOM_SAMPLES = 2000
# nll_floor of make_data("discrete", 2000): the least NLL a density reaches on its cells (2.01 nats)
DISCRETE_FLOOR = 2.0


def ring_modes(model: ToyModel, data: torch.Tensor) -> float:
    """How many of the ring's 8 modes the model's samples cover (``data.modes_covered``)."""
    return float(modes_covered(model.sample(SYMPTOM_SAMPLES, torch.Generator().manual_seed(5))))


def mean_kl(model: ToyModel, data: torch.Tensor) -> float:
    """The VAE's mean KL(q(z|x) ‖ p(z)) over the data, nats: 0 when the codes carry nothing."""
    from genapp.models.vae import kl_to_standard_normal
    with torch.no_grad():
        return float(kl_to_standard_normal(*model.encode(data)).mean())


def mean_nll(model: ToyModel, data: torch.Tensor) -> float:
    """The flow's mean −log p(x) over the data points themselves, nats."""
    with torch.no_grad():
        return float(-model.log_prob(data).mean())


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    dataset: str
    options: dict[str, Any]
    fix: dict[str, Any]
    steps: int  # the budget within which the failure shows
    watch: str
    why: str
    fix_text: str
    symptom: Callable[[ToyModel, torch.Tensor], float]
    symptom_label: str
    failing: Callable[[float], bool]
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH
    extra: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset(
        name="GAN: mode collapse on the ring", family="gan", dataset="ring",
        options={"g_lr_scale": 10.0}, fix={"pack": 2}, steps=3000,
        watch="The red points (G's samples) gather on one or two of the eight modes, or hop from one to "
              "the next, instead of spreading over the ring; the blue of D(x) follows them around.",
        why="The generator learns ten times faster than the discriminator. Each step it moves its samples "
            "to wherever D currently says 'real', which is one place, and D cannot keep up to punish the "
            "crowding: nothing in the loss of a single sample rewards variety.",
        fix_text="Packing (PacGAN): D judges two samples at once, so a pair of look-alikes is easy to call "
                 "fake, and G is pushed to spread out. Switching it on gives D a new input layer; G keeps "
                 "what it learned.",
        symptom=ring_modes, symptom_label="modes covered (of 8)", failing=lambda v: v < RING_MODES / 2),
    Preset(
        name="GAN: the discriminator wins (minimax loss)", family="gan", dataset="ring",
        options={"loss": "minimax", "d_warmup": 1000, "g_lr_scale": 0.1}, fix={"loss": "non_saturating"},
        steps=1200, lr=1e-2,
        watch="D trains alone for 1,000 steps (at ten times G's learning rate) and learns to call every "
              "generated point fake: D(G(z)) → 0, the blob of red points sits in deep red. When G starts, "
              "its arrows are almost invisible and the points crawl; with the fix they leap to the ring.",
        why="The minimax generator loss log(1 − D(G(z))) has gradient −D(G(z)) with respect to D's logit: "
            "when D is sure a sample is fake, D(G(z)) ≈ 0 and the gradient vanishes (here about 10⁻⁵, "
            "against about 7 for the fix). The generator starves exactly when it most needs to learn (the "
            "seed's Q2.3 and Q2.4). Adam rescales small gradients, so G crawls out in the end; the loss "
            "gives it nothing to go on at the start.",
        fix_text="The non-saturating loss −log D(G(z)) has the same fixed point but gradient −(1 − D(G(z))): "
                 "largest when D wins. Switch it on and watch the arrows grow and the points move.",
        symptom=ring_modes, symptom_label="modes covered (of 8)", failing=lambda v: v < RING_MODES / 2),
    Preset(
        name="VAE: posterior collapse", family="vae", dataset="two-moons",
        options={"variance": "learned", "sigma": 1.0, "kl_weight": 3.0}, fix={"kl_weight": 1.0, "kl_anneal": 1000},
        steps=1500,
        watch="The KL curve drops to 0, the codes in latent space shrink onto the prior N(0, I) with their "
              "colours mixed (a code no longer says where its point was), every reconstruction lands on the "
              "data's mean, and the decoded latent grid shrinks to a dot. Samples are a plain Gaussian blob.",
        why="With the KL term weighted three times, encoding anything about x costs more than it gains, "
            "and a decoder with a learned variance can explain the data as one broad Gaussian without z: "
            "q(z|x) = p(z) for every x, the decoder ignores z.",
        fix_text="KL annealing: β back to 1, ramped from 0 over 1,000 steps, so the decoder learns to use z "
                 "before the KL term pushes the codes onto the prior (Bowman et al. 2016).",
        symptom=mean_kl, symptom_label="mean KL (nats)", failing=lambda v: v < 0.1),
    Preset(
        name="Flow: too shallow for two moons", family="flow", dataset="two-moons",
        options={"depth": 2}, fix={"depth": 8}, steps=3000,
        watch="The density stays one bent blob that covers both moons and the gap between them, and the NLL "
              "curve flattens early. Each of the two layers can only shift and scale one coordinate given "
              "the other.",
        why="Two couplings transform x₂ given x₁ and then x₁ given x₂, once each: not enough to tear a "
            "Gaussian into two separate crescents. Depth is what gives a RealNVP its flexibility.",
        fix_text="Eight couplings: the six new ones start as the identity, so the flow keeps what it learned "
                 "and goes on bending space layer by layer (see the grids below).",
        symptom=mean_nll, symptom_label="NLL (nats)", failing=lambda v: v > 1.4),
    Preset(
        name="Flow: discrete data without dequantization", family="flow", dataset="discrete",
        options={}, fix={"dequantize": DISCRETE_STEP}, steps=3000,
        watch="The data takes only the values of a grid (step 0.5, like 8-bit pixels). The density turns "
              "into sharp spikes on the grid points and the NLL keeps falling, below any honest value, "
              "towards −∞ (the dashed line is the floor a density can reach on the grid's cells).",
        why="A continuous density may put unbounded mass per unit area on single points: squeezing each "
            "grid point into an ever thinner spike raises log p(x) without limit. The likelihood of "
            "discrete data under a density is not a meaningful number.",
        fix_text="Dequantization: add uniform noise of the grid's width to every training point, so the flow "
                 "models the cells, not the points; the NLL then stays above the floor (it bounds the "
                 "discrete log-likelihood).",
        symptom=mean_nll, symptom_label="NLL (nats)", failing=lambda v: v < DISCRETE_FLOOR - 0.5),
]}


def presets_for(family: str) -> list[str]:
    return [name for name, p in PRESETS.items() if p.family == family]
