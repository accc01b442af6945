"""Server time of the explorer's interactions (target: under 50 ms) and of each tab's first render.

    python -m benchmarks.explorer_latency [--moves 40] [--n 15] [--no-tabs]

Prints the median, 90th percentile and minimum of:

  * manifold move: compute   what a z1 slider move computes on vae-z2: decode one latent, enlarge
                             it, mark it on the cached manifold picture, encode both as PNG;
  * manifold move: fragment  a rerun of the manifold section alone (an ``st.fragment``, so that
                             is all a move reruns), timed around AppTest's ``run()``: script
                             thread, widget state and element messages included, an upper bound
                             of the real server time;
  * interpolation strip      the GAN tab's interpolation fragment after a change of its Steps
                             slider (3..24 images generated, strip and frame drawn);
  * flow samples at T        the Flow tab's samples fragment after a temperature move (64
                             samples through the inverse flow);
  * manifold move: page      for comparison, the same move if the section were not a fragment;
  * first render: <tab>      each main tab's first render in a new session (a fresh AppTest,
                             whole page), once every model is cached by an earlier session.

Uses the shipped checkpoints (a tiny 2-D VAE is trained when vae-z2.pt is missing). Figures vary
by 15-25% from run to run on a busy machine: compare medians measured side by side.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from genapp.checkpoint import load_model
from genapp.config import TrainConfig
from genapp.manifest import CHECKPOINTS_DIR
from genapp.models import RunConfig, VAEConfig
from genapp.runs import RunDir
from genapp.training import train
from genapp.ui import pictures, vae_tab

APP = Path(__file__).resolve().parents[1] / "app.py"


def tiny_checkpoint(folder: Path) -> Path:
    """Train a small 2-D VAE for one epoch on 2,000 images; returns its best.pt."""
    config = RunConfig("vae", VAEConfig(latent_dim=2), TrainConfig(epochs=1, train_size=2000, valid_size=500,
                                                                    device="cpu"))
    train(config, folder, "latency")
    return RunDir(folder / "latency").best_checkpoint


def png_bytes(picture: np.ndarray) -> bytes:
    """Encode an array as st.image(..., output_format="PNG") does."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def z_values(moves: int) -> list[float]:
    """Slider positions that sweep back and forth over [-3, 3] in the slider's 0.05 steps."""
    return [round(-3 + 0.05 * ((7 * i) % 121), 2) for i in range(1, moves + 1)]


def time_compute(model, n: int, moves: int) -> list[float]:
    base, scale = vae_tab.manifold_base(model, "bench", n)
    times = []
    for z1 in z_values(moves):
        start = time.perf_counter()
        digit = pictures.digit_picture(vae_tab.decode_mean(model, [z1, 0.5]))
        marked = pictures.mark_latent(base, n, scale, z1, 0.5)
        png_bytes(digit), pictures.png_bytes(marked)
        times.append(time.perf_counter() - start)
    return times


def fragment_script(checkpoint: str, n: int) -> None:
    """The manifold section alone, on the model at ``checkpoint`` (run by AppTest)."""
    import os

    from genapp.ui import vae_tab
    from genapp.ui.resources import model_from_file

    import streamlit as st

    st.session_state.setdefault("vae-manifold-n", n)
    model = model_from_file(checkpoint, os.path.getmtime(checkpoint), "vae")
    vae_tab.manifold_section(model, checkpoint)


def gan_interpolation_script(checkpoint: str) -> None:
    """The GAN tab's interpolation section alone (run by AppTest)."""
    import os

    from genapp.ui import gan_tab
    from genapp.ui.resources import model_from_file

    gan_tab.interpolation_section(model_from_file(checkpoint, os.path.getmtime(checkpoint), "gan"))


def flow_samples_script(checkpoint: str) -> None:
    """The Flow tab's samples-at-a-temperature section alone (run by AppTest)."""
    import os

    from genapp.ui import flow_tab
    from genapp.ui.resources import model_from_file

    flow_tab.samples_section(model_from_file(checkpoint, os.path.getmtime(checkpoint), "flow"))


def time_moves(at, moves: int, key: str = "vae-z1", values: list | None = None) -> list[float]:
    """Seconds of each ``run()`` after moving slider ``key`` (the first runs warm the caches)."""
    values = values or z_values(moves)
    at.run()
    at.slider(key=key).set_value(values[-1]).run()
    times = []
    for value in values[:moves]:
        slider = at.slider(key=key).set_value(value)
        start = time.perf_counter()
        slider.run()
        times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    return times


