"""Q1.4's estimators of log p(x) against the exact value, which a 1-D latent space lets us
compute by quadrature."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genapp.data import fixed_binarization, load_mnist
from genapp.evaluation import monte_carlo
from genapp.models import VAE, VAEConfig


@pytest.fixture(scope="module")
def model_and_image():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=1, hidden=(32,))).eval()
    x = fixed_binarization(load_mnist().test.images[:1])
    return model, x


@torch.no_grad()
def exact_log_likelihood(model: VAE, x: torch.Tensor) -> float:
    """log ∫ p(x|z) N(z; 0, 1) dz on a fine grid over [-10, 10] (the tails hold nothing)."""
    z = torch.linspace(-10, 10, 40_001, dtype=torch.float64)[:, None]
    logits = model.decoder(z.float()).double()
    log_px_z = -F.binary_cross_entropy_with_logits(logits, x.reshape(1, 784).double().expand(len(z), 784),
                                                    reduction="none").sum(1)
    log_pz = -0.5 * (z[:, 0] ** 2 + math.log(2 * math.pi))
    dz = float(z[1, 0] - z[0, 0])
    return (torch.logsumexp(log_px_z + log_pz, 0) + math.log(dz)).item()


def test_both_estimators_approach_the_exact_log_likelihood_from_below(model_and_image):
    model, x = model_and_image
    exact = exact_log_likelihood(model, x)
    estimates = monte_carlo.log_likelihood_estimates(model, x, ks=(1, 10, 100, 1000, 10_000), samples=20_000)
    assert estimates.count() == [20_000, 2000, 200, 20, 2]
    for method in monte_carlo.METHODS:
        means = estimates.mean(method)
        assert abs(means[-1] - exact) < 0.1, (method, means, exact)
        assert means[0] <= exact + 1e-6  # Jensen: log of an unbiased estimate is biased low
        stds = estimates.std(method)
        assert stds[0] > stds[-1]  # more samples, less spread


def test_block_estimates_are_logs_of_block_means():
    log_w = torch.log(torch.tensor([1.0, 3.0, 2.0, 6.0, 5.0]))
    assert monte_carlo.block_estimates(log_w, 2) == pytest.approx(np.log([2.0, 4.0]))  # the fifth is left over
    assert monte_carlo.block_estimates(log_w, 5) == pytest.approx([math.log(17 / 5)])
    with pytest.raises(ValueError, match="needs at least"):
        monte_carlo.block_estimates(log_w, 6)


def test_estimates_are_reproducible_and_the_sample_budget_is_checked(model_and_image):
    model, x = model_and_image
    a = monte_carlo.log_likelihood_estimates(model, x, ks=(1, 10), samples=100, seed=3)
    b = monte_carlo.log_likelihood_estimates(model, x, ks=(1, 10), samples=100, seed=3)
    assert all(np.array_equal(u, v) for m in monte_carlo.METHODS for u, v in zip(a.values[m], b.values[m]))
    with pytest.raises(ValueError, match="largest k"):
        monte_carlo.log_likelihood_estimates(model, x, ks=(1, 1000), samples=100)
