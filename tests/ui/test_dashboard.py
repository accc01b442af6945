"""The dashboard at TensorBoard's level (issue 19): smoothing and x axis of the live curves, runs
side by side in the Runs tab (sample grids under one epoch slider, overlaid curves)."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

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


@pytest.fixture
def shipped_history(app_env, pretrained_dir, tmp_path, monkeypatch) -> Path:
    """A checkpoints folder whose manifest ships a history for vae-z2 (a copy of run tiny-z3,
    with its epoch-2 grid gone, as a run with snapshots every few epochs would have)."""
    folder = tmp_path / "checkpoints"
    shutil.copytree(pretrained_dir, folder)
    history = folder / "history" / "vae-z2"
    shutil.copytree(app_env / "tiny-z3", history)
    (history / "samples" / "epoch-0002.png").unlink()
    (folder / "MANIFEST.json").write_text(json.dumps({"checkpoints": {
        "vae-z2": {"family": "vae", "history": "history/vae-z2"},
        "outside": {"family": "vae", "history": "../../elsewhere"}}}))  # never read outside the folder
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(folder))
    return history


def test_runs_side_by_side_under_one_epoch_slider_with_the_same_smoothing(shipped_history):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["main-tab"] = "Runs"
    run(at)
    compare = at.multiselect(key="runs-compare")
    assert "pretrained vae-z2" in compare.options and "pretrained outside" not in compare.options
    compare.set_value(["tiny-z2", "pretrained vae-z2"])
    run(at)
    slider = at.select_slider(key="runs-epoch")
    assert slider.options == ["0", "1", "2"] and slider.value == 2
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions == ["tiny-z2, epoch 2", "pretrained vae-z2, epoch 1 (its last before 2)"]
    slider.set_value(1)
    run(at)
    assert [c for image in at.get("image") for c in image.captions] == ["tiny-z2, epoch 1", "pretrained vae-z2, epoch 1"]
    at.slider(key="runs-smoothing").set_value(0.9)
    run(at)
    figure = chart(at, "runs-overlay")
    traces = {t["name"]: t for t in figure["data"]}
    assert {"tiny-z2 train", "tiny-z2 validation", "pretrained vae-z2 train", "pretrained vae-z2 validation"} <= set(traces)
    history = MetricsHistory(RunDir(shipped_history))
    history.refresh()
    assert values(traces["pretrained vae-z2 train"]["y"]) == pytest.approx(
        list(debiased_ema(history.columns("train")["loss"], 0.9)), rel=1e-6)
    assert figure["layout"]["xaxis"]["title"]["text"] == "epoch"


def test_with_no_runs_the_shipped_histories_can_still_be_compared(shipped_history, tmp_path, monkeypatch):
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["main-tab"] = "Runs"
    run(at)
    assert at.multiselect(key="runs-compare").value == ["pretrained vae-z2"]
    assert at.select_slider(key="runs-epoch").options == ["0", "1"]  # its grid of epoch 2 is gone
    assert [c for image in at.get("image") for c in image.captions] == ["pretrained vae-z2, epoch 1"]
    assert {t["name"] for t in chart(at, "runs-overlay")["data"]} >= {"pretrained vae-z2 validation"}
