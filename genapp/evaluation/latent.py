"""What a VAE's latent space looks like: encodings, a 2-D view of them, and per-dimension KL.

All functions take the model in eval mode on any device and uint8 images [n,1,28,28]; the
images are seen as the model sees them at evaluation (one fixed binarization).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genapp import data

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): Cov_x(E[z_u | x]) above this is "active"


@dataclass
class Encodings:
    """Posterior parameters of n images: ``mean`` and ``logvar`` float [n, d] (on the CPU)."""

    mean: torch.Tensor
    logvar: torch.Tensor


@torch.no_grad()
def encode_images(model, images: torch.Tensor, chunk: int = 4096) -> Encodings:
    """q(z|x) for uint8 images [n,1,28,28], in chunks, binarized as for evaluation."""
    x = data.fixed_binarization(images.to(model.device))
    means, logvars = [], []
    for part in x.split(chunk):
        mean, logvar = model.encode(part)
        means.append(mean.cpu())
        logvars.append(logvar.cpu())
    return Encodings(torch.cat(means), torch.cat(logvars))


def project_2d(points: torch.Tensor) -> tuple[torch.Tensor, str]:
    """A 2-D view of points [n, d]: the points themselves for d <= 2, else their first two
    principal components. Returns (float [n, 2], a caption saying which)."""
    d = points.shape[1]
    if d == 2:
        return points, "z1, z2: the posterior means"
    if d == 1:
        return torch.cat([points, torch.zeros_like(points)], dim=1), "z1 (the only latent dimension)"
    centred = points - points.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    explained = (s[:2].square().sum() / s.square().sum()).item()
    return centred @ v[:2].T, f"first two principal components of the {d}-D posterior means ({explained:.0%} of the variance)"


def kl_per_dimension(encodings: Encodings) -> torch.Tensor:
    """Mean KL(q(z_j|x) || N(0,1)) of each latent dimension over the images, float [d], nats."""
    mean, logvar = encodings.mean, encodings.logvar
    return (0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)).mean(0)


def active_units(encodings: Encodings, threshold: float = ACTIVE_UNIT_THRESHOLD) -> torch.Tensor:
    """Which dimensions the encoder uses: Var over images of E[z_j|x] > threshold, bool [d]."""
    return encodings.mean.var(0) > threshold


@torch.no_grad()
def reconstruct(model, images: torch.Tensor) -> torch.Tensor:
    """Bernoulli means decoded from the posterior mean of each image, float [n,1,28,28] in [0,1]."""
    x = data.fixed_binarization(images.to(model.device))
    mean, _ = model.encode(x)
    return torch.sigmoid(model.decode(mean)).cpu()



def code_box(points: torch.Tensor, coverage: float = 0.99, margin: float = 0.1) -> tuple[list[float], list[float]]:
    """The box holding the central ``coverage`` of 2-D codes [n, 2] on each axis, widened by
    ``margin`` of its size on every side: (low [2], high [2]). Where an autoencoder's codes fall,
    however far from the origin they lie."""
    tail = (1 - coverage) / 2
    low, high = torch.quantile(points.float(), tail, dim=0), torch.quantile(points.float(), 1 - tail, dim=0)
    pad = margin * (high - low)
    return (low - pad).tolist(), (high + pad).tolist()


@torch.no_grad()
def decode_box(model, low: list[float], high: list[float], n: int) -> torch.Tensor:
    """Decodings (Bernoulli means) of an evenly spaced n x n grid of a 2-D latent box, row-major
    with z2 largest in row 0 and z1 growing along a row, as on a plot: float [n*n,1,28,28]."""
    z1 = torch.linspace(low[0], high[0], n)
    z2 = torch.linspace(high[1], low[1], n)
    g2, g1 = torch.meshgrid(z2, z1, indexing="ij")
    z = torch.stack([g1.flatten(), g2.flatten()], 1).to(model.device)
    return torch.sigmoid(model.decode(z)).view(-1, 1, 28, 28).cpu()
