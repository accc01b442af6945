"""The GPU path: training images/s of every family on a CUDA device, a check that the training
step never waits for the host, and the time the pretrained set takes to train there.

    python -m benchmarks.gpu [--repeats 3] [--seconds 0.5] [--budget 240] [--json PATH]

Models: the recipes of ``checkpoints/MANIFEST.json`` (VAE z=20 and z=2, the GAN with its averaged
generator, the small MLP flow, the conv flow) at the recipe's batch size and at 512, the conv flow
also at the seed's 64. Every loop keeps the data set on the device as one uint8 tensor indexed by
randperm slices, as the engine does:

  * eager:    ``model.prepare`` + ``model.train_step`` with fused Adam (the engine's step);
  * compiled: the same after ``model.compile_for_training()`` (what ``--compile true`` does);
  * graphed:  the engine's ``--cuda-graph`` step (``genapp/training/graphs.GraphedStep``): the
              whole step (forward, backward, clipping, Adam) captured once as a CUDA graph and
              replayed, one launch per step instead of hundreds. Each model's graphed step is
              timed alone, right after its capture, in a process of its own.

Host synchronisation: each model's engine step runs under ``torch.cuda.set_sync_debug_mode("error")``,
which raises at any operation that makes the host wait for the device.

The pretrained set: per recipe, epochs x steps per epoch / the measured steps/s of the loop it uses
(compiled or eager), plus per epoch the engine's validation and sample grid, timed here, and for the
GAN's recipe its 5,000-sample scores every 10 epochs, timed too. A projection from measured parts,
not one timed run. (The classifier trains on the CPU only and is left out.)

Variants are built in order of importance within ``--budget`` seconds (compiled ones last, as they
compile); what does not fit is listed as skipped. On a machine without CUDA, ``--device cpu`` runs
the eager and compiled loops as a smoke test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from benchmarks.throughput import engine_loop
from genapp import manifest
from genapp.data import load_mnist
from genapp.models import FAMILIES
from genapp.devices import device_name
from genapp.training.graphs import WARMUP_STEPS, GraphedStep

SEQUENCE = ("vae-z20", "gan", "flow-mlp", "flow-conv", "vae-z2")  # the most telling first, within the budget
RECIPE_LOOP = {True: "compiled", False: "eager"}


@dataclass
class Recipe:
    name: str
    family: str
    model: dict
    batch_size: int
    epochs: int = 0
    compile: bool = False
    quality_every: int = 0
    quality_samples: int = 0
    batches: tuple[int, ...] = ()


def recipes() -> list[Recipe]:
    """The pretrained recipes from the manifest; the conv flow (batch 256) is timed at the seed's 64 too."""
    entries = manifest.read_manifest()
    found = {}
    for name, entry in entries.items():
        if entry.get("family") not in FAMILIES or "train_config" not in entry:
            continue
        tc = entry["train_config"]
        found[name] = Recipe(name, entry["family"], entry["model_config"], tc["batch_size"], tc["epochs"],
                             bool(tc.get("compile")), tc.get("quality_every", 0), tc.get("quality_samples", 0))
    ordered = [found[n] for n in SEQUENCE if n in found] + [r for n, r in found.items() if n not in SEQUENCE]
    for r in ordered:
        extra = (64,) if r.name == "flow-conv" else ()
        r.batches = tuple(sorted({r.batch_size, 512, *extra}))
    return ordered


def new_model(recipe: Recipe, device: torch.device):
    torch.manual_seed(0)
    family = FAMILIES[recipe.family]
    return family(family.Config(**recipe.model)).to(device)


Runner = Callable[[int], None]


def built(recipe: Recipe, device: torch.device, batch_size: int):
    model = new_model(recipe, device)
    return model, model.configure_optimizers(model.default_train_config(batch_size=batch_size))


def eager(recipe: Recipe, images: torch.Tensor, batch_size: int, compile: bool = False) -> Runner:
    """The engine's eager step (compiled with ``compile``)."""
    model, optimizers = built(recipe, images.device, batch_size)
    if compile:
        model.compile_for_training()
    return engine_loop(model, lambda batch: model.train_step(batch, optimizers), images, batch_size)


def graphed(recipe: Recipe, images: torch.Tensor, batch_size: int) -> Runner:
    """The engine's graphed step (``GraphedStep``): a few ordinary steps, then one CUDA graph
    replayed on a static input batch. Warm up with more than ``WARMUP_STEPS`` steps."""
    model, optimizers = built(recipe, images.device, batch_size)
    return engine_loop(model, GraphedStep(model, optimizers), images, batch_size)


def sync_check(recipe: Recipe, images: torch.Tensor) -> str:
    """'none' if the engine's step runs under sync debug mode "error"; else the first complaint."""
    run = eager(recipe, images, recipe.batch_size)
    run(3)  # first steps may initialise (ActNorm reads its flag once)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        run(3)
        return "none"
    except RuntimeError as e:
        return str(e).strip().splitlines()[0][:200]
    finally:
        torch.cuda.set_sync_debug_mode(0)


