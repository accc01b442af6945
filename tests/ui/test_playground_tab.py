"""The Playground tab through AppTest: it renders each family's views, and Play, Pause, Step,
Reset, a knob changed mid-run and a failure preset with its fix all do what they say.

``run_every`` does not fire by itself in AppTest: each ``at.run()`` stands for one tick of the
live fragment (a whole-script run, which plays a frame the same way)."""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from genapp.playground.session import DEFAULT_STEPS_PER_FRAME
from genapp.ui.playground_tab import CURVES_EVERY

from .conftest import APP, chart, run


@pytest.fixture
def at(monkeypatch, tmp_path) -> AppTest:
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    app = AppTest.from_file(APP, default_timeout=120)
    app.session_state["main-tab"] = "Playground"
    return run(app)


def status(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("step "))


def steps(at: AppTest) -> int:
    return int(re.match(r"step ([\d,]+)", status(at)).group(1).replace(",", ""))


def test_the_tab_opens_paused_on_the_gan_and_the_ring_with_every_view(at):
    assert "Playground" in [t.label for t in at.tabs]
    assert at.selectbox(key="pg-family").value == "gan" and at.selectbox(key="pg-data").value == "ring"
    assert at.button(key="pg-play").label == "Play" and steps(at) == 0
    plane = chart(at, "pg-gan-plane")
    kinds = [trace["type"] for trace in plane["data"]]
    assert kinds.count("heatmap") == 1 and len(kinds) == 4  # D(x), real, fake, arrows
    losses = chart(at, "pg-gan-losses")
    assert any("2·ln 2" in a["text"] for a in losses["layout"]["annotations"])
    assert "modes covered" in " ".join(m.value for m in at.markdown)
    run(at)
    assert steps(at) == 0  # paused: a tick trains nothing


def test_play_trains_a_frame_a_tick_and_pause_stops_it(at):
    run(at.button(key="pg-play").click())
    assert at.button(key="pg-play").label == "Pause"
    first = steps(at)
    run(at)
    second = steps(at)
    assert second == first + DEFAULT_STEPS_PER_FRAME
    before = chart(at, "pg-gan-plane")["layout"]["images"][0]["source"]  # playing: the plane is a picture
    run(at)
    after = chart(at, "pg-gan-plane")["layout"]["images"][0]["source"]
    assert steps(at) == second + DEFAULT_STEPS_PER_FRAME and after.startswith("data:image/png") and after != before
    run(at.button(key="pg-play").click())
    assert at.button(key="pg-play").label == "Play"
    assert "images" not in chart(at, "pg-gan-plane")["layout"]  # paused: plotly's own points again
    paused = steps(at)
    run(at)
    assert steps(at) == paused


def test_step_on_the_gan_is_the_discriminator_then_the_generator(at):
    run(at.button(key="pg-step").click())
    assert "did one discriminator step" in status(at) and steps(at) == 0
    assert "next Step: the generator's" in status(at)
    run(at.button(key="pg-step").click())
    assert "did one generator step" in status(at) and steps(at) == 1
    run(at.button(key="pg-reset").click())
    assert steps(at) == 0


def test_a_knob_changed_mid_run_takes_effect_without_starting_over(at):
    run(at.button(key="pg-play").click())
    run(at)
    done = steps(at)
    run(at.slider(key="pg-steps").set_value(25))
    assert steps(at) == done + 25
    run(at.select_slider(key="pg-lr").set_value(3e-3))
    s = at.session_state["pg-session"]
    assert s.model.optimizers["discriminator"].param_groups[0]["lr"] == 3e-3 and steps(at) == done + 50
    run(at.selectbox(key="pg-gan-loss").set_value("minimax"))
    assert at.session_state["pg-session"].model.options.loss == "minimax" and steps(at) == done + 75


@pytest.mark.parametrize("family, keys", [("vae", ["pg-vae-plane", "pg-vae-codes", "pg-vae-losses"]),
                                          ("flow", ["pg-flow-plane", "pg-flow-nll", "pg-flow-forward", "pg-flow-inverse"])])
