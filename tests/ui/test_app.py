"""The explorer through Streamlit's AppTest: every tab renders, the training panel starts, polls,
stops and refuses; plus the plain functions behind what AppTest cannot drive (clicks on charts,
uploads, pictures)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from genapp.checkpoint import CheckpointError
from genapp.models import FAMILIES
from genapp.runs import RunDir
from genapp.ui import charts, pictures, run_form, run_monitor
from genapp.ui.text import duration, plain
from genapp.ui.resources import model_from_upload

from .conftest import APP, chart, run, wait_for

POLL_TIMEOUT = 240.0


# ----------------------------------------------------------------------------- helpers


def start_app(tab: str | None = None, view: str | None = None, family: str = "vae") -> AppTest:
    """The app on main tab ``tab`` with ``family``'s tab on sub-tab ``view`` ("Explore", "Train")."""
    at = AppTest.from_file(APP, default_timeout=90)
    if tab:
        at.session_state["main-tab"] = tab
    if view:
        at.session_state[f"{family}-view"] = view
    return run(at)


def captions(at: AppTest) -> list[str]:
    """The caption of every image on the page."""
    return [caption for element in at.get("image") for caption in element.captions]


def texts(at: AppTest) -> str:
    parts = [m.value for m in [*at.markdown, *at.caption, *at.info, *at.error, *at.warning, *at.success]]
    return "\n".join(parts)


def fill_tiny_form(at: AppTest, name: str, epochs: int) -> None:
    """A run of a few seconds: small network, 256 training images."""
    at.text_input(key="vae-model-hidden").set_value("64,32")
    at.number_input(key="vae-train-epochs").set_value(epochs)
    at.number_input(key="vae-train-batch_size").set_value(64)
    at.number_input(key="vae-train-train_size").set_value(256)
    at.number_input(key="vae-train-valid_size").set_value(128)
    at.number_input(key="vae-train-sample_count").set_value(16)
    at.text_input(key="vae-run-name").set_value(name)
    run(at)


def poll_until(at: AppTest, predicate, what: str, timeout: float = POLL_TIMEOUT) -> None:
    """Rerun the app (as the polling fragment would) until ``predicate(at)`` holds."""
    wait_for(lambda: predicate(run(at)), timeout=timeout, interval=1.0, what=what)


# ----------------------------------------------------------------------------- the VAE explorer


def test_explore_opens_the_pretrained_model_and_says_how_to_make_the_missing_one(app_env):
    at = start_app()
    assert [t.label for t in at.tabs][:2] == ["VAE", "Explore"] and "Runs" in [t.label for t in at.tabs]
    assert at.selectbox(key="vae-source").value == "Pretrained vae-z2"
    (missing,) = [e for e in at.expander if "vae-z20.pt not found" in e.label]
    assert "python -m train vae --latent-dim 20" in missing.code[0].value
    assert "decoded at z = (0.00, 0.00)" in captions(at)
    assert any("Bernoulli draws" in c for c in captions(at))
    assert any("reconstructions" in c for c in captions(at))
    assert chart(at, "vae-latent")["data"][0]["name"] == "0"  # one trace per digit
    assert "of 2 active" in chart(at, "vae-kl-dims")["layout"]["title"]["text"]
    assert "Test −ELBO (nats)" in [m.label for m in at.metric]


def test_manifold_sliders_steer_the_decoded_digit(app_env):
    at = start_app()
    at.slider(key="vae-z1").set_value(1.5)
    at.slider(key="vae-z2").set_value(-1.0)
    at.slider(key="vae-manifold-n").set_value(8)
    run(at)
    assert "decoded at z = (1.50, -1.00)" in captions(at)
    # The values survive a visit to another tab.
    at.session_state["main-tab"] = "Runs"
    run(at)
    at.session_state["main-tab"] = "VAE"
    run(at)
    assert at.slider(key="vae-z1").value == 1.5 and at.slider(key="vae-manifold-n").value == 8


def test_a_3d_model_gets_pca_and_no_manifold(app_env):
    at = start_app()
    at.selectbox(key="vae-source").set_value("Run tiny-z3 (best.pt)")
    run(at)
    assert "needs a 2-D latent space; this model has 3" in texts(at)
    assert "principal components" in texts(at)
    assert "of 3 active" in chart(at, "vae-kl-dims")["layout"]["title"]["text"]
    assert f"From run {plain('tiny-z3')}'s validation records." in texts(at)


def test_a_picked_point_shows_its_image_and_reconstruction(app_env):
    at = start_app()
    assert "Click a point" in texts(at)
    at.session_state["vae-picked"] = 7  # what a click on the scatter stores (see _remember_pick)
    run(at)
    assert any(c.startswith("test image 7 (digit") for c in captions(at))
    assert "its reconstruction" in captions(at)
    assert chart(at, "vae-latent")["data"][-1]["name"] == "selected"


