"""End to end in a real headless browser: Debian's chromium driven by Playwright for Python.

Starts ``streamlit run app.py`` on a free port against temporary runs and checkpoints, moves the
manifold sliders, starts a tiny run from the Train tab and watches its curve grow; on tiny GAN and
flow checkpoints, moves the GAN's interpolation sliders and the flow's temperature and looks inside
the flow; draws a digit on the Your digit canvas and sees it through all three models. Saves a screenshot of each tab to tests/artifacts/. Skips when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from genapp.data import load_mnist
from genapp.runs import RunDir

from .conftest import REPO, wait_for, wait_for_state

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
WIDTH = 1400

if not CHROMIUM.is_file():
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the Python package) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log_path: Path, **env: str):
    """``streamlit run app.py`` on 127.0.0.1 and a free port, ``env`` added to its environment;
    yields its URL once it answers, and stops it afterwards."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=dict(os.environ, **env), stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _healthy(url), timeout=90, what="the streamlit server")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def server(tmp_path, runs_copy, family_checkpoints):
    """A streamlit server on the test runs and checkpoints; yields (url, runs folder)."""
    with streamlit_server(tmp_path / "server.log", GENAPP_RUNS_DIR=str(runs_copy),
                          GENAPP_CHECKPOINTS_DIR=str(family_checkpoints)) as url:
        yield url, runs_copy


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@contextlib.contextmanager
def browser_page(url: str | None = None, timeout_ms: int = 120_000, **page_options):
    """A page of headless chromium, WIDTH x 1000, opened at ``url`` and left once the app is idle
    (none: a blank page); the browser is closed afterwards."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000}, **page_options)
            page.set_default_timeout(timeout_ms)
            if url is not None:
                page.goto(url)
                wait_idle(page)
            yield page
        finally:
            browser.close()


@pytest.fixture
def page(server):
    with browser_page(server[0]) as page:
        yield page


def wait_idle(page) -> None:
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(500)
    page.wait_for_selector(IDLE)


def screenshot(page, name: str) -> None:
    """The whole page: the viewport is stretched to the app's height first (the app scrolls
    inside its own container, so Playwright's full_page alone would cut it)."""
    height = page.evaluate("document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": min(8000, height + 120)})
    page.wait_for_timeout(800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size({"width": WIDTH, "height": 1000})


def press_slider(page, key: str, keypress: str, times: int) -> None:
    thumb = page.locator(f".st-key-{key} input[type=range]")
    thumb.focus()
    for _ in range(times):
        thumb.press(keypress)
    wait_idle(page)


def slide(page, key: str, keypress: str, shows: str, tries: int = 3) -> None:
    """One key press on a slider until the page shows ``shows``: right after a fragment rerun a
    slider can be swapped for a fresh one and lose a press, so a lost press is repeated (use
    with End/Home, or with a single step whose result ``shows`` names)."""
    for attempt in range(tries):
        press_slider(page, key, keypress, 1)
        try:
            page.get_by_text(shows).wait_for(timeout=15_000)
            return
        except sync_api.TimeoutError:
            if attempt == tries - 1:
                raise


def fill(page, key: str, value: str) -> None:
    field = page.locator(f".st-key-{key} input")
    field.fill(value)
    field.press("Enter")
    wait_idle(page)


def image_sources(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=stMain] img", "els => els.map(e => e.src)")


def image_captions(page, key: str | None = None) -> list[str]:
    """The captions of the images on the page (or inside the keyed container), in page order."""
    scope = f".st-key-{key} " if key else "[data-testid=stMain] "
    return page.eval_on_selector_all(f"{scope}[data-testid=stImageCaption]", "els => els.map(e => e.innerText)")


def open_explore(page, family_tab: str) -> None:
    page.get_by_role("tab", name=family_tab, exact=True).click()
    wait_idle(page)
    page.get_by_role("tab", name="Explore", exact=True).click()
    wait_idle(page)


def scatter_point_position(page, trace: int) -> tuple[float, float]:
    """Page coordinates of the first point of a trace of the latent scatter."""
    page.locator(".st-key-vae-latent").scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let the scroll settle before reading positions
    position = page.evaluate("""(trace) => {
        const gd = document.querySelector('.st-key-vae-latent .js-plotly-plot');
        const layout = gd._fullLayout, data = gd._fullData[trace], box = gd.getBoundingClientRect();
        return [box.left + layout.xaxis._offset + layout.xaxis.l2p(data.x[0]),
                box.top + layout.yaxis._offset + layout.yaxis.l2p(data.y[0])];
    }""", trace)
    return position[0], position[1]


def curve_points(page) -> int:
    """Points plotted in the training chart's per-step trace (0 before the chart exists)."""
    return page.evaluate("""() => {
        const gd = document.querySelector('.st-key-vae-curves .js-plotly-plot');
        if (!gd || !gd.calcdata) return 0;
        const i = gd.data.findIndex(t => t.name === 'per step');
        return i < 0 ? 0 : gd.calcdata[i].length;
    }""")


def test_explore_slide_train_and_watch(page, server):
    _, runs = server
    # Explore: the pretrained (tiny) 2-D model, steered with the keyboard on the sliders.
    assert page.get_by_text("decoded at z = (0.00, 0.00)").is_visible()
    before = image_sources(page)
    press_slider(page, "vae-z1", "ArrowRight", 10)
    press_slider(page, "vae-z2", "ArrowLeft", 4)
    page.get_by_text("decoded at z = (0.50, -0.20)").wait_for()
    changed = [a for a, b in zip(image_sources(page), before) if a != b]
    assert len(changed) == 2  # the decoded digit and the marked manifold; nothing else

    # A click on a point of the latent scatter shows that test image and its reconstruction.
    x, y = scatter_point_position(page, trace=1)
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    first_one = int((load_mnist().test.labels == 1).nonzero()[0])  # trace 1 = digit 1, in test-set order
    page.get_by_text(f"test image {first_one} (digit 1)").first.wait_for()
    wait_idle(page)
    screenshot(page, "explore")

    # Train: a tiny run from the form; its curve grows while the page polls.
    page.get_by_role("tab", name="Train").click()
    wait_idle(page)
    fill(page, "vae-model-hidden", "64,32")
    fill(page, "vae-train-epochs", "25")
    fill(page, "vae-train-batch_size", "32")
    page.get_by_text("More options").click()
    fill(page, "vae-train-train_size", "512")
    fill(page, "vae-train-valid_size", "128")
    fill(page, "vae-run-name", "browser-run")
    page.locator(".st-key-vae-start button").click()
    counts = []
    run = RunDir(runs / "browser-run")

    def grown() -> bool:
        counts.append(curve_points(page))
        return len(set(c for c in counts if c)) >= 2

    wait_for(grown, timeout=180, interval=1.0, what="the training curve to grow")
    screenshot(page, "train-running")
    assert wait_for_state(run, ("finished", "failed"), timeout=240) == "finished"
    page.get_by_text("finished").first.wait_for()
    wait_idle(page)
    assert curve_points(page) >= max(counts)
    screenshot(page, "train")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the progress as a GIF").click()
    gif = Path(download.value.path())
    assert download.value.suggested_filename == "browser-run-samples.gif" and gif.read_bytes()[:6] == b"GIF89a"

    # Runs: the new run beside the fixtures' runs.
    page.get_by_role("tab", name="Runs").click()
    wait_idle(page)
    page.get_by_text("3 runs in").wait_for()
    screenshot(page, "runs")


def test_gan_and_flow_explorers(page):
    # GAN → Explore: more interpolation steps redraw the strip; the frame slider walks along it.
    open_explore(page, "GAN")
    page.get_by_text("frame 1 of 10 (t = 0.00)").wait_for()
    before = image_sources(page)
    slide(page, "gan-steps", "End", "frame 1 of 24 (t = 0.00)")
    after_steps = image_sources(page)
    assert len(after_steps) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(after_steps, before)) if a != b]
    assert len(changed) == 1  # the strip (frame 1 is the same start image); the grid above is untouched
    slide(page, "gan-frame", "End", "frame 24 of 24 (t = 1.00)")
    slide(page, "gan-frame", "ArrowLeft", "frame 23 of 24 (t = 0.96)")
    after_frame = image_sources(page)
    changed = [i for i, (a, b) in enumerate(zip(after_frame, after_steps)) if a != b]
    assert len(changed) == 1 and changed[0] > max(i for i, (a, b) in enumerate(zip(after_steps, before)) if a != b)
    screenshot(page, "gan")

    # Flow → Explore: a higher temperature redraws the samples; inside the flow, a row of layers.
    open_explore(page, "Flow")
    page.get_by_text("64 samples at T = 0.70").wait_for()
    before = image_sources(page)
    slide(page, "flow-temperature", "End", "64 samples at T = 1.20")
    after = image_sources(page)
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(after, before)) == 1  # the samples grid alone
    page.get_by_text("Inside the flow").wait_for()
    captions = image_captions(page)
    forward = captions[captions.index("input"):captions.index("latent")]
    inverse = captions[captions.index("latent"):]
    assert forward == ["input", "logit", "1: coupling", "2: coupling"], forward
    assert len(inverse) == len(forward) and all("coupling" in c for c in inverse[1:-1]), inverse
    screenshot(page, "flow")


