"""The GAN and flow tabs through AppTest, with tiny checkpoints, and the plain functions behind them."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from genapp import data
from genapp.config import TrainConfig
from genapp.models import RunConfig
from genapp.models import GAN, Flow, FlowConfig, GANConfig
from genapp.training import train
from genapp.runs import RunDir
from genapp.ui import charts, flow_tab, gan_tab

from .conftest import chart, open_app, run


def tiny_train(**fields) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=1, batch_size=64, train_size=256, valid_size=128, sample_count=16,
                                 device="cpu", log_every=2), **fields})


@pytest.fixture(scope="module")
def gan_flow_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(runs folder with finished runs g1 and f1, checkpoints folder with gan.pt and flow-mlp.pt)."""
    root = tmp_path_factory.mktemp("ganflow")
    runs, checkpoints = root / "runs", root / "checkpoints"
    train(RunConfig("gan", GANConfig(latent_dim=8, generator_hidden=(32,), discriminator_hidden=(32,)),
                    tiny_train()), runs, "g1")
    train(RunConfig("flow", FlowConfig(couplings=2, hidden=16, mlp_layers=1), tiny_train()), runs, "f1")
    checkpoints.mkdir()
    shutil.copy(RunDir(runs / "g1").best_checkpoint, checkpoints / "gan.pt")
    shutil.copy(RunDir(runs / "f1").best_checkpoint, checkpoints / "flow-mlp.pt")
    return runs, checkpoints


@pytest.fixture
def env(monkeypatch, gan_flow_dirs):
    runs, checkpoints = gan_flow_dirs
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(checkpoints))
    return gan_flow_dirs


def images(at: AppTest) -> list[tuple[str, str]]:
    """(caption, url) of every picture on the page; the url changes with the picture's content."""
    return [(caption, img.url) for element in at.get("image") for caption, img in zip(element.captions, element.proto.imgs)]


def picture(at: AppTest, starts: str) -> tuple[str, str]:
    return next(p for p in images(at) if p[0].startswith(starts))


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


# ----------------------------------------------------------------------------- GAN tab


def test_gan_tab_renders_pretrained_then_run_history(env):
    at = open_app("GAN")
    assert at.selectbox(key="gan-source").value == "Pretrained gan"
    assert [s.value for s in at.subheader] == ["The adversarial game during training", "Samples",
                                               "Interpolation in latent space", "Sample quality"]
    assert [c for c, _ in images(at)][: gan_tab.SAMPLE_COUNT] == [f"#{i}" for i in range(1, gan_tab.SAMPLE_COUNT + 1)]
    assert any("No training history" in i.value for i in at.info)  # the pretrained file's run is not kept
    assert at.button(key="gan-score").value is False  # quality on demand only

    run(at.selectbox(key="gan-source").select("Run g1 (best.pt)"))
    losses = chart(at, "gan-losses")
    assert {t["name"] for t in losses["data"]} >= {"D loss", "G loss"}
    assert any(abs(s["y0"] - 2 * math.log(2)) < 1e-9 for s in losses["layout"]["shapes"])
    outputs = chart(at, "gan-d-outputs")
    assert {t["name"] for t in outputs["data"]} >= {"D(x), real", "D(G(z)), generated"}
    assert "2·ln 2" in captions(at)


def test_a_pretrained_model_goes_with_the_run_its_manifest_names(gan_flow_dirs, tmp_path):
    from genapp.ui import resources, sources

    runs, checkpoints = gan_flow_dirs
    shutil.copy(checkpoints / "gan.pt", tmp_path / "gan.pt")
    settings = resources.Settings(runs_dir=runs, device="cpu", checkpoints_dir=tmp_path)
    (tmp_path / "MANIFEST.json").write_text('{"checkpoints": {"gan": {"family": "gan", "run": "g1"}}}')
    pretrained = sources.model_sources(settings, "gan", {"gan": ""})[0][0]
    assert pretrained.label == "Pretrained gan" and pretrained.run.name == "g1"
    (tmp_path / "MANIFEST.json").write_text('{"checkpoints": {"gan": {"family": "gan", "run": "gone"}}}')
    assert sources.model_sources(settings, "gan", {"gan": ""})[0][0].run is None  # never another run's history