def test_fresh_noise_draws_new_samples(app_env):
    at = start_app()
    at.radio(key="vae-noise").set_value("fresh")
    run(at)
    first = at.session_state["vae-fresh-seed"]
    at.button(key="vae-new-noise").click()
    run(at)
    assert at.session_state["vae-fresh-seed"] != first


def test_nothing_to_explore_says_how_to_make_the_pretrained_models(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(tmp_path / "none"))
    at = start_app()
    (missing,) = [e for e in at.expander if "not found" in e.label]
    assert "python -m train vae --latent-dim 2 " in missing.code[0].value
    assert "python -m train export vae-z2" in missing.code[0].value
    assert "Upload a checkpoint" in texts(at)


def test_uploaded_checkpoints_load_or_explain(trained_runs):
    data = RunDir(trained_runs / "tiny-z2").best_checkpoint.read_bytes()
    model = model_from_upload("test-upload", data, "vae")
    assert model.latent_dim == 2 and not model.training
    with pytest.raises(CheckpointError):
        model_from_upload("test-garbage", b"not a checkpoint", "vae")


# ----------------------------------------------------------------------------- the training panel


def test_presets_fill_the_form_and_edits_make_it_custom(app_env):
    at = start_app(view="Train")
    assert at.selectbox(key="vae-preset").value == "Quick"
    assert at.number_input(key="vae-model-latent_dim").value == 2
    at.selectbox(key="vae-preset").set_value("Seed reproduction")
    run(at)
    assert at.number_input(key="vae-train-epochs").value == 40
    assert at.number_input(key="vae-model-latent_dim").value == 20
    assert at.text_input(key="vae-model-hidden").value == "500,250"
    at.number_input(key="vae-train-epochs").set_value(41)
    run(at)
    assert at.selectbox(key="vae-preset").value == "Custom"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "vae"])
def test_every_other_family_gets_the_training_panel(app_env, family):
    at = start_app(tab=FAMILIES[family].label, view="Train", family=family)
    assert at.selectbox(key=f"{family}-preset").value == "Seed reproduction"
    assert at.button(key=f"{family}-start")
    assert f"No {family} runs in" in texts(at)


def test_an_invalid_config_is_refused_inline(app_env):
    at = start_app(view="Train")
    at.number_input(key="vae-train-epochs").set_value(0)
    at.text_input(key="vae-model-hidden").set_value("64,abc")
    run(at)
    errors = [e.value for e in at.error]
    assert any("epochs must be at least 1" in e for e in errors)
    assert any("hidden" in e for e in errors)
    before = sorted(p.name for p in app_env.iterdir())
    at.button(key="vae-start").click()
    run(at)
    assert any(e.value.startswith("Not started") for e in at.error)
    assert sorted(p.name for p in app_env.iterdir()) == before  # no run, no log


def test_start_polls_and_shows_curves_and_samples(app_env):
    at = start_app(view="Train")
    fill_tiny_form(at, "ui-run", epochs=2)
    at.button(key="vae-start").click()
    run(at)
    assert at.selectbox(key="vae-watched").value == "ui-run"
    poll_until(at, lambda a: f"{plain('ui-run')}** · :gray[finished]" in texts(a), "the run to finish")
    figure = chart(at, "vae-curves")
    assert [t["name"] for t in figure["data"]] == ["per step", "smoothed", "validation (per epoch)"]
    assert figure["layout"]["uirevision"] == "ui-run"
    assert "Samples from fixed noise, after epoch 2" in captions(at)
    assert at.select_slider[0].options == ["0", "1", "2"]
    assert at.get("download_button")


def test_stop_ends_the_job_as_stopped(app_env):
    at = start_app(view="Train")
    fill_tiny_form(at, "ui-stop", epochs=400)
    at.button(key="vae-start").click()
    run(at)
    run_dir = RunDir(app_env / "ui-stop")
    wait_for(lambda: run_dir.status_path.is_file() and run_dir.read_status().get("state") == "running"
             and run_dir.read_status().get("step", 0) > 0, timeout=POLL_TIMEOUT, what="the first steps")
    run(at)
    at.button(key="vae-stop").click()
    run(at)
    poll_until(at, lambda a: f"{plain('ui-stop')}** · :orange[stopped]" in texts(a), "the run to stop", timeout=60)
    assert at.button(key="vae-resume")  # a stopped run can be resumed
    assert run_dir.last_checkpoint.is_file()


# ----------------------------------------------------------------------------- the Runs tab


