"""The GAN: shapes and ranges, who each update changes, interpolation, options."""
from __future__ import annotations

import pytest
import torch

from genapp import data
from genapp.config import ConfigError, TrainConfig
from genapp.models import RunConfig
from genapp.models import GAN, GANConfig
from genapp.models.gan import interpolate_latents


def small_gan(**options) -> GAN:
    torch.manual_seed(0)
    return GAN(GANConfig(latent_dim=8, generator_hidden=(16, 32), discriminator_hidden=(32, 16), **options))


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return data.to_symmetric(data.load_mnist().train.images[:32])


def tiny_run_config(epochs: int, **options):
    """A few-second engine run of a small GAN (the seed's training defaults, 256 images)."""
    return RunConfig("gan", GANConfig(latent_dim=8, generator_hidden=(16, 32), discriminator_hidden=(32, 16), **options),
                     GAN.default_train_config(epochs=epochs, batch_size=64, train_size=256, valid_size=128,
                                              sample_count=16, quality_every=0, device="cpu"))


def snapshot(module: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> list[str]:
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


def test_seed_architecture():
    model = GAN()
    g = [(m.in_features, m.out_features) for m in model.generator if isinstance(m, torch.nn.Linear)]
    d = [(m.in_features, m.out_features) for m in model.discriminator if isinstance(m, torch.nn.Linear)]
    assert g == [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert d == [(784, 512), (512, 256), (256, 1)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.generator) == 3  # all hidden layers but the first
    assert isinstance(model.generator[-1], torch.nn.Tanh)
    assert model.latent_dim == 100


def test_shapes_and_ranges(batch):
    model = small_gan().eval()
    images = model.generate(torch.randn(5, 8))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert model.discriminate(images).shape == (5,)
    samples = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 28, 28)
    assert torch.equal(samples, model.sample(6, generator=torch.Generator().manual_seed(0)))
    parts = model.loss(batch)
    assert {"loss", "d_loss", "g_loss", "d_real", "d_fake"} <= set(parts)


def test_the_d_step_leaves_g_alone_and_the_g_step_leaves_d_alone(batch):
    model = small_gan(d_warmup_steps=1)
    optimizers = model.configure_optimizers(TrainConfig(lr=2e-4))
    assert set(optimizers) == {"discriminator", "generator"}
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    model.train_step(batch, optimizers)  # warm-up: discriminator only
    assert changed(d0, model.discriminator) and not [k for k in changed(g0, model.generator) if "running" not in k and "num_batches" not in k]

    # A G update alone: run the step with the discriminator's optimizer disabled.
    d1 = snapshot(model.discriminator)
    g1 = snapshot(model.generator)
    frozen = {"discriminator": torch.optim.SGD(model.discriminator.parameters(), lr=0.0),
              "generator": optimizers["generator"]}
    model.train_step(batch, frozen)
    assert changed(d1, model.discriminator) == []
    assert any("weight" in k for k in changed(g1, model.generator))


def test_the_g_step_computes_no_discriminator_gradients(batch):
    model = small_gan()
    optimizers = model.configure_optimizers(TrainConfig(lr=2e-4))
    after_d_step = {}
    d_step = optimizers["discriminator"].step

    def step(*args, **kwargs):  # what D's gradients are when its optimizer steps
        after_d_step.update({n: p.grad.clone() for n, p in model.discriminator.named_parameters()})
        return d_step(*args, **kwargs)

    optimizers["discriminator"].step = step
    model.train_step(batch, optimizers)
    for name, p in model.discriminator.named_parameters():
        assert p.requires_grad and torch.equal(p.grad, after_d_step[name]), name


def test_a_full_step_changes_both_players(batch):
    model = small_gan()
    optimizers = model.configure_optimizers(TrainConfig(lr=2e-4))
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    parts = model.train_step(batch, optimizers)
    assert changed(g0, model.generator) and changed(d0, model.discriminator)
    assert all(not v.requires_grad for v in parts.values())
    assert int(model.steps_done) == 1


def test_equilibrium_discriminator_loss_is_two_ln_two(batch):
    model = small_gan()
    with torch.no_grad():  # a discriminator that outputs logit 0: D = 1/2 everywhere
        model.discriminator[-1].weight.zero_()
        model.discriminator[-1].bias.zero_()
    parts = model.loss(batch)
    assert abs(parts["d_loss"].item() - 2 * torch.log(torch.tensor(2.0)).item()) < 1e-5
    assert abs(parts["d_real"].item() - 0.5) < 1e-6


def test_minimax_and_non_saturating_losses_differ(batch):
    torch.manual_seed(1)
    ns = small_gan(generator_loss="non_saturating").loss(batch)["g_loss"]
    torch.manual_seed(1)
    mm = small_gan(generator_loss="minimax").loss(batch)["g_loss"]
    assert ns > 0 > mm  # -log D(G(z)) is positive, log(1 - D(G(z))) negative


def test_interpolation_endpoints_and_slerp_norm():
    model = small_gan().eval()
    z0, z1 = torch.randn(8), torch.randn(8)
    for mode in ("linear", "slerp"):
        strip = model.interpolate(z0, z1, 7, mode=mode)
        assert strip.shape == (7, 1, 28, 28)
        assert torch.allclose(strip[0], model.generate(z0[None])[0], atol=1e-6)
        assert torch.allclose(strip[-1], model.generate(z1[None])[0], atol=1e-6)
    z1 = z1 / z1.norm() * z0.norm()
    norms = interpolate_latents(z0, z1, 9, "slerp").norm(dim=1)
    assert torch.allclose(norms, z0.norm().expand(9), rtol=1e-5)
    linear_norms = interpolate_latents(z0, z1, 9, "linear").norm(dim=1)
    assert linear_norms[4] < z0.norm() * 0.99  # a straight line cuts inside the sphere
    with pytest.raises(ConfigError):
        interpolate_latents(z0, z1, 1)


def test_config_validation():
    with pytest.raises(ConfigError, match="generator_loss"):
        GANConfig(generator_loss="wasserstein")
    with pytest.raises(ConfigError, match="label_smoothing"):
        GANConfig(label_smoothing=0.7)


def test_a_tiny_gan_run_through_the_engine(tmp_path):
    from genapp.training import train

    config = tiny_run_config(epochs=2)
    assert config.train.lr == 2e-4
    result = train(config, tmp_path / "runs", "gan")
    assert result.state == "finished" and result.step == 8
    records, _ = result.run.read_metrics()
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(records[0])
    assert [r["epoch"] for r in records if r["split"] == "valid"] == [1, 2]
    assert result.run.best_checkpoint.exists()  # no quality scores: best is the latest
    assert result.run.sample_epochs() == [0, 1, 2]


def test_the_average_generator_follows_the_live_one_by_the_decay(batch):
    model = small_gan(ema=0.9)
    optimizers = model.configure_optimizers(TrainConfig(lr=2e-4))
    assert set(optimizers["generator"].param_groups[0]["params"]) == set(model.generator.parameters())
    statistics = {k: v.clone() for k, v in model.generator_ema.state_dict().items() if "running" in k}
    for step in range(30):
        before = dict(model.generator_ema.named_parameters())
        before = {k: v.clone() for k, v in before.items()}
        model.train_step(batch, optimizers)
        weight = 1.0 - min(0.9, (1.0 + step) / (10.0 + step))  # a fast start, then the decay
        live = dict(model.generator.named_parameters())
        for name, average in model.generator_ema.named_parameters():
            torch.testing.assert_close(average, before[name] + weight * (live[name] - before[name]))
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert not torch.equal(model.generator[0].weight, model.generator_ema[0].weight)
    for name, value in statistics.items():  # BatchNorm statistics are measured, not averaged
        assert torch.equal(model.generator_ema.state_dict()[name], value), name


def test_the_average_gets_batchnorm_statistics_of_its_own_weights_with_dropout_off(batch):
    torch.manual_seed(0)
    model = GAN(GANConfig(latent_dim=8, generator_hidden=(16, 32, 32), discriminator_hidden=(32,), ema=0.9))
    optimizers = model.configure_optimizers(TrainConfig(lr=2e-4))
    for _ in range(5):
        model.train_step(batch, optimizers)
    live, d = snapshot(model.generator), snapshot(model.discriminator)
    rng = torch.get_rng_state()
    model.end_epoch()  # what the engine calls after each epoch
    assert torch.equal(rng, torch.get_rng_state())  # training's random stream is untouched
    assert changed(live, model.generator) == [] and changed(d, model.discriminator) == []
    assert model.training and model.generator_ema.training

    # By hand: each batch of the same noise normalised by its own statistics, dropout as identity.
    g = model.generator_ema  # Linear LReLU | Linear BN LReLU Dropout | Linear BN LReLU Dropout | Linear Tanh
    first, second = g[3], g[7]
    noise = torch.Generator().manual_seed(0)
    inputs = {first: [], second: []}
    with torch.no_grad():
        for _ in range(100):
            h = g[2](g[1](g[0](torch.randn(256, 8, generator=noise))))
            inputs[first].append(h)
            h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + first.eps) * first.weight + first.bias
            inputs[second].append(g[6](torch.nn.functional.leaky_relu(h, 0.2)))
    for norm, seen in inputs.items():
        assert isinstance(norm, torch.nn.BatchNorm1d) and norm.momentum == 0.1
        torch.testing.assert_close(norm.running_mean, torch.stack([h.mean(0) for h in seen]).mean(0))
        torch.testing.assert_close(norm.running_var, torch.stack([h.var(0) for h in seen]).mean(0))
        assert int(norm.num_batches_tracked) == 100
    assert model.num_parameters() == GAN(GANConfig(latent_dim=8, generator_hidden=(16, 32, 32),
                                                   discriminator_hidden=(32,))).num_parameters()  # the copy is not counted