def test_gan_interpolation_steps_mode_endpoints_and_new_samples(env):
    at = open_app("GAN")
    strip = picture(at, "slerp path")
    assert "10 steps" in strip[0]

    run(at.slider(key="gan-frame").set_value(10))
    run(at.slider(key="gan-steps").set_value(5))
    assert "5 steps" in picture(at, "slerp path")[0] and picture(at, "slerp path")[1] != strip[1]
    assert at.slider(key="gan-frame").value == 5  # clamped to the new number of steps
    assert picture(at, "frame 5 of 5")

    slerp_norms = next(c.value for c in at.caption if c.value.startswith("|z|"))
    run(at.radio(key="gan-mode").set_value("linear"))
    assert picture(at, "linear path")
    linear_norms = next(c.value for c in at.caption if c.value.startswith("|z|"))
    middle = lambda text: float(text.split("→")[1].split()[0])  # noqa: E731
    assert middle(linear_norms) < middle(slerp_norms)  # linear cuts through the ball

    run(at.radio(key="gan-endpoints").set_value(gan_tab.BY_GRID))
    run(at.selectbox(key="gan-cell-end").set_value(7))
    assert "samples #1 → #7" in picture(at, "linear path")[0]

    grid_before = picture(at, "#1")[1]
    run(at.button(key="gan-new-samples").click())
    assert picture(at, "#1")[1] != grid_before
    assert "seed" in next(c.value for c in at.caption if c.value.startswith("G(z)"))


def test_gan_interpolation_helpers():
    model = GAN(GANConfig(latent_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))).eval()
    z0, z1 = gan_tab.latent_from_seed(1, 8), gan_tab.latent_from_seed(2, 8)
    assert torch.equal(z0, gan_tab.latent_from_seed(1, 8)) and not torch.equal(z0, z1)
    images, norms = gan_tab.interpolation(model, z0, z1, 6, "linear")
    assert images.shape == (6, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert torch.allclose(norms[[0, -1]], torch.stack([z0.norm(), z1.norm()]))
    assert torch.equal(gan_tab.sample_latents(3, 4, 8)[2], gan_tab.sample_latents(3, 4, 8)[2])


def test_the_description_says_when_pictures_come_from_the_average_generator():
    small = dict(latent_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))
    assert "moving average of G's weights (decay 0.999)" in gan_tab.describe(GAN(GANConfig(**small, ema=0.999)))
    assert "average" not in gan_tab.describe(GAN(GANConfig(**small)))


def test_quality_rows_read_the_manifest_and_computed_keys():
    manifest = gan_tab.quality_rows({"quality_fid": 12.345, "quality_inception_score": 9.1}, manifest=True)
    assert [(label, value) for label, value, _ in manifest] == [("FID (classifier features)", "12.3"),
                                                                ("Inception score", "9.1")]
    assert gan_tab.quality_rows({"quality_fid": 1.0}, manifest=False) == []
    assert len(gan_tab.quality_rows({"fid": 3.0, "inception_score": 8.0, "smallest_class_share": 0.09,
                                     "confidence": 0.9}, manifest=False)) == 4


def test_missing_pretrained_names_the_command(monkeypatch, tmp_path, gan_flow_dirs):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(gan_flow_dirs[0]))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(tmp_path))  # no checkpoints at all
    at = open_app("Flow")
    assert at.selectbox(key="flow-source").value == "Run f1 (best.pt)"
    assert "export flow-mlp" in at.code[0].value


# ----------------------------------------------------------------------------- flow tab


