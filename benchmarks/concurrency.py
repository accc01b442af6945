"""Many users at once: interaction latency in real browser sessions while training jobs run.

    python -m benchmarks.concurrency [--sessions 10] [--rounds 4] [--jobs 2] [--browser-nice 19]

Starts ``streamlit run app.py`` (the repository's .streamlit/config.toml: 127.0.0.1) on the
shipped checkpoints and a temporary runs directory, launches ``--jobs`` training jobs through the
explorer's launcher (a VAE and a GAN on the full training set, in their own processes), and opens
``--sessions`` browser sessions in headless Chromium (Debian's /usr/bin/chromium driven by
Playwright; one browser context per session, so each is a separate Streamlit session). Each
session, all at once and with a short random pause between actions, repeats ``--rounds`` times:
move the VAE manifold's z1 slider, move z2, open the GAN tab, come back to the VAE tab.

An interaction's latency runs from the key press or click in the page until the page shows the
answer (the new decoded digit's caption, the other tab's content) and is idle, both read in the
page's clock, so it includes the round trip to the server, the script and the browser's rendering. Printed: median,
95th percentile and maximum, overall and per kind of interaction.

The browsers stand in for the students' own machines, yet here they share the server's cores:
they run at the lowest CPU priority (``--browser-nice 19``), so that they take what the server and
the jobs leave (the jobs themselves run ``GENAPP_JOB_NICE`` = 10 below the server, as the
explorer starts them); ``--browser-nice 0`` lets them compete on equal terms.

Then each session types its own run name in the VAE training form and one changes its runs
directory; every session must still show its own values (sessions never leak into each other),
and both jobs must still be training.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.browser import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, healthy
from genapp.config import TrainConfig
from genapp.models import GANConfig, RunConfig, VAEConfig
from genapp.jobs.local import JobTable, run_state, start_run, stop_run
from genapp.runs import RunDir

REPO = Path(__file__).resolve().parents[1]
SLIDER = ".st-key-vae-z1 input[type=range]"  # the VAE explorer's manifold is on the page

def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def start_jobs(runs_dir: Path, count: int) -> tuple[JobTable, list[RunDir]]:
    """A VAE and a GAN (alternating) on all 50k training images, for far longer than the benchmark."""
    jobs, runs = JobTable(), []
    for i in range(count):
        train = TrainConfig(epochs=1000, batch_size=128, device="cpu", quality_every=0)
        config = (RunConfig("vae", VAEConfig(latent_dim=2), train) if i % 2 == 0
                  else RunConfig("gan", GANConfig(), train))
        name = f"load-{config.family}-{i}"
        start_run(config, runs_dir, name, jobs, max_jobs=count)
        runs.append(RunDir(runs_dir / name))
    wait(lambda: all(run_state(r, jobs).state == "running" for r in runs), 180, "the training jobs to run")
    return jobs, runs


async def interact(page, what: str, action, answered: str, arg=None) -> float:
    """Seconds from ``action`` (a key press or click, on a settled page) until the page shows its
    answer and is idle again: ``answered``, a JS predicate of ``arg``, holds. Read in the page's
    clock, so it includes the round trip, the script and the rendering of the result."""
    await page.wait_for_selector(IDLE)
    t0 = await page.evaluate("performance.now()")
    await action()
    try:
        handle = await page.wait_for_function(
            f"(arg) => (({answered})(arg) && document.querySelector('{IDLE}')) ? performance.now() : null",
            arg=arg, timeout=300_000, polling="raf")
    except Exception:
        await page.screenshot(path="/tmp/genapp-concurrency-stuck.png")
        raise SystemExit(f"{what}: no answer within 300 s (screenshot /tmp/genapp-concurrency-stuck.png)")
    return (await handle.json_value() - t0) / 1000


# The caption under the decoded digit: "decoded at z = (0.05, 0.00)".
DECODED = """() => [...document.querySelectorAll('[data-testid=stImageCaption]')]
    .map(e => e.innerText).find(t => t.includes('decoded at z')) || ''"""


async def session(browser, url: str, index: int, rounds: int, latencies: list, rng: random.Random):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(180_000)
    await page.goto(url)
    await page.wait_for_selector(IDLE)
    await page.wait_for_selector(SLIDER, state="attached")
    for _ in range(rounds):
        for kind, key, press in (("manifold z1", "vae-z1", "ArrowRight"), ("manifold z2", "vae-z2", "ArrowLeft")):
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            thumb = page.locator(f".st-key-{key} input[type=range]")

            async def move(thumb=thumb, press=press):
                await thumb.focus()
                await thumb.press(press)

            before = await page.evaluate(DECODED)
            changed = f"(before) => {{ const now = ({DECODED})(); return now && now !== before; }}"
            latencies.append((kind, await interact(page, kind, move, changed, before)))
        for kind, tab, ready in (("tab: GAN", "GAN", ".st-key-gan-source"), ("tab: VAE", "VAE", SLIDER)):
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            target = page.get_by_role("tab", name=tab, exact=True)
            shown = "(selector) => document.querySelector(selector) !== null"
            latencies.append((kind, await interact(page, kind, target.click, shown, ready)))
    return context, page


async def set_own_values(page, index: int) -> None:
    """This session's own run name in the VAE form (and, for session 0, another runs directory)."""
    await page.get_by_role("tab", name="Train", exact=True).click()
    field = page.locator(".st-key-vae-run-name input")
    await field.fill(f"session-{index}")
    await field.press("Enter")
    await page.wait_for_selector(IDLE)
    if index == 0:
        runs = page.locator(".st-key-runs-dir input")
        await runs.fill("/tmp/genapp-session-0-elsewhere")
        await runs.press("Enter")
        await page.wait_for_selector(IDLE)


