"""RealNVP: a normalizing flow with exact log-likelihood, in bits per dimension on the 8-bit scale.

Two presets:

* ``mlp``, the seed's design: affine couplings on the flattened image with alternating
  checkerboard masks, MLP scale and translation networks (scale bounded with tanh).
* ``conv``, the multi-scale convolutional RealNVP of Dinh et al. 2017: at 28x28, 3 checkerboard
  couplings; squeeze to 4x14x14, 3 channel-wise couplings, factor out half; 3 checkerboard
  couplings; squeeze to 16x7x7 (8 active channels), 3 channel-wise couplings, factor out half;
  4 checkerboard couplings. Residual conv nets; ActNorm after each coupling, Jacobian counted.

Both start from uniform dequantization x = (k + u) / 256 of the 8-bit values k and a logit
pre-transform. The discrete likelihood is bounded by the continuous one:
log P(k) >= E_u[log p(x)] - D log 256, so bits/dim = -(log p(x) - D log 256) / (D ln 2),
with every Jacobian (the 1/256 of dequantization, the logit, the couplings) counted.
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from genapp import data
from genapp.config import check, setting
from genapp.data import PIXELS as D
from genapp.models.base import GenerativeModel, Likelihood, Progress, no_progress
from genapp.models.flow_layers import (
    ActNorm, AffineCoupling, HalfCoupling, LogitTransform, MLPNet, Permutation, ResidualNet, Squeeze, checkerboard,
    checkerboard_order,
)

Preset = Literal["mlp", "conv"]
PRESETS = typing.get_args(Preset)
LOG_256 = math.log(256.0)


def bits_per_dim(log_px: torch.Tensor | float) -> torch.Tensor | float:
    """Bits per dimension on the 8-bit scale of a density log p(x) in nats over (0,1)^784:
    -(log p(x) - 784 ln 256) / (784 ln 2); each of the 256 levels is 1/256 wide."""
    return -(log_px - D * LOG_256) / (D * math.log(2))


@dataclass
class FlowConfig:
    preset: Preset = setting("mlp", "Architecture", "mlp: the seed's couplings on the flattened image; "
                             "conv: the multi-scale convolutional RealNVP (a GPU advised).")
    couplings: int = setting(8, "Couplings", "mlp: the number of coupling layers.")
    hidden: int = setting(1024, "Hidden width of the coupling networks", "mlp: width of the scale/translation MLPs.")
    mlp_layers: int = setting(2, "Hidden layers per coupling network", "mlp: hidden layers in each scale/translation MLP.")
    width: int = setting(64, "Width", "conv: channels of the residual nets.")
    blocks: int = setting(4, "Blocks", "conv: residual blocks per net.")
    split: bool = setting(False, "Split couplings (mlp)",
                          "mlp: each coupling's net sees only its conditioning half of the checkerboard (392 "
                          "pixels) instead of the masked image, with ActNorm after every coupling: faster, and "
                          "much better for the same time (the pretrained flow-mlp).")
    dropout: float = setting(0.0, "Dropout in the coupling networks (mlp, split)",
                             "Training only; keeps a wide MLP flow from overfitting the 50,000 images.")
    alpha: float = setting(0.05, "Alpha", "The logit pre-transform: logit(α + (1 − 2α) x).")
    grad_clip: float = setting(100.0, "Gradient-norm clipping (0 = off)", "The seed clipped at 100.")

    def __post_init__(self) -> None:
        check(self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        check(2 <= self.couplings <= 64, f"couplings must be in 2..64, got {self.couplings}")
        check(8 <= self.hidden <= 8192, f"hidden must be in 8..8192, got {self.hidden}")
        check(1 <= self.mlp_layers <= 8, f"mlp_layers must be in 1..8, got {self.mlp_layers}")
        check(4 <= self.width <= 1024, f"width must be in 4..1024, got {self.width}")
        check(0 <= self.blocks <= 16, f"blocks must be in 0..16, got {self.blocks}")
        check(0 < self.alpha < 0.5, f"alpha must be in (0, 0.5), got {self.alpha}")
        check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        check(self.grad_clip >= 0, f"grad_clip must be >= 0, got {self.grad_clip}")


def mlp_layers(c: FlowConfig) -> list[nn.Module]:
    if c.split:
        return split_layers(c)
    layers: list[nn.Module] = []
    for i in range(c.couplings):
        mask = checkerboard((1, 28, 28), parity=i % 2).flatten()
        layers.append(AffineCoupling(mask, MLPNet(D, c.hidden, c.mlp_layers)))
    return layers


def split_layers(c: FlowConfig) -> list[nn.Module]:
    """The flat image reordered once into its checkerboard's two colours, an ActNorm, then
    couplings on alternating halves (= alternating checkerboard couplings) each followed by an
    ActNorm. ActNorm (Glow) keeps every coupling's input normalised, which the plain MLP flow lacks."""
    layers: list[nn.Module] = [Permutation(checkerboard_order()), ActNorm(D)]
    for i in range(c.couplings):
        net = MLPNet(D // 2, c.hidden, c.mlp_layers, out=D - D // 2, dropout=c.dropout)
        layers += [HalfCoupling(net, D, flip=bool(i % 2)), ActNorm(D)]
    return layers


def conv_layers(c: FlowConfig) -> list[nn.Module]:
    """The multi-scale stack over one full-size tensor; factored-out channels stay in place."""
    layers: list[nn.Module] = []

    def couplings(kind: str, count: int, channels: int, active: int, size: int) -> None:
        for i in range(count):
            if kind == "checkerboard":
                mask = checkerboard((active, size, size), parity=i % 2)
            else:  # channel-wise: alternate which half of the active channels conditions
                mask = torch.zeros(active, size, size)
                half = active // 2
                mask[:half] = 1.0
                if i % 2:
                    mask = 1.0 - mask
            layers.append(AffineCoupling(mask, ResidualNet(active, active, c.width, c.blocks), active=active))
            layers.append(ActNorm(active, active=active))

    couplings("checkerboard", 3, 1, 1, 28)
    layers.append(Squeeze())  # 4x14x14
    couplings("channel", 3, 4, 4, 14)
    couplings("checkerboard", 3, 4, 2, 14)  # 2 channels factored out
    layers.append(Squeeze())  # 16x7x7, the 2 active channels became the first 8
    couplings("channel", 3, 16, 8, 7)
    couplings("checkerboard", 4, 16, 4, 7)  # 4 more factored out
    return layers


class Flow(GenerativeModel):
    """RealNVP normalizing flow on dequantized MNIST: exact bits per dimension."""

    name = "flow"
    label = "Flow"
    Config = FlowConfig
    objective = "max exact log p(x), change of variables"
    likelihood_data = "dequantized 8-bit"
    seed_epochs = (1, 10, 20, 30, 40)
    monitor = "bpd"
    train_defaults = {"lr": 1e-3, "epochs": 40, "batch_size": 64}

    def __init__(self, config: FlowConfig | None = None) -> None:
        super().__init__(config or FlowConfig())
        self.logit = LogitTransform(self.config.alpha)
        self.layers = nn.ModuleList(mlp_layers(self.config) if self.config.preset == "mlp" else conv_layers(self.config))

    # -- the bijection ------------------------------------------------------------------------

    @classmethod
    def tensor_elements(cls, config: FlowConfig) -> int:
        if config.preset == "mlp" and config.split:  # permutation, ActNorms, half couplings
            half = D // 2
            sizes = [half, *[config.hidden] * config.mlp_layers, 2 * half]
            coupling = half + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])) + 2 * D + 1
            return 2 * D + (2 * D + 1) + config.couplings * coupling
        if config.preset == "mlp":  # each coupling: mask, scale, MLP 784 -> hidden^layers -> 2 x 784
            sizes = [D, *[config.hidden] * config.mlp_layers, 2 * D]
            return config.couplings * (2 * D + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])))
        w, blocks = config.width, config.blocks

        def coupling(channels: int, active: int, size: int) -> int:
            net = active * w * 9 + w + blocks * 2 * (w * w * 9 + w) + w * 2 * active * 9 + 2 * active
            return active * size * size + active + net + 2 * active + 1  # mask, scale, net, then ActNorm

        stages = [(3, 1, 1, 28), (3, 4, 4, 14), (3, 4, 2, 14), (3, 16, 8, 7), (4, 16, 4, 7)]  # as conv_layers
        return sum(count * coupling(channels, active, size) for count, channels, active, size in stages)

    def _to_flow_shape(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(y.shape[0], D) if self.config.preset == "mlp" else y

    def _to_image(self, h: torch.Tensor, squeezes: int) -> torch.Tensor:
        """Any intermediate state as images [n,1,28,28] (undoing squeezes and the split flow's
        reordering of the pixels), for display."""
        for _ in range(squeezes):
            h = Squeeze().inverse(h)
        order = self.layers[0] if isinstance(self.layers[0], Permutation) else None
        if order is not None and h.dim() == 2:
            h = order.inverse(h)
        return h.reshape(h.shape[0], 1, 28, 28)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x float [n,1,28,28] in (0,1) -> (z, log|det dz/dx| [n]); z is [n,784] or [n,16,7,7]."""
        h, log_det = self.logit(x)
        h = self._to_flow_shape(h)
        for layer in self.layers:
            h, ld = layer(h)
            log_det = log_det + ld
        return h, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (flow shape) -> x float [n,1,28,28] in [0,1]."""
        h = z
        for layer in reversed(self.layers):
            h = layer.inverse(h)
        return self.logit.inverse(h.reshape(h.shape[0], 1, 28, 28)).clamp(0.0, 1.0)

    def latent_shape(self) -> tuple[int, ...]:
        return (D,) if self.config.preset == "mlp" else (16, 7, 7)

    # -- likelihood ---------------------------------------------------------------------------

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density of continuous x float [n,1,28,28] in (0,1), [n], in nats."""
        z, log_det = self(x)
        log_pz = -0.5 * (z.square() + math.log(2 * math.pi)).flatten(1).sum(1)
        return log_pz + log_det

    def bits_per_dim_continuous(self, x: torch.Tensor) -> torch.Tensor:
        """Bits per dimension of dequantized x in [0,1) on the 8-bit scale, [n]."""
        return bits_per_dim(self.log_prob(x))

    @torch.no_grad()
    def bits_per_dim(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bits per dimension of uint8 images [n,1,28,28] (one dequantization draw), [n]."""
        return torch.cat([self.bits_per_dim_continuous(data.dequantize(chunk, generator))
                          for chunk in images.split(1000)])

    # -- training -----------------------------------------------------------------------------

    def prepare(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return data.dequantize(images, generator)

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        bpd = self.bits_per_dim_continuous(batch).mean()
        return {"loss": bpd, "bpd": bpd}

    def train_step(self, batch, optimizers):
        (optimizer,) = optimizers.values()
        optimizer.zero_grad(set_to_none=True)
        parts = self.loss(batch)
        parts["loss"].backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.grad_clip)
        optimizer.step()
        return {k: v.detach() for k, v in parts.items()}

    @torch.no_grad()
    def test_figures(self, images: torch.Tensor, *, k: int = 1000, draws: int = 4, seed: int = 0,
                     progress: Progress = no_progress, chunk: int = 1000) -> dict:
        """Bits per dimension of uint8 ``images`` [n,1,28,28] on the 8-bit scale, the mean over
        ``draws`` dequantization draws of every image, and the same in nats per image. ``k`` is
        not used: the likelihood is exact."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        total, parts = 0.0, math.ceil(len(images) / chunk) * draws
        for draw in range(draws):
            for i, part in enumerate(images.split(chunk)):
                total += self.bits_per_dim(part.to(self.device), generator).sum().item()
                done = draw * math.ceil(len(images) / chunk) + i + 1
                progress(done / parts, f"bits per dimension: draw {draw + 1} of {draws}, "
                                       f"{min((i + 1) * chunk, len(images)):,} of {len(images):,} test images")
        bpd = total / (len(images) * draws)
        return {"test_bpd": bpd, "test_nll_nats": bpd * D * math.log(2), "dequantization_draws": draws}

    @classmethod
    def likelihood(cls, figures: dict, logged: dict) -> Likelihood | None:
        """The exact test likelihood, else the validation one (one dequantization draw)."""
        if "test_bpd" in figures:
            draws = figures.get("dequantization_draws")
            estimate = f"exact, {draws} dequantization draw{'s' if draws != 1 else ''}" if draws else "exact"
            return Likelihood(float(figures.get("test_nll_nats", figures["test_bpd"] * D * math.log(2))), estimate, "test")
        if "bpd" in logged:
            return Likelihood(float(logged["bpd"]) * D * math.log(2), "exact", "validation")
        return None

    @torch.no_grad()
    def validate(self, images: torch.Tensor) -> dict[str, float]:
        generator = torch.Generator(device=images.device).manual_seed(0)
        return {"bpd": self.bits_per_dim(images, generator).mean().item()}

    # -- pictures and a look inside -----------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples x = f^-1(T z), z ~ N(0, I): float [n,1,28,28] in [0,1]."""
        check(temperature >= 0, f"temperature must be >= 0, got {temperature}")
        z = torch.randn((n, *self.latent_shape()), generator=generator, device=self.device) * temperature
        return self.inverse(z)

    @torch.no_grad()
    def trace(self, x: torch.Tensor) -> list[dict]:
        """The state after each layer, data -> latent: [{"name", "image" [n,1,28,28], "log_det" [n]}].

        x is float [n,1,28,28] in (0,1) (dequantized). The first entry is the input, the second
        the logit space; log_det is that layer's log|det J|, which add up to forward's.
        """
        states = [{"name": "input", "image": x.clone(), "log_det": torch.zeros(x.shape[0])}]
        h, ld = self.logit(x)
        states.append({"name": "logit", "image": h.clone(), "log_det": ld})
        h = self._to_flow_shape(h)
        squeezes = 0
        for i, layer in enumerate(self.layers):
            h, ld = layer(h)
            squeezes += isinstance(layer, Squeeze)
            states.append({"name": f"{i + 1}: {type(layer).__name__}", "image": self._to_image(h, squeezes), "log_det": ld})
        return states

    @torch.no_grad()
    def trace_inverse(self, z: torch.Tensor) -> list[dict]:
        """The state after each inverse layer, latent -> data (log_det of each layer's forward)."""
        squeezes = sum(isinstance(layer, Squeeze) for layer in self.layers)
        states = [{"name": "latent", "image": self._to_image(z, squeezes)}]
        h = z
        for i, layer in reversed(list(enumerate(self.layers))):
            h = layer.inverse(h)
            squeezes -= isinstance(layer, Squeeze)
            states.append({"name": f"{i + 1}: {type(layer).__name__}^-1", "image": self._to_image(h, squeezes)})
        states.append({"name": "sigmoid (data)", "image": self.logit.inverse(h.reshape(h.shape[0], 1, 28, 28)).clamp(0, 1)})
        return states
