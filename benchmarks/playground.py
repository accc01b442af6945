"""The Playground's speed (issue 17): training steps per second, server time per frame, and
frames per second with several browser sessions playing at once.

    python -m benchmarks.playground [--repeats 5] [--frames 30] [--sessions 3] [--seconds 15] [--no-browser]

Prints, on one thread (``torch.set_num_threads(1)``, as the tab's fragment runs):

  * steps/s <family>    training steps per second of each toy model at its default batch (256)
                        on the data the tab opens with; median of ``--repeats`` runs of 300 steps
                        (targets: >= 300);
  * frame <family>      server time of one frame while playing, every view drawn: the frame's
                        training steps (10), the views' arrays, the plotly figures and their JSON
                        (what ``st.plotly_chart`` sends); median and 90th percentile of
                        ``--frames`` frames (target: <= 100 ms);
  * page tick <family>  the same frame as AppTest's ``run()`` of the whole page (the script
                        thread, widget state and every element's message): an upper bound;
  * browser fps         ``--sessions`` headless Chromium sessions (Debian's /usr/bin/chromium
                        through Playwright) open the Playground on one ``streamlit run app.py``,
                        press Play, and count the frames each shows over ``--seconds`` seconds
                        (the frame counter in the tab's status line; target: >= 3 fps each).

Figures vary by 15-25% on this busy 2-core machine: compare medians measured side by side.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plotly.io
import torch

from benchmarks.browser import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, healthy
from genapp.playground import build, make_data, train_steps
from genapp.playground.session import DEFAULT_DATA, PlaygroundSession

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("gan", "vae", "flow")


def steps_per_second(family: str, repeats: int, steps: int = 300) -> list[float]:
    model = build(family)
    data = make_data(DEFAULT_DATA[family], 2000)
    train_steps(model, data, 30)  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        train_steps(model, data, steps)
        rates.append(steps / (time.perf_counter() - started))
    return rates


def frame_times(family: str, frames: int) -> list[float]:
    """ms of one playing frame: training, views, figures and their JSON, as the tab draws them."""
    from genapp.ui import playground_tab
    import streamlit as st

    figures: list = []

    def capture(fig, **kwargs):
        figures.append(fig)

    s = PlaygroundSession(family=family, dataset=DEFAULT_DATA[family])
    real = st.plotly_chart
    st.plotly_chart = capture  # the figures only: no streamlit page here
    try:
        times = []
        for i in range(frames + 3):
            figures.clear()
            started = time.perf_counter()
            s.frame()
            playground_tab.draw(s)
            for fig in figures:
                plotly.io.to_json(fig, validate=False)
            if i >= 3:
                times.append(1000 * (time.perf_counter() - started))
        return times
    finally:
        st.plotly_chart = real


def page_ticks(family: str, frames: int) -> list[float]:
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("GENAPP_RUNS_DIR", tempfile.mkdtemp(prefix="pg-bench-runs-"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.session_state["main-tab"] = "Playground"
    at.run()
    if family != "gan":
        at.selectbox(key="pg-family").set_value(family).run()
    at.button(key="pg-play").click().run()
    times = []
    for i in range(frames + 2):
        started = time.perf_counter()
        at.run()
        if i >= 2:
            times.append(1000 * (time.perf_counter() - started))
    assert not at.exception, [e.message for e in at.exception]
    return times


# ----------------------------------------------------------------------------- browsers


FRAME = "() => { const e = document.querySelector('.st-key-pg-status'); return e ? e.innerText : ''; }"


def frame_number(text: str) -> int | None:
    match = re.search(r"frame ([\d,]+)", text)
    return int(match.group(1).replace(",", "")) if match else None


async def shown_frame(page) -> tuple[int, float]:
    """(the frame number the page shows, when it was read): polled, as the status line is
    briefly absent while the fragment redraws."""
    for _ in range(400):
        number = frame_number(await page.evaluate(FRAME))
        if number is not None:
            return number, time.monotonic()
        await asyncio.sleep(0.05)
    shot = Path(tempfile.gettempdir()) / f"pg-bench-no-counter-{id(page)}.png"
    await page.screenshot(path=str(shot))
    raise RuntimeError(f"the page shows no frame counter (screenshot: {shot})")


async def one_session(browser, url: str, family: str, seconds: float) -> tuple[float, str]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(180_000)
    await page.goto(url)
    await page.wait_for_selector(IDLE)
    await page.get_by_role("tab", name="Playground", exact=True).click()
    await page.wait_for_selector(".st-key-pg-play button")
    if family != "gan":
        await page.locator(".st-key-pg-family").click()
        await page.get_by_role("option", name={"vae": "VAE", "flow": "RealNVP flow"}[family]).click()
        await page.wait_for_selector(f".st-key-pg-{family}-hidden")
    for _ in range(4):  # a press that lands while the page redraws can be lost: repeat a lost one
        await page.locator(".st-key-pg-play button").click()
        try:
            await page.get_by_role("button", name="Pause").wait_for(timeout=15_000)
            break
        except Exception:
            if await page.get_by_role("button", name="Pause").count():
                break
    await asyncio.sleep(3)  # the first frames compile nothing, but the page settles
    first, started = await shown_frame(page)
    await asyncio.sleep(seconds)
    last, ended = await shown_frame(page)
    await context.close()
    return (last - first) / (ended - started), family


async def browsers(url: str, sessions: int, seconds: float) -> list[tuple[float, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(one_session(browser, url, FAMILIES[i % 3], seconds)
                                          for i in range(sessions)))
        finally:
            await browser.close()


def browser_fps(sessions: int, seconds: float) -> list[tuple[float, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs = tempfile.mkdtemp(prefix="pg-bench-runs-")
    env = dict(os.environ, GENAPP_RUNS_DIR=runs, OMP_NUM_THREADS="1")
    with open(Path(runs) / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.address", "127.0.0.1", "--server.port", str(port),
                                   "--browser.gatherUsageStats", "false"], cwd=REPO, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not healthy(url):
                if time.monotonic() > deadline:
                    raise RuntimeError("the streamlit server did not answer")
                time.sleep(0.5)
            return asyncio.run(browsers(url, sessions, seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(values):7.1f}  p90 {p90:7.1f}  min {ordered[0]:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-page", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, load average {os.getloadavg()[0]:.1f}")
    for family in FAMILIES:
        print(f"steps/s {family:5s} {summary(steps_per_second(family, args.repeats))}   (target >= 300)", flush=True)
    for family in FAMILIES:
        print(f"frame {family:5s} ms {summary(frame_times(family, args.frames))}   (target <= 100)", flush=True)
    if not args.no_page:
        for family in FAMILIES:
            print(f"page tick {family:5s} ms {summary(page_ticks(family, args.frames // 2))}", flush=True)
    if not args.no_browser:
        results = browser_fps(args.sessions, args.seconds)
        for fps, family in results:
            print(f"browser fps, {family} session of {args.sessions}: {fps:.2f}   (target >= 3)")


if __name__ == "__main__":
    main()
