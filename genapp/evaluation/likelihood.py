"""Likelihood figures on the test set: VAE negative ELBO and IWAE NLL (nats, binarized test set),
flow bits per dimension (dequantized 8-bit test set)."""
from __future__ import annotations

import math

import torch

from genapp import data
from genapp.models import GenerativeModel

EVAL_SEED = 0


@torch.no_grad()
def vae_test_figures(model, images: torch.Tensor, k: int = 1000, seed: int = EVAL_SEED) -> dict:
    """Test negative ELBO (one sample per image) and IWAE NLL with k samples, per-image means in nats.

    Uses the fixed binarization of ``images`` (uint8 [n,1,28,28]), so figures are comparable
    across models and runs.
    """
    x = data.fixed_binarization(images.to(model.device))
    generator = torch.Generator(device=model.device).manual_seed(seed)
    neg_elbo = mean_neg_elbo(model, x, generator)
    nll = -model.log_likelihood(x, k=k, generator=generator).mean().item()
    return {"test_neg_elbo_nats": neg_elbo, f"test_iwae_nll_k{k}_nats": nll}


@torch.no_grad()
def mean_neg_elbo(model, x: torch.Tensor, generator: torch.Generator | None = None) -> float:
    """Mean negative ELBO in nats (one sample per image) of binary images ``x`` [n,1,28,28]."""
    return -torch.cat([model.elbo(chunk, generator) for chunk in x.split(2048)]).mean().item()


def flow_test_figures(model, images: torch.Tensor, draws: int = 4, seed: int = EVAL_SEED) -> dict:
    """Test bits per dimension on the 8-bit scale, averaged over ``draws`` dequantization draws."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    images = images.to(model.device)
    per_draw = [model.bits_per_dim(images, generator).mean().item() for _ in range(draws)]
    bpd = sum(per_draw) / draws
    return {"test_bpd": bpd, "test_nll_nats": bpd * 784 * math.log(2), "dequantization_draws": draws}


def evaluate(
    model: GenerativeModel, data_dir: str | None = None, k: int = 1000, limit: int | None = None,
    quality_samples: int = 10_000,
) -> dict:
    """The family's test-set figures, with how many images they were measured on.

    Likelihoods where the family defines one (VAE: negative ELBO and IWAE NLL), and for every
    family the sample-quality scores of ``quality_samples`` samples (0 = skip) judged by the
    project's classifier.
    """
    from genapp.evaluation.quality import sample_quality

    test = data.load_mnist(data_dir).test
    images = test.images[:limit] if limit else test.images
    figures: dict = {"family": model.name, "test_images": len(images), "parameters": model.num_parameters()}
    if model.name == "vae":
        figures.update(vae_test_figures(model, images, k=k))
    elif model.name == "flow":
        figures.update(flow_test_figures(model, images))
    if quality_samples:
        scores = sample_quality(model, n=quality_samples)
        figures.update({f"quality_{key}": value for key, value in scores.items()})
    return figures
