"""The toy VAE: 2-D points, a 1- or 2-D latent, 2 x 64 MLP encoder and decoder, and a Gaussian
likelihood p(x|z) = N(decoder(z), σ² I) whose σ is learned (one per coordinate) or fixed. It
shares the MNIST VAE's reparameterization and closed-form KL (``genapp.models.vae``).

The KL weight β multiplies the KL term in training; ``kl_anneal`` ramps β linearly from 0 over
that many steps, the classic cure for posterior collapse (Bowman et al. 2016): the decoder learns
to use z before the KL term is allowed to push the codes onto the prior.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from genapp.config import check, setting
from genapp.models.vae import kl_to_standard_normal, reparameterize
from genapp.playground.base import ToyModel, mlp

LOG_2PI = math.log(2 * math.pi)


@dataclass
class VAEOptions:
    latent_dim: int = setting(2, "Latent dimensions", "1 or 2.")
    hidden: int = setting(64, "Hidden units")
    layers: int = setting(2, "Hidden layers")
    variance: Literal["learned", "fixed"] = setting("fixed", "Likelihood variance",
                                                    "learned: σ of p(x|z) is trained with the rest; fixed: σ = the value below.")
    sigma: float = setting(0.1, "σ of p(x|z)", "The likelihood's standard deviation when it is fixed; where a "
                           "learned one starts.")
    kl_weight: float = setting(1.0, "KL weight β", "Multiplies the KL term of the training loss.")
    kl_anneal: int = setting(0, "KL annealing steps", "β ramps from 0 to its value over this many steps (0 = off).")

    def __post_init__(self) -> None:
        check(self.latent_dim in (1, 2), f"latent_dim must be 1 or 2, got {self.latent_dim}")
        check(1 <= self.hidden <= 1024, f"hidden must be in 1..1024, got {self.hidden}")
        check(1 <= self.layers <= 8, f"layers must be in 1..8, got {self.layers}")
        check(self.variance in ("learned", "fixed"), f"variance must be learned or fixed, got {self.variance!r}")
        check(0.001 <= self.sigma <= 10, f"sigma must be in 0.001..10, got {self.sigma}")
        check(0 <= self.kl_weight <= 1000, f"kl_weight must be in 0..1000, got {self.kl_weight}")
        check(0 <= self.kl_anneal <= 1_000_000, f"kl_anneal must be in 0..1000000, got {self.kl_anneal}")


class ToyVAE(ToyModel):
    """Encoder x [n, 2] -> (mean, log-variance) [n, d]; decoder z [n, d] -> the mean of p(x|z) [n, 2]."""

    family = "vae"
    Options = VAEOptions
    structural = frozenset({"latent_dim", "hidden", "layers"})

    def _build(self) -> None:
        o = self.options
        self.encoder = mlp([2, *[o.hidden] * o.layers, 2 * o.latent_dim])
        self.decoder = mlp([o.latent_dim, *[o.hidden] * o.layers, 2])
        self.log_sigma_learned = nn.Parameter(torch.full((2,), math.log(o.sigma)))
        self.anneal_from = 0  # the step at which annealing (re)started

    def set_option(self, name: str, value) -> bool:
        """As ``ToyModel.set_option``; switching the variance to learned starts it at σ, and a new
        annealing length restarts the ramp of β from 0 at this step."""
        if name in self.structural:
            return False
        old = self.options
        self.options = self._checked(**{name: value})
        if self.options.variance == "learned" and (old.variance != "learned" or name == "sigma"):
            with torch.no_grad():
                self.log_sigma_learned.fill_(math.log(self.options.sigma))
        if name == "kl_anneal":
            self.anneal_from = self.steps
        return True

    @property
    def log_sigma(self) -> torch.Tensor:
        """log σ of p(x|z), per coordinate [2]."""
        if self.options.variance == "learned":
            return self.log_sigma_learned
        return torch.full((2,), math.log(self.options.sigma))

    @property
    def beta(self) -> float:
        """The KL weight of the next training step (annealed, if annealing is on)."""
        o = self.options
        return o.kl_weight * min(1.0, (self.steps - self.anneal_from) / o.kl_anneal) if o.kl_anneal else o.kl_weight

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [n, 2] -> (mean, log-variance) of q(z|x), each [n, latent_dim]."""
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, latent_dim] -> the mean of p(x|z) [n, 2]."""
        return self.decoder(z)

    def log_likelihood(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """log N(x; mean, σ² I) per row: x, mean [..., 2] -> [...] nats."""
        log_sigma = self.log_sigma
        return (-0.5 * ((x - mean) / log_sigma.exp()).square() - log_sigma - 0.5 * LOG_2PI).sum(-1)

    def _parts(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        return -self.log_likelihood(x, self.decode(z)), kl_to_standard_normal(mu, logvar)

    def elbo(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The evidence lower bound E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) of each point x [n, 2] -> [n]
        nats, the expectation estimated with ``samples`` draws of z (β = 1 whatever the training's)."""
        with torch.no_grad():
            mu, logvar = self.encode(x)
            z = reparameterize(mu.repeat(samples, 1), logvar.repeat(samples, 1), generator)
            recon = self.log_likelihood(x.repeat(samples, 1), self.decode(z)).view(samples, len(x)).mean(0)
            return recon - kl_to_standard_normal(mu, logvar)

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on reconstruction + β·KL (per-point means, nats)."""
        recon, kl = self._parts(batch, self.rng)
        recon, kl = recon.mean(), kl.mean()
        self._stepped(self.optimizers["model"], recon + self.beta * kl)
        recon, kl = recon.detach(), kl.detach()
        return {"loss": recon + kl, "recon": recon, "kl": kl}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's mean at the encoder's mean code: x [n, 2] -> [n, 2]."""
        with torch.no_grad():
            return self.decode(self.encode(x)[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws x ~ p(x|z) p(z), the likelihood's noise included: float [n, 2]."""
        with torch.no_grad():
            z = torch.randn(n, self.options.latent_dim, generator=generator)
            noise = torch.randn(n, 2, generator=generator)
            return self.decode(z) + noise * self.log_sigma.exp()
