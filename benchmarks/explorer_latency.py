"""Server time of a slider move on the VAE manifold (the explorer's target: under 50 ms).

    python -m benchmarks.explorer_latency [--checkpoint checkpoints/vae-z2.pt] [--moves 40]

Prints the median and 90th percentile over ``--moves`` moves of z1 of:

  * compute:   what a move computes: decode one latent, enlarge it, mark the latent on the
               cached manifold picture, and encode both pictures as PNG (as st.image does);
  * fragment:  a rerun of the manifold section alone (it is an ``st.fragment``, so that is all a
               move reruns), timed around AppTest's ``run()``: script thread, widget state and
               the messages of its elements included; an upper bound of the real server time;
  * page:      for comparison, a rerun of the whole Explore tab, which is what a move would cost
               if the section were not a fragment (all model-derived work cached).

Without ``--checkpoint`` it uses checkpoints/vae-z2.pt, or trains a tiny 2-D VAE for a few seconds
when that file is not there (the timings hardly depend on the weights). Figures vary by 15-25%
from run to run on a busy machine: compare medians measured side by side.
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
from genapp.config import RunConfig, TrainConfig
from genapp.manifest import CHECKPOINTS_DIR
from genapp.models import VAEConfig
from genapp.training import RunDir, train
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


def time_moves(at, moves: int) -> list[float]:
    """Seconds of each ``run()`` after moving the z1 slider (the first runs warm the caches)."""
    at.run()
    at.slider(key="vae-z1").set_value(0.3).run()
    times = []
    for z1 in z_values(moves):
        slider = at.slider(key="vae-z1").set_value(z1)
        start = time.perf_counter()
        slider.run()
        times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    return times


def report(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    print(f"{name:<10} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   "
          f"min {ms[0]:6.1f} ms   ({len(ms)} moves)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINTS_DIR / "vae-z2.pt")
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--n", type=int, default=15, help="manifold grid size (the slider's default)")
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if not checkpoint.is_file():
            print(f"{checkpoint} not found: training a tiny 2-D VAE for the measurement")
            checkpoint = tiny_checkpoint(Path(tmp))
        model = load_model(checkpoint)
        print(f"model: {checkpoint} (latent dimensions {model.latent_dim}); grid n = {args.n}; "
              f"torch threads {__import__('torch').get_num_threads()}")

        report("compute", time_compute(model, args.n, args.moves))

        fragment = AppTest.from_function(fragment_script, args=(str(checkpoint), args.n), default_timeout=120)
        report("fragment", time_moves(fragment, args.moves))

        # The whole page, Explore tab open, on the same checkpoint (offered as a run of a runs folder).
        runs = Path(tmp) / "runs" / "bench"
        (runs / "checkpoints").mkdir(parents=True)
        (runs / "config.json").write_text('{"family": "vae", "model": {}, "train": {}}')
        (runs / "checkpoints" / "best.pt").symlink_to(checkpoint.resolve())
        os.environ["GENAPP_RUNS_DIR"] = str(runs.parent)
        os.environ["GENAPP_CHECKPOINTS_DIR"] = str(Path(tmp) / "no-pretrained")
        page = AppTest.from_file(str(APP), default_timeout=120)
        page.session_state["vae-manifold-n"] = args.n
        report("page", time_moves(page, max(10, args.moves // 4)))


if __name__ == "__main__":
    main()
