"""The 2-D playground: toy data and toy versions of the three families that learn in seconds on
a CPU, trained a few steps at a time inside a browser session (``genapp.ui.playground_tab``).

    make_data(name, n, seed=0)      -> float [n, 2]
    build(family, seed=0, **options) -> a toy "vae", "gan" or "flow" (the tab's defaults)
    train_steps(model, data, steps) -> the last losses as floats

Every toy model has ``sample(n, generator=None)`` -> [n, 2]; the flow ``log_prob(x)`` -> [n] nats,
``forward`` (x -> z, log|det|) and ``inverse``; the VAE ``elbo(x)`` -> [n] nats. Nothing here
imports the UI or streamlit, and the MNIST models do not import this package.
"""
from __future__ import annotations

from typing import Any

from genapp.config import check
from genapp.playground.base import DEFAULT_BATCH, DEFAULT_LR, ToyModel, train_steps
from genapp.playground.data import DATASETS, RING_CENTRES, make_data, modes_covered
from genapp.playground.flow import FlowOptions, ToyFlow
from genapp.playground.gan import GANOptions, ToyGAN
from genapp.playground.vae import ToyVAE, VAEOptions

TOY_FAMILIES: dict[str, type[ToyModel]] = {"gan": ToyGAN, "vae": ToyVAE, "flow": ToyFlow}
LABELS = {"gan": "GAN", "vae": "VAE", "flow": "RealNVP flow"}


def build(family: str, seed: int = 0, lr: float = DEFAULT_LR, batch_size: int = DEFAULT_BATCH,
          **options: Any) -> ToyModel:
    """A fresh toy model of ``family`` ("gan", "vae" or "flow") with seeded weights: its options
    are the family's defaults (what the tab opens with) but for ``options``. Raises
    ``ConfigError`` for an unknown family, option or value."""
    check(family in TOY_FAMILIES, f"unknown toy family {family!r}; one of {', '.join(TOY_FAMILIES)}")
    cls = TOY_FAMILIES[family]
    model = cls(cls.Options(), seed=seed, lr=lr, batch_size=batch_size)
    if options:
        model = cls(model._checked(**options), seed=seed, lr=lr, batch_size=batch_size)
    return model


__all__ = ["DATASETS", "FlowOptions", "GANOptions", "LABELS", "RING_CENTRES", "TOY_FAMILIES", "ToyFlow", "ToyGAN",
           "ToyModel", "ToyVAE", "VAEOptions", "build", "make_data", "modes_covered", "train_steps"]
