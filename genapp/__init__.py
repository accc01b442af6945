"""genapp: train and explore a VAE, a GAN and a RealNVP flow on MNIST.

Importing genapp loads nothing heavy: ``genapp.jobs`` and ``genapp.runs`` (what a job queue and
the explorer's job view need) run without torch. ``genapp.load_model`` imports torch when called.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_model", "__version__"]


def load_model(path, family: str | None = None, device="cpu"):
    """Any saved genapp model, ready to use on ``device`` (the CPU by default), in eval mode; see
    ``genapp.checkpoint.load_model``. Raises ``genapp.checkpoint.CheckpointError``."""
    from genapp.checkpoint import load_model as load  # torch: only when a model is asked for

    return load(path, family=family, device=device)
