"""genapp: train and explore a VAE, a GAN and a RealNVP flow on MNIST."""
from genapp.checkpoint import CheckpointError, load_model

__version__ = "0.1.0"
__all__ = ["CheckpointError", "load_model", "__version__"]
