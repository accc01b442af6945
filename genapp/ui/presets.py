"""Named starting points for the training form: overrides of the config dataclasses' defaults.

"Seed reproduction" is every family's defaults (the seed's settings) for 40 epochs. "Quick"
finishes in under a minute on 2 CPU cores and already draws recognisable digits.
"""
from __future__ import annotations

import dataclasses

from genapp.config import TrainConfig
from genapp.models import get_family

CUSTOM = "Custom"

SEED_REPRODUCTION = {"model": {}, "train": {"epochs": 40}}

# family -> preset name -> {"model": {...}, "train": {...}} overriding the defaults
PRESETS: dict[str, dict[str, dict[str, dict]]] = {
    "vae": {
        # 2-D latent: blurry but clear digits after 3 epochs, and a manifold to explore.
        # About 150k images: 20-40 s of training on 2 CPU cores, plus a few seconds to start.
        "Quick": {"model": {"latent_dim": 2}, "train": {"epochs": 3, "batch_size": 128, "lr": 2e-3}},
        "Seed reproduction": SEED_REPRODUCTION,
    },
}

DESCRIPTIONS = {
    "Quick": "A short run that already draws recognisable digits: under a minute on 2 CPU cores.",
    "Seed reproduction": "The seed's settings (the config defaults) for 40 epochs.",
    CUSTOM: "Your own values.",
}


def preset_names(family: str) -> list[str]:
    """The family's presets, then "Custom"."""
    return [*_presets(family), CUSTOM]


def preset_values(family: str, name: str) -> dict[str, dict]:
    """{"model": {field: value}, "train": {field: value}}: every field, defaults overridden."""
    overrides = _presets(family)[name]
    model = dataclasses.asdict(get_family(family).Config())
    train = dataclasses.asdict(TrainConfig())
    return {"model": {**model, **overrides["model"]}, "train": {**train, **overrides["train"]}}


def _presets(family: str) -> dict[str, dict]:
    """A family without its own presets still gets "Seed reproduction"."""
    return PRESETS.get(family, {"Seed reproduction": SEED_REPRODUCTION})