def draw_stroke(page, points: list[tuple[float, float]]) -> None:
    """One stroke with the mouse through ``points`` (fractions of the canvas's width and height)."""
    canvas = page.locator(".st-key-digit-canvas canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def test_your_digit_draw_a_stroke_and_see_it_through_every_model(page):
    # Your digit: an empty canvas asks for a drawing; a stroke (a "7") gets all three results.
    page.get_by_role("tab", name="Your digit", exact=True).click()
    wait_idle(page)
    page.get_by_text("Nothing drawn yet").wait_for()
    draw_stroke(page, [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)])
    page.get_by_text("D(your digit)").wait_for()
    wait_idle(page)
    captions = image_captions(page)
    assert "What the models see: your drawing as a 28 × 28 MNIST digit" in captions
    assert "its reconstruction" in captions  # VAE
    assert any(c.startswith("nearest G(z): RMSE") for c in captions)  # GAN
    assert page.get_by_text("How typical is it?").is_visible()  # flow
    star = page.evaluate("""() => {
        const gd = document.querySelector('.st-key-digit-vae-latent .js-plotly-plot');
        const i = gd.data.findIndex(t => t.name === 'your digit: mean of q(z|x)');
        return i < 0 ? null : gd.calcdata[i].length;
    }""")
    assert star == 1
    first = image_sources(page)

    # Another stroke changes the digit, and every model's picture with it.
    draw_stroke(page, [(0.35, 0.55), (0.65, 0.55)])
    wait_idle(page)
    page.wait_for_timeout(500)
    wait_idle(page)
    assert sum(a != b for a, b in zip(image_sources(page), first)) >= 4
    screenshot(page, "digit")
