"""The speed suite: every figure of the speed targets, measured in one run.

    python -m benchmarks [--quick] [--marks vae[,gan,flow]] [--skip throughput,marks,explorer]

Runs, in order, and then prints one summary against the targets:

  1. throughput  (benchmarks/throughput.py): the float32 matmul peak, and for every family at its
                 seed batch size and at 512 the training images/s and share of peak, against a
                 straightforward DataLoader loop over the same model, timed in turns;
  2. marks       (benchmarks/marks.py): time for the real engine to reach a quality mark (the VAE's
                 by default; ``--marks vae,gan,flow`` adds the long ones: tens of minutes on a CPU);
  3. explorer    (benchmarks/explorer_latency.py): server time of the explorer's interactions and
                 of each tab's first render once the models are cached.

Each part also runs alone (``python -m benchmarks.throughput`` ...). Figures vary by 15-25% on a
busy machine: the ratios are measured side by side; compare medians, not single runs.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import time

import torch

from benchmarks import explorer_latency, marks, throughput

TARGETS = {"share_seed": 0.45, "share_512": 0.65, "ratio": 1.8, "vae_mark_s": 60.0, "interaction_ms": 50.0,
           "first_render_ms": 1000.0}


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summary(rows: list[dict], mark_results: list[dict], explorer_rows: list[dict]) -> None:
    print("\n== summary against the targets ==")
    for row in rows:
        if row["loop"] == "dataloader":
            continue
        seed = row["batch"] == throughput.BATCHES[row["family"]]
        need = TARGETS["share_seed"] if seed else TARGETS["share_512"]
        line = (f"{row['family']:<5} batch {row['batch']:>3} {row['loop']:<16} {100 * row['share']:5.1f}% of peak "
                f"(target {100 * need:.0f}%: {verdict(row['share'] >= need)})")
        if row["family"] in ("vae", "gan"):
            line += f"; {row['ratio']:.2f}x the DataLoader loop (target {TARGETS['ratio']}x: " \
                    f"{verdict(row['ratio'] >= TARGETS['ratio'])})"
        print(line)
    for result in mark_results:
        line = marks.describe(result)
        if result["mark"].startswith("VAE"):
            line += f" (target {TARGETS['vae_mark_s']:.0f} s: " \
                    f"{verdict(result['reached'] and result['seconds'] < TARGETS['vae_mark_s'])})"
        print(line)
    for row in explorer_rows:
        first = row["name"].startswith("first render")
        if row["name"] in ("manifold move: compute", "manifold move: whole page"):
            continue  # context, not an interaction's server time
        need = TARGETS["first_render_ms"] if first else TARGETS["interaction_ms"]
        print(f"{row['name']:<28} median {row['median_ms']:7.1f} ms, p90 {row['p90_ms']:7.1f} ms "
              f"(target {need:.0f} ms: {verdict(row['median_ms'] < need)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats (a smoke run, not figures)")
    parser.add_argument("--marks", default="vae", help="quality marks to time: vae,gan,flow")
    parser.add_argument("--skip", default="", help="parts to skip: throughput,marks,explorer")
    parser.add_argument("--no-compile", action="store_true", help="throughput: the eager step only")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    started = time.perf_counter()
    print(f"genapp speed suite, commit {commit()}, {time.strftime('%Y-%m-%d %H:%M')}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows, mark_results, explorer_rows = [], [], []
    if "throughput" not in skip:
        print("\n== training throughput ==", flush=True)
        result = throughput.measure(["vae", "gan", "flow"], repeats=2 if args.quick else 5,
                                    seconds=0.5 if args.quick else 1.5, compile=not args.no_compile)
        rows = throughput.report(result)
    if "marks" not in skip:
        print("\n== time to a quality mark ==", flush=True)
        for name in args.marks.split(","):
            print(marks.MARKS[name].name, flush=True)
            mark_results.append(marks.time_to_mark(marks.MARKS[name], 0.2 if args.quick else 1.0))
    if "explorer" not in skip:
        print("\n== explorer latency ==", flush=True)
        explorer_rows = explorer_latency.measure(moves=10 if args.quick else 40)
    summary(rows, mark_results, explorer_rows)
    print(f"\nsuite took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
