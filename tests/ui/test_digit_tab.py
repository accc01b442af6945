"""The "Your digit" tab through AppTest on tiny checkpoints of all three families, and the canvas
path through the function that takes the drawn pixels (AppTest cannot draw on the canvas)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from genapp.evaluation.digit import EmptyDrawingError
from genapp.ui import digit_tab

from .conftest import APP, chart, run


@pytest.fixture
def families_env(monkeypatch, runs_copy, family_checkpoints):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_copy))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(family_checkpoints))


def drawing() -> np.ndarray:
    """What the canvas returns after a stroke: RGBA 280 x 280, a white bar on opaque black."""
    image = np.zeros((280, 280, 4), np.uint8)
    image[..., 3] = 255
    image[40:240, 130:152, :3] = 255
    return image


def start(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["main-tab"] = "Your digit"
    for key, value in state.items():
        at.session_state[key] = value
    return run(at)


def captions(at: AppTest) -> list[str]:
    return [caption for element in at.get("image") for caption in element.captions]


def assert_three_results(at: AppTest) -> None:
    labels = {m.label: m.value for m in at.metric}
    assert {"bits/dim", "percentile", "D(your digit)", "D(nearest G(z))"} <= set(labels), labels
    assert 0 <= float(labels["percentile"]) <= 100 and 0 < float(labels["D(your digit)"]) < 1
    assert "its reconstruction" in captions(at)
    assert any(c.startswith("nearest G(z): RMSE") for c in captions(at))
    names = [trace.get("name") for trace in chart(at, "digit-vae-latent")["data"]]
    assert "one σ of q(z|x)" in names and "your digit: mean of q(z|x)" in names
    assert chart(at, "digit-flow-bpd")["data"][0]["type"] == "histogram"
    assert any("ELBO of your digit" in c.value and "the test images average" in c.value for c in at.caption)
    assert any("% of the test images: " in c.value for c in at.caption)  # a quick flow measures all of them


def test_a_picked_test_image_is_seen_through_all_three_models(families_env):
    at = start(**{"digit-input": digit_tab.PICK, "digit-test-index": 3})
    assert "Your digit" in [t.label for t in at.tabs]
    assert any("test image #3" in c for c in captions(at))
    assert_three_results(at)
    # The close-up frames the ellipse: the axes shrink to a few σ around the mean.
    at.radio(key="digit-vae-frame").set_value(digit_tab.CLOSE_UP)
    run(at)
    layout = chart(at, "digit-vae-latent")["layout"]
    low, high = layout["xaxis"]["range"]
    assert 0 < high - low < 2


def test_a_slow_flow_ranks_the_digit_among_the_test_images_it_had_time_for(families_env, monkeypatch):
    monkeypatch.setattr(digit_tab, "BPD_SECONDS", 0.0)  # out of time after the first chunk
    store = digit_tab._test_bpd_store()  # the server keeps each flow's distribution: measure afresh, and forget it after
    store.clear()
    try:
        at = start(**{"digit-input": digit_tab.PICK, "digit-test-index": 3})
    finally:
        store.clear()
    text = " ".join(c.value for c in at.caption)
    assert f"of the first {digit_tab.BPD_CHUNK:,} test images (all this flow could measure in 0 s here)" in text
    assert any(m.label == "percentile" and f"{digit_tab.BPD_CHUNK:,} test images measured" in m.help for m in at.metric)


def test_an_empty_canvas_says_what_to_do(families_env):
    at = start()
    assert at.radio(key="digit-input").value == digit_tab.DRAW
    assert any("Nothing drawn yet" in i.value for i in at.info)
    assert not at.metric  # no results for nothing


def test_the_last_drawing_comes_back_when_the_canvas_reappears(families_env):
    """The canvas forgets its drawing when another tab is open; the tab hands it back and shows
    the results of the digit it made, without a new stroke."""
    digit = digit_tab.digit_from_canvas(drawing())
    strokes = {"objects": [{"type": "path", "path": [["M", 140, 40], ["L", 140, 240]], "stroke": "#FFFFFF"}]}
    at = start(**{"digit-drawing": (strokes, digit)})
    assert any("your drawing as a 28 × 28 MNIST digit" in c for c in captions(at))
    assert_three_results(at)


def test_the_canvas_pixels_become_an_mnist_digit():
    digit = digit_tab.digit_from_canvas(drawing())
    assert digit.dtype == torch.uint8 and digit.shape == (1, 1, 28, 28)
    rows, cols = np.nonzero(digit[0, 0].numpy() > 25)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 <= 4
    with pytest.raises(EmptyDrawingError, match="Nothing drawn"):
        digit_tab.digit_from_canvas(None)  # the canvas before any stroke
    blank = drawing()
    blank[..., :3] = 0
    with pytest.raises(EmptyDrawingError):
        digit_tab.digit_from_canvas(blank)  # after "clear"


def test_typicality_words():
    assert digit_tab.typicality(30) == "as typical as a test digit, or more"
    assert digit_tab.typicality(99.5) == "stranger than almost every test image"