async def own_values(page) -> tuple[str, str]:
    return (await page.locator(".st-key-vae-run-name input").input_value(),
            await page.locator(".st-key-runs-dir input").input_value())


def cpu_seconds() -> dict[int, tuple[int, float]]:
    """{pid: (parent pid, CPU seconds used)} of every process (Linux; {} elsewhere)."""
    table, tick = {}, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def descendants(table: dict[int, tuple[int, float]], root: int) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def cpu_split(before: dict, after: dict, server: int, jobs: list[int]) -> dict[str, float]:
    """CPU seconds used between two ``cpu_seconds()`` by the server, the jobs and the browsers
    (every other descendant of this process, Chromium and Playwright's driver)."""
    def used(pids) -> float:
        return sum(after[p][1] - before.get(p, (0, 0.0))[1] for p in pids if p in after)

    browsers = descendants(after, os.getpid()) - {server, *jobs}
    return {"server": used([server]), "jobs": used(jobs), "browsers": used(browsers)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def drive(url: str, sessions: int, rounds: int, runs_dir: Path, chromium: str) -> tuple[list, dict]:
    """(kind of interaction, seconds) of every interaction, and ``cpu_seconds()`` at their end."""
    from playwright.async_api import async_playwright

    latencies: list[tuple[str, float]] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        # Every session loads the page first (a first render is not an interaction), then all act at once.
        opened = await asyncio.gather(*(session(browser, url, i, rounds, latencies, random.Random(i))
                                        for i in range(sessions)))
        cpu_after = cpu_seconds()  # while the browsers still exist
        pages = [page for _, page in opened]
        for i, page in enumerate(pages):
            await set_own_values(page, i)
        for i, page in enumerate(pages):
            name, folder = await own_values(page)
            expected = "/tmp/genapp-session-0-elsewhere" if i == 0 else str(runs_dir)
            assert (name, folder) == (f"session-{i}", expected), f"session {i} shows {(name, folder)}"
        await browser.close()
    return latencies, cpu_after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of four interactions per session")
    parser.add_argument("--jobs", type=int, default=2, help="training jobs running meanwhile")
    parser.add_argument("--browser-nice", type=int, default=19, help="CPU niceness of the browsers (0-19)")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"needs {CHROMIUM} (apt-get install -y chromium) and the playwright package")

    with tempfile.TemporaryDirectory() as tmp:
        chromium = Path(tmp) / "chromium"  # the browser, at the chosen priority
        chromium.write_text(f'#!/bin/sh\nexec nice -n {args.browser_nice} {CHROMIUM} "$@"\n')
        chromium.chmod(0o755)
        runs_dir = Path(tmp) / "runs"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, GENAPP_RUNS_DIR=str(runs_dir), GENAPP_MAX_JOBS=str(args.jobs))
        log = open(Path(tmp) / "server.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.port", str(port)], cwd=REPO, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        jobs, runs = JobTable(), []
        try:
            wait(lambda: healthy(url), 90, "the streamlit server")
            jobs, runs = start_jobs(runs_dir, args.jobs)
            print(f"{args.sessions} browser sessions (nice {args.browser_nice}), {args.jobs} training jobs running "
                  f"({', '.join(r.name for r in runs)}), {os.cpu_count()} CPU cores", flush=True)
            started, cpu_before = time.perf_counter(), cpu_seconds()
            latencies, cpu_after = asyncio.run(drive(url, args.sessions, args.rounds, runs_dir, str(chromium)))
            elapsed = time.perf_counter() - started
            job_pids = [jobs.get(r.path.parent, r.name).process.pid for r in runs]
            split = cpu_split(cpu_before, cpu_after, server.pid, job_pids)
            still = [run_state(r, jobs).state for r in runs]
            steps = [r.read_status().get("step", 0) for r in runs]
        except BaseException:
            log.flush()
            print("server log, last lines:\n" + "\n".join(
                (Path(tmp) / "server.log").read_text().splitlines()[-20:]), file=sys.stderr)
            raise
        finally:
            for run in runs:
                if run_state(run, jobs).active:
                    stop_run(run, jobs)
            for run in runs:
                job = jobs.get(run.path.parent, run.name)
                if job is not None:
                    job.process.wait(60)
            server.terminate()
            server.wait(30)
            log.close()

    values = [seconds for _, seconds in latencies]
    print(f"{len(values)} interactions in {elapsed:.0f} s; jobs {still}, at steps {steps}")
    print(f"CPU used meanwhile (of {os.cpu_count() * elapsed:.0f} core-seconds): "
          + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in split.items()))
    print(f"{'interaction':<14}{'n':>5}{'median':>10}{'p95':>10}{'max':>10}")
    kinds = sorted({kind for kind, _ in latencies})
    for kind, rows in [("all", values)] + [(k, [s for kk, s in latencies if kk == k]) for k in kinds]:
        print(f"{kind:<14}{len(rows):>5}{statistics.median(rows):>9.2f}s{percentile(rows, 0.95):>9.2f}s"
              f"{max(rows):>9.2f}s")
    print("sessions kept their own values: yes")


if __name__ == "__main__":
    main()
