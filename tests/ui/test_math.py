"""The math beside the pictures (each family's objective with live numbers) and the seed's Q1.4
demonstration in the VAE tab, through AppTest on tiny checkpoints; the formulas as text."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from genapp.evaluation import monte_carlo
from genapp.models import GAN, GANConfig
from genapp.models.flow import bits_per_dim
from genapp.ui import formulas, gan_tab, vae_tab

from .conftest import APP, chart, run


@pytest.fixture
def families_env(monkeypatch, runs_copy, family_checkpoints):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_copy))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(family_checkpoints))


def start(tab: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["main-tab"] = tab
    return run(at)


def latex(at: AppTest) -> str:
    return "\n".join(element.value for element in at.latex)


def numbers(text: str) -> list[float]:
    """The signed numbers in a LaTeX sum ("a - b" reads as a and -b; thin spaces removed)."""
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text.replace(r"\,", "").replace(" - ", " -"))]


# ----------------------------------------------------------------------------- in the tabs


def test_vae_tab_shows_the_elbo_with_its_numbers_and_the_q14_chart(families_env):
    at = start("VAE")
    (expander,) = [e for e in at.expander if e.label == "The objective, with this model's numbers"]
    (line,) = [e.value for e in expander.latex]
    neg_elbo, recon, kl = (float(m.value) for m in at.metric[:3])  # as the metrics above show them
    assert r"\mathcal{L}(x)" in line and f"_{{{-recon:.2f}}}" in line and f"_{{{kl:.2f}}}" in line
    assert f"= {-neg_elbo:.2f}" in line

    figure = chart(at, "vae-q14")
    traces = {t["name"]: t for t in figure["data"]}
    assert set(traces) == {"Monte Carlo, z ~ p(z)", "importance sampling, z ~ q(z|x)"}
    assert all(len(t["x"]) == len(monte_carlo.KS) for t in traces.values())
    assert any("comes within 1 nat of the best estimate" in c.value for c in at.caption)
    run(at.number_input(key="vae-q14-index").set_value(5))
    assert any("#5: a" in c for e in at.get("image") for c in e.captions)


def test_gan_tab_shows_the_value_of_the_game(families_env):
    at = start("GAN")
    (expander,) = [e for e in at.expander if e.label == "The game, with this model's numbers"]
    lines = [e.value for e in expander.latex]
    assert r"\min_G \max_D" in lines[0] and "D^*(x)" in lines[2]
    log_d_real, log_one_minus, value = numbers(lines[1])[:3]
    assert value == pytest.approx(log_d_real + log_one_minus, abs=2e-3)
    assert any("JS(p_data ‖ p_g) ≥" in c.value for c in expander.caption)


def test_flow_tab_shows_the_change_of_variables_layer_by_layer(families_env):
    at = start("Flow")
    text = latex(at)
    assert r"\log p_X(x) = \log p_Z" in text
    # Two tiny couplings: the logit and both layers appear as terms of the sum.
    assert r"_{\text{logit}}" in text and r"_{\text{1}}" in text and r"_{\text{2}}" in text
    table = next(d for d in at.dataframe if "log|det J| (nats)" in d.value.columns).value
    total = float(table["log|det J| (nats)"].sum())
    assert f"{abs(total):,.1f}".replace(",", r"\,") in text


# ----------------------------------------------------------------------------- the pieces


def test_game_terms_are_the_halves_of_the_value():
    torch.manual_seed(0)
    model = GAN(GANConfig(latent_dim=4, generator_hidden=(16,), discriminator_hidden=(16,))).eval()
    real = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8)
    terms = gan_tab.game_terms(model, real, torch.randn(32, 4))
    assert 0 < terms["d_real"] < 1 and 0 < terms["d_fake"] < 1
    assert terms["log_d_real"] <= math.log(terms["d_real"]) + 1e-6  # Jensen: mean of logs <= log of mean
    assert terms["log_one_minus_d_fake"] <= math.log(1 - terms["d_fake"]) + 1e-6


def test_formulas_carry_the_numbers():
    line = formulas.elbo(recon=90.5, kl=25.25, nll=88.97)
    assert "-90.50" in line and "25.25" in line and "= -115.75" in line and r"\approx -88.97" in line
    assert formulas.js_lower_bound(-math.log(4)) == pytest.approx(0.0)
    names = [f"{i}: coupling" for i in range(1, 13)]
    bpd = -(-100.0 + 12.0 - 784 * math.log(256)) / (784 * math.log(2))
    assert bits_per_dim(-100.0 + 12.0) == pytest.approx(bpd)
    lines = formulas.change_of_variables(-100.0, names, [1.0] * 12, bits_per_dim(-100.0 + 12.0), max_terms=6)
    assert r"\cdots" in lines[1] and lines[1].count(r"\text{") == 6 and "= 12.0" in lines[1]
    assert f"{bpd:.3f}" in lines[2]


def test_estimators_summary_says_how_many_samples_each_needs():
    estimates = monte_carlo.Estimates(ks=(1, 10, 100), values={
        "prior": [np.array([-300.0, -320.0]), np.array([-150.0]), np.array([-99.5])],
        "importance": [np.array([-101.0, -102.0]), np.array([-99.4]), np.array([-99.0])]})
    text = vae_tab.estimators_summary(estimates, best=-99.0)
    assert "with k = 10;" in text and "prior needs k = 100" in text