def sweep(low, high, step, moves: int) -> list:
    """``moves`` slider positions stepping back and forth over [low, high] in the slider's steps."""
    count = round((high - low) / step) + 1
    return [round(low + step * ((7 * i) % count), 4) for i in range(1, moves + 1)]


def report(name: str, seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    print(f"{name:<28} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   "
          f"min {ms[0]:6.1f} ms   ({len(ms)} runs)", flush=True)
    return {"name": name, "median_ms": statistics.median(ms), "p90_ms": p90, "min_ms": ms[0], "n": len(ms)}


def tab_first_renders(repeats: int) -> list[dict]:
    """Each main tab's first render in a new session, once every model is cached (AppTest, whole page)."""
    from streamlit.testing.v1 import AppTest

    warm = AppTest.from_file(str(APP), default_timeout=300).run()
    main_tabs = next(block for block in warm.main.children.values() if block.type == "tab_container")
    labels = [tab.label for tab in main_tabs.children.values()]
    for label in labels:  # the cold pass: loads and caches every tab's models
        warm.session_state["main-tab"] = label
        warm.run()
    rows = []
    for label in labels:
        times = []
        for _ in range(repeats):
            at = AppTest.from_file(str(APP), default_timeout=300)
            # A real server scans the installed packages for components once, at start-up; each
            # AppTest would scan again (about 0.5 s) inside its first run: reuse the first scan.
            at._bidi_component_manager = warm._bidi_component_manager
            at.session_state["main-tab"] = label
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
            assert not at.exception, (label, at.exception)
        rows.append(report(f"first render: {label} tab", times))
    return rows


def measure(moves: int = 40, n: int = 15, checkpoints: Path = CHECKPOINTS_DIR, tabs: bool = True) -> list[dict]:
    """Every explorer figure the suite prints; returns the rows."""
    from streamlit.testing.v1 import AppTest

    quiet_streamlit()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = checkpoints / "vae-z2.pt"
        if not checkpoint.is_file():
            print(f"{checkpoint} not found: training a tiny 2-D VAE for the measurement")
            checkpoint = tiny_checkpoint(Path(tmp))
        model = load_model(checkpoint)
        print(f"manifold: {checkpoint} (latent dimensions {model.latent_dim}); grid n = {n}; "
              f"torch threads {__import__('torch').get_num_threads()}")
        rows.append(report("manifold move: compute", time_compute(model, n, moves)))
        fragment = AppTest.from_function(fragment_script, args=(str(checkpoint), n), default_timeout=120)
        rows.append(report("manifold move: fragment", time_moves(fragment, moves)))

        gan = checkpoints / "gan.pt"
        if gan.is_file():
            at = AppTest.from_function(gan_interpolation_script, args=(str(gan),), default_timeout=120)
            rows.append(report("interpolation strip: fragment", time_moves(at, moves, "gan-steps", sweep(3, 24, 1, moves))))
        flow = checkpoints / "flow-mlp.pt"
        if flow.is_file():
            at = AppTest.from_function(flow_samples_script, args=(str(flow),), default_timeout=120)
            rows.append(report("flow samples at T: fragment",
                               time_moves(at, moves, "flow-temperature", sweep(0.0, 1.2, 0.05, moves))))

        # The whole page, VAE tab open, on the same checkpoint (offered as a run of a runs folder).
        runs = Path(tmp) / "runs" / "bench"
        (runs / "checkpoints").mkdir(parents=True)
        (runs / "config.json").write_text('{"family": "vae", "model": {}, "train": {}}')
        (runs / "checkpoints" / "best.pt").symlink_to(checkpoint.resolve())
        os.environ["GENAPP_RUNS_DIR"] = str(runs.parent)
        page = AppTest.from_file(str(APP), default_timeout=120)
        page.session_state["vae-manifold-n"] = n
        page.session_state["vae-source"] = "Run bench (best.pt)"
        rows.append(report("manifold move: whole page", time_moves(page, max(10, moves // 4))))
        if tabs:
            rows += tab_first_renders(max(3, moves // 10))
    return rows


def quiet_streamlit() -> None:
    """Calls of cached functions outside a script run warn once each ("missing ScriptRunContext")."""
    import logging

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--n", type=int, default=15, help="manifold grid size (the slider's default)")
    parser.add_argument("--no-tabs", action="store_true", help="skip the tabs' first renders")
    args = parser.parse_args()
    measure(args.moves, args.n, tabs=not args.no_tabs)


if __name__ == "__main__":
    main()
