"""Pictures for the explorer, as uint8 numpy arrays ready for ``st.image``: no streamlit here.

The 2-D manifold grid comes from ``make_grid`` (28-pixel cells, 2-pixel grey gaps) of
``VAE.manifold(n)``, whose cell (row r, column c) decodes z1 = Phi^-1((c + 0.5) / n) and
z2 = Phi^-1((n - r - 0.5) / n). ``latent_to_pixel`` inverts that layout for any (z1, z2).
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

from genapp.images import make_grid

CELL = 28
PAD = 2  # make_grid's default padding
MARKER_RGB = (230, 40, 40)
MARKER = 255  # palette index of the marker; grey levels use 0..254
# Grey ramp (254 -> white) plus the marker colour: a palette PNG encodes 3x faster than RGB.
PALETTE = [c for i in range(MARKER) for c in (i * 255 // (MARKER - 1),) * 3] + list(MARKER_RGB)


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of uint8 [H, W] or [H, W, 3] by an integer factor."""
    if factor == 1:
        return image
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def manifold_picture(images: torch.Tensor, n: int, scale: int) -> np.ndarray:
    """The n x n manifold (float [n*n,1,28,28] in [0,1]) as palette indices uint8 [H*scale, W*scale]
    (grey levels 0..254; see ``PALETTE``)."""
    grid = make_grid(images, nrow=n, padding=PAD)
    return upscale(np.minimum(grid, MARKER - 1), scale)


def latent_to_pixel(z1: float, z2: float, n: int) -> tuple[float, float]:
    """(x, y) in pixels of the unscaled n x n grid where latent (z1, z2) falls.

    A cell centre sits at PAD + c * (CELL + PAD) + CELL / 2 for column c, and the grid's
    columns are evenly spaced in Phi(z1); so x = PAD / 2 + Phi(z1) * n * (CELL + PAD), and
    likewise y with 1 - Phi(z2) (row 0 holds the largest z2).
    """
    step = CELL + PAD
    return PAD / 2 + normal_cdf(z1) * n * step, PAD / 2 + (1.0 - normal_cdf(z2)) * n * step


def mark_latent(picture: np.ndarray, n: int, scale: int, z1: float, z2: float) -> Image.Image:
    """A ``manifold_picture`` with a red square, one cell wide, centred on (z1, z2): a palette image."""
    out = picture.copy()
    x, y = latent_to_pixel(z1, z2, n)
    half, width = CELL * scale // 2, max(2, scale)
    height_px, width_px = out.shape
    left, top = int(round(x * scale)) - half, int(round(y * scale)) - half
    right, bottom = left + 2 * half, top + 2 * half
    for (r0, r1, c0, c1) in (
        (top, top + width, left, right), (bottom - width, bottom, left, right),  # top and bottom edges
        (top, bottom, left, left + width), (top, bottom, right - width, right),  # left and right edges
    ):
        r0, r1 = max(0, r0), min(height_px, r1)
        c0, c1 = max(0, c0), min(width_px, c1)
        if r0 < r1 and c0 < c1:
            out[r0:r1, c0:c1] = MARKER
    image = Image.frombuffer("P", (width_px, height_px), out.tobytes(), "raw", "P", 0, 1)
    image.putpalette(PALETTE)
    return image


def digit_picture(image: torch.Tensor, scale: int = 6) -> np.ndarray:
    """One image float [1,28,28] (or [28,28]) in [0,1] as uint8 [28*scale, 28*scale]."""
    pixels = image.detach().cpu().reshape(CELL, CELL).clamp(0, 1).numpy()
    return upscale((pixels * 255 + 0.5).astype(np.uint8), scale)


def grid_picture(images: torch.Tensor, nrow: int, scale: int = 2) -> np.ndarray:
    """Images float [n,1,28,28] in [0,1] tiled ``nrow`` to a row, enlarged: uint8 [H, W]."""
    return upscale(make_grid(images, nrow=nrow), scale)


def png_bytes(image: Image.Image, compress_level: int = 1) -> bytes:
    """PNG file contents; level 1 encodes twice as fast as PIL's default for ~5% more bytes,
    which matters for a picture re-sent on every slider move."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
