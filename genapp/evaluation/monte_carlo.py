"""The seed's Q1.4: log p(x) of one image by plain Monte Carlo from the prior and by importance
sampling from the encoder's q(z|x), as the number of samples k grows.

    prior:       log p(x) ≈ log (1/k) Σ p(x|z_i),                     z_i ~ p(z) = N(0, I)
    importance:  log p(x) ≈ log (1/k) Σ p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

Both are unbiased for p(x), so their logarithms are biased low (Jensen) and climb towards
log p(x) as k grows; the prior's climbs far more slowly, because almost no z drawn from the prior
explains a given image. One batch of ``samples`` draws per method is split into disjoint blocks
of k, so every k gets ``samples // k`` independent estimates from the same decoder pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genapp.config import check

KS = (1, 10, 100, 1000, 10_000)
SAMPLES = 30_000  # per method: 3 estimates at k = 10,000 and 30,000 at k = 1
LOG_2PI = math.log(2 * math.pi)
METHODS = ("prior", "importance")


@dataclass
class Estimates:
    """Estimates of log p(x) in nats: ``values[method][i]`` is float [samples // ks[i]]."""

    ks: tuple[int, ...]
    values: dict[str, list[np.ndarray]]

    def mean(self, method: str) -> np.ndarray:
        """float [len(ks)]"""
        return np.array([v.mean() for v in self.values[method]])

    def std(self, method: str) -> np.ndarray:
        """Spread (standard deviation) of the estimates at each k, float [len(ks)]; 0 for a single one."""
        return np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in self.values[method]])

    def count(self) -> list[int]:
        """How many independent estimates each k has."""
        return [len(v) for v in self.values[METHODS[0]]]


@torch.no_grad()
def log_weights(model, x: torch.Tensor, method: str, samples: int, generator: torch.Generator,
                max_rows: int = 8192) -> torch.Tensor:
    """log p(x|z) (``prior``) or log p(x|z) + log p(z) - log q(z|x) (``importance``) for
    ``samples`` draws of z from p(z) or q(z|x): float [samples], nats.

    x is one binarized image float [1,1,28,28] in {0, 1}; the decoder sees ``max_rows`` latents
    at a time (about 25 MB of logits).
    """
    check(method in METHODS, f"method must be one of {', '.join(METHODS)}; got {method!r}")
    mean, logvar = model.encode(x.to(model.device))
    std = torch.exp(0.5 * logvar)
    target = x.reshape(1, 784).to(model.device)
    out = []
    for start in range(0, samples, max_rows):
        n = min(max_rows, samples - start)
        eps = torch.randn((n, model.latent_dim), generator=generator).to(model.device)
        z = eps if method == "prior" else mean + std * eps
        logits = model.decoder(z)
        log_w = -F.binary_cross_entropy_with_logits(logits, target.expand(n, 784), reduction="none").sum(1)
        if method == "importance":
            log_pz = -0.5 * (z.square() + LOG_2PI).sum(1)
            log_qz = -0.5 * (eps.square() + LOG_2PI + logvar).sum(1)
            log_w = log_w + log_pz - log_qz
        out.append(log_w.cpu())
    return torch.cat(out)


def block_estimates(log_w: torch.Tensor, k: int) -> np.ndarray:
    """log of the mean of exp(log_w) over each disjoint block of k: float [len(log_w) // k]."""
    blocks = len(log_w) // k
    check(blocks >= 1, f"k = {k} needs at least {k} samples, got {len(log_w)}")
    return (torch.logsumexp(log_w[: blocks * k].view(blocks, k).double(), dim=1) - math.log(k)).numpy()


def log_likelihood_estimates(model, x: torch.Tensor, ks: tuple[int, ...] = KS, samples: int = SAMPLES,
                             seed: int = 0) -> Estimates:
    """Estimates of log p(x) for one binarized image x (float [1,1,28,28]) by both methods, for
    every k in ``ks``, from ``samples`` draws per method (seeded)."""
    check(samples >= max(ks), f"samples ({samples}) must be at least the largest k ({max(ks)})")
    generator = torch.Generator().manual_seed(seed)
    values = {}
    for method in METHODS:
        log_w = log_weights(model, x, method, samples, generator)
        values[method] = [block_estimates(log_w, k) for k in ks]
    return Estimates(tuple(ks), values)
