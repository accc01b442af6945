"""The shipped models open with their training (issue 16): curves, every epoch's pictures and the
seed's epochs, straight from ``checkpoints/history`` (the real shipped files, not test doubles)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from genapp.manifest import read_manifest

from .conftest import open_app, run

MANIFEST = read_manifest()


@pytest.fixture
def shipped_env(monkeypatch, tmp_path):
    """The app on the repository's checkpoints with an empty runs folder: whatever history it
    shows comes from what ships."""
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("GENAPP_CHECKPOINTS_DIR", raising=False)


def image_urls(at: AppTest, caption: str) -> list[str]:
    """The media URL of every image captioned ``caption`` (a URL names the picture's bytes)."""
    return [img.url for element in at.get("image") for text, img in zip(element.captions, element.proto.imgs)
            if text == caption]


def shown_text(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.info, *at.caption, *at.markdown, *at.warning, *at.error])


@pytest.mark.parametrize("tab, chart_key", [("VAE", "vae-elbo"), ("GAN", "gan-losses")])
def test_a_pretrained_model_shows_its_curves_and_every_epochs_pictures(shipped_env, tab, chart_key):
    at = open_app(tab, timeout=180)
    assert not at.exception
    assert "No training history" not in shown_text(at)
    assert any(element.proto.id.endswith(chart_key) for element in at.get("plotly_chart"))
    scrubber = next(s for s in at.select_slider if s.label == "Epoch")
    assert scrubber.options[0] == "0" and scrubber.value == int(scrubber.options[-1])  # before training .. the end
    kinds = next(r for r in at.radio if r.label == "Picture")
    assert "fresh noise" in kinds.options  # fixed and fresh noise, as the seed's figures show
    first = image_urls(at, f"Samples from fixed noise, after epoch {scrubber.value}")
    scrubber.set_value(1)
    run(at)
    assert image_urls(at, "Samples from fixed noise, after epoch 1") and image_urls(at, "Samples from fixed noise, after epoch 1") != first


def test_picking_a_snapshot_epoch_changes_the_manifold(shipped_env):
    assert MANIFEST["vae-z2"]["history"] == "history/vae-z2"
    at = open_app("VAE", vae_epoch=1, timeout=180)
    assert not at.exception
    epochs = next(s for s in at.select_slider if s.label == "The model after epoch")
    assert epochs.options == ["1", "10", "20", "30", "40"]  # the seed's epochs
    then_1, final = image_urls(at, "the 15 × 15 manifold")
    epochs.set_value(40)
    run(at)
    then_40, final_again = image_urls(at, "the 15 × 15 manifold")
    assert final == final_again and len({then_1, then_40, final}) == 3


def test_the_vae_tab_shows_the_true_posterior_and_the_autoencoders_codes(shipped_env):
    at = open_app("VAE", vae_posterior_index=3, timeout=180)
    assert not at.exception
    assert any(element.proto.id.endswith("vae-posterior") for element in at.get("plotly_chart"))
    figures = {m.label: m.value for m in at.metric}
    log_px, elbo = float(figures["log p(x), from the grid"].split()[0]), float(figures["ELBO"].split()[0])
    kl = float(figures["KL(q(z|x) ‖ p(z|x))"].split()[0])
    assert elbo < log_px < 0 and kl == pytest.approx(log_px - elbo, abs=0.02)
    boxes = [c for element in at.get("image") for c in element.captions if "the box of its codes" in c]
    assert [c.split(":")[0] for c in boxes] == ["ae-z2", "vae-z2"]


def test_the_gan_curves_smooth_as_tensorboard_does_at_the_sliders_weight(shipped_env):
    import numpy as np

    from genapp.manifest import CHECKPOINTS_DIR
    from genapp.runs import RunDir
    from genapp.runs.history import MetricsHistory
    from genapp.smoothing import debiased_ema
    from genapp.ui import charts

    from .conftest import chart
    from .test_dashboard import values

    history = MetricsHistory(RunDir(CHECKPOINTS_DIR / MANIFEST["gan"]["history"]))
    history.refresh()
    _, d_loss = charts.series(history.columns("train"), "d_loss")
    keep = charts.thin(len(d_loss))
    at = open_app("GAN", timeout=180)
    for weight in (0.0, 0.9):
        at.slider(key="gan-explore-smoothing").set_value(weight)
        run(at)
        traces = {t["name"]: t for t in chart(at, "gan-losses")["data"]}
        plotted = np.asarray(values(traces["D loss"]["y"]))
        assert np.allclose(plotted, debiased_ema(d_loss, weight)[keep], rtol=1e-6)
    assert not np.allclose(plotted, d_loss[keep])  # 0.9 smooths: not the raw curve
