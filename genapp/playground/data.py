"""The playground's 2-D toy distributions: seeded point clouds of a chosen size, float32 [n, 2],
all within about [-3, 3]^2 so that one view range fits every one of them.

``ring`` is 8 Gaussians on a circle (the mode-collapse test bed; ``RING_CENTRES`` are its modes),
``gaussian`` a single correlated Gaussian with known ``GAUSSIAN_MEAN`` and ``GAUSSIAN_COV``,
``discrete`` the two moons snapped to a grid of ``DISCRETE_STEP`` (data that takes few distinct
values, like 8-bit pixels: a flow trained on it without dequantization has no finite optimum).
"""
from __future__ import annotations

import math

import torch

from genapp.config import check

RING_RADIUS, RING_STD, RING_MODES = 2.0, 0.1, 8
RING_CENTRES = torch.stack([torch.tensor([math.cos(a), math.sin(a)]) * RING_RADIUS
                            for a in (2 * math.pi * k / RING_MODES for k in range(RING_MODES))])
GAUSSIAN_MEAN = torch.tensor([0.5, -0.5])
GAUSSIAN_COV = torch.tensor([[1.0, 0.6], [0.6, 0.6]])
DISCRETE_STEP = 0.5
VIEW_RANGE = (-3.0, 3.0)  # the square every view of the playground draws


def _two_moons(n: int, g: torch.Generator) -> torch.Tensor:
    upper = torch.rand(n, generator=g) < 0.5
    t = torch.rand(n, generator=g) * math.pi
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    points = torch.stack([x, y], 1) + 0.05 * torch.randn(n, 2, generator=g)
    return (points - torch.tensor([0.5, 0.25])) * 1.6


def _ring(n: int, g: torch.Generator) -> torch.Tensor:
    mode = torch.randint(RING_MODES, (n,), generator=g)
    return RING_CENTRES[mode] + RING_STD * torch.randn(n, 2, generator=g)


def _spiral(n: int, g: torch.Generator) -> torch.Tensor:
    t = torch.rand(n, generator=g).sqrt()  # uniform along the arm's length, roughly
    angle, radius = 3.5 * math.pi * t, 0.25 + 2.25 * t
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return points + 0.06 * torch.randn(n, 2, generator=g)


def _checkerboard(n: int, g: torch.Generator) -> torch.Tensor:
    # 8 unit squares of a 4 x 4 board over [-2, 2]^2, the dark ones
    x = torch.rand(n, generator=g) * 4 - 2
    column = torch.floor(x + 2)
    row = torch.randint(2, (n,), generator=g) * 2 + (column % 2)
    y = row - 2 + torch.rand(n, generator=g)
    return torch.stack([x, y], 1)


def _gaussian(n: int, g: torch.Generator) -> torch.Tensor:
    chol = torch.linalg.cholesky(GAUSSIAN_COV)
    return GAUSSIAN_MEAN + torch.randn(n, 2, generator=g) @ chol.T


def _discrete(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.round(_two_moons(n, g) / DISCRETE_STEP) * DISCRETE_STEP


DATASETS = {"two-moons": _two_moons, "ring": _ring, "spiral": _spiral, "checkerboard": _checkerboard,
            "gaussian": _gaussian, "discrete": _discrete}
LABELS = {"two-moons": "Two moons", "ring": "Ring of 8 Gaussians", "spiral": "Spiral",
          "checkerboard": "Checkerboard", "gaussian": "One Gaussian", "discrete": "Two moons on a grid (discrete)"}


def make_data(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points of the toy distribution ``name`` (one of ``DATASETS``): float32 [n, 2].
    The same name, size and seed give the same points."""
    check(name in DATASETS, f"unknown toy data {name!r}; one of {', '.join(DATASETS)}")
    check(1 <= n <= 1_000_000, f"n must be in 1..1000000, got {n}")
    g = torch.Generator().manual_seed(int(seed))
    return DATASETS[name](int(n), g).float().contiguous()


def points_around(centres: torch.Tensor, per_point: int, spread: float = 0.1, seed: int = 0) -> torch.Tensor:
    """The user's own data: ``per_point`` draws of N(c, spread^2 I) around each clicked point
    c of ``centres`` [m, 2] -> float32 [m * per_point, 2]."""
    g = torch.Generator().manual_seed(int(seed))
    centres = torch.as_tensor(centres, dtype=torch.float32).reshape(-1, 2)
    return (centres.repeat_interleave(per_point, 0) + spread * torch.randn(len(centres) * per_point, 2, generator=g))


def modes_covered(samples: torch.Tensor, centres: torch.Tensor = RING_CENTRES, radius: float = 3 * RING_STD,
                  min_share: float = 0.02) -> int:
    """How many of ``centres`` [m, 2] hold at least ``min_share`` of ``samples`` [n, 2] within
    ``radius`` (3 standard deviations of a ring mode): a mode the model really draws from."""
    distance = torch.cdist(samples.float(), centres.float())
    nearest = distance.min(1)
    hits = torch.bincount(nearest.indices[nearest.values < radius], minlength=len(centres))
    return int((hits >= min_share * len(samples)).sum())