def test_the_other_families_draw_their_views(at, family, keys):
    run(at.selectbox(key="pg-family").set_value(family))
    assert at.selectbox(key="pg-data").value == "two-moons"
    assert chart(at, keys[0])["data"] and chart(at, keys[1]) is not None
    if family == "flow":
        forward = chart(at, "pg-flow-forward")
        titles = forward["data"][2]["text"]  # one label per panel
        assert len(titles) == 7 and titles[0] == "x (data space)" and all("log|det J|" in t for t in titles[1:])
    run(at.button(key="pg-play").click())
    for _ in range(CURVES_EVERY):
        run(at)
    assert steps(at) >= CURVES_EVERY * DEFAULT_STEPS_PER_FRAME
    for key in keys:  # the curves too, which grow every CURVES_EVERY frames while playing
        assert chart(at, key)["data"], key


def test_a_failure_preset_explains_itself_and_its_fix_switches_on_mid_run(at):
    run(at.selectbox(key="pg-preset").set_value("VAE: posterior collapse"))
    assert at.selectbox(key="pg-family").value == "vae"
    text = " ".join(m.value for m in at.markdown)
    assert "What to watch." in text and "Why." in text and "The fix." in text and "mean KL" in text
    assert at.number_input(key="pg-vae-kl_weight").value == 3.0
    run(at.button(key="pg-play").click())
    run(at)
    run(at.button(key="pg-fix").click())
    assert [s.value for s in at.success] == ["The fix is on."]
    model = at.session_state["pg-session"].model
    assert model.options.kl_weight == 1.0 and model.options.kl_anneal == 1000 and model.steps > 0


def test_the_training_form_offers_the_same_failures_on_mnist():
    from genapp.ui.presets import DESCRIPTIONS, preset_names, preset_values

    assert "Failure: minimax loss" in preset_names("gan") and "Failure: large KL weight" in preset_names("vae")
    assert preset_names("gan")[-1] == preset_names("vae")[-1] == "Custom"
    gan = preset_values("gan", "Failure: minimax loss")
    assert gan["model"]["generator_loss"] == "minimax" and gan["model"]["d_warmup_steps"] == 500
    vae = preset_values("vae", "Failure: large KL weight")
    assert vae["model"]["kl_weight"] == 10.0 and vae["train"] == {**preset_values("vae", "Quick")["train"]}
    assert "Look for" in DESCRIPTIONS["Failure: minimax loss"] and "KL curve" in DESCRIPTIONS["Failure: large KL weight"]


def test_a_curve_fits_its_y_axis_to_what_follows_its_start():
    from genapp.ui.playground_charts import curves

    history = [{"step": i, "nll": 10.0 - 0.1 * i} for i in range(50)]
    low, high = curves(history, {"nll": "NLL"}, "NLL", "nats", "r").layout.yaxis.range
    assert 4.5 < low < 5.1 and 9.0 < high < 9.5  # the first fifth (10 .. 9) is off the top


def test_a_rasterized_plane_draws_each_trace_where_the_axes_say():
    import base64
    import io

    import numpy as np
    from PIL import Image

    from genapp.ui.playground_charts import RASTER_PIXELS, rasterize

    uri = rasterize([dict(type="scatter", mode="markers", x=np.array([1.5]), y=np.array([-1.5]),
                          marker=dict(size=10, color="#ff0000", opacity=1.0))])
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))
    assert picture.shape == (RASTER_PIXELS, RASTER_PIXELS, 4)
    row, col = int(RASTER_PIXELS * 0.75), int(RASTER_PIXELS * 0.75)  # x = 1.5 of [-3, 3]; y = -1.5, rows top-down
    assert tuple(picture[row, col]) == (255, 0, 0, 255) and picture[RASTER_PIXELS // 4, RASTER_PIXELS // 4, 3] == 0


def test_a_link_opens_the_preset_it_names_and_a_bad_one_opens_free_play():
    from genapp.playground.presets import PRESETS

    name = next(n for n in PRESETS if PRESETS[n].family == "gan")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["main-tab"] = "Playground"
    at.query_params["playground-preset"] = name
    at.run()
    assert not at.exception
    assert at.selectbox(key="pg-preset").value == name and at.selectbox(key="pg-family").value == "gan"
    assert at.query_params["playground-preset"] == name  # and the view's link names it again
    bad = AppTest.from_file(APP, default_timeout=120)
    bad.query_params["main-tab"] = "Playground"
    bad.query_params["playground-preset"] = "no such preset"
    bad.run()
    assert not bad.exception
    assert bad.selectbox(key="pg-preset").value != "no such preset"
    assert any("playground-preset" in w.value for w in bad.warning)
