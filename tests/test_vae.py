"""The VAE: shapes and ranges, the objective's parts, ELBO <= IWAE, training and evaluation steps."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genapp import data
from genapp.config import ConfigError, TrainConfig
from genapp.checkpoint import load_model
from genapp.models import VAE, VAEConfig


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return data.load_mnist().test.images[:64]


def small_vae(latent_dim: int = 2) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(latent_dim=latent_dim, hidden=(64, 32)))


def test_seed_architecture_by_default():
    model = VAE()
    assert model.latent_dim == 20
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    shapes = [(m.in_features, m.out_features) for m in linears]
    assert shapes == [(784, 500), (500, 250), (250, 20), (250, 20), (20, 250), (250, 500), (500, 784)]


def test_shapes_and_ranges(images):
    model = small_vae()
    x = data.binarize(images)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (64, 2)
    assert model.decode(mu).shape == (64, 1, 28, 28)
    samples = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (10, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    assert model.elbo(x).shape == (64,)
    assert model.log_likelihood(x[:4], k=8).shape == (4,)


def test_samples_are_reproducible_with_a_generator():
    model = small_vae()
    a = model.sample(4, generator=torch.Generator().manual_seed(3))
    b = model.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_loss_parts_are_the_negative_elbo_in_nats(images):
    model = small_vae()
    x = data.binarize(images)
    torch.manual_seed(5)
    parts = model.loss(x)
    assert set(parts) == {"loss", "recon", "kl"}
    assert torch.allclose(parts["loss"], parts["recon"] + parts["kl"])
    assert parts["kl"] >= 0
    # Recompute with the same noise: the reconstruction term is the summed Bernoulli NLL.
    torch.manual_seed(5)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum") / len(x)
    kl = (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean()
    assert torch.allclose(parts["recon"], recon, rtol=1e-5)
    assert torch.allclose(parts["kl"], kl, rtol=1e-5)
    # An untrained decoder is near p = 1/2 per pixel: 784 ln 2 nats.
    assert abs(parts["recon"].item() - 784 * math.log(2)) < 60


def test_elbo_is_below_the_importance_weighted_bound(images):
    model = small_vae()
    x = data.binarize(images)
    g = torch.Generator().manual_seed(0)
    elbo = torch.stack([model.elbo(x, g) for _ in range(20)]).mean(0)  # E_q[ELBO] per image
    iwae = model.log_likelihood(x, k=200, generator=g)
    assert elbo.mean() < iwae.mean()
    assert (elbo < iwae).float().mean() > 0.9


def test_chunking_does_not_change_the_estimate(images):
    model = small_vae()
    x = data.binarize(images[:16])
    a = model.log_likelihood(x, k=500, generator=torch.Generator().manual_seed(0), max_rows=100_000)
    b = model.log_likelihood(x, k=500, generator=torch.Generator().manual_seed(1), max_rows=97)
    assert torch.allclose(a, b, atol=1.0)  # same estimator, other noise and chunking


def test_manifold_grid_layout():
    model = small_vae()
    grid = model.manifold(5)
    assert grid.shape == (25, 1, 28, 28)
    z = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(5) + 0.5) / 5)
    # Row 0, column 4: largest z2, largest z1.
    expected = torch.sigmoid(model.decode(torch.tensor([[z[4], z[4]]])))[0]
    assert torch.allclose(grid[4], expected, atol=1e-6)
    expected = torch.sigmoid(model.decode(torch.tensor([[z[0], z[0]]])))[0]
    assert torch.allclose(grid[20], expected, atol=1e-6)  # bottom-left: smallest of both
    with pytest.raises(ConfigError, match="latent_dim 2"):
        small_vae(latent_dim=3).manifold(5)


def test_train_step_changes_weights_and_validation_does_not(images):
    model = small_vae()
    optimizers = model.configure_optimizers(TrainConfig(lr=1e-3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.validate(images)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    first = model.validate(images)
    assert first == model.validate(images)  # validation is deterministic
    parts = model.train_step(model.prepare(images), optimizers)
    assert not parts["loss"].requires_grad
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    assert len(changed) == len(before)  # every weight and bias moved


def test_training_lowers_the_loss(images):
    model = small_vae()
    optimizers = model.configure_optimizers(TrainConfig(lr=3e-3))
    start = model.validate(images)["loss"]
    for _ in range(60):
        model.train_step(model.prepare(images), optimizers)
    assert model.validate(images)["loss"] < start - 50


def test_config_validation():
    with pytest.raises(ConfigError, match="latent_dim"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="hidden"):
        VAEConfig(hidden=(500, 0))
    with pytest.raises(ConfigError, match="kl_weight"):
        VAEConfig(kl_weight=-1.0)


def test_the_kl_weight_scales_the_training_loss_but_not_the_validation_elbo(images):
    x = data.fixed_binarization(images)
    plain, weighted = small_vae(), small_vae()
    weighted.config.kl_weight = 4.0
    weighted.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    a = plain.loss(x)
    torch.manual_seed(1)
    b = weighted.loss(x)
    assert b["recon"] == a["recon"] and b["kl"] == a["kl"] and a["kl"] > 0
    assert b["loss"].item() == pytest.approx((a["recon"] + 4.0 * a["kl"]).item())
    assert weighted.validate(images) == plain.validate(images)  # the true -ELBO, whatever the weight


def test_the_autoencoder_option_trains_with_its_kl_exactly_zero(tmp_path):
    from genapp.models import RunConfig
    from genapp.training import train

    config = RunConfig("vae", VAEConfig(latent_dim=2, hidden=(64, 32), autoencoder=True),
                       TrainConfig(epochs=2, batch_size=64, train_size=512, valid_size=256, device="cpu",
                                   sample_count=16, log_every=4))
    result = train(config, tmp_path / "runs", "ae")
    records, _ = result.run.read_metrics()
    train_records = [r for r in records if r["split"] == "train"]
    assert len(train_records) == 16 and all(r["kl"] == 0.0 and r["loss"] == r["recon"] for r in train_records)
    valid = [r for r in records if r["split"] == "valid"]
    assert all(r["kl"] == 0.0 for r in valid) and valid[1]["recon"] < valid[0]["recon"]
    model = load_model(result.run.checkpoint)
    x = data.fixed_binarization(data.load_mnist().test.images[:64])
    z, _ = model.encode(x)
    assert torch.equal(model.elbo(x), model.elbo(x))  # deterministic: z is the mean, no sampling
    assert torch.allclose(-model.elbo(x), F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="none")
                          .flatten(1).sum(1))
    assert VAE.no_likelihood({"autoencoder": True}) and VAE.no_likelihood({"autoencoder": False}) is None
