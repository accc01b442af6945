"""One digit of the user's own, seen through every model: MNIST-style preprocessing of a drawing,
the VAE's posterior, the flow's bits per dimension and how typical they are, and the nearest
image the GAN's generator can make.

Pure functions of tensors and arrays: no streamlit. A digit is uint8 [1,1,28,28] like an MNIST
test image, so every model sees it the way it sees the test set (the VAE one fixed binarization,
the flow a seeded dequantization, the GAN values scaled to [0,1]).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from genapp import data

SIZE = 28
BOX = 20  # MNIST scales each digit to fit 20 x 20 and centres its mass in 28 x 28
INK_THRESHOLD = 0.1  # ink below this (of full white) is background when finding the bounding box


class EmptyDrawingError(ValueError):
    """The drawing has no ink to speak of."""


# ----------------------------------------------------------------------------- preprocessing


def ink(image: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, float [H, W] in [0, 1] (1 = a full white stroke).

    ``image`` is uint8 [H, W] (grey), [H, W, 3] (RGB) or [H, W, 4] (RGBA, as a canvas returns
    it). Light strokes on a dark or transparent background count as ink: the luminance, times
    the opacity when there is an alpha channel.
    """
    a = np.asarray(image, dtype=np.float32) / 255.0
    if a.ndim == 2:
        return a
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey [H, W], RGB or RGBA [H, W, C] image, got shape {a.shape}")
    grey = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return grey * a[..., 3] if a.shape[2] == 4 else grey


def to_mnist(image: np.ndarray, threshold: float = INK_THRESHOLD) -> torch.Tensor:
    """A drawing (any size; see ``ink``) as an MNIST digit: uint8 [1,1,28,28].

    As MNIST was made: crop to the bounding box of the ink, scale it to fit 20 x 20 keeping its
    aspect ratio (anti-aliased, so the edges turn grey), and place it in a 28 x 28 frame with
    its centre of mass at the centre. Raises ``EmptyDrawingError`` when nothing is drawn.
    """
    strength = ink(image)
    rows, cols = np.nonzero(strength > threshold)
    if len(rows) == 0:
        raise EmptyDrawingError("Nothing drawn yet: draw a digit on the canvas (white on black).")
    crop = strength[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL: (width, height)
    patch = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.Resampling.LANCZOS))
    patch = np.clip(patch, 0.0, 1.0)
    if patch.sum() <= 0:
        raise EmptyDrawingError("The drawing is too faint: draw with a thicker or brighter stroke.")
    frame = np.zeros((SIZE, SIZE), np.float32)
    ph, pw = patch.shape
    grid_r, grid_c = np.mgrid[0:ph, 0:pw]
    mass = patch.sum()
    centre_r, centre_c = (grid_r * patch).sum() / mass, (grid_c * patch).sum() / mass
    # MNIST's centres of mass sit at index 14 (within half a pixel) in both directions.
    top = int(np.clip(round(SIZE / 2 - centre_r), 0, SIZE - ph))
    left = int(np.clip(round(SIZE / 2 - centre_c), 0, SIZE - pw))
    frame[top : top + ph, left : left + pw] = patch
    return torch.from_numpy((frame * 255.0 + 0.5).astype(np.uint8)).reshape(1, 1, SIZE, SIZE)


# ----------------------------------------------------------------------------- VAE


@dataclass
class PosteriorView:
    """q(z|x) of one digit and what the decoder makes of its mean."""

    mean: np.ndarray  # float [d]
    std: np.ndarray  # float [d]
    reconstruction: torch.Tensor  # float [1,1,28,28] in [0,1]: Bernoulli means decoded from the mean
    elbo: float  # nats, one-sample ELBO of the binarized digit (seeded)


@torch.no_grad()
def vae_posterior(model, digit: torch.Tensor, seed: int = 0) -> PosteriorView:
    """The VAE's view of a uint8 digit [1,1,28,28] (one fixed binarization, as for the test set)."""
    x = data.fixed_binarization(digit.to(model.device))
    mean, logvar = model.encode(x)
    reconstruction = torch.sigmoid(model.decode(mean)).cpu()
    elbo = model.elbo(x, torch.Generator(device=model.device).manual_seed(seed)).item()
    return PosteriorView(mean[0].cpu().numpy(), torch.exp(0.5 * logvar[0]).cpu().numpy(), reconstruction, elbo)


@dataclass
class Projection:
    """A 2-D view of latent space: p = (z - centre) @ components.T; identity for d = 2."""

    centre: np.ndarray  # float [d]
    components: np.ndarray  # float [2, d], orthonormal rows

    def points(self, z: np.ndarray) -> np.ndarray:
        """Latents [n, d] -> [n, 2]."""
        return (np.asarray(z) - self.centre) @ self.components.T


