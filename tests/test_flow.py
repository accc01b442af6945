"""RealNVP: invertibility, log-dets against autograd, bits per dimension, samples, a look inside."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genapp import data
from genapp.config import ConfigError, TrainConfig
from genapp.models import Flow, FlowConfig
from genapp.models.flow_layers import (
    ActNorm, AffineCoupling, HalfCoupling, LogitTransform, MLPNet, Permutation, ResidualNet, Squeeze, checkerboard,
    checkerboard_order,
)

torch.set_default_dtype(torch.float32)


def tiny(preset: str, split: bool = False) -> Flow:
    torch.manual_seed(0)
    return Flow(FlowConfig(preset=preset, couplings=4, hidden=32, width=8, blocks=1, split=split))


def perturb(module: torch.nn.Module) -> None:
    """Move the zero-initialised output layers away from the identity, so the tests see real maps."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))


def layer_cases():
    torch.manual_seed(0)
    flat_mask = checkerboard((1, 4, 4), 0).flatten()
    yield "logit", LogitTransform(0.05), torch.rand(3, 1, 4, 4) * 0.98 + 0.01
    yield "mlp coupling", AffineCoupling(flat_mask, MLPNet(16, 8)), torch.randn(3, 16)
    yield "conv coupling", AffineCoupling(checkerboard((2, 4, 4), 1), ResidualNet(2, 2, 4, 1), active=2), torch.randn(3, 4, 4, 4)
    yield "actnorm", ActNorm(4, active=4), torch.randn(3, 4, 4, 4)
    yield "squeeze", Squeeze(), torch.randn(3, 2, 4, 4)
    yield "permutation", Permutation(checkerboard_order(4)), torch.randn(3, 16)
    yield "half coupling", HalfCoupling(MLPNet(8, 8, out=8), 16, flip=False), torch.randn(3, 16)
    yield "half coupling, flipped", HalfCoupling(MLPNet(8, 8, out=8), 16, flip=True), torch.randn(3, 16)


@pytest.mark.parametrize("name, layer, x", list(layer_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_each_layer_inverts_and_its_log_det_matches_autograd(name, layer, x):
    layer.train()
    layer(x)  # ActNorm initialises from the first batch
    perturb(layer)
    layer.eval()
    y, log_det = layer(x)
    assert y.numel() == x.numel() and log_det.shape == (3,)
    assert torch.allclose(layer.inverse(y), x, atol=1e-4)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0))[0].flatten(), x[i])
        jac = jac.reshape(x[i].numel(), x[i].numel()).double()
        assert torch.allclose(log_det[i].double(), torch.linalg.slogdet(jac)[1], atol=1e-3)


@pytest.mark.parametrize("preset, split", [("mlp", False), ("mlp", True), ("conv", False)])
def test_the_whole_flow_inverts(preset, split):
    model = tiny(preset, split)
    x = data.dequantize(data.load_mnist().test.images[:8], torch.Generator().manual_seed(0))
    model.train()
    model(x)  # initialise ActNorm
    perturb(model)
    model.eval()
    z, log_det = model(x)
    assert z.shape == (8, *model.latent_shape()) and log_det.shape == (8,)
    back = model.inverse(z)
    assert torch.allclose(back, x, atol=1e-4)


@pytest.mark.parametrize("split", [False, True])
def test_whole_flow_log_det_matches_autograd_on_a_small_case(split):
    model = tiny("mlp", split)
    perturb(model)
    model.eval()
    x = torch.rand(1, 1, 28, 28) * 0.9 + 0.05
    _, log_det = model(x)
    jac = torch.autograd.functional.jacobian(lambda v: model(v.view(1, 1, 28, 28))[0].flatten(), x.flatten())
    assert abs(log_det.item() - torch.linalg.slogdet(jac.double())[1].item()) < 1e-2


def test_bits_per_dim_of_uniform_noise_under_an_untrained_flow():
    """An untrained flow is the identity after the logit, so its density is the logit's
    push-back of a standard normal; integrate that by quadrature and compare."""
    model = tiny("mlp").eval()
    alpha = model.config.alpha
    u = (np.arange(200_000) + 0.5) / 200_000  # midpoint rule on (0,1)
    s = alpha + (1 - 2 * alpha) * u
    y = np.log(s) - np.log1p(-s)
    log_density = -0.5 * (y**2 + math.log(2 * math.pi)) + math.log(1 - 2 * alpha) - np.log(s) - np.log1p(-s)
    expected_bpd = (-log_density.mean() + math.log(256)) / math.log(2)
    noise = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    bpd = model.bits_per_dim(noise, torch.Generator().manual_seed(1))
    assert bpd.shape == (200,)
    assert abs(bpd.mean().item() - expected_bpd) < 0.01
    assert expected_bpd > 8.0  # worse than the uniform distribution's 8 bits: it is untrained