def test_pictures_come_from_the_average_generator():
    model = small_gan(ema=0.999).eval()
    z = torch.randn(4, 8)
    with torch.no_grad():
        model.generator_ema[-2].bias.fill_(-50.0)  # the average alone now draws black images
        assert torch.equal(model.generate(z), torch.zeros(4, 1, 28, 28))
        assert model.generator(z).min() > -1.0  # while the live generator does not
    assert small_gan().generator_ema is None  # off by default: the seed's GAN, older checkpoints load


def test_the_average_generator_is_saved_and_loaded(tmp_path, batch):
    from genapp.checkpoint import load_model, save_checkpoint

    model = small_gan(ema=0.99)
    optimizers = model.configure_optimizers(TrainConfig(lr=2e-4))
    for _ in range(3):
        model.train_step(batch, optimizers)
    save_checkpoint(tmp_path / "gan.pt", model, train_config=TrainConfig(), step=3, epoch=0, metrics={})
    loaded = load_model(tmp_path / "gan.pt").eval()
    z = torch.randn(5, 8)
    assert torch.equal(loaded.generate(z), model.eval().generate(z))
    with pytest.raises(ConfigError, match="ema"):
        GANConfig(ema=1.0)


def test_the_engine_saves_the_average_with_its_measured_statistics(tmp_path):
    from genapp.checkpoint import load_model
    from genapp.training import train

    config = tiny_run_config(epochs=1, ema=0.99)
    result = train(config, tmp_path / "runs", "ema")
    saved = load_model(result.run.best_checkpoint)
    statistics = {k: v.clone() for k, v in saved.generator_ema.state_dict().items() if "running" in k}
    saved.calibrate_average()
    for name, value in saved.generator_ema.state_dict().items():
        if "running" in name:
            assert torch.equal(value, statistics[name]), name
