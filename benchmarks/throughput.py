"""Training throughput of every family against the machine's matmul peak and a straightforward loop.

    python -m benchmarks.throughput [--families vae,gan,flow] [--repeats 5] [--seconds 1.5] [--no-compile]

For each family, at its seed batch size and at 512, prints training images/s and the achieved
GFLOP/s as a share of the float32 matmul peak, for

  * genapp:     the engine's own step: the data set as one in-memory uint8 tensor indexed by
                randperm slices, ``model.prepare`` + ``model.train_step`` with fused Adam, eager
                and (unless ``--no-compile``) with ``model.compile_for_training()``;
  * dataloader: the same model trained the straightforward way, as pytorch/examples does: a
                Dataset that turns one image at a time into a PIL image and then a float tensor (as
                torchvision's MNIST with ``ToTensor`` does), a default ``DataLoader``, plain Adam,
                eager. The VAE draws its Bernoulli binarization there, the GAN scales to [-1, 1],
                the flow dequantizes with uniform noise.

FLOPs per image are counted from the model, not estimated: ``torch.utils.flop_counter`` records
every matmul of one eager training step (forward and backward, both players for the GAN) and the
count is divided by the batch size. Element-wise work (activations, Adam) is not counted, so the
shares are a lower bound of the work done.

The variants are built and warmed up first, then timed in turns (A, B, C, A, B, C, ...) with a
peak check between turns, so the machine's drifts fall on every variant alike. Every figure is
the median of ``--repeats`` with its spread (min..max): compare ratios, not absolute numbers from
different runs.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from genapp.data import load_mnist
from genapp.models import FAMILIES

BATCHES = {"vae": 128, "gan": 128, "flow": 64}  # the seed's batch sizes
LABELS = {"vae": "VAE z=20 (784-500-250-20)", "gan": "GAN (G 100-128-256-512-1024-784, D 784-512-256-1)",
          "flow": "RealNVP mlp (8 couplings, 2 x 1024 hidden)"}


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """float32 n x n matmul throughput in GFLOP/s (median of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def new_model(family: str):
    torch.manual_seed(0)
    return FAMILIES[family]()


def flops_per_image(family: str, images: torch.Tensor, batch_size: int) -> float:
    """Matmul FLOPs of one eager training step of a fresh model, per image."""
    model = new_model(family)
    optimizers = model.configure_optimizers(model.default_train_config(batch_size=batch_size))
    batch = model.prepare(images[:batch_size], torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter:
        model.train_step(batch, optimizers)
    return counter.get_total_flops() / batch_size


Runner = Callable[[int], None]


def engine_loop(model, step: Callable[[torch.Tensor], object], images: torch.Tensor, batch_size: int) -> Runner:
    """A function running k steps as the engine does: a randperm slice of the data set where it
    lies (one tensor, on the model's device), ``model.prepare``, then ``step(batch)``."""
    generator = torch.Generator(device=images.device).manual_seed(0)
    order = torch.randperm(len(images), device=images.device)
    per_epoch = len(images) // batch_size
    position = 0

    def run(k: int) -> None:
        nonlocal position
        for _ in range(k):
            i = position % per_epoch
            position += 1
            step(model.prepare(images[order[i * batch_size : (i + 1) * batch_size]], generator))

    return run


def genapp_steps(family: str, images: torch.Tensor, batch_size: int, compile: bool) -> Runner:
    """A function running k of the engine's steps."""
    model = new_model(family)
    optimizers = model.configure_optimizers(model.default_train_config(batch_size=batch_size))
    if compile:
        model.compile_for_training()
    return engine_loop(model, lambda batch: model.train_step(batch, optimizers), images, batch_size)


class OneByOne(torch.utils.data.Dataset):
    """MNIST as a first implementation reads it (torchvision's MNIST with ``ToTensor``): each image
    becomes a PIL image, then a float tensor in [0, 1], one at a time; then ``transform``."""

    def __init__(self, images: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.images = images[:, 0].numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = Image.fromarray(self.images[i], mode="L")
        pixels = torch.from_numpy(np.array(image, np.uint8, copy=True)).view(1, 28, 28).float().div(255)
        return self.transform(pixels)


def endless(loader):
    while True:
        yield from loader


def dataloader_steps(family: str, images: torch.Tensor, batch_size: int) -> Runner:
    """A function running k steps of the straightforward loop for ``family``."""
    model = new_model(family)
    transform = {"vae": torch.bernoulli,                                         # binarize
                 "gan": lambda x: x * 2 - 1,                                     # Normalize((0.5,), (0.5,))
                 "flow": lambda x: (x * 255 + torch.rand_like(x)) / 256}[family]  # dequantize
    loader = torch.utils.data.DataLoader(OneByOne(images, transform), batch_size=batch_size, shuffle=True,
                                         drop_last=True)
    batches = endless(loader)

    if family == "gan":  # pytorch/examples' DCGAN loop, with the genapp networks
        g, d = model.generator, model.discriminator
        g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

        def step(x: torch.Tensor) -> None:
            n = len(x)
            ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
            fake = g(torch.randn(n, model.latent_dim))
            d_opt.zero_grad()
            d_loss = F.binary_cross_entropy_with_logits(d(x.view(n, 784)), ones) + \
                F.binary_cross_entropy_with_logits(d(fake.detach()), zeros)
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad()
            F.binary_cross_entropy_with_logits(d(fake), ones).backward()
            g_opt.step()
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(x: torch.Tensor) -> None:
            optimizer.zero_grad()
            model.loss(x)["loss"].backward()
            if family == "flow":
                torch.nn.utils.clip_grad_norm_(model.parameters(), model.config.grad_clip)
            optimizer.step()

    def run(k: int) -> None:
        for _ in range(k):
            step(next(batches))

    return run


@dataclass
class Variant:
    family: str
    name: str
    batch_size: int
    run: Runner
    steps: int = 0
    rates: list[float] = field(default_factory=list)


def calibrate(run: Runner, seconds: float) -> int:
    """Warm up (and compile), then the number of steps that takes about ``seconds``."""
    run(3)
    start = time.perf_counter()
    run(3)
    per_step = (time.perf_counter() - start) / 3
    return max(3, round(seconds / per_step))


def measure(families: list[str], repeats: int, seconds: float, compile: bool, batches=None,
            log=print) -> dict:
    """Build, warm up and time every variant in turns. Returns peaks, FLOPs and variants."""
    images = load_mnist().train.images
    peaks = [matmul_peak()]
    flops, variants = {}, []
    for family in families:
        for batch_size in batches or sorted({BATCHES[family], 512}):
            flops[family, batch_size] = flops_per_image(family, images, batch_size)
            makers = [("genapp eager", lambda: genapp_steps(family, images, batch_size, compile=False))]
            if compile:
                makers.append(("genapp compiled", lambda: genapp_steps(family, images, batch_size, compile=True)))
            makers.append(("dataloader", lambda: dataloader_steps(family, images, batch_size)))
            for name, make in makers:
                log(f"  warming up {family} {name} at batch {batch_size}", flush=True)
                variant = Variant(family, name, batch_size, make())
                variant.steps = calibrate(variant.run, seconds)
                variants.append(variant)
    for turn in range(repeats):
        log(f"  turn {turn + 1}/{repeats}", flush=True)
        for v in variants:
            start = time.perf_counter()
            v.run(v.steps)
            v.rates.append(v.steps * v.batch_size / (time.perf_counter() - start))
        peaks.append(matmul_peak())
    return {"peaks": peaks, "flops": flops, "variants": variants}


def spread(values: list[float], fmt: str = ",.0f") -> str:
    return f"{min(values):{fmt}}..{max(values):{fmt}}"


def report(result: dict) -> list[dict]:
    """Print the table; returns its rows (for the suite's summary)."""
    peaks, flops, variants = result["peaks"], result["flops"], result["variants"]
    peak = statistics.median(peaks)
    print(f"float32 matmul peak (2048x2048): {peak:.1f} GFLOP/s, median of {len(peaks)} checks between turns "
          f"({spread(peaks, '.1f')}); {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("FLOPs per image = matmul FLOPs of one eager training step (torch.utils.flop_counter, forward +")
    print("backward, both players for the GAN) / batch size; share = images/s x FLOPs per image / peak.")
    for (family, batch_size), f in flops.items():
        print(f"  {family:<5} batch {batch_size:>3}: {f / 1e6:7.2f} MFLOP per image   {LABELS[family]}")
    print()
    print(f"{'family':<6} {'batch':>5}  {'loop':<16} {'images/s':>9} {'spread':>15}  {'GFLOP/s':>7} "
          f"{'% peak':>6} {'vs dataloader':>13}")
    rows = []
    base = {(v.family, v.batch_size): statistics.median(v.rates) for v in variants if v.name == "dataloader"}
    for v in variants:
        rate = statistics.median(v.rates)
        gflops = rate * flops[v.family, v.batch_size] / 1e9
        row = {"family": v.family, "batch": v.batch_size, "loop": v.name, "images_per_s": rate,
               "gflops": gflops, "share": gflops / peak, "ratio": rate / base[v.family, v.batch_size]}
        rows.append(row)
        print(f"{v.family:<6} {v.batch_size:>5}  {v.name:<16} {rate:>9,.0f} {spread(v.rates):>15}  {gflops:>7.1f} "
              f"{100 * row['share']:>5.1f}% {row['ratio']:>12.2f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="vae,gan,flow")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one timed turn of one variant")
    parser.add_argument("--no-compile", action="store_true", help="measure the engine's eager step only")
    args = parser.parse_args()
    families = args.families.split(",")
    report(measure(families, args.repeats, args.seconds, not args.no_compile))


if __name__ == "__main__":
    main()
