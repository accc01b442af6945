"""Image grids, PNGs and GIFs with numpy and Pillow (no torchvision)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genapp.files import write_bytes


def make_grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile images [n,1,h,w] (float in [0,1]) into one uint8 array [H, W], white-on-black.

    ``nrow`` is the number of images per row (default: a square-ish grid). Cells are
    separated by ``padding`` pixels of mid grey so digits stay distinguishable.
    """
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    n, _, h, w = x.shape
    ncol = nrow or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncol))
    grid = np.full((nrows * (h + padding) + padding, ncol * (w + padding) + padding), 128, np.uint8)
    pixels = (np.clip(x[:, 0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write atomically (temporary file, then rename): a reader never sees half a picture."""
    write_bytes(path, png_bytes(array))


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 300, scale: int = 1) -> bytes:
    """An animated, looping GIF of uint8 frames [H, W] (all the same size)."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [Image.fromarray(f) for f in frames]
    if scale != 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()
