"""What the playground draws, computed: plain numpy arrays for the tab's charts, one function
per family (``gan_view``, ``vae_view``, ``flow_view``), each a dict of named arrays. Every view
uses fixed noise seeded by the model's seed, so a point moves smoothly from frame to frame
instead of jumping with a fresh draw.

Grids cover ``data.VIEW_RANGE`` square. Lines for plotting are [k, 2] arrays whose rows are
separated by NaN rows where one line ends and the next begins (a chart draws them as one trace).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from genapp.playground.data import VIEW_RANGE
from genapp.playground.flow import ToyFlow
from genapp.playground.gan import ToyGAN
from genapp.playground.vae import ToyVAE

HEATMAP_SIZE = 64  # cells per side of a heatmap
SHOWN_POINTS = 200  # data points and samples drawn per view
GRID_LINES = 11  # lines per direction of a bent grid
LINE_POINTS = 48


def axis(size: int = HEATMAP_SIZE, span: tuple[float, float] = VIEW_RANGE) -> np.ndarray:
    """Centres of ``size`` equal cells across ``span``: float [size]."""
    lo, hi = span
    step = (hi - lo) / size
    return lo + step * (np.arange(size) + 0.5)


def grid_points(size: int = HEATMAP_SIZE, span: tuple[float, float] = VIEW_RANGE) -> torch.Tensor:
    """The cell centres of a size x size grid, row-major (y outer, x inner): float [size², 2]."""
    a = torch.from_numpy(axis(size, span)).float()
    y, x = torch.meshgrid(a, a, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)


def grid_lines(lines: int = GRID_LINES, points: int = LINE_POINTS, span: tuple[float, float] = VIEW_RANGE) -> torch.Tensor:
    """A square grid as polylines: ``lines`` horizontal then ``lines`` vertical ones, each of
    ``points`` points: float [2 * lines, points, 2]."""
    lo, hi = span
    level = torch.linspace(lo, hi, lines)
    along = torch.linspace(lo, hi, points)
    horizontal = torch.stack([along.expand(lines, points), level[:, None].expand(lines, points)], 2)
    return torch.cat([horizontal, horizontal.flip(2)], 0)


def with_breaks(lines: torch.Tensor) -> np.ndarray:
    """Polylines [k, m, 2] -> [k (m + 1), 2] with a NaN row after each line."""
    k, m, _ = lines.shape
    out = torch.full((k, m + 1, 2), float("nan"))
    out[:, :m] = lines
    return out.reshape(-1, 2).numpy()


def _fixed(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(10_000 + seed))


def shown(data: torch.Tensor, n: int = SHOWN_POINTS) -> torch.Tensor:
    """At most ``n`` of the data points, the same ones every frame."""
    if len(data) <= n:
        return data
    return data[torch.linspace(0, len(data) - 1, n).long()]


# ----------------------------------------------------------------------------- GAN


def gan_view(model: ToyGAN, data: torch.Tensor, n: int = SHOWN_POINTS) -> dict[str, np.ndarray]:
    """real [n, 2], fake [n, 2] (fixed noise), arrows [n, 2] (−∇ of G's loss at each fake point,
    scaled to the view), d_surface [H, H] = D(x) on the grid (y rows, x columns), axis [H]."""
    z = _fixed(model.seed, n, model.options.noise_dim)
    with torch.no_grad():
        fake = model.generate(z)
        surface = model.d_of_points(grid_points()).view(HEATMAP_SIZE, HEATMAP_SIZE)
    points, push = model.generator_gradient(z)
    return {"real": shown(data, n).numpy(), "fake": fake.numpy(), "arrows": push.numpy(),
            "d_surface": surface.numpy(), "axis": axis()}


def arrow_segments(points: np.ndarray, push: np.ndarray, length: float = 0.35, every: int = 2) -> np.ndarray:
    """Line segments from every ``every``-th point along its push, the longest ``length`` long
    (the arrows' lengths keep their ratios): [k * 3, 2] with NaN breaks."""
    points, push = points[::every], push[::every]
    scale = length / max(float(np.abs(push).max()), 1e-12)
    ends = points + push * scale
    segments = np.full((len(points), 3, 2), np.nan, dtype=np.float32)
    segments[:, 0], segments[:, 1] = points, ends
    return segments.reshape(-1, 2)


# ----------------------------------------------------------------------------- VAE


def position_colours(points: np.ndarray, span: tuple[float, float] = VIEW_RANGE) -> list[str]:
    """A colour for each point [n, 2] from where it lies: red grows with x, blue with y."""
    lo, hi = span
    unit = np.clip((points - lo) / (hi - lo), 0, 1)
    r, b = (40 + 215 * unit[:, 0]).astype(int), (40 + 215 * unit[:, 1]).astype(int)
    return [f"rgb({ri},90,{bi})" for ri, bi in zip(r, b)]


def vae_view(model: ToyVAE, data: torch.Tensor, n: int = SHOWN_POINTS) -> dict[str, np.ndarray]:
    """data [n, 2], reconstructions [n, 2] (decoder at the code's mean), samples [n, 2] (fixed
    noise), codes [n, d] (the encoder's means), manifold: the decoded latent grid as lines
    ([k, 2], NaN breaks; for a 1-D latent the decoder's curve over z in [-3, 3])."""
    x = shown(data, n)
    d = model.options.latent_dim
    with torch.no_grad():
        codes = model.encode(x)[0]
        recon = model.decode(codes)
        z = _fixed(model.seed, n, d)
        samples = model.decode(z) + _fixed(model.seed + 1, n, 2) * model.log_sigma.exp()
        if d == 2:
            lines = grid_lines(9, LINE_POINTS, (-2.5, 2.5))
        else:
            lines = torch.linspace(-3, 3, 4 * LINE_POINTS)[None, :, None]
        decoded = model.decode(lines.reshape(-1, d)).view(len(lines), -1, 2)
    return {"data": x.numpy(), "recon": recon.numpy(), "samples": samples.numpy(), "codes": codes.numpy(),
            "manifold": with_breaks(decoded), "sigma": model.log_sigma.exp().detach().numpy()}


# ----------------------------------------------------------------------------- flow


def flow_view(model: ToyFlow, data: torch.Tensor, n: int = SHOWN_POINTS) -> dict:
    """density [H, H] = p(x) on the grid, axis [H], samples [n, 2] (fixed noise); forward: the
    x-grid's lines after each layer (a list of [k, 2], NaN breaks, the first the grid itself),
    inverse: the z-grid's lines after each layer of sampling; log_dets: each layer's mean
    log|det J| over the data (nats); names: each layer's name."""
    with torch.no_grad():
        density = model.log_prob(grid_points()).exp().view(HEATMAP_SIZE, HEATMAP_SIZE)
        samples = model.inverse(_fixed(model.seed, n, 2))
        lines = grid_lines()
        k, m, _ = lines.shape
        forward, _ = model.layer_states(lines.reshape(-1, 2))
        inverse = model.inverse_states(lines.reshape(-1, 2))
        _, log_dets = model.layer_states(shown(data, n))
    return {"density": density.numpy(), "axis": axis(), "samples": samples.numpy(),
            "forward": [with_breaks(s.view(k, m, 2)) for s in forward],
            "inverse": [with_breaks(s.view(k, m, 2)) for s in inverse],
            "log_dets": [float(ld.mean()) for ld in log_dets], "names": layer_names(model)}


def layer_names(model: ToyFlow) -> list[str]:
    """"coupling 1: x₂ | x₁" (x₂ transformed given x₁), "actnorm 1", ... for each layer."""
    names, coupling = [], 0
    for layer in model.flow_layers:
        if hasattr(layer, "mask"):
            coupling += 1
            names.append(f"coupling {coupling}: " + ("x₂ | x₁" if float(layer.mask[0]) == 1.0 else "x₁ | x₂"))
        else:
            names.append(f"actnorm {coupling + 1}")
    return names


def density_mass(model: ToyFlow, size: int = 400, span: tuple[float, float] = (-6.0, 6.0)) -> float:
    """∫ p(x) dx over the ``span`` square by the midpoint rule on a size x size grid: 1 for a
    normalised density whose mass lies in the square."""
    cell = ((span[1] - span[0]) / size) ** 2
    points = grid_points(size, span)
    with torch.no_grad():
        total = sum(float(model.log_prob(chunk).exp().sum()) for chunk in points.split(40_000))
    return total * cell


def nll_floor(data: torch.Tensor, step: float) -> float:
    """The lowest mean −log p a continuous density can reach on ``data`` [n, 2] dequantized
    with bins of width ``step``: the empirical entropy of the bins plus 2 log(step) nats."""
    _, counts = torch.unique(torch.round(data / step).long(), dim=0, return_counts=True)
    p = counts.double() / counts.sum()
    return float(-(p * p.log()).sum()) + 2 * math.log(step)
