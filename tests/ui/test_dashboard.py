"""The dashboard at TensorBoard's level (issue 19): smoothing and x axis of the live curves, runs
side by side in the Runs tab (sample grids under one epoch slider, overlaid curves)."""
from __future__ import annotations

import base64

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from genapp.runs.history import MetricsHistory
from genapp.runs import RunDir
from genapp.smoothing import debiased_ema

from .conftest import APP, chart, run


def values(array) -> list[float]:
    """A plotly JSON array as floats: a list, or plotly 7's typed array {"dtype", "bdata"}."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).astype(float).tolist()
    return [float(v) for v in array]


def test_the_monitors_smoothing_slider_and_x_axis_redraw_the_curves(app_env):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["vae-view"] = "Train"
    at.session_state["vae-watched"] = "tiny-z2"
    run(at)
    history = MetricsHistory(RunDir(app_env / "tiny-z2"))
    history.refresh()
    loss = history.columns("train")["loss"]
    figure = chart(at, "vae-curves")
    assert at.slider(key="vae-smoothing").value == pytest.approx(0.6)  # TensorBoard's default
    assert figure["data"][1]["name"] == "smoothed"
    at.slider(key="vae-smoothing").set_value(0.9)
    run(at)
    figure = chart(at, "vae-curves")
    assert figure["layout"]["xaxis"]["title"]["text"] == "step"
    assert figure["layout"]["uirevision"] == "tiny-z2"  # a new smoothing keeps the zoom
    assert values(figure["data"][1]["y"]) == pytest.approx(list(debiased_ema(loss, 0.9)))
    assert values(figure["data"][0]["y"]) == pytest.approx(list(loss))  # the raw values, faint behind
    assert figure["data"][0]["opacity"] < 0.5
    at.session_state["vae-curve-x"] = "epoch"
    run(at)
    figure = chart(at, "vae-curves")
    assert figure["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert figure["layout"]["uirevision"] == "tiny-z2:epoch"