@dataclass
class Variant:
    recipe: Recipe
    loop: str
    batch_size: int
    run: Runner | None  # None once timed (a graph, let go)
    steps: int = 0
    rates: list[float] = field(default_factory=list)  # images/s per turn


def timed(run: Runner, k: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(k)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def per_epoch_overhead(recipe: Recipe, images: torch.Tensor, valid: torch.Tensor) -> dict:
    """Seconds of the engine's per-epoch work besides the steps: validation and the sample grid;
    and of one sample-quality scoring, for recipes that score during training."""
    model = new_model(recipe, images.device).eval()
    out = {}
    with torch.no_grad():
        model.validate(valid)  # warm-up
        start = time.perf_counter()
        model.validate(valid)
        model.sample(64, generator=torch.Generator(device=images.device).manual_seed(0))
        if images.device.type == "cuda":
            torch.cuda.synchronize()
        out["epoch_extra_s"] = time.perf_counter() - start
    if recipe.quality_every and recipe.quality_samples:
        from genapp.evaluation.quality import sample_quality

        sample_quality(model, n=1000)  # loads the classifier and the reference statistics
        start = time.perf_counter()
        sample_quality(model, n=recipe.quality_samples)
        out["quality_s"] = time.perf_counter() - start
    return out


def measure(device: torch.device, repeats: int, seconds: float, budget: float, models: list[str] | None = None,
            loops: tuple[str, ...] = ("eager", "graphed", "compiled"), log=print) -> dict:
    started = time.perf_counter()
    mnist = load_mnist()
    images, valid = mnist.train.images.to(device), mnist.valid.images.to(device)
    plan = []  # (recipe, loop, batch): eager first, then graphed, then compiled (slowest to build)
    all_recipes = [r for r in recipes() if not models or r.name in models]
    if "eager" in loops:
        plan += [(r, "eager", b) for r in all_recipes for b in r.batches]
    if "graphed" in loops and device.type == "cuda":
        plan += [(r, "graphed", b) for r in all_recipes for b in r.batches]
    if "compiled" in loops:
        plan += [(r, "compiled", r.batch_size) for r in all_recipes if r.compile]
    variants, skipped, failed = [], [], []
    for recipe, loop, batch in plan:
        if time.perf_counter() - started > budget:
            skipped.append(f"{recipe.name} {loop} {batch}")
            continue
        log(f"  building {recipe.name} {loop} at batch {batch}", flush=True)
        try:
            run = {"eager": lambda: eager(recipe, images, batch), "compiled": lambda: eager(recipe, images, batch, True),
                   "graphed": lambda: graphed(recipe, images, batch)}[loop]()
            run(WARMUP_STEPS + 2)  # the graphed step captures at the step after WARMUP_STEPS
            per_step = timed(run, 3, device) / 3
        except Exception as e:  # one loop that cannot run here must not cost the others
            failed.append(f"{recipe.name} {loop} {batch}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            log(f"    failed: {failed[-1]}", flush=True)
            continue
        variant = Variant(recipe, loop, batch, run, steps=max(3, round(seconds / per_step)))
        variants.append(variant)
        if loop == "graphed":  # timed at once and let go: a graph holds its own memory pool
            variant.rates = [variant.steps * batch / timed(run, variant.steps, device) for _ in range(repeats)]
            variant.run = None
            torch.cuda.synchronize()
    for turn in range(repeats):
        log(f"  turn {turn + 1}/{repeats}", flush=True)
        for v in variants:
            if v.run is not None:
                v.rates.append(v.steps * v.batch_size / timed(v.run, v.steps, device))
    with_extras = "eager" in loops
    syncs = {r.name: sync_check(r, images) for r in all_recipes} if device.type == "cuda" and with_extras else {}
    overheads = {}
    for r in all_recipes:
        if r.epochs and with_extras:
            try:
                overheads[r.name] = per_epoch_overhead(r, images, valid)
            except Exception as e:
                failed.append(f"{r.name} per-epoch overhead: {type(e).__name__}: {e}")
    return {"device": device_name(device), "torch": torch.__version__, "recipes": all_recipes,
            "variants": variants, "skipped": skipped, "failed": failed, "syncs": syncs,
            "overheads": overheads, "seconds": time.perf_counter() - started}


def rate(result: dict, name: str, loop: str, batch: int) -> float | None:
    for v in result["variants"]:
        if (v.recipe.name, v.loop, v.batch_size) == (name, loop, batch):
            return statistics.median(v.rates)
    return None


def projection(result: dict) -> list[dict]:
    """Training time of each pretrained recipe on this device, from the measured parts."""
    rows = []
    for r in result["recipes"]:
        if not r.epochs:
            continue
        steps = r.epochs * (50_000 // r.batch_size)
        row = {"name": r.name, "epochs": r.epochs, "steps": steps, "loop": RECIPE_LOOP[r.compile]}
        for loop in (row["loop"], "graphed"):
            images_per_s = rate(result, r.name, loop, r.batch_size)
            if images_per_s is None:
                continue
            extra = result["overheads"].get(r.name, {})
            seconds = steps * r.batch_size / images_per_s + r.epochs * extra.get("epoch_extra_s", 0.0)
            if r.quality_every:
                seconds += (r.epochs // r.quality_every) * extra.get("quality_s", 0.0)
            row[f"{loop}_s"] = seconds
        rows.append(row)
    return rows


def report(result: dict) -> dict:
    print(f"device: {result['device']}, torch {result['torch']}; measured in {result['seconds']:.0f} s")
    print(f"\n{'model':<10} {'batch':>5}  {'loop':<9} {'images/s':>10} {'spread':>19} {'ms/step':>8}")
    table = []
    for v in result["variants"]:
        median = statistics.median(v.rates)
        table.append({"model": v.recipe.name, "batch": v.batch_size, "loop": v.loop, "images_per_s": median,
                      "min": min(v.rates), "max": max(v.rates), "rates": v.rates})
        print(f"{v.recipe.name:<10} {v.batch_size:>5}  {v.loop:<9} {median:>10,.0f} "
              f"{min(v.rates):>9,.0f}..{max(v.rates):<9,.0f} {1000 * v.batch_size / median:>8.2f}")
    if result["syncs"]:
        print("\nhost synchronisation in the engine's step (sync debug mode 'error'):")
        for name, outcome in result["syncs"].items():
            print(f"  {name:<10} {outcome}")
    rows = projection(result)
    if rows:
        print("\nthe pretrained set, projected: steps / measured rate + per-epoch validation and grid (+ scores)")
        for row in rows:
            line = f"  {row['name']:<10} {row['epochs']:>4} epochs {row['steps']:>7,} steps  {row['loop']}: "
            line += f"{row[row['loop'] + '_s']:7.1f} s" if row["loop"] + "_s" in row else "not measured"
            if "graphed_s" in row:
                line += f"   graphed: {row['graphed_s']:7.1f} s"
            print(line)
        totals = {"the recipes' own loops (no graphs)": [row.get(row["loop"] + "_s") for row in rows],
                  "graphed loops (the engine's default on a GPU)": [row.get("graphed_s") for row in rows]}
        for label, values in totals.items():
            if all(v is not None for v in values):
                print(f"  whole set, {label}: {sum(values):.0f} s ({sum(values) / 60:.1f} min)")
    for line in result["skipped"]:
        print(f"skipped (budget): {line}")
    for line in result["failed"]:
        print(f"failed: {line}")
    return {"device": result["device"], "torch": result["torch"], "table": table, "syncs": result["syncs"],
            "projection": rows, "overheads": result["overheads"], "skipped": result["skipped"],
            "failed": result["failed"], "seconds": result["seconds"]}


def graphed_apart(result: dict, args: argparse.Namespace) -> None:
    """Time each model's graphed step in a process of its own and add it to ``result``.

    In one process beside the other loops, a replay once failed with an illegal memory access
    (H200, torch 2.11) after the compiled variants were built; each graph alone in its own
    process ran cleanly, and that is how the table was measured.
    """
    for recipe in result["recipes"]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "graphed.json"
            command = [sys.executable, "-m", "benchmarks.gpu", "--loops", "graphed", "--models", recipe.name,
                       "--repeats", str(args.repeats), "--seconds", str(args.seconds), "--json", str(out)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0 or not out.exists():
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                result["failed"].append(f"{recipe.name} graphed: exit {done.returncode}: {tail[0][:160]}")
                continue
            for row in json.loads(out.read_text())["table"]:
                result["variants"].append(Variant(recipe, "graphed", row["batch"], None, rates=row["rates"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed turn of one variant")
    parser.add_argument("--budget", type=float, default=240, help="seconds for building variants")
    parser.add_argument("--models", default="", help="comma-separated recipe names (default: all)")
    parser.add_argument("--loops", default="eager,graphed,compiled",
                        help="which loops (the sync check and per-epoch extras come with eager)")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.exit(1, "error: no CUDA device here (--device cpu runs a smoke test of the loops)\n")
    loops = tuple(args.loops.split(","))
    models = [m for m in args.models.split(",") if m]
    apart = "graphed" in loops and device.type == "cuda" and len(loops) > 1
    result = measure(device, args.repeats, args.seconds, args.budget, models,
                     tuple(loop for loop in loops if loop != "graphed") if apart else loops)
    if apart:
        graphed_apart(result, args)
    summary = report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1, default=str)


if __name__ == "__main__":
    main()
