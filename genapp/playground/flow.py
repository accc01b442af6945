"""The toy RealNVP: affine couplings alternating the two coordinates (each conditions the other
through a 2 x 64 MLP), optional ActNorm before each, a standard normal base. The layers are the
MNIST flow's (``genapp.models.flow_layers``), on flat 2-D points.

``forward`` is inference x -> z, ``inverse`` sampling z -> x; ``layer_states`` and
``inverse_states`` give every intermediate state, for the picture of a grid bent layer by layer
(the seed's Fig. 13). ``dequantize`` adds uniform noise of that width to each training batch:
without it, a flow on data with few distinct values piles its density onto them and its
likelihood grows without bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genapp.config import check, setting
from genapp.models.flow_layers import ActNorm, AffineCoupling, MLPNet
from genapp.playground.base import ToyModel

LOG_2PI = math.log(2 * math.pi)


@dataclass
class FlowOptions:
    depth: int = setting(6, "Couplings", "Affine coupling layers, alternating which coordinate each transforms. "
                         "Adding layers mid-run keeps what was learned: a new coupling starts as the identity.")
    hidden: int = setting(64, "Hidden units")
    layers: int = setting(2, "Hidden layers per coupling")
    actnorm: bool = setting(False, "ActNorm before each coupling")
    dequantize: float = setting(0.0, "Dequantization width", "Each training point gets uniform noise of this width "
                                "(0 = off); set it to the data's grid step for discrete data.")

    def __post_init__(self) -> None:
        check(1 <= self.depth <= 32, f"depth must be in 1..32, got {self.depth}")
        check(1 <= self.hidden <= 1024, f"hidden must be in 1..1024, got {self.hidden}")
        check(1 <= self.layers <= 8, f"layers must be in 1..8, got {self.layers}")
        check(0 <= self.dequantize <= 2, f"dequantize must be in 0..2, got {self.dequantize}")


class ToyFlow(ToyModel):
    """x [n, 2] <-> z [n, 2] through ``depth`` couplings; log p(x) = log N(z; 0, I) + log|det dz/dx|."""

    family = "flow"
    Options = FlowOptions
    structural = frozenset({"hidden", "layers", "actnorm"})

    def _build(self) -> None:
        self.flow_layers = nn.ModuleList()
        self._grow(self.options.depth)

    def _grow(self, depth: int) -> None:
        o = self.options
        while self.depth < depth:
            if o.actnorm:
                self.flow_layers.append(ActNorm(2))
            mask = torch.tensor([1.0, 0.0]) if self.depth % 2 == 0 else torch.tensor([0.0, 1.0])
            self.flow_layers.append(AffineCoupling(mask, MLPNet(2, o.hidden, o.layers)))

    @property
    def depth(self) -> int:
        return sum(isinstance(layer, AffineCoupling) for layer in self.flow_layers)

    def set_option(self, name: str, value) -> bool:
        """As ``ToyModel.set_option``; a new depth adds couplings that start as the identity (so
        what was learned stays) or drops the last ones, and restarts the optimizer."""
        if name in self.structural:
            return False
        self.options = self._checked(**{name: value})
        if self.options.depth != self.depth:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1000 + self.depth)
                self._grow(self.options.depth)
            while self.depth > self.options.depth:
                del self.flow_layers[-1]
                if self.options.actnorm:
                    del self.flow_layers[-1]
            self.optimizers = self._make_optimizers()
        return True

    # -- the two directions --------------------------------------------------------------------

    def layer_states(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Inference, layer by layer: x [n, 2] -> ([x, h1, ..., z], [log|det| of each layer, [n]])."""
        states, log_dets = [x], []
        for layer in self.flow_layers:
            x, log_det = layer(x)
            states.append(x)
            log_dets.append(log_det)
        return states, log_dets

    def inverse_states(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Sampling, layer by layer: z [n, 2] -> [z, ..., x]."""
        states = [z]
        for layer in reversed(self.flow_layers):
            z = layer.inverse(z)
            states.append(z)
        return states

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [n, 2] -> (z [n, 2], log|det dz/dx| [n])."""
        log_det = x.new_zeros(len(x))
        for layer in self.flow_layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, 2] -> x [n, 2]."""
        for layer in reversed(self.flow_layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log-density log p(x) of points x [n, 2] -> [n] nats."""
        z, log_det = self(x)
        return -0.5 * z.square().sum(1) - LOG_2PI + log_det

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on the mean negative log-likelihood (nats) of the (dequantized) batch."""
        if self.options.dequantize:
            batch = batch + (torch.rand(batch.shape, generator=self.rng) - 0.5) * self.options.dequantize
        nll = -self.log_prob(batch).mean()
        self._stepped(self.optimizers["model"], nll)
        return {"nll": nll.detach()}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points x = inverse(z), z ~ N(0, I): float [n, 2]."""
        with torch.no_grad():
            return self.inverse(torch.randn(n, 2, generator=generator))
