"""What the playground's three toy models share: options as a dataclass (labels and help for the
tab's widgets), seeded weights and a seeded random stream of their own (batches, noise), their
optimizers, and the training loop ``train_steps`` that the tab calls a few steps per frame.

A toy model lives in one browser session and trains on the server's CPU inside the page's
fragment: a few thousand parameters, batched tensor operations, no Python loop over points.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import torch
from torch import nn

from genapp.config import ConfigError, check, coerce

DEFAULT_LR = 1e-3
DEFAULT_BATCH = 256


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class ToyModel(nn.Module):
    """A toy model of one family. Subclasses set ``family``, ``Options`` and ``structural`` (the
    options that change the networks' shapes, which ``set_option`` cannot change in place), build
    their networks in ``_build`` and train in ``train_step``."""

    family: ClassVar[str]
    Options: ClassVar[type]
    structural: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: Any, seed: int = 0, lr: float = DEFAULT_LR, batch_size: int = DEFAULT_BATCH) -> None:
        super().__init__()
        self.options = options
        self.seed = int(seed)
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.steps = 0  # training steps taken (a GAN's counts its generator's)
        self.diverged = False  # a non-finite loss stops training until a reset
        self.rng = torch.Generator().manual_seed(self.seed + 1)  # batches and noise, apart from the weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._build()
        self.optimizers = self._make_optimizers()
        self.eval()

    # -- to override ---------------------------------------------------------------------------

    def _build(self) -> None:
        raise NotImplementedError

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update on ``batch`` [b, 2]; returns the losses as 0-d tensors."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws from the model: float [n, 2]."""
        raise NotImplementedError

    # -- knobs that change mid-run -------------------------------------------------------------

    def set_lr(self, lr: float) -> None:
        check(0 < lr <= 1, f"lr must be in (0, 1], got {lr}")
        self.lr = float(lr)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = self.lr

    def set_batch_size(self, batch_size: int) -> None:
        check(1 <= batch_size <= 8192, f"batch_size must be in 1..8192, got {batch_size}")
        self.batch_size = int(batch_size)

    def set_option(self, name: str, value: Any) -> bool:
        """Change one option in place; True if done, False if ``name`` is structural (the model
        must be rebuilt with ``build``). Raises ``ConfigError`` for a value the options refuse."""
        if name in self.structural:
            return False
        self.options = self._checked(**{name: value})
        return True

    def _checked(self, **changes: Any) -> Any:
        fields = {f.name: f for f in dataclasses.fields(self.Options)}
        for name in changes:
            check(name in fields, f"{self.family} has no option {name!r}; it has {', '.join(fields)}")
        hints = typing.get_type_hints(self.Options)
        values = {name: coerce(hints[name], value, name) for name, value in changes.items()}
        return dataclasses.replace(self.options, **values)

    def _stepped(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` and step ``optimizer``, unless the loss is not finite."""
        if not torch.isfinite(loss):
            self.diverged = True
            return
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def train_steps(model: ToyModel, data: torch.Tensor, steps: int) -> dict[str, float]:
    """``steps`` training steps of ``model`` on minibatches drawn (with replacement, from the
    model's own random stream) out of ``data`` [n, 2]; the last step's losses as floats. Stops
    early if a loss turns non-finite (``model.diverged``)."""
    check(steps >= 0, f"steps must be >= 0, got {steps}")
    check(data.dim() == 2 and data.shape[1] == 2 and len(data) > 0, f"data must be [n, 2], got {tuple(data.shape)}")
    losses: dict[str, torch.Tensor] = {}
    model.train()
    try:
        for _ in range(steps):
            if model.diverged:
                break
            index = torch.randint(len(data), (model.batch_size,), generator=model.rng)
            losses = model.train_step(data[index])
            model.steps += 1
    finally:
        model.eval()
    return {name: float(value) for name, value in losses.items()}


__all__ = ["ConfigError", "DEFAULT_BATCH", "DEFAULT_LR", "ToyModel", "mlp", "train_steps"]
