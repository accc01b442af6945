"""Test-set figures for any model: ``evaluate(model)``, the one evaluator behind ``train eval``,
``train export``, the Compare tab's Measure and the report.

Each family measures its own likelihood (``GenerativeModel.test_figures``: the VAE's −ELBO and
IWAE bound, the flow's bits per dimension, nothing for the GAN); every family's samples are then
scored by the project's MNIST classifier (``genapp.evaluation.quality``).
"""
from __future__ import annotations

import torch

from genapp import data
from genapp.models.base import GenerativeModel, Progress, no_progress

EVAL_SEED = 0


@torch.no_grad()
def evaluate(model: GenerativeModel, images: torch.Tensor | None = None, *, data_dir: str | None = None,
             k: int = 1000, draws: int = 4, quality_samples: int = 10_000, limit: int | None = None,
             progress: Progress = no_progress) -> dict:
    """The family's test-set figures, with how many images they were measured on.

    ``images`` uint8 [n,1,28,28] (default: the 10k MNIST test images from ``data_dir``, the first
    ``limit`` of them if given). ``k`` importance samples for a VAE's IWAE bound, ``draws``
    dequantization draws for a flow; ``quality_samples`` seeded samples scored by the classifier
    (0 skips them). ``progress(fraction, text)`` is called as parts finish. Seeded throughout
    (``EVAL_SEED``): the same model gives the same figures.
    """
    if images is None:
        images = data.load_mnist(data_dir).test.images
    if limit:
        images = images[:limit]
    was_training = model.training
    model.eval()
    figures: dict = {"family": model.name, "test_images": len(images), "parameters": model.num_parameters()}
    share = 0.0 if model.likelihood_data is None else (0.5 if quality_samples else 1.0)
    figures.update(model.test_figures(images, k=k, draws=draws, seed=EVAL_SEED,
                                      progress=lambda fraction, text: progress(share * fraction, text)))
    if quality_samples:
        from genapp.evaluation.quality import sample_quality  # loads the classifier: only when asked

        progress(share, f"scoring {quality_samples:,} samples with the MNIST classifier")
        scores = sample_quality(model, n=quality_samples, seed=EVAL_SEED)
        figures.update({f"quality_{key}": value for key, value in scores.items()})
    progress(1.0, "done")
    model.train(was_training)
    return figures


__all__ = ["EVAL_SEED", "evaluate"]
