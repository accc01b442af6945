"""The catalog of models to compare, without Streamlit: pretrained figures straight from the
manifest, runs from what they logged, test figures measured on demand by the one evaluator, and
the table as the Compare tab shows it."""
from __future__ import annotations

import json
import math
import shutil
import time

import pytest
import torch

from genapp.checkpoint import load_model
from genapp.config import TrainConfig
from genapp.models import RunConfig
from genapp.data import fixed_binarization, load_mnist
from genapp.evaluation import catalog, evaluate
from genapp.manifest import CHECKPOINTS_DIR, read_manifest
from genapp.models import FlowConfig, GANConfig
from genapp.training import train
from genapp.runs import RunDir

from genapp.ui import compare_table
from genapp.ui.text import duration
from tests.conftest import tiny_vae_run

MANIFEST = read_manifest(CHECKPOINTS_DIR / "MANIFEST.json")
LN2 = math.log(2)


def tiny_run(family: str) -> RunConfig:
    fields = dict(epochs=2, batch_size=64, train_size=256, valid_size=128, sample_count=16, device="cpu",
                  log_every=2, quality_every=0)
    if family == "vae":
        return tiny_vae_run(epochs=2)
    model = GANConfig(generator_hidden=(32, 64), discriminator_hidden=(64, 32)) if family == "gan" else \
        FlowConfig(couplings=2, hidden=32, mlp_layers=1)
    return RunConfig(family, model, TrainConfig(**fields))


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Finished two-epoch runs of each family: {family: RunDir}."""
    root = tmp_path_factory.mktemp("compare-runs")
    for family in ("vae", "gan", "flow"):
        train(tiny_run(family), root, f"tiny-{family}")
    return {family: RunDir(root / f"tiny-{family}") for family in ("vae", "gan", "flow")}


@pytest.fixture(scope="module")
def test_images():
    return load_mnist().test.images


def rows_by_model(rows):
    return {row["model"]: row for row in rows}


# ----------------------------------------------------------------------------- pretrained


def test_pretrained_rows_carry_the_manifest_figures_and_say_which_data():
    entries = catalog.pretrained_entries(CHECKPOINTS_DIR)
    assert [e.name for e in entries] == ["ae-z2", "vae-z2", "vae-z20", "gan", "flow-conv", "flow-mlp"]  # no classifier; VAE, GAN, flow
    rows = rows_by_model(catalog.comparison_rows(entries))

    vae = rows["vae-z20"]
    test = MANIFEST["vae-z20"]["test"]
    assert vae["nll_nats"] == test["test_iwae_nll_k1000_nats"]
    assert vae["bpd"] == pytest.approx(test["test_iwae_nll_k1000_nats"] / (784 * LN2))
    assert vae["likelihood_estimate"] == "IWAE bound, k=1000"
    assert vae["likelihood_data"] == "test set, binarized (fixed draw)"
    assert vae["parameters"] == test["parameters"] and vae["epoch"] == 200
    assert vae["train_seconds"] == MANIFEST["vae-z20"]["train_seconds"]

    flow = rows["flow-mlp"]
    assert flow["bpd"] == pytest.approx(MANIFEST["flow-mlp"]["test"]["test_bpd"])
    assert flow["nll_nats"] == pytest.approx(MANIFEST["flow-mlp"]["test"]["test_nll_nats"])
    assert flow["likelihood_data"] == "test set, dequantized 8-bit"
    assert flow["likelihood_estimate"] == "exact, 4 dequantization draws"

    gan = rows["gan"]
    assert gan["nll_nats"] is None and gan["bpd"] is None and "no likelihood" in gan["likelihood_data"]
    assert "non-saturating" in gan["objective"]
    for name in ("ae-z2", "vae-z2", "vae-z20", "gan", "flow-conv", "flow-mlp"):  # the classifier scores, for every family
        test = MANIFEST[name]["test"]
        assert rows[name]["fid"] == test["quality_fid"]
        assert rows[name]["inception_score"] == test["quality_inception_score"]
        assert rows[name]["label_kl"] == test["quality_label_kl"]
        assert rows[name]["fid_real_floor"] == test["quality_fid_real_floor"]
        assert rows[name]["device"].startswith(MANIFEST[name]["device"])
        assert rows[name]["quality_measured"] == "at export" and rows[name]["quality_samples"] == 10_000


def test_the_display_table_has_a_column_per_model_dashes_for_the_gan_and_the_real_data_floor():
    rows = catalog.comparison_rows(catalog.pretrained_entries(CHECKPOINTS_DIR), {"pretrained:gan": 1234.5})
    table = compare_table.display_table(rows)
    assert list(table.index) == compare_table.FIGURE_NAMES
    assert list(table.columns) == ["ae-z2", "vae-z2", "vae-z20", "gan", "flow-conv", "flow-mlp", "real MNIST"]
    assert table.loc["NLL (nats)", "ae-z2"] == "—"  # an autoencoder defines no likelihood
    assert table.loc["NLL (nats)", "vae-z20"] == f"{MANIFEST['vae-z20']['test']['test_iwae_nll_k1000_nats']:,.2f}"
    assert table.loc["NLL (nats)", "gan"] == "—" and table.loc["Bits/dim", "gan"] == "—"
    assert table.loc["Samples/s", "gan"] == "1,234" and table.loc["Samples/s", "vae-z2"] == "—"
    assert table.loc["FID ↓", "real MNIST"].startswith(f"{MANIFEST['gan']['test']['quality_fid_real_floor']:.2f}")
    assert table.loc["Training time", "gan"] == duration(MANIFEST["gan"]["train_seconds"], precise=False) != "—"


def test_a_checkpoint_missing_from_the_manifest_shows_what_it_recorded(tmp_path, tiny_runs):
    shutil.copy(tiny_runs["vae"].best_checkpoint, tmp_path / "mine.pt")
    shutil.copy(CHECKPOINTS_DIR / "classifier.pt", tmp_path / "classifier.pt")  # not a generative model
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    (entry,) = catalog.pretrained_entries(tmp_path)
    assert (entry.name, entry.kind, entry.family, entry.epoch) == ("mine", "pretrained", "vae", 2)
    row = catalog.comparison_row(entry)
    assert row["likelihood_data"] == "validation set, binarized (fixed draw)"
    assert row["likelihood_estimate"] == "−ELBO bound" and row["nll_nats"] == entry.logged["loss"]
    assert row["fid"] is None


# ----------------------------------------------------------------------------- runs


def test_run_rows_use_the_logged_validation_figures_of_their_best_checkpoint(tiny_runs):
    vae = catalog.run_entry(tiny_runs["vae"])
    checkpoint = torch.load(tiny_runs["vae"].best_checkpoint, weights_only=True)
    assert (vae.kind, vae.family, vae.epoch, vae.label) == ("run", "vae", checkpoint["epoch"], "run tiny-vae")
    assert vae.logged["loss"] == checkpoint["metrics"]["loss"] and not vae.has_test_figures
    status = tiny_runs["vae"].read_status()
    assert vae.train_seconds == status["train_seconds"] and vae.device == "cpu"
    row = catalog.comparison_row(vae)
    assert row["parameters"] == load_model(tiny_runs["vae"].best_checkpoint).num_parameters()

    flow = catalog.comparison_row(catalog.run_entry(tiny_runs["flow"]))
    assert flow["likelihood_data"] == "validation set, dequantized 8-bit"
    assert flow["bpd"] == pytest.approx(catalog.run_entry(tiny_runs["flow"]).logged["bpd"])
    gan = catalog.comparison_row(catalog.run_entry(tiny_runs["gan"]))
    assert gan["bpd"] is None and gan["fid"] is None  # this run never scored its samples


def test_a_run_without_a_checkpoint_is_left_out(tmp_path):
    run = RunDir(tmp_path / "empty")
    run.create(tiny_vae_run().to_dict())  # configured, never trained
    assert catalog.run_entry(run) is None


# ----------------------------------------------------------------------------- measuring


def test_evaluate_gives_the_vae_test_figures_on_the_fixed_binarization_with_progress(tiny_runs, test_images):
    model = load_model(tiny_runs["vae"].best_checkpoint)
    images = test_images[:700]
    reports = []
    figures = evaluate(model, images, k=1000, quality_samples=0,
                       progress=lambda fraction, text: reports.append((fraction, text)))
    assert figures["test_images"] == 700 and figures["parameters"] == model.num_parameters()
    # The IWAE bound is tighter than the ELBO; both are measured on the same fixed binarization.
    assert figures["test_iwae_nll_k1000_nats"] <= figures["test_neg_elbo_nats"] + 0.05
    x = fixed_binarization(images)
    generator = torch.Generator().manual_seed(0)  # the evaluator's seed: the -ELBO first, then the IWAE draws
    assert figures["test_neg_elbo_nats"] == pytest.approx(model.mean_neg_elbo(x, generator))
    # Reported in parts, yet exactly one log_likelihood call over all the images: the same draws.
    assert figures["test_iwae_nll_k1000_nats"] == pytest.approx(-model.log_likelihood(x, k=1000, generator=generator)
                                                                .mean().item(), rel=1e-6)
    assert evaluate(model, images, k=1000, quality_samples=0) == figures  # seeded: the same figures again
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(reports) == 4
    assert "496 of 700" in reports[1][1] and "700 of 700" in reports[2][1]  # parts of 31 decoder batches of 16

    entry = catalog.run_entry(tiny_runs["vae"])
    entry.figures = figures
    row = catalog.comparison_row(entry)
    assert row["likelihood_estimate"] == "IWAE bound, k=1000" and row["nll_nats"] == figures["test_iwae_nll_k1000_nats"]
    assert row["likelihood_data"] == "test set (700 images), binarized (fixed draw)"


def test_evaluate_flow_bits_per_dim_and_gan_sample_quality(tiny_runs, test_images):
    flow = load_model(tiny_runs["flow"].best_checkpoint)
    figures = evaluate(flow, test_images[:200], draws=1, quality_samples=0)
    assert figures["test_nll_nats"] == pytest.approx(figures["test_bpd"] * 784 * LN2)
    generator = torch.Generator().manual_seed(0)
    assert figures["test_bpd"] == pytest.approx(flow.bits_per_dim(test_images[:200], generator).mean().item(), rel=0.02)

    gan = load_model(tiny_runs["gan"].best_checkpoint)
    scored = evaluate(gan, test_images[:10], quality_samples=500)
    assert not any(key.startswith("test_") and key != "test_images" for key in scored)
    assert scored["quality_samples"] == 500 and scored["quality_fid"] > scored["quality_fid_real_floor"]
    entry = catalog.run_entry(tiny_runs["gan"])
    entry.figures = scored
    row = catalog.comparison_row(entry)
    assert row["fid"] == scored["quality_fid"] and row["quality_measured"] == "measured" and row["bpd"] is None


def test_sampling_speed_is_images_per_second(tiny_runs):
    model = load_model(tiny_runs["gan"].best_checkpoint)
    speed = catalog.sampling_speed(model, n=64, repeats=2)
    assert math.isfinite(speed) and speed > 100  # a tiny MLP draws thousands a second


def test_sampling_speed_draws_fewer_images_from_a_slow_model():
    class Slow(torch.nn.Module):
        """10 ms an image, like a big flow on a small CPU."""
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.calls = []

        device = torch.device("cpu")

        def sample(self, n, generator=None):
            self.calls.append(n)
            time.sleep(0.01 * n)
            return torch.zeros(n, 1, 28, 28)

    model = Slow()
    speed = catalog.sampling_speed(model, n=256, repeats=3, seconds=0.1)
    assert model.calls[0] == 8 and len(model.calls) == 4  # the warm-up, then 3 timed draws
    assert len(set(model.calls[1:])) == 1 and 8 <= model.calls[1] <= 10  # about 0.1 s / 10 ms each, not 256
    assert speed == pytest.approx(100, rel=0.2)


def test_durations_in_whole_minutes():
    assert [duration(s, precise=False) for s in (None, 45, 1876.3, 5509.6)] == ["—", "45 s", "31 min", "1 h 32 min"]
    assert json.dumps(catalog.comparison_rows([])) == "[]"
