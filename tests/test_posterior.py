"""The seed's Fig. 2 made exact: the true posterior of a 2-D VAE on a grid, and the autoencoder's
code box (Fig. 1)."""
from __future__ import annotations

import math

import pytest
import torch

from genapp import data
from genapp.evaluation.latent import code_box, decode_box
from genapp.evaluation.posterior import grid_posterior
from genapp.models import VAE, VAEConfig


@pytest.fixture(scope="module")
def vae_and_image():
    """A tiny 2-D VAE trained for a few hundred steps, so q(z|x) is a narrow bump off the origin
    that does not match p(z|x) exactly, and one binarized test image."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=(64, 32)))
    images = data.fixed_binarization(data.load_mnist().train.images[:2048])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        batch = images[(step * 64) % 2048:][:64]
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, data.fixed_binarization(data.load_mnist().test.images[:1])


def test_the_grid_posterior_integrates_to_one_and_the_gap_is_the_kl(vae_and_image):
    model, x = vae_and_image
    grid = grid_posterior(model, x, n=301)
    assert torch.exp(grid.log_posterior.double()).sum().item() * grid.cell == pytest.approx(1.0, abs=1e-4)
    assert grid.mass_q == pytest.approx(1.0, abs=1e-3)
    assert grid.kl > 0.01  # an amortised Gaussian is not the true posterior
    assert grid.gap == pytest.approx(grid.kl, abs=1e-3)  # log p(x) = ELBO + KL(q ‖ p(z|x))


def test_the_grid_agrees_with_the_elbo_and_importance_sampling(vae_and_image):
    model, x = vae_and_image
    grid = grid_posterior(model, x, n=301)
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = model.elbo(x.repeat(4000, 1, 1, 1)).mean().item()  # a Monte Carlo ELBO, 4000 draws of z
    assert grid.elbo == pytest.approx(elbo, abs=0.15)
    iwae = model.log_likelihood(x, k=20_000).item()
    assert grid.log_px == pytest.approx(iwae, abs=0.05)
    coarse = grid_posterior(model, x, n=101)
    assert coarse.log_px == pytest.approx(grid.log_px, abs=0.01)  # converged in the grid's size


def test_the_grid_refuses_a_latent_space_it_cannot_cover():
    with pytest.raises(ValueError, match="2-D latent"):
        grid_posterior(VAE(VAEConfig(latent_dim=3, hidden=(8,))), torch.zeros(1, 1, 28, 28))


def test_the_code_box_holds_the_codes_and_decodes_row_major_like_a_plot():
    points = torch.cat([torch.randn(1000, 2) * 5 + 20, torch.randn(1000, 2) - 30])
    low, high = code_box(points, coverage=0.99, margin=0.0)
    inside = ((points >= torch.tensor(low)) & (points <= torch.tensor(high))).all(1).float().mean()
    assert 0.97 < inside < 1.0 and low[0] < -30 < 20 < high[0]
    model = VAE(VAEConfig(latent_dim=2, hidden=(16,)))
    grid = decode_box(model, [-1.0, -1.0], [1.0, 1.0], 4)
    assert grid.shape == (16, 1, 28, 28) and 0 <= grid.min() and grid.max() <= 1
    corner = torch.sigmoid(model.decode(torch.tensor([[-1.0, 1.0]]))).view(1, 28, 28)  # top left: z1 low, z2 high
    assert torch.allclose(grid[0], corner, atol=1e-6)


def test_the_shipped_vaes_narrow_posteriors_are_resolved():
    """vae-z2's posteriors are a few hundredths wide: the grid must find and resolve them, so that
    its log p(x) agrees with importance sampling and its gap with its KL, image after image.

    Its q(z|x) is narrower than the true posterior, so the importance weights are heavy-tailed and
    one IWAE estimate scatters by a tenth of a nat: the grid must sit among eight of them, and
    stay where it is when its resolution doubles."""
    from genapp import load_model
    from genapp.manifest import CHECKPOINTS_DIR

    model = load_model(CHECKPOINTS_DIR / "vae-z2.pt").float().eval()
    images = data.fixed_binarization(data.load_mnist().test.images[:3])
    for x in images[1:].split(1):  # image 1's posterior reaches 4 standard deviations of q beyond it
        grid = grid_posterior(model, x)
        estimates = []
        for seed in range(8):
            torch.manual_seed(seed)
            estimates.append(model.log_likelihood(x, k=5000).item())
        assert grid.log_px == pytest.approx(sum(estimates) / len(estimates), abs=0.1)
        assert min(estimates) - 0.05 <= grid.log_px <= max(estimates) + 0.05
        assert grid_posterior(model, x, n=401).log_px == pytest.approx(grid.log_px, abs=0.005)
        assert grid.mass_q == pytest.approx(1.0, abs=1e-3)
        assert grid.gap == pytest.approx(grid.kl, abs=0.01) and grid.kl > 0
