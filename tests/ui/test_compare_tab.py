"""The Compare tab through AppTest: the shipped checkpoints' measured figures in one table with
both charts, a run added and measured on the test set, and the report button."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from genapp.manifest import CHECKPOINTS_DIR, read_manifest

from .conftest import APP, chart, run

MANIFEST = read_manifest(CHECKPOINTS_DIR / "MANIFEST.json")
PRETRAINED = ["ae-z2", "vae-z2", "vae-z20", "gan", "flow-conv", "flow-mlp"]


@pytest.fixture
def compare_env(monkeypatch, runs_copy):
    """The shipped checkpoints (small, in the repository) and the tiny test runs."""
    monkeypatch.setenv("GENAPP_RUNS_DIR", str(runs_copy))
    monkeypatch.setenv("GENAPP_CHECKPOINTS_DIR", str(CHECKPOINTS_DIR))
    return runs_copy


def open_compare() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["main-tab"] = "Compare"
    return run(at)


def table(at: AppTest):
    (element,) = at.table
    return element.value


def test_every_pretrained_model_in_one_table_with_both_charts(compare_env):
    at = open_compare()
    frame = table(at)
    assert list(frame.columns) == [*PRETRAINED, "real MNIST"]
    nll = MANIFEST["vae-z20"]["test"]["test_iwae_nll_k1000_nats"]
    assert frame.loc["NLL (nats)", "vae-z20"] == f"{nll:,.2f}"
    assert frame.loc["Likelihood on", "vae-z20"] == "test set, binarized (fixed draw)"
    assert frame.loc["Likelihood on", "flow-mlp"] == "test set, dequantized 8-bit"
    assert frame.loc["Bits/dim", "flow-mlp"] == f"{MANIFEST['flow-mlp']['test']['test_bpd']:.3f}"
    assert frame.loc["NLL (nats)", "gan"] == "—" and "no likelihood" in frame.loc["Likelihood on", "gan"]
    assert frame.loc["FID ↓", "gan"] == f"{MANIFEST['gan']['test']['quality_fid']:.1f}"
    assert frame.loc["Scores from", "flow-mlp"] == "at export, 10,000 samples"
    assert frame.loc["Parameters", "flow-mlp"] == f"{MANIFEST['flow-mlp']['test']['parameters']:,}"
    for name in PRETRAINED:  # timed live
        assert float(frame.loc["Samples/s", name].replace(",", "")) > 0
    assert "(floor" in frame.loc["FID ↓", "real MNIST"]

    likelihood = chart(at, "compare-likelihood")
    vae_bars, flow_bars = likelihood["data"]
    assert vae_bars["x"] == ["vae-z2", "vae-z20"] and flow_bars["x"] == ["flow-conv", "flow-mlp"]
    assert [a["text"] for a in likelihood["layout"]["annotations"]][:2] == [
        "VAE: bits per binary pixel<br>(binarized MNIST)", "Flow: bits per 8-bit pixel<br>(dequantized MNIST)"]
    quality = chart(at, "compare-quality")
    assert [trace["x"] for trace in quality["data"]] == [PRETRAINED] * 3
    assert quality["layout"]["yaxis"]["type"] == "log"
    floor = MANIFEST["gan"]["test"]["quality_fid_real_floor"]
    assert any(abs(shape["y0"] - floor) < 1e-4 for shape in quality["layout"]["shapes"])  # the dashed floor
    assert any("not comparable" in c.value for c in at.caption)
    (button,) = at.get("download_button")
    assert button.label == "Download the report (0 runs + 6 pretrained, .zip)"
    assert not any(b.key == "compare-measure" for b in at.button)  # the manifest measured them all


def test_a_run_added_shows_its_logged_figures_until_measured_on_the_test_set(compare_env):
    at = open_compare()
    run(at.multiselect(key="compare-runs").set_value(["tiny-z2"]))
    frame = table(at)
    assert "run tiny-z2" in frame.columns
    assert frame.loc["Likelihood on", "run tiny-z2"] == "validation set, binarized (fixed draw)"
    assert frame.loc["Estimate", "run tiny-z2"] == "−ELBO bound"
    assert frame.loc["FID ↓", "run tiny-z2"] == "—"
    assert chart(at, "compare-likelihood")["data"][0]["x"] == ["vae-z2", "vae-z20", "run tiny-z2"]
    (button,) = at.get("download_button")
    assert button.label == "Download the report (1 run + 6 pretrained, .zip)"

    at.number_input(key="compare-k").set_value(5)
    at.selectbox(key="compare-samples").set_value(0)
    run(at.button(key="compare-measure").click())
    frame = table(at)
    assert frame.loc["Likelihood on", "run tiny-z2"] == "test set, binarized (fixed draw)"
    assert frame.loc["Estimate", "run tiny-z2"] == "IWAE bound, k=5"
    assert float(frame.loc["NLL (nats)", "run tiny-z2"].replace(",", "")) > 0
    assert not any(b.key == "compare-measure" for b in at.button)  # nothing left to measure
    run(at.checkbox(key="compare-report-pretrained").uncheck())
    (button,) = at.get("download_button")
    assert button.label == "Download the report (1 run, .zip)"
