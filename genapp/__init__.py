"""genapp: train and explore a VAE, a GAN and a RealNVP flow on MNIST."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["CheckpointError", "load_model", "__version__"]


def __getattr__(name: str):
    # Imported on first use, so that ``python -m genapp.training.slots`` (a queued job waiting
    # for its turn) does not load torch.
    if name in ("CheckpointError", "load_model"):
        from genapp import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'genapp' has no attribute {name!r}")
