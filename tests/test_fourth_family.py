"""A family defined here and nowhere else: a diagonal Gaussian over the dequantized pixels. Once
registered it is in the CLI, trained by the engine, measured by the evaluator, a row of the
Compare table and a tab with a training form, with no edit anywhere in genapp."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from genapp import data
from genapp.checkpoint import load_model
from genapp.config import TrainConfig, check, setting
from genapp.evaluation import catalog, evaluate
from genapp.models import FAMILIES, RunConfig, register_family
from genapp.models.base import GenerativeModel, Likelihood, no_progress
from genapp.models.flow import bits_per_dim
from genapp.runs import RunDir
from genapp.training import train
from genapp.ui import compare_table
from train.cli import main

ROOT = Path(__file__).resolve().parents[1]
LOG_2PI = math.log(2 * math.pi)


@dataclass
class PixelGaussianConfig:
    init: Literal["zero", "grey"] = setting("zero", "Initial mean", "zero: black; grey: mid-grey everywhere.")
    min_log_std: float = setting(-5.0, "Smallest log σ", "Keeps the density finite where a pixel never varies.")

    def __post_init__(self) -> None:
        check(-10.0 <= self.min_log_std <= 0.0, f"min_log_std must be in -10..0, got {self.min_log_std}")


class PixelGaussian(GenerativeModel):
    """Every pixel an independent Gaussian: log p(x) = Σ_i log N(x_i; μ_i, σ_i²) on dequantized x."""

    name = "pixel-gaussian"
    label = "Pixel Gaussian"
    Config = PixelGaussianConfig
    objective = "max log N(x; μ, diag σ²)"
    likelihood_data = "dequantized 8-bit"
    monitor = "bpd"

    def __init__(self, config: PixelGaussianConfig | None = None) -> None:
        super().__init__(config or PixelGaussianConfig())
        self.mean = nn.Parameter(torch.full((data.PIXELS,), 0.0 if self.config.init == "zero" else 0.5))
        self.log_std = nn.Parameter(torch.full((data.PIXELS,), -1.0))

    def prepare(self, images, generator=None):
        return data.dequantize(images, generator)

    def _log_prob(self, x):
        log_std = self.log_std.clamp(min=self.config.min_log_std)
        z = (x.flatten(1) - self.mean) / log_std.exp()
        return (-0.5 * (z.square() + LOG_2PI) - log_std).sum(1)

    def loss(self, batch):
        bpd = bits_per_dim(self._log_prob(batch)).mean()
        return {"loss": bpd, "bpd": bpd}

    @torch.no_grad()
    def validate(self, images):
        x = data.dequantize(images, torch.Generator().manual_seed(0))
        return {"bpd": bits_per_dim(self._log_prob(x)).mean().item()}

    @torch.no_grad()
    def sample(self, n, generator=None):
        z = torch.randn((n, data.PIXELS), generator=generator)
        return (self.mean + z * self.log_std.exp()).clamp(0, 1).view(n, 1, 28, 28)

    @torch.no_grad()
    def test_figures(self, images, *, k=1000, draws=4, seed=0, progress=no_progress):
        generator = torch.Generator().manual_seed(seed)
        bpd = sum(bits_per_dim(self._log_prob(data.dequantize(images, generator))).mean().item()
                  for _ in range(draws)) / draws
        progress(1.0, "bits per dimension")
        return {"test_bpd": bpd, "test_nll_nats": bpd * data.PIXELS * math.log(2)}

    @classmethod
    def likelihood(cls, figures, logged):
        if "test_nll_nats" in figures:
            return Likelihood(figures["test_nll_nats"], "exact", "test")
        if "bpd" in logged:
            return Likelihood(logged["bpd"] * data.PIXELS * math.log(2), "exact", "validation")
        return None


@pytest.fixture
def fourth_family():
    register_family(PixelGaussian)
    yield PixelGaussian
    del FAMILIES[PixelGaussian.name]


@pytest.fixture
def trained(fourth_family, tmp_path):
    config = RunConfig(PixelGaussian.name, PixelGaussianConfig(init="grey"),
                       TrainConfig(epochs=2, batch_size=128, lr=0.2, train_size=2048, valid_size=512,
                                   sample_count=16, device="cpu", log_every=4))
    result = train(config, tmp_path / "runs", "gauss")
    return result


def test_the_cli_lists_it_with_its_options(fourth_family, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "pixel-gaussian" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["pixel-gaussian", "--help"])
    help_text = capsys.readouterr().out
    assert "--min-log-std" in help_text and "{zero,grey}" in help_text and "Keeps the density finite" in help_text
    with pytest.raises(SystemExit) as refused:  # its Literal refuses what it does not list
        main(["pixel-gaussian", "--init=black", "--epochs=1"])
    assert refused.value.code == 2 and "invalid choice: 'black'" in capsys.readouterr().err


def test_the_engine_trains_it_and_the_evaluator_measures_it(trained):
    assert trained.state == "finished"
    run = trained.run
    assert run.family == PixelGaussian.name and run.sample_epochs() == [0, 1, 2]
    records, _ = run.read_metrics()
    valid = [r["bpd"] for r in records if r["split"] == "valid"]
    assert len(valid) == 2 and valid[1] < valid[0] < 8.0  # learning: below the 8 bits of uniform noise
    model = load_model(run.checkpoint)
    assert isinstance(model, PixelGaussian)
    figures = evaluate(model, data.load_mnist().test.images[:500], draws=2, quality_samples=500)
    assert figures["family"] == PixelGaussian.name and 0 < figures["test_bpd"] < 8.0
    assert figures["quality_samples"] == 500 and figures["quality_fid"] > figures["quality_fid_real_floor"]


def test_it_is_a_row_of_the_compare_table(trained):
    entry = catalog.run_entry(trained.run)
    row = catalog.comparison_row(entry)
    assert row["family"] == "Pixel Gaussian" and row["objective"] == PixelGaussian.objective
    assert row["likelihood_data"] == "validation set, dequantized 8-bit" and row["bpd"] == pytest.approx(entry.logged["bpd"])
    assert row["parameters"] == 2 * 784
    table = compare_table.display_table([row])
    assert table.loc["Family", "run gauss"] == "Pixel Gaussian"


def test_it_has_a_tab_with_a_training_form_and_a_compare_column(trained, monkeypatch, tmp_path):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(trained.run.path.parent))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(tmp_path / "no-checkpoints"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["main-tab"] = "Pixel Gaussian"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key="pixel-gaussian-model-init").options == ["zero", "grey"]
    assert at.number_input(key="pixel-gaussian-model-min_log_std").value == -5.0
    assert at.button(key="pixel-gaussian-start")
    assert at.selectbox(key="pixel-gaussian-watched").value == "gauss"  # its run, in the run monitor
    at.session_state["main-tab"] = "Compare"
    at.session_state["compare-runs"] = ["gauss"]
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    columns = [c for table in at.table for c in table.value.columns]
    assert "run gauss" in columns
