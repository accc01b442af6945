"""Named starting points for the training form: overrides of a family's defaults.

"Seed reproduction" is the family's own defaults (its config dataclass and its
``default_train_config()``: the seed's settings; 40 epochs for the VAE). "Quick" finishes in under
a minute on 2 CPU cores and already draws recognisable digits; only families whose quick setting
has been measured have one. The flow also offers its GPU recipe (the pretrained flow-conv's); the
GAN and the VAE a failure on purpose each (``FAILURES``), with what to look for.
"""
from __future__ import annotations

import dataclasses

from genapp.models import get_family

CUSTOM = "Custom"
SEED_REPRODUCTION = "Seed reproduction"

# family -> preset name -> {"model": {...}, "train": {...}} overriding the family's defaults
QUICK = {
    # 2-D latent: blurry but clear digits after 3 epochs, and a manifold to explore. About
    # 150k images: 30-55 s of training on 2 busy CPU cores, plus a few seconds to start.
    "vae": {"model": {"latent_dim": 2}, "train": {"epochs": 3, "batch_size": 128, "lr": 2e-3}},
}

# Presets after "Seed reproduction": the recipes of shipped checkpoints that want a GPU.
GPU_RECIPES = {
    # checkpoints/flow-conv.pt: 1.268 test bits/dim, 37 epochs in 5.6 min on an H200 (eager; about
    # 3 min with --cuda-graph). Hours on a CPU.
    "flow": {"Multi-scale conv (GPU)": {"model": {"preset": "conv", "blocks": 2},
                                        "train": {"epochs": 37, "batch_size": 256, "lr_schedule": "cosine"}}},
}

# Presets that train a known failure on purpose (the Playground's failure-mode lab, on MNIST).
FAILURES = {
    "gan": {"Failure: minimax loss": {"model": {"generator_loss": "minimax", "d_warmup_steps": 500}, "train": {}}},
    "vae": {"Failure: large KL weight": {"model": {"latent_dim": 2, "kl_weight": 10.0},
                                         "train": {"epochs": 3, "batch_size": 128, "lr": 2e-3}}},
}

DESCRIPTIONS = {
    "Failure: minimax loss": "A failure on purpose: D trains alone for 500 steps, then G minimises log(1 − D(G(z))), "
                             "whose gradient vanishes while D wins (the seed's Q2.3–Q2.4). Look for D(G(z)) near 0 and a "
                             "flat G loss in the curves, and grids that stay noise for epochs; compare with the seed's "
                             "non-saturating loss.",
    "Failure: large KL weight": "A failure on purpose: Quick with the KL term weighted 10×. The posterior collapses: the "
                                "KL curve drops towards 0 while the reconstruction stays high, every sample is the same "
                                "blurry average digit, and the 2-D manifold shows it everywhere. Compare with Quick.",
    "Quick": "A short run that already draws recognisable digits: under a minute on 2 CPU cores.",
    "Multi-scale conv (GPU)": "The recipe of the pretrained flow-conv (1.27 bits/dim): about 3 minutes on a "
                              "data-centre GPU, many hours on a laptop CPU.",
    SEED_REPRODUCTION: "The seed's settings: this family's defaults.",
    CUSTOM: "Your own values.",
}


def preset_names(family: str) -> list[str]:
    """The family's presets, then "Custom"."""
    return [*(["Quick"] if family in QUICK else []), SEED_REPRODUCTION, *GPU_RECIPES.get(family, {}),
            *FAILURES.get(family, {}), CUSTOM]


def preset_values(family: str, name: str) -> dict[str, dict]:
    """{"model": {field: value}, "train": {field: value}}: every field of both configs."""
    cls = get_family(family)
    overrides = QUICK[family] if name == "Quick" else \
        {**GPU_RECIPES.get(family, {}), **FAILURES.get(family, {})}.get(name, {"model": {}, "train": {}})
    model = dataclasses.asdict(cls.Config())
    train = dataclasses.asdict(cls.default_train_config())
    return {"model": {**model, **overrides["model"]}, "train": {**train, **overrides["train"]}}
