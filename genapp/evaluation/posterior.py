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

    A trained model's posterior is a bump a few hundredths wide somewhere in the prior's bulk, so
    one grid cannot both find it and resolve it. A first grid over the prior's bulk and q's
    (``extent`` on each side of the origin; default 4 beyond q's mean) finds where the joint
    p(x|z)p(z) is within e^-40 of its peak; the grid returned spans that region and q's mean ± 8
    standard deviations, with a margin, which holds all but a negligible part of both.
    """
    if model.latent_dim != 2:
        raise ValueError(f"the grid posterior needs a 2-D latent space, this model has {model.latent_dim}")
    x = x.to(model.device)
    mu, logvar = model.encode(x)
    mu, std = mu[0], torch.exp(0.5 * logvar[0])
    half = extent if extent is not None else float(4.0 + mu.abs().max())
    wide1, wide2, log_joint, _, _ = _joint(model, x, mu, std, (-half, half), (-half, half), n)
    keep = log_joint.view(n, n) > log_joint.max() - 40
    rows, cols = keep.any(1).nonzero().squeeze(1), keep.any(0).nonzero().squeeze(1)
    step1, step2 = float(wide1[1] - wide1[0]), float(wide2[1] - wide2[0])
    low1 = min(float(wide1[cols.min()]) - step1, float(mu[0] - 8 * std[0]))
    high1 = max(float(wide1[cols.max()]) + step1, float(mu[0] + 8 * std[0]))
    low2 = min(float(wide2[rows.min()]) - step2, float(mu[1] - 8 * std[1]))
    high2 = max(float(wide2[rows.max()]) + step2, float(mu[1] + 8 * std[1]))
    z1, z2, log_joint, log_prior, log_q = _joint(model, x, mu, std, (low1, high1), (low2, high2), n)
    cell = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
    log_px = torch.logsumexp(log_joint, 0) + math.log(cell)
    log_posterior = log_joint - log_px
    weights = log_q.exp() * cell
    elbo = (weights * (log_joint - log_q)).sum()
    kl = (weights * (log_q - log_posterior)).sum()

    def grid(values: torch.Tensor) -> torch.Tensor:
        return values.view(n, n).cpu()

    return GridPosterior(z1.cpu(), z2.cpu(), grid(log_prior), grid(log_q), grid(log_posterior), float(log_px),
                         float(elbo), float(kl), float(weights.sum()), cell)


def _joint(model, x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor, span1: tuple[float, float],
           span2: tuple[float, float], n: int):
    """(z1 [n], z2 [n], log p(x|z) + log p(z), log p(z), log q(z|x)) on the n x n grid of the two
    spans, the last three flat [n*n] and row-major over (z2, z1)."""
    z1 = torch.linspace(*span1, n, device=model.device)
    z2 = torch.linspace(*span2, n, device=model.device)
    g2, g1 = torch.meshgrid(z2, z1, indexing="ij")
    z = torch.stack([g1.flatten(), g2.flatten()], dim=1)
    target = x.reshape(1, -1)
    log_lik = torch.cat([-F.binary_cross_entropy_with_logits(model.decoder(part), target.expand(len(part), -1),
                                                             reduction="none").sum(1)
                         for part in z.split(8192)])
    log_prior = -0.5 * (z.square() + LOG_2PI).sum(1)
    log_q = -0.5 * (((z - mu) / std).square() + LOG_2PI).sum(1) - std.log().sum()
    return z1, z2, log_lik + log_prior, log_prior, log_q
