"""The 2-D playground's public API and what its toy models must do: learn in a few seconds on
one CPU thread, give exact or bounded likelihoods, and fail on purpose in the failure-mode lab
(each preset within its step budget), with a fix that works."""
from __future__ import annotations

import math

import pytest
import torch

from genapp.config import ConfigError
from genapp.playground import DATASETS, RING_CENTRES, build, make_data, modes_covered, train_steps
from genapp.playground.data import DISCRETE_STEP, GAUSSIAN_COV, GAUSSIAN_MEAN, RING_STD
from genapp.playground.presets import DISCRETE_FLOOR, PRESETS
from genapp.playground.session import PlaygroundSession
from genapp.playground.views import density_mass, flow_view, gan_view, nll_floor, vae_view

REQUIRED = ("two-moons", "ring", "spiral", "checkerboard", "gaussian")
DEFAULT_RUN = 3000  # the GAN's "default run" on the ring that the closing note reports


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize("name", REQUIRED + ("discrete",))
def test_make_data_gives_seeded_float_points_in_the_view(name):
    x = make_data(name, 500, seed=3)
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.equal(x, make_data(name, 500, seed=3))
    assert not torch.equal(x, make_data(name, 500, seed=4))
    assert (x.abs() < 3.0).all(1).float().mean() > 0.98 and x.std(0).min() > 0.2  # the view holds them


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ConfigError, match="two-moons"):
        make_data("moons", 10)
    with pytest.raises(ConfigError, match="vae"):
        build("diffusion")
    with pytest.raises(ConfigError, match="depth"):
        build("flow", depth=0)
    assert set(REQUIRED) <= set(DATASETS)


def test_modes_covered_counts_the_ring_modes_a_sample_really_draws_from():
    assert modes_covered(make_data("ring", 2000)) == 8
    one = RING_CENTRES[3] + RING_STD * torch.randn(2000, 2)
    assert modes_covered(one) == 1
    assert modes_covered(torch.zeros(2000, 2)) == 0  # the ring's centre is no mode


def test_every_toy_model_samples_points_and_its_weights_follow_the_seed():
    for family in ("gan", "vae", "flow"):
        model = build(family)
        x = model.sample(7, generator=torch.Generator().manual_seed(0))
        assert x.shape == (7, 2) and torch.isfinite(x).all()
        same = build(family)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
        other = build(family, seed=1)
        assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_train_steps_returns_floats_and_changes_the_weights():
    for family, names in (("gan", {"d_loss", "g_loss", "d_real", "d_fake"}), ("vae", {"loss", "recon", "kl"}),
                          ("flow", {"nll"})):
        model = build(family)
        before = [p.detach().clone() for p in model.parameters()]
        losses = train_steps(model, make_data("two-moons", 300), 3)
        assert names <= set(losses) and all(isinstance(v, float) and math.isfinite(v) for v in losses.values())
        assert model.steps == 3
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ----------------------------------------------------------------------------- each toy learns


