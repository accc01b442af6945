"""The model families, by name (``FAMILIES``), and the run config that names one.

A family is one file with its config dataclass and its model class (``vae.py``, ``gan.py``,
``flow.py``), registered here; a family registered anywhere (``register_family``) is picked up by
the CLI, the engine, the evaluator, the Compare table and the training form alike.
"""
from __future__ import annotations

from genapp.models.base import GenerativeModel
from genapp.models.flow import Flow, FlowConfig
from genapp.models.gan import GAN, GANConfig
from genapp.models.registry import FAMILIES, RunConfig, get_family, register_family
from genapp.models.vae import VAE, VAEConfig

for _family in (VAE, GAN, Flow):
    register_family(_family)

__all__ = ["FAMILIES", "Flow", "FlowConfig", "GAN", "GANConfig", "GenerativeModel", "RunConfig", "VAE", "VAEConfig",
           "get_family", "register_family"]