def latent_projection(means: np.ndarray) -> Projection:
    """The latent axes themselves for d = 2, else the first two principal components of
    ``means`` [n, d] (the test images' posterior means)."""
    d = means.shape[1]
    if d == 2:
        return Projection(np.zeros(2), np.eye(2))
    if d == 1:
        return Projection(np.zeros(1), np.array([[1.0], [0.0]]))
    centre = means.mean(0)
    _, _, vt = np.linalg.svd(means - centre, full_matrices=False)
    return Projection(centre, vt[:2])


def sigma_ellipse(view: PosteriorView, projection: Projection, points: int = 72) -> np.ndarray:
    """The one-σ ellipse of q(z|x) = N(mean, diag(std²)) seen through ``projection``: [points, 2].

    The projected covariance is A diag(std²) Aᵀ (A the components); its eigenvectors give the
    axes and the square roots of its eigenvalues their half-lengths.
    """
    a = projection.components
    covariance = a @ np.diag(view.std.astype(np.float64) ** 2) @ a.T
    values, vectors = np.linalg.eigh(covariance)
    t = np.linspace(0.0, 2 * math.pi, points)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    centre = projection.points(view.mean[None])[0]
    return centre + (circle * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


# ----------------------------------------------------------------------------- flow


@torch.no_grad()
def flow_bits_per_dim(model, digit: torch.Tensor, draws: int = 8, seed: int = 0) -> float:
    """Bits per dimension of a uint8 digit [1,1,28,28], averaged over ``draws`` dequantizations."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    batch = digit.to(model.device).expand(draws, -1, -1, -1)
    return model.bits_per_dim(batch, generator).mean().item()


@torch.no_grad()
def images_bits_per_dim(model, images: torch.Tensor, chunk: int = 1000, seed: int = 0,
                        progress: Callable[[float], None] | None = None, seconds: float | None = None) -> np.ndarray:
    """Bits per dimension of uint8 images [n,1,28,28] (one seeded dequantization each): float [n].

    ``progress`` is called with the share done after each chunk. With ``seconds``, the images
    after the chunk that passes that time are left out, so a slow flow measures the first few
    chunks only (the conv flow: about 45 images a second on a 2-core CPU); the share reported is
    then of that time."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    start = time.perf_counter()
    out = []
    for i, part in enumerate(images.split(chunk)):
        out.append(model.bits_per_dim(part.to(model.device), generator).cpu())
        elapsed = time.perf_counter() - start
        out_of_time = seconds is not None and elapsed > seconds
        if progress is not None:
            share = (i + 1) * chunk / len(images)
            progress(1.0 if out_of_time else min(1.0, max(share, elapsed / seconds if seconds else 0.0)))
        if out_of_time:
            break
    return torch.cat(out).numpy()


def percentile(value: float, distribution: np.ndarray) -> float:
    """The share of ``distribution`` at or below ``value``, in percent (0..100).

    For bits per dimension: 90 means the digit costs more bits than 90% of the test images,
    so the flow finds it less typical than they are."""
    return float(100.0 * np.mean(np.asarray(distribution) <= value))


# ----------------------------------------------------------------------------- GAN


@dataclass
class Nearest:
    """The generator's best attempt at a target image."""

    z: torch.Tensor  # float [d]
    image: torch.Tensor  # float [1,1,28,28] in [0,1]: G(z)
    rmse: float  # root mean squared pixel difference to the target, on the [0,1] scale
    steps: int
    restarts: int


def nearest_generated(model, target: torch.Tensor, restarts: int = 8, steps: int = 100, lr: float = 0.05,
                      prior_weight: float = 1e-3, seed: int = 0) -> Nearest:
    """The image G(z) nearest to ``target`` (float [1,1,28,28] in [0,1]) that Adam finds.

    Minimises mean squared pixel error + ``prior_weight`` · |z|²/d from ``restarts`` starting
    points z ~ N(0, I) at once (one batch), for ``steps`` steps; keeps the best. The small prior
    term keeps z where the generator was trained (|z| ≈ √d) rather than in a far corner that
    happens to fit. Only z is optimised: gradients never reach the model's weights, so a model
    shared between sessions is safe. The model must be in eval mode (BatchNorm statistics).
    """
    generator = torch.Generator().manual_seed(seed)
    d = model.latent_dim
    z = torch.randn(restarts, d, generator=generator).to(model.device).requires_grad_(True)
    target = target.to(model.device).reshape(1, 1, SIZE, SIZE)
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            error = (model.generate(z) - target).square().flatten(1).mean(1)
            loss = (error + prior_weight * z.square().sum(1) / d).sum()
            (z.grad,) = torch.autograd.grad(loss, [z])
            optimizer.step()
    with torch.no_grad():
        images = model.generate(z)
        error = (images - target).square().flatten(1).mean(1)
        best = int(error.argmin())
    return Nearest(z[best].detach().cpu(), images[best : best + 1].cpu(), math.sqrt(error[best].item()), steps, restarts)


@torch.no_grad()
def discriminator_scores(model, images: torch.Tensor) -> np.ndarray:
    """D(x) = σ(logit) for float images [n,1,28,28] in [0,1]: float [n] in (0, 1)."""
    return torch.sigmoid(model.discriminate(images.to(model.device))).cpu().numpy()