def test_runs_tab_lists_overlays_and_deletes_after_confirmation(app_env):
    at = start_app(tab="Runs")
    table = at.dataframe[0].value
    assert set(table["run"]) == {"tiny-z2", "tiny-z3"}
    assert set(table["status"]) == {"finished"} and all(table["best validation"].str.contains("loss"))
    assert {t["name"] for t in chart(at, "runs-overlay")["data"]} >= {"tiny-z2 validation", "tiny-z3 validation"}

    at.selectbox(key="runs-detail").set_value("tiny-z3")
    run(at)
    at.button(key="runs-delete").click()
    run(at)
    assert f"Delete run **{plain('tiny-z3')}**" in at.warning[0].value
    at.button(key="runs-delete-cancel").click()
    run(at)
    assert (app_env / "tiny-z3").is_dir()
    at.button(key="runs-delete").click()
    run(at)
    at.button(key="runs-delete-confirm").click()
    run(at)
    assert not (app_env / "tiny-z3").exists()
    assert plain("Deleted run tiny-z3.") in texts(at)
    assert list(at.dataframe[0].value["run"]) == ["tiny-z2"]


# ----------------------------------------------------------------------------- functions behind the UI


def test_form_fields_cover_both_configs_except_the_device():
    names = [(f.section, f.name) for f in run_form.form_fields("vae")]
    assert ("model", "latent_dim") in names and ("model", "hidden") in names
    assert ("train", "epochs") in names and ("train", "device") not in names


def test_build_config_and_field_errors():
    values = {"model": {"latent_dim": 2, "hidden": "64,32"}, "train": {"epochs": 1, "lr": 2.0}}
    assert list(run_form.field_errors("vae", values)) == ["vae-train-lr"]
    config = run_form.build_config("vae", {"model": values["model"], "train": {"epochs": 1}}, "cpu")
    assert config.model.hidden == (64, 32) and config.train.device == "cpu"


def test_latent_to_pixel_hits_the_cell_centres():
    n = 5
    for col in range(n):
        for row in range(n):
            z1 = torch.distributions.Normal(0, 1).icdf(torch.tensor((col + 0.5) / n)).item()
            z2 = torch.distributions.Normal(0, 1).icdf(torch.tensor((n - row - 0.5) / n)).item()
            x, y = pictures.latent_to_pixel(z1, z2, n)
            assert abs(x - (2 + col * 30 + 14)) < 1e-3 and abs(y - (2 + row * 30 + 14)) < 1e-3


def test_mark_latent_draws_a_red_square():
    base = pictures.manifold_picture(torch.ones(9, 1, 28, 28), 3, scale=2)
    marked = np.asarray(pictures.mark_latent(base, 3, 2, 0.0, 0.0).convert("RGB"))
    red = np.all(marked == pictures.MARKER_RGB, axis=2)
    rows, cols = np.nonzero(red)
    assert len(rows) and abs(rows.mean() - base.shape[0] / 2) < 2 and abs(cols.mean() - base.shape[1] / 2) < 2
    assert np.all(marked[~red] == marked[~red][:, :1])  # everything else stays grey
    assert marked.max() == 255 and base.max() == pictures.MARKER - 1  # white stays white


def test_training_curves_thin_long_runs():
    n = 50_000
    train = {"step": list(range(n)), "loss": list(np.linspace(500, 100, n))}
    valid = {"step": [n - 1], "epoch": [1], "loss": [101.0]}
    figure = charts.training_curves(train, valid, "loss", uirevision="r")
    assert all(len(trace.x) <= charts.MAX_POINTS + 1 for trace in figure.data)
    assert figure.data[0].x[-1] == n - 1 and figure.layout.yaxis.type == "log"


def test_progress_gif_has_a_frame_per_epoch(trained_runs):
    data = run_monitor.progress_gif(RunDir(trained_runs / "tiny-z2"))
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.n_frames == 3


def test_format_duration():
    assert [duration(s) for s in (12, 75, 3725)] == ["12 s", "1 min 15 s", "1 h 02 min"]


def test_log_axes_name_their_ticks_over_a_decade():
    train = {"step": [0, 1, 2, 3], "loss": [30.0, 10.0, 5.0, 3.0]}
    valid = {"step": [3], "epoch": [1], "loss": [2.7]}
    figure = charts.overlay_curves({"run": (train, valid)}, "loss")
    assert figure.layout.yaxis.type == "log"
    assert list(figure.layout.yaxis.ticktext) == ["3", "5", "7", "10", "15", "20", "30"]  # one decade: fine steps


def test_long_curves_are_framed_after_their_first_steps():
    n = 1000
    values = [500.0] * 10 + [100.0 - i * 0.01 for i in range(n - 10)]
    figure = charts.training_curves({"step": list(range(n)), "loss": values}, {}, "loss", uirevision="r")
    low, high = figure.layout.yaxis.range
    assert 10**high < 150 and 10**low > 80  # the early 500s are off the initial view


def test_a_run_trained_as_a_cuda_graph_says_so(app_env):
    run_dir = RunDir(app_env / "tiny-z2")
    status = run_dir.read_status()
    run_dir.write_status(status.pop("state"), **{**status, "device": "cuda", "cuda_graph": True})
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["vae-view"] = "Train"
    at.session_state["vae-watched"] = "tiny-z2"
    run(at)
    assert f"**{plain('tiny-z2')}** · :gray[finished] on cuda (one CUDA graph per step)" in texts(at)