def test_flow_tab_renders_with_references_and_temperature(env):
    at = open_app("Flow", flow_source="Run f1 (best.pt)")
    assert [s.value for s in at.subheader] == ["Bits per dimension during training", "Samples at a temperature",
                                               "Interpolation in z between two test images", "Inside the flow"]
    ys = {s["y0"] for s in chart(at, "flow-bpd")["layout"]["shapes"]}
    assert {flow_tab.UNIFORM_BPD, flow_tab.TARGET_BPD} <= ys

    assert at.slider(key="flow-temperature").value == 0.7
    before = picture(at, f"{flow_tab.SAMPLE_COUNT} samples at T = 0.70")
    run(at.slider(key="flow-temperature").set_value(0.0))
    after = picture(at, f"{flow_tab.SAMPLE_COUNT} samples at T = 0.00")
    assert after[1] != before[1]

    strip = picture(at, "f⁻¹((1 − t)")
    run(at.number_input(key="flow-end").set_value(5))
    run(at.slider(key="flow-steps").set_value(4))
    assert picture(at, "f⁻¹((1 − t)")[1] != strip[1] and "4 steps" in picture(at, "f⁻¹((1 − t)")[0]
    assert picture(at, "frame 1 of 4")


def test_inside_the_flow_shows_every_layer_and_log_dets_that_add_up(env):
    at = open_app("Flow")
    couplings = 2
    names = [c for c, _ in images(at)]
    assert names[names.index("input"):][: couplings + 2] == ["input", "logit", "1: coupling", "2: coupling"]
    assert "latent" in names and "sigmoid (data)" in names
    table = at.dataframe[0].value
    assert len(table) == couplings + 1  # logit + each coupling
    assert np.isclose(table["running total"].iloc[-1], table["log|det J| (nats)"].sum())
    bars = chart(at, "flow-log-dets")
    assert len(bars["data"][0]["x"]) == couplings + 1

    run(at.radio(key="flow-follow").set_value("a sample"))
    assert "**Data → latent**: a sample (seed 0" in "\n".join(m.value for m in at.markdown)


def test_flow_helpers_match_the_model():
    torch.manual_seed(0)
    model = Flow(FlowConfig(couplings=2, hidden=16, mlp_layers=1)).eval()
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    z = flow_tab.encode_test_images(model, images)
    assert z.shape == (2, 784) and torch.equal(z, flow_tab.encode_test_images(model, images))  # fixed draw

    path = flow_tab.interpolate_z(z[0], z[1], 5)
    assert path.shape == (5, 784) and torch.equal(path[0], z[0]) and torch.allclose(path[-1], z[1])
    assert flow_tab.interpolate_z(torch.zeros(16, 7, 7), torch.ones(16, 7, 7), 3).shape == (3, 16, 7, 7)

    x = data.dequantize(images[:1], torch.Generator().manual_seed(flow_tab.DEQUANTIZE_SEED))
    states = model.trace(x)
    table = flow_tab.layer_log_dets(states)
    assert list(table["layer"]) == ["logit", "1: coupling", "2: coupling"]
    with torch.no_grad():
        z1, log_det = model(x)
    assert math.isclose(table["total"].iloc[-1], float(log_det[0]), rel_tol=1e-5)
    parts = flow_tab.bits_per_dim_parts(z1, float(table["total"].iloc[-1]))
    with torch.no_grad():
        expected = float(model.bits_per_dim_continuous(x)[0])
    assert math.isclose(parts["bpd"], expected, rel_tol=1e-5)

    shown = flow_tab.display_image(torch.tensor([[-3.0, 5.0]]))
    assert float(shown.min()) == 0.0 and float(shown.max()) == 1.0
    assert torch.equal(flow_tab.display_image(torch.ones(1, 2)), torch.zeros(1, 2))


def test_reference_lines_widen_a_fitted_axis():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[3.0, 4.0]))
    fig.update_yaxes(type="log", range=[math.log10(3.0), math.log10(4.0)])
    charts.with_reference_lines(fig, [(8.0, "uniform"), (1.85, "target")])
    low, high = fig.layout.yaxis.range
    assert low < math.log10(1.85) and high > math.log10(8.0)
    assert [s.y0 for s in fig.layout.shapes] == [8.0, 1.85]
    assert [a.y for a in fig.layout.annotations] == [math.log10(8.0), math.log10(1.85)]  # plotly's log placement

    linear = charts.with_reference_lines(go.Figure(go.Scatter(x=[0, 1], y=[3.0, 4.0])), [(8.0, "uniform")])
    assert linear.layout.shapes[0].y0 == 8.0 and linear.layout.yaxis.range is None
