"""Shareable views in a real browser (issue 19): a copied link opens the same view, the address
bar follows the controls, a bad link opens the defaults with a notice. Also measures how long a
link with state takes to open its view against a plain load (medians of alternating loads, in
tests/artifacts/url_timings.json) and saves screenshots there."""
from __future__ import annotations

import json
import os
import statistics
import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from .test_e2e_browser import ARTIFACTS, WIDTH, screenshot, streamlit_server, wait_idle
from .test_e2e_browser import browser_page as blank_page

VAE_LINK = {"main-tab": "VAE", "vae-view": "Explore", "vae-source": "Pretrained vae-z2", "vae-manifold-n": "9",
            "vae-z1": "1.5", "vae-z2": "-0.75"}
GAN_LINK = {"main-tab": "GAN", "gan-endpoints": "two seeds", "gan-seed-start": "11", "gan-seed-end": "42",
            "gan-steps": "7", "gan-mode": "linear"}


@pytest.fixture
def browser_page(tmp_path, runs_copy, family_checkpoints):
    with streamlit_server(tmp_path / "server.log", GENAPP_RUNS_DIR=str(runs_copy),
                          GENAPP_CHECKPOINTS_DIR=str(family_checkpoints)) as url:
        with blank_page() as page:
            yield url, page


def open_view(page, url: str, shows: str) -> float:
    """Seconds from navigation until the page shows ``shows`` and the script is idle."""
    start = time.perf_counter()
    page.goto(url)
    page.get_by_text(shows, exact=False).first.wait_for()
    wait_idle(page)
    return time.perf_counter() - start


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_a_copied_link_opens_the_same_view(browser_page):
    url, page = browser_page
    # Warm the server's caches (models, MNIST) once, so the timings compare loads, not first use.
    open_view(page, url, "decoded at z = (0.00, 0.00)")
    open_view(page, f"{url}/?{urlencode(VAE_LINK)}", "decoded at z = (1.50, -0.75)")
    plain, linked = [], []
    for _ in range(int(os.environ.get("URL_TIMING_REPEATS", "3"))):
        plain.append(open_view(page, url, "decoded at z = (0.00, 0.00)"))
        linked.append(open_view(page, f"{url}/?{urlencode(VAE_LINK)}", "decoded at z = (1.50, -0.75)"))
    assert query(page) == VAE_LINK  # the address bar still holds the whole view
    screenshot(page, "url-vae-link")
    timings = {"plain_load_s": plain, "vae_link_s": linked, "plain_median_s": statistics.median(plain),
               "vae_link_median_s": statistics.median(linked)}

    # Moving a slider updates the address bar; opening that address elsewhere shows the same.
    thumb = page.locator(".st-key-vae-z1 input[type=range]")
    thumb.focus()
    thumb.press("ArrowRight")
    page.get_by_text("decoded at z = (1.55, -0.75)").wait_for()
    wait_idle(page)
    page.wait_for_function("() => window.location.search.includes('vae-z1=1.55')")
    copied = page.url
    other = page.context.browser.new_page(viewport={"width": WIDTH, "height": 1000})  # a new session
    other.set_default_timeout(120_000)
    open_view(other, copied, "decoded at z = (1.55, -0.75)")
    other.close()

    # The GAN's interpolation, from its link.
    timings["gan_link_s"] = open_view(page, f"{url}/?{urlencode(GAN_LINK)}", "linear path, seeds 11 → 42, 7 steps")
    screenshot(page, "url-gan-link")

    # A bad link: the defaults, with a notice, no exception.
    open_view(page, f"{url}/?main-tab=VAE&vae-z1=abc&vae-source=gone", "decoded at z = (0.00, 0.00)")
    page.get_by_text("could not be opened exactly").wait_for()
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "url-bad-link")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "url_timings.json").write_text(json.dumps(timings, indent=2))
    print(json.dumps(timings))


def test_the_dashboard_in_the_browser_smoothing_and_runs_side_by_side(browser_page):
    """Screenshots of the monitor's smoothing and x-axis controls and of the Runs tab's side by
    side view; the smoothed curve the browser draws is TensorBoard's EMA of the run's losses."""
    url, page = browser_page
    open_view(page, f"{url}/?main-tab=VAE&vae-view=Train", "Smoothing")
    thumb = page.locator(".st-key-vae-smoothing input[type=range]")
    thumb.focus()
    thumb.press("End")  # 0.99
    page.locator(".st-key-vae-smoothing").get_by_text("0.99").first.wait_for()  # the value and the max
    wait_idle(page)
    drawn = page.evaluate("""() => {
        const gd = document.querySelector('.st-key-vae-curves .js-plotly-plot');
        return gd.calcdata.map(trace => ({name: trace[0].trace.name, y: trace.map(p => p.y)}));
    }""")
    smoothed = next(t["y"] for t in drawn if t["name"] == "smoothed")
    raw = next(t["y"] for t in drawn if t["name"] == "per step")
    from genapp.smoothing import debiased_ema
    assert smoothed == pytest.approx(list(debiased_ema(raw, 0.99)), rel=1e-4)
    screenshot(page, "monitor-smoothing")
    open_view(page, f"{url}/?main-tab=Runs", "Samples at epoch")
    page.get_by_text("tiny-z2, epoch 2").first.wait_for()
    page.get_by_text("tiny-z3, epoch 2").first.wait_for()
    screenshot(page, "runs-side-by-side")
