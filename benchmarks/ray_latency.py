"""What a Ray cluster adds to a job's start: time from submit to the first metric line and to the
first sample grid, local backend against Ray, median of 5 (target: Ray adds under 5 s).

    python -m benchmarks.ray_latency [--n 5] [--address http://HEAD:8265]

Without ``--address`` a private head is started on 127.0.0.1 (``tests.cluster.head``: 2 CPUs, its
own temp dir and HOME) and stopped at the end. Each repeat submits the same tiny VAE run (1 epoch
on 512 images) through the backend's ``submit``, as the app's Start button does, and polls its run
directory every 20 ms: ``metrics.jsonl``'s first complete line, then ``samples/epoch-0000.png``
(the fixed-noise grid the engine draws before training). Backends take turns (L, R, L, R, ...), each
run waits for the previous one to end, and one unmeasured run of each warms the caches first (the
first Ray job also uploads the working directory: that cold start is printed on its own).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from genapp.config import TrainConfig
from genapp.jobs import backend
from genapp.models import RunConfig, VAEConfig
from genapp.runs import ACTIVE_STATES, RunDir

POLL_S = 0.02


def tiny_run() -> RunConfig:
    return RunConfig("vae", VAEConfig(latent_dim=2, hidden=(64, 32)),
                     TrainConfig(epochs=1, batch_size=64, train_size=512, valid_size=256, device="cpu",
                                 sample_count=16, log_every=4))


def first_line(run: RunDir) -> bool:
    try:
        return b"\n" in run.metrics_path.read_bytes()[:4096]
    except OSError:
        return False


def time_one(jobs, runs_dir: Path, name: str, timeout: float = 300) -> tuple[float, float]:
    """(seconds to the first metric line, seconds to the first grid) of one submitted run."""
    run = RunDir(runs_dir / name)
    grid = run.sample_path(0)
    start = time.perf_counter()
    jobs.submit(tiny_run(), runs_dir, name)
    to_metric = to_grid = None
    while to_metric is None or to_grid is None:
        now = time.perf_counter() - start
        if now > timeout:
            raise RuntimeError(f"{jobs.name}: run {name} showed nothing in {timeout:.0f} s ({jobs.status(run).error})")
        if to_grid is None and grid.is_file():
            to_grid = now
        if to_metric is None and first_line(run):
            to_metric = now
        time.sleep(POLL_S)
    deadline = time.monotonic() + timeout
    while jobs.status(run).state in (*ACTIVE_STATES, "starting") and time.monotonic() < deadline:
        time.sleep(0.2)  # the next run starts on an idle machine
    jobs.reap()
    return to_metric, to_grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="measured runs per backend (default 5)")
    parser.add_argument("--address", default=None, help="an existing head's dashboard (default: start one)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    head = None
    if args.address is None:
        from tests.cluster.head import RayHead

        head = RayHead(cpus=2)
        os.environ.update(head.env)
        began = time.perf_counter()
        head.start()
        print(f"private Ray head at {head.address}: answered in {time.perf_counter() - began:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="ray-latency-") as tmp:
            os.environ["GENAPP_QUEUE_DIR"] = str(Path(tmp) / "queue")  # a queue of its own
            runs_dir = Path(tmp) / "runs"
            backends = {"local": backend("local"), "ray": backend("ray", args.address or head.address)}
            for name, jobs in backends.items():
                metric, grid = time_one(jobs, runs_dir, f"warm-{name}")
                print(f"cold start, {name}: first metric line {metric:.2f} s, first grid {grid:.2f} s")
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in backends}
            for i in range(args.n):
                for name, jobs in backends.items():
                    times[name].append(time_one(jobs, runs_dir, f"{name}-{i}"))
            print(f"\nsubmit -> first output, median of {args.n} (min..max), tiny VAE run, 2-CPU machine")
            print(f"{'backend':<8} {'first metric line':>26} {'first sample grid':>26}")
            medians = {}
            for name, pairs in times.items():
                cells = []
                for k in (0, 1):
                    values = [p[k] for p in pairs]
                    medians[name, k] = statistics.median(values)
                    cells.append(f"{statistics.median(values):6.2f} s ({min(values):.2f}..{max(values):.2f})")
                print(f"{name:<8} {cells[0]:>26} {cells[1]:>26}")
            added = [medians["ray", k] - medians["local", k] for k in (0, 1)]
            print(f"Ray adds {added[0]:+.2f} s to the first metric line, {added[1]:+.2f} s to the first grid "
                  f"(target: under 5 s): {'met' if max(added) < 5 else 'NOT met'}")
    finally:
        if head is not None:
            head.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
