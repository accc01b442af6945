"""Shareable views (issue 19): a link opens the same view; the view's changes reach the link; a
link with bad or stale values opens the defaults with a short notice, never an exception."""
from __future__ import annotations

import textwrap

import pytest
from streamlit.testing.v1 import AppTest

from genapp.ui import url_state

from .conftest import APP, run


def open_link(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    return run(at)


def link(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def notices(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "link" in w.value]


def test_a_link_opens_the_vae_manifold_at_its_point_and_grid(app_env):
    at = open_link(**{"main-tab": "VAE", "vae-view": "Explore", "vae-source": "Pretrained vae-z2",
                      "vae-manifold-n": "9", "vae-z1": "1.5", "vae-z2": "-0.75"})
    assert at.slider(key="vae-manifold-n").value == 9
    assert (at.slider(key="vae-z1").value, at.slider(key="vae-z2").value) == (1.5, -0.75)
    assert any("decoded at z = (1.50, -0.75)" in c for image in at.get("image") for c in image.captions)
    assert not notices(at)
    assert link(at)["vae-z1"] == "1.5" and link(at)["vae-manifold-n"] == "9"


def test_the_link_follows_the_view(app_env):
    at = open_link()
    assert link(at) == {"main-tab": "VAE", "vae-view": "Explore", "vae-source": "Pretrained vae-z2",
                        "vae-manifold-n": "15", "vae-z1": "0", "vae-z2": "0"}
    run(at.slider(key="vae-z2").set_value(1.25))  # inside the manifold's fragment
    assert link(at)["vae-z2"] == "1.25"
    at.session_state["main-tab"] = "Runs"
    run(at)
    assert link(at) == {"main-tab": "Runs"}  # another tab shares its own keys only
    at.session_state["main-tab"] = "VAE"
    at.session_state["vae-view"] = "Train"
    run(at)
    assert link(at) == {"main-tab": "VAE", "vae-view": "Train"}
    # And that link, opened anew, opens the Train view.
    again = open_link(**link(at))
    assert again.session_state["vae-view"] == "Train" and again.number_input(key="vae-train-epochs")


@pytest.mark.parametrize("params, named", [
    ({"vae-z1": "abc"}, "vae-z1"),
    ({"vae-z1": "nan"}, "vae-z1"),
    ({"vae-z1": "7"}, "vae-z1"),  # past the slider's end: the slider would raise
    ({"vae-manifold-n": "2.5"}, "vae-manifold-n"),
    ({"main-tab": "Nope"}, "main-tab"),
    ({"vae-view": "Elsewhere"}, "vae-view"),
    ({"colour": "red"}, "colour"),
    ({"vae-source": "x" * 500}, "vae-source"),
])
def test_bad_values_open_the_defaults_with_a_short_notice(app_env, params, named):
    at = open_link(**params)  # run() asserts no exception
    (notice,) = notices(at)
    assert f"`{named}`" in notice
    assert at.slider(key="vae-z1").value == 0.0 and at.slider(key="vae-manifold-n").value == 15
    assert named not in link(at) or link(at)[named] != params[named]
    run(at)
    assert not notices(at)  # short: gone at the next interaction


def test_a_model_that_is_not_here_opens_the_first_with_a_notice(app_env):
    at = open_link(**{"vae-source": "Run deleted-long-ago (best.pt)", "vae-z1": "1"})
    assert at.selectbox(key="vae-source").value == "Pretrained vae-z2"
    (notice,) = notices(at)
    assert "`vae-source` = Run deleted-long-ago (best.pt) is not available here" in notice
    assert at.slider(key="vae-z1").value == 1.0  # the rest of the link still applies


def test_a_link_opens_the_gan_interpolation_and_the_flow_samples(monkeypatch, runs_copy, family_checkpoints):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_copy))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(family_checkpoints))
    at = open_link(**{"main-tab": "GAN", "gan-endpoints": "two seeds", "gan-seed-start": "11", "gan-seed-end": "42",
                      "gan-steps": "7", "gan-mode": "linear", "gan-frame": "9"})
    assert (at.number_input(key="gan-seed-start").value, at.number_input(key="gan-seed-end").value) == (11, 42)
    assert at.slider(key="gan-steps").value == 7 and at.radio(key="gan-mode").value == "linear"
    captions = [c for image in at.get("image") for c in image.captions]
    assert "linear path, seeds 11 → 42, 7 steps" in captions
    (notice,) = notices(at)  # frame 9 of a 7-step path: the view shows frame 7 and says so
    assert "`gan-frame` = 9" in notice and at.slider(key="gan-frame").value == 7
    run(at.slider(key="gan-steps").set_value(12))
    assert link(at)["gan-steps"] == "12" and link(at)["gan-seed-end"] == "42"

    at = open_link(**{"main-tab": "Flow", "flow-temperature": "0.35", "flow-noise-seed": "1234"})
    assert at.slider(key="flow-temperature").value == pytest.approx(0.35)
    captions = [c for image in at.get("image") for c in image.captions]
    assert any("samples at T = 0.35 (noise seed 1234)" in c for c in captions)
    assert link(at)["flow-noise-seed"] == "1234" and not notices(at)


