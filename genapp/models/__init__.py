"""The model families, by name. Add a family here and the CLI, engine and UI pick it up."""
from __future__ import annotations

from genapp.models.base import GenerativeModel
from genapp.models.flow import Flow, FlowConfig
from genapp.models.gan import GAN, GANConfig
from genapp.models.vae import VAE, VAEConfig

FAMILIES: dict[str, type[GenerativeModel]] = {VAE.name: VAE, GAN.name: GAN, Flow.name: Flow}


def get_family(name: object) -> type[GenerativeModel]:
    try:
        return FAMILIES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        from genapp.config import ConfigError

        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


__all__ = ["FAMILIES", "Flow", "FlowConfig", "GAN", "GANConfig", "GenerativeModel", "VAE", "VAEConfig", "get_family"]
