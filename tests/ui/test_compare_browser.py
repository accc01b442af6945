"""The Compare tab in headless Chromium (as in test_e2e_browser.py): the shipped checkpoints' table
and charts, a run added from the picker, and the report zip downloaded through the real button,
whose contents are built only when it is clicked (a path AppTest cannot take). Saves
tests/artifacts/compare.png. Skips without /usr/bin/chromium or playwright."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from genapp.manifest import CHECKPOINTS_DIR

from .test_e2e_browser import ARTIFACTS, WIDTH, browser_page, streamlit_server, wait_idle


@pytest.fixture
def compare_page(tmp_path, runs_copy):
    """A browser page on a server with the shipped checkpoints and the tiny test runs."""
    with streamlit_server(tmp_path / "server.log", GENAPP_RUNS_DIR=str(runs_copy),
                          GENAPP_CHECKPOINTS_DIR=str(CHECKPOINTS_DIR)) as url:
        with browser_page(url, accept_downloads=True) as page:
            yield page


def test_compare_tab_table_charts_and_report_download(compare_page):
    page = compare_page
    page.get_by_role("tab", name="Compare", exact=True).click()
    wait_idle(page)
    table = page.locator("[data-testid=stTable]")
    for text in ("vae-z20", "flow-mlp", "flow-conv", "real MNIST", "test set, dequantized 8-bit", "IWAE bound, k=1000"):
        assert text in table.inner_text()
    bars = page.evaluate("""() => Array.from(document.querySelectorAll('.st-key-compare-likelihood .js-plotly-plot'))
        .map(gd => gd.calcdata.map(trace => trace.length))""")
    assert bars == [[2, 2]]  # two VAE bars, two flow bars

    page.locator(".st-key-compare-runs").click()
    page.get_by_role("option", name="tiny-z2 (vae)").click()
    page.keyboard.press("Escape")
    wait_idle(page)
    assert "run tiny-z2" in table.inner_text() and "validation set, binarized" in table.inner_text()

    height = page.evaluate("document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": min(8000, height + 120)})
    page.wait_for_timeout(800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare.png"))

    with page.expect_download() as download:
        page.locator(".st-key-compare-report button").click()
    assert download.value.suggested_filename.startswith("genapp-report-")
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = set(archive.namelist())
    assert {"README.txt", "comparison.csv", "runs/tiny-z2/metrics.csv", "runs/tiny-z2/figures/elbo.png",
            "runs/tiny-z2/figures/manifold.png", "pretrained/gan/interpolation.png"} <= names
    assert "run tiny-z2" in archive.read("comparison.csv").decode()