PLAYGROUND = textwrap.dedent('''
    import streamlit as st
    from genapp.ui import url_state

    labels = ["VAE", "Playground"]
    notice = url_state.restore(labels)
    tabs = st.tabs(labels, key="main-tab", on_change="rerun")
    if tabs[1].open:
        with tabs[1]:
            presets = ["xor", "spiral", "two moons"]
            if st.session_state.get("playground-preset") not in presets:
                st.session_state["playground-preset"] = presets[0]
            st.selectbox("Preset", presets, key="playground-preset")
    url_state.publish(notice)
''')


def test_a_playground_preset_is_shared_once_that_widget_exists(tmp_path):
    """The generic path: a tab labelled Playground whose selectbox has the key playground-preset."""
    script = tmp_path / "playground_app.py"
    script.write_text(PLAYGROUND)
    at = AppTest.from_file(str(script), default_timeout=30)
    at.query_params["main-tab"] = "Playground"
    at.query_params["playground-preset"] = "spiral"
    run(at)
    assert at.selectbox(key="playground-preset").value == "spiral" and not notices(at)
    run(at.selectbox(key="playground-preset").set_value("two moons"))
    assert link(at) == {"main-tab": "Playground", "playground-preset": "two moons"}
    stale = AppTest.from_file(str(script), default_timeout=30)
    stale.query_params["main-tab"] = "Playground"
    stale.query_params["playground-preset"] = "renamed-preset"
    run(stale)
    assert stale.selectbox(key="playground-preset").value == "xor"
    assert "`playground-preset` = renamed-preset is not available here" in notices(stale)[0]


def test_fields_parse_only_what_their_widget_accepts():
    assert url_state.FIELDS["vae-manifold-n"].parse("30") == 30
    assert url_state.FIELDS["flow-temperature"].parse("1.2") == 1.2
    for key, text in [("vae-manifold-n", "31"), ("vae-manifold-n", "1e1"), ("flow-temperature", "inf"),
                      ("gan-mode", "SLERP"), ("gan-seed-start", "-1"), ("gan-seed-start", str(2**31)),
                      ("playground-preset", "a\nb"), ("playground-preset", "")]:
        with pytest.raises(ValueError):
            url_state.FIELDS[key].parse(text)
    assert url_state.FIELDS["vae-z1"].format(0.35000000000000003) == "0.35"


def test_the_fields_ranges_are_the_widgets_own(monkeypatch, runs_copy, family_checkpoints):
    """FIELDS repeats each widget's range (so a link can never hand a widget a value it raises
    on): a changed range in a tab fails here until FIELDS follows it."""
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_copy))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(family_checkpoints))
    checked = set()
    for tab, extra in (("VAE", {}), ("GAN", {}), ("GAN", {"gan-endpoints": "two samples of the grid"}), ("Flow", {})):
        at = open_link(**{"main-tab": tab, **extra})
        for widget in [*at.slider, *at.number_input, *at.radio, *at.selectbox]:
            field = url_state.FIELDS.get(widget.key)
            if field is None or widget.key in checked:
                continue
            checked.add(widget.key)
            if field.kind in ("int", "float"):
                if type(widget).__name__ == "Selectbox":  # the GAN's sample numbers
                    low, high = min(map(int, widget.options)), max(map(int, widget.options))
                else:
                    low, high = widget.min, widget.max
                if widget.key == "gan-frame":  # 1 .. the path's steps: the tab clamps it itself
                    assert field.low == low and field.high == url_state.FIELDS["gan-steps"].high
                else:
                    assert (field.low, field.high) == (low, high), widget.key
            elif field.kind == "choice":
                # AppTest shows a radio's options as formatted: compare the count and the value
                assert len(field.choices) == len(widget.options) and widget.value in field.choices, widget.key
    assert {"vae-manifold-n", "vae-z1", "vae-z2", "gan-seed-start", "gan-cell-start", "gan-steps", "gan-mode",
            "gan-endpoints", "flow-temperature"} <= checked
