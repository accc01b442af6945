"""The seed's Fig. 2 and Q1.8 made exact: for a VAE with a 2-D latent space and one binarized
image x, the true posterior p(z|x) = p(x|z) p(z) / p(x) on a grid, beside the prior p(z) and the
encoder's q(z|x).

In two dimensions the integral p(x) = ∫ p(x|z) p(z) dz is a sum over a fine grid (the posterior
of a trained model is a small bump, so a grid around it that also covers the prior's bulk is
accurate to far better than a nat). From the same grid come the ELBO, E_q[log p(x|z) + log p(z)
− log q(z|x)], and KL(q(z|x) ‖ p(z|x)), so that log p(x) = ELBO + KL can be read off as numbers.
Pure torch; no streamlit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


@dataclass
class GridPosterior:
    """Densities on an n x n grid of latents: ``z1`` and ``z2`` float [n] (the axes), the log
    densities float [n, n] indexed [i2, i1] (rows are z2, as a contour plot wants), and the
    numbers that come from integrating over the grid (nats)."""

    z1: torch.Tensor
    z2: torch.Tensor
    log_prior: torch.Tensor  # log p(z)
    log_q: torch.Tensor  # log q(z|x)
    log_posterior: torch.Tensor  # log p(z|x), normalised on the grid
    log_px: float  # log p(x) = log Σ p(x|z) p(z) ΔA
    elbo: float  # Σ q ΔA [log p(x|z) + log p(z) − log q]
    kl: float  # KL(q ‖ p(z|x)) = Σ q ΔA [log q − log p(z|x)]
    mass_q: float  # Σ q ΔA: how much of q the grid holds (1 when it covers q)
    cell: float  # ΔA, the area of one cell

    @property
    def gap(self) -> float:
        """log p(x) − ELBO, which equals ``kl`` up to the grid's accuracy."""
        return self.log_px - self.elbo


@torch.no_grad()
def grid_posterior(model, x: torch.Tensor, n: int = 201, extent: float | None = None) -> GridPosterior:
    """The prior, q(z|x) and the true posterior of one binarized image x (float [1,1,28,28] in
    {0, 1}) under a VAE with ``latent_dim`` 2, on an n x n grid.

    The grid is centred on q(z|x)'s mean and spans ``extent`` on each side (default: enough to
    hold both q, to 8 standard deviations, and the prior, to 4).
    """
    if model.latent_dim != 2:
        raise ValueError(f"the grid posterior needs a 2-D latent space, this model has {model.latent_dim}")
    x = x.to(model.device)
    mu, logvar = model.encode(x)
    mu, std = mu[0], torch.exp(0.5 * logvar[0])
    half = extent if extent is not None else float(max(8 * std.max(), 4.0 + mu.abs().max()))
    z1 = torch.linspace(float(mu[0]) - half, float(mu[0]) + half, n, device=model.device)
    z2 = torch.linspace(float(mu[1]) - half, float(mu[1]) + half, n, device=model.device)
    cell = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
    g2, g1 = torch.meshgrid(z2, z1, indexing="ij")
    z = torch.stack([g1.flatten(), g2.flatten()], dim=1)  # [n*n, 2], row-major over (z2, z1)
    target = x.reshape(1, -1)
    log_lik = torch.cat([-F.binary_cross_entropy_with_logits(model.decoder(part), target.expand(len(part), -1),
                                                             reduction="none").sum(1)
                         for part in z.split(8192)])
    log_prior = -0.5 * (z.square() + LOG_2PI).sum(1)
    log_q = -0.5 * (((z - mu) / std).square() + LOG_2PI).sum(1) - std.log().sum()
    log_joint = log_lik + log_prior
    log_px = torch.logsumexp(log_joint, 0) + math.log(cell)
    log_posterior = log_joint - log_px
    weights = log_q.exp() * cell
    elbo = (weights * (log_joint - log_q)).sum()
    kl = (weights * (log_q - log_posterior)).sum()

    def grid(values: torch.Tensor) -> torch.Tensor:
        return values.view(n, n).cpu()

    return GridPosterior(z1.cpu(), z2.cpu(), grid(log_prior), grid(log_q), grid(log_posterior), float(log_px),
                         float(elbo), float(kl), float(weights.sum()), cell)