def test_samples_shapes_ranges_and_temperature():
    model = tiny("mlp").eval()
    g = torch.Generator().manual_seed(0)
    samples = model.sample(5, temperature=0.7, generator=g)
    assert samples.shape == (5, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    cold = model.sample(5, temperature=0.0)
    assert torch.allclose(cold, cold[0].expand_as(cold))  # T = 0: every sample is the mode


def test_trace_shows_every_layer_and_its_log_dets_add_up():
    model = tiny("conv")
    x = data.dequantize(data.load_mnist().test.images[:2], torch.Generator().manual_seed(0))
    model.train()
    model(x)
    model.eval()
    states = model.trace(x)
    assert len(states) == len(model.layers) + 2
    assert all(s["image"].shape == (2, 1, 28, 28) for s in states)
    _, log_det = model(x)
    assert torch.allclose(sum(s["log_det"] for s in states), log_det, atol=1e-3)
    z, _ = model(x)
    back = model.trace_inverse(z)
    assert torch.allclose(back[-1]["image"], x, atol=1e-4)


def test_a_training_step_lowers_bpd_and_clips_gradients():
    model = tiny("mlp")
    optimizers = model.configure_optimizers(TrainConfig(lr=1e-3))
    images = data.load_mnist().train.images[:64]
    before = model.validate(images)["bpd"]
    for _ in range(20):
        model.train_step(model.prepare(images), optimizers)
    assert model.validate(images)["bpd"] < before - 0.5


def test_config_validation():
    with pytest.raises(ConfigError, match="preset"):
        FlowConfig(preset="glow")


def test_actnorm_initialises_once_and_reads_its_flag_from_the_device_only_then():
    x = torch.randn(16, 4, 3, 3) * 3 + 1
    layer = ActNorm(4).train()
    y, _ = layer(x)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(4), atol=1e-4)
    # Later steps trust the host-side flag: the buffer is not read again (that read would be a
    # wait for the device in every training step), so clearing it behind the layer's back
    # changes nothing.
    bias = layer.bias.detach().clone()
    layer.initialised.fill_(False)
    layer(x * 10)
    assert torch.equal(layer.bias.detach(), bias)
    # A loaded state decides afresh: an uninitialised one initialises from the next batch ...
    layer.load_state_dict({**layer.state_dict(), "initialised": torch.tensor(False)})
    layer(x * 10)
    assert not torch.equal(layer.bias.detach(), bias) and bool(layer.initialised)
    # ... and an initialised one keeps its weights.
    fresh = ActNorm(4).train()
    fresh.load_state_dict(layer.state_dict())
    fresh(x)
    assert torch.equal(fresh.bias, layer.bias)


def test_checkerboard_order_puts_each_colour_in_one_half():
    order = checkerboard_order(28)
    assert sorted(order.tolist()) == list(range(784))
    board = checkerboard((1, 28, 28), 0).flatten()
    assert board[order[:392]].eq(board[order[0]]).all() and board[order[392:]].ne(board[order[0]]).all()


def test_a_split_flow_shows_its_states_in_pixel_order():
    """The split flow reorders the pixels once; its pictures undo that, so the state after the
    permutation looks exactly like the logit image before it."""
    model = tiny("mlp", split=True).eval()
    x = data.dequantize(data.load_mnist().test.images[:1], torch.Generator().manual_seed(0))
    states = model.trace(x)
    assert states[2]["name"] == "1: Permutation"
    assert torch.equal(states[2]["image"], states[1]["image"])
    assert sum(s["log_det"] for s in states).item() == pytest.approx(model(x)[1].item(), abs=1e-3)


def test_a_split_flow_checkpoint_loads_through_the_checked_path(tmp_path):
    """Loading builds the model on the meta device first to check shapes: the split flow's pixel
    order must still be computed (on the CPU), and survive float16 storage as integers."""
    from genapp import load_model
    from genapp.checkpoint import save_checkpoint

    model = tiny("mlp", split=True).eval()
    perturb(model)
    save_checkpoint(tmp_path / "split.pt", model, half=True)
    loaded = load_model(tmp_path / "split.pt")
    assert torch.equal(loaded.layers[0].perm, checkerboard_order())
    x = torch.rand(2, 1, 28, 28) * 0.9 + 0.05
    assert torch.allclose(loaded.log_prob(x), model.half().float().log_prob(x), rtol=1e-4)