def test_the_gan_learns_a_gaussian_mean_and_covariance():
    data = make_data("gaussian", 4000)
    # At the default 1e-3 the two players circle the equilibrium widely (the covariance swings by
    # a factor of two from one 500 steps to the next); at 3e-4 they stay close to it.
    model = build("gan", lr=3e-4)
    train_steps(model, data, 3000)
    x = model.sample(5000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(x.mean(0), GAUSSIAN_MEAN, atol=0.15), x.mean(0)
    assert torch.allclose(torch.cov(x.T), GAUSSIAN_COV, atol=0.3), torch.cov(x.T)


def test_the_vae_elbo_rises():
    data = make_data("two-moons", 2000)
    model = build("vae")
    g = torch.Generator().manual_seed(0)
    before = model.elbo(data, samples=8, generator=g).mean()
    train_steps(model, data, 1500)
    after = model.elbo(data, samples=8, generator=g).mean()
    assert after > before + 5.0, (before, after)  # from hundreds of nats below to a few


def test_the_flow_nll_falls_to_the_entropy_of_a_gaussian():
    data = make_data("gaussian", 4000)
    entropy = 0.5 * math.log((2 * math.pi * math.e) ** 2 * float(torch.det(GAUSSIAN_COV)))
    model = build("flow")
    start = float(-model.log_prob(data).mean().detach())
    train_steps(model, data, 1500)
    nll = float(-model.log_prob(data).mean().detach())
    assert start > entropy + 0.5 and nll < entropy + 0.06, (start, nll, entropy)


def test_the_default_gan_covers_the_ring():
    model = build("gan")
    train_steps(model, make_data("ring", 2000), DEFAULT_RUN)
    assert PRESETS["GAN: mode collapse on the ring"].symptom(model, None) >= 7


# ----------------------------------------------------------------------------- exact and bounded likelihoods


def test_the_flow_is_invertible_with_log_dets_autograd_agrees_with():
    model = build("flow", actnorm=True)
    train_steps(model, make_data("spiral", 500), 30)  # non-trivial weights, ActNorm initialised
    x = make_data("spiral", 64, seed=5)
    z, log_det = model(x)
    assert torch.allclose(model.inverse(z), x, atol=1e-5)
    for point, expected in zip(x[:4], log_det[:4]):
        jacobian = torch.autograd.functional.jacobian(lambda p: model(p[None])[0][0], point)
        assert torch.allclose(torch.logdet(jacobian).abs() * 0 + torch.slogdet(jacobian).logabsdet, expected, atol=1e-4)


def test_the_flow_density_sums_to_one_on_a_fine_grid():
    model = build("flow")
    assert abs(density_mass(model) - 1) < 0.02  # a standard normal before training
    train_steps(model, make_data("two-moons", 2000), 1500)
    mass = density_mass(model, size=500)
    assert abs(mass - 1) < 0.02, mass


def test_the_one_dimensional_vae_elbo_stays_below_log_p_by_quadrature():
    data = make_data("two-moons", 1000)
    model = build("vae", latent_dim=1)
    train_steps(model, data, 800)
    x = data[:50]
    z = torch.linspace(-8, 8, 4001)[:, None]
    with torch.no_grad():
        log_joint = model.log_likelihood(x[None], model.decode(z)[:, None]) - 0.5 * z.square() - 0.5 * math.log(2 * math.pi)
        log_p = torch.logsumexp(log_joint, 0) + math.log(float(z[1] - z[0]))
    elbo = model.elbo(x, samples=4000, generator=torch.Generator().manual_seed(0))
    assert (elbo <= log_p + 0.01).all(), (elbo - log_p).max()
    assert (log_p - elbo).mean() < 3.0  # a bound that means something, not −∞


# ----------------------------------------------------------------------------- the failure-mode lab


def _trained(preset, **changes):
    data = make_data(preset.dataset, 2000)
    model = build(preset.family, lr=preset.lr, batch_size=preset.batch_size, **{**preset.options, **changes})
    train_steps(model, data, preset.steps)
    return model, data


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_failure_preset_fails_within_its_budget_and_its_fix_avoids_it(name):
    preset = PRESETS[name]
    model, data = _trained(preset)
    failed = preset.symptom(model, data)
    assert preset.failing(failed), f"{preset.symptom_label}: {failed}"
    model, data = _trained(preset, **preset.fix)
    fixed = preset.symptom(model, data)
    assert not preset.failing(fixed), f"with the fix, {preset.symptom_label}: {fixed}"


def test_mode_collapse_leaves_fewer_than_half_the_modes():
    preset = PRESETS["GAN: mode collapse on the ring"]
    model, data = _trained(preset)
    assert preset.symptom(model, data) < 4


def test_the_fix_switched_on_mid_run_revives_a_collapsed_vae_posterior():
    s = PlaygroundSession()
    preset = s.open_preset("VAE: posterior collapse")
    for _ in range(100):
        s.frame()  # 1,000 steps: collapsed
    assert preset.symptom(s.model, s.data) < 0.1
    s.switch_fix_on()
    for _ in range(100):
        s.frame()
    assert preset.symptom(s.model, s.data) > 1.0
    assert s.model.steps == 2000  # the same model went on training


def test_the_flow_on_discrete_data_runs_below_the_floor_of_its_cells():
    preset = PRESETS["Flow: discrete data without dequantization"]
    model, data = _trained(preset)
    assert preset.symptom(model, data) < nll_floor(data, DISCRETE_STEP) - 0.5
    assert abs(nll_floor(data, DISCRETE_STEP) - DISCRETE_FLOOR) < 0.05


# ----------------------------------------------------------------------------- the session and the views


def test_a_gan_step_is_a_discriminator_update_then_a_generator_update():
    s = PlaygroundSession(family="gan")
    d_before = [p.detach().clone() for p in s.model.discriminator.parameters()]
    g_before = [p.detach().clone() for p in s.model.generator.parameters()]
    assert s.step() == "one discriminator step"
    assert any(not torch.equal(a, b) for a, b in zip(d_before, s.model.discriminator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(g_before, s.model.generator.parameters()))
    d_now = [p.detach().clone() for p in s.model.discriminator.parameters()]
    assert s.step() == "one generator step" and s.model.steps == 1
    assert all(torch.equal(a, b) for a, b in zip(d_now, s.model.discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, s.model.generator.parameters()))


def test_knobs_change_mid_run_and_structural_ones_start_over():
    s = PlaygroundSession(family="flow")
    s.frame()
    assert s.set_option("depth", 8) and s.model.depth == 8 and s.model.steps == 10  # kept its training
    s.set_training(lr=3e-3, batch_size=64, steps_per_frame=5)
    s.frame()
    assert s.model.steps == 15 and s.model.optimizers["model"].param_groups[0]["lr"] == 3e-3
    assert not s.set_option("hidden", 32) and s.model.steps == 0 and s.history == []


def test_the_views_have_the_shapes_the_charts_draw():
    data = make_data("two-moons", 1000)
    g = gan_view(build("gan"), data)
    assert g["real"].shape == g["fake"].shape == g["arrows"].shape == (200, 2) and g["d_surface"].shape == (64, 64)
    assert ((g["d_surface"] > 0) & (g["d_surface"] < 1)).all()
    v = vae_view(build("vae"), data)
    assert v["codes"].shape == (200, 2) and v["manifold"].shape[1] == 2
    f = flow_view(build("flow"), data)
    assert len(f["forward"]) == len(f["inverse"]) == 7 and len(f["log_dets"]) == 6
    assert f["density"].shape == (64, 64)


def test_the_playground_imports_no_ui_and_the_mnist_models_not_the_playground():
    from tests.test_structure import import_graph

    graph = import_graph()
    playground = [m for m in graph if m.startswith("genapp.playground")]
    assert len(playground) >= 6
    assert not any(d.startswith("genapp.ui") for m in playground for d in graph[m])
    assert not any(d.startswith("genapp.playground") for m in graph if m.startswith("genapp.models") for d in graph[m])
    assert {"genapp.models.gan", "genapp.models.vae", "genapp.models.flow_layers"} <= set().union(*(graph[m] for m in playground))


def test_your_own_points_become_the_training_data():
    from genapp.playground.data import points_around

    s = PlaygroundSession(family="flow")
    with pytest.raises(ConfigError, match="no points"):
        s.choose(dataset="custom")
    s.custom_points = points_around(torch.tensor([[1.0, 1.0], [-1.0, 0.5]]), 20, spread=0.1)
    s.choose(dataset="custom")
    assert s.data.shape == (40, 2) and torch.allclose(s.data.mean(0), torch.tensor([0.0, 0.75]), atol=0.1)
    s.frame()
    assert s.model.steps == 10
