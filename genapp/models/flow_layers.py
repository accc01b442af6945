"""Invertible layers of the RealNVP flow. Each maps a tensor to one of the same number of
elements: ``forward(x) -> (y, log_det)`` with log_det [n] = log|det dy/dx| per example, and
``inverse(y) -> x``. Masks are buffers, so they move with the module and live in its state."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def checkerboard(shape: tuple[int, ...], parity: int) -> torch.Tensor:
    """1 where (row + column + parity) is even, over the last two dimensions of ``shape``."""
    h, w = shape[-2:]
    board = (torch.arange(h)[:, None] + torch.arange(w)[None, :] + parity) % 2 == 0
    return board.float().expand(shape).clone()


class LogitTransform(nn.Module):
    """x in (0,1) -> y = logit(a + (1 - 2a) x), so the flow works on an unbounded space.

    log|dy/dx| = log(1 - 2a) - log(s) - log(1 - s) with s = a + (1 - 2a) x, per dimension.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        log_det = (math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        return y, log_det

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class AffineCoupling(nn.Module):
    """y = m * x + (1 - m) * (x * exp(s) + t), with (s, t) = net(m * x) and s bounded by tanh.

    ``mask`` (a buffer, shaped like one example) selects the half that conditions the other.
    ``net`` maps a tensor shaped like x to 2x its channels (dim 1): raw scale and translation.
    ``active`` limits the layer to the first ``active`` channels (multi-scale: the rest were
    factored out and pass through unchanged).
    """

    def __init__(self, mask: torch.Tensor, net: nn.Module, active: int | None = None) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = net
        self.active = active
        self.scale = nn.Parameter(torch.ones(mask.shape[0]))  # per channel (or per dim if flat)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.active is None:
            return x, x[:, :0]
        return x[:, : self.active], x[:, self.active :]

    def _scale_shift(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(x * self.mask).chunk(2, dim=1)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        s = self.scale.view(shape) * torch.tanh(raw_s)
        inverse_mask = 1 - self.mask
        return s * inverse_mask, t * inverse_mask

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, rest = self._split(x)
        s, t = self._scale_shift(a)
        y = a * torch.exp(s) + t
        return torch.cat([y, rest], 1), s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, rest = self._split(y)
        # The conditioning half is unchanged by forward, so net(m * y) = net(m * x).
        s, t = self._scale_shift(a)
        return torch.cat([(a - t) * torch.exp(-s), rest], 1)


class ActNorm(nn.Module):
    """Per-channel affine y = (x + b) * exp(log_s), initialised from the first batch to zero mean
    and unit variance (Glow); log_det = (pixels per channel) * sum(log_s). A normalisation with
    an exact Jacobian that does not depend on the batch, unlike batch norm in evaluation."""

    def __init__(self, channels: int, active: int | None = None) -> None:
        super().__init__()
        self.active = active
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialised", torch.tensor(False))
        # A host-side copy of ``initialised``: reading the buffer is a wait for the device, so the
        # training step reads it once per layer (the first step, or the first after a load).
        self._initialised_seen = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._initialised_seen = False  # the loaded buffer decides again
        super()._load_from_state_dict(*args, **kwargs)

    def _initialise(self, a: torch.Tensor) -> None:
        if not bool(self.initialised):
            with torch.no_grad():
                dims = [0] + list(range(2, a.dim()))
                self.bias.copy_(-a.mean(dims))
                self.log_scale.copy_(-torch.log(a.std(dims) + 1e-6))
                self.initialised.fill_(True)
        self._initialised_seen = True

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view((1, -1) + (1,) * (x.dim() - 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, rest = (x, x[:, :0]) if self.active is None else (x[:, : self.active], x[:, self.active :])
        if self.training and not self._initialised_seen:
            self._initialise(a)
        y = (a + self._view(self.bias, a)) * torch.exp(self._view(self.log_scale, a))
        pixels = a[0, 0].numel()
        log_det = (pixels * self.log_scale.sum()).expand(x.shape[0])
        return torch.cat([y, rest], 1), log_det

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, rest = (y, y[:, :0]) if self.active is None else (y[:, : self.active], y[:, self.active :])
        x = a * torch.exp(-self._view(self.log_scale, a)) - self._view(self.bias, a)
        return torch.cat([x, rest], 1)


class Squeeze(nn.Module):
    """[n, c, h, w] -> [n, 4c, h/2, w/2]: each 2x2 block becomes 4 channels (channel c -> 4c..4c+3,
    so the first k channels become the first 4k). Volume-preserving: log_det = 0."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        y = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(n)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        n, c4, h, w = y.shape
        c = c4 // 4
        return y.view(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, 2 * h, 2 * w)


class ResidualNet(nn.Module):
    """The scale-and-translation network of the conv flow: 3x3 convs with residual blocks.
    The last convolution starts at zero, so every coupling starts as the identity."""

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))
            for _ in range(blocks)
        )
        self.out = nn.Conv2d(width, 2 * out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(F.relu(h))


class Permutation(nn.Module):
    """A fixed permutation of the dimensions of x [n, D], y = x[:, perm] (buffers ``perm`` and its
    inverse). Volume-preserving: log_det = 0."""

    def __init__(self, perm: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("perm", perm.long())
        self.register_buffer("inv", torch.argsort(perm.long()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y[:, self.inv]


def checkerboard_order(size: int = 28) -> torch.Tensor:
    """The flat pixel order that puts the checkerboard's even squares first and its odd ones
    second, [size * size]: after ``Permutation(checkerboard_order())`` the two halves of the vector
    are the checkerboard's two colours, so a coupling on halves is a checkerboard coupling that
    needs no gather."""
    # Always on the CPU (even when a model is built on the meta device to check a checkpoint's
    # shapes): the order is data, and nonzero() cannot run on meta tensors.
    board = ((torch.arange(size, device="cpu")[:, None] + torch.arange(size, device="cpu")[None, :]) % 2 == 0).flatten()
    return torch.cat([board.nonzero().squeeze(1), (~board).nonzero().squeeze(1)])


class HalfCoupling(nn.Module):
    """An affine coupling on the two halves of x [n, D]: y_b = x_b * exp(s) + t with
    (s, t) = net(x_a), s = scale * tanh(raw_s), and y_a = x_a; ``flip`` swaps which half conditions.

    Unlike ``AffineCoupling``'s mask, the net sees only the conditioning half (D/2 inputs, not a
    masked D) and outputs the other half's scale and shift: a third fewer multiplications for the
    same width. log_det = sum(s).
    """

    def __init__(self, net: nn.Module, dim: int, flip: bool) -> None:
        super().__init__()
        self.net, self.half, self.flip = net, dim // 2, flip
        self.scale = nn.Parameter(torch.ones(dim - dim // 2))

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, : self.half], x[:, self.half:]
        return (b, a) if self.flip else (a, b)

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([b, a] if self.flip else [a, b], 1)

    def _scale_shift(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(a).chunk(2, dim=1)
        return self.scale * torch.tanh(raw_s), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self._halves(x)
        s, t = self._scale_shift(a)
        return self._join(a, b * torch.exp(s) + t), s.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = self._halves(y)  # the conditioning half is unchanged, so net(y_a) = net(x_a)
        s, t = self._scale_shift(a)
        return self._join(a, (b - t) * torch.exp(-s))


class MLPNet(nn.Module):
    """The scale-and-translation network of the MLP flow: ``dim`` -> hidden (x ``layers``, ReLU,
    then dropout in training) -> 2 x ``out`` (default ``dim``). The last layer starts at zero, so
    every coupling starts as the identity."""

    def __init__(self, dim: int, hidden: int, layers: int = 2, out: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * layers
        body: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            body += [nn.Linear(n_in, n_out), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        self.body = nn.Sequential(*body)
        self.out = nn.Linear(hidden, 2 * (dim if out is None else out))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))
