"""Training throughput of the VAE against the machine's matmul peak and a straightforward loop.

    python -m benchmarks.train_speed [--repeats 5] [--steps 60] [--no-compile]

Prints, in one run: the float32 matmul peak (2048 x 2048, GFLOP/s); then for batch 128 and 512
the VAE's training images/s and achieved GFLOP/s as a share of that peak, for

  * genapp:      the engine's own step (in-memory uint8 tensor indexed by randperm slices,
                 ``model.prepare`` + ``model.train_step``, fused Adam, torch.compile when asked);
  * dataloader:  the same model trained the straightforward way (pytorch/examples' VAE): a
                 Dataset that converts one image at a time through PIL as torchvision's MNIST
                 with ToTensor does, a default ``torch.utils.data.DataLoader``, plain Adam, eager.

FLOPs are counted as 6 x parameters per image (forward 2, backward 4), the usual convention.
Every figure is the median of ``--repeats`` timed runs with the spread (min..max), measured
side by side in one process: compare ratios, not absolute numbers from different runs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from genapp.config import TrainConfig
from genapp.data import load_mnist
from genapp.models import VAE, VAEConfig


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


def genapp_steps(images: torch.Tensor, batch_size: int, compile: bool):
    """A function running k engine steps, and the model."""
    torch.manual_seed(0)
    model = VAE(VAEConfig())
    optimizers = model.configure_optimizers(TrainConfig(batch_size=batch_size))
    if compile:
        model.compile_for_training()
    generator = torch.Generator()
    order = torch.randperm(len(images))
    per_epoch = len(images) // batch_size
    position = [0]

    def run(k: int) -> None:
        for _ in range(k):
            i = position[0] % per_epoch
            position[0] += 1
            batch = model.prepare(images[order[i * batch_size : (i + 1) * batch_size]], generator)
            model.train_step(batch, optimizers)

    return run, model


class OneByOne(torch.utils.data.Dataset):
    """What a first implementation does, as torchvision's MNIST with ``ToTensor`` does it: each
    image becomes a PIL image, then a float tensor, one at a time; then a Bernoulli draw."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images[:, 0].numpy()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = Image.fromarray(self.images[i], mode="L")
        pixels = torch.from_numpy(np.array(image, np.uint8, copy=True)).view(1, 28, 28).float().div(255)
        return torch.bernoulli(pixels)


def dataloader_steps(images: torch.Tensor, batch_size: int):
    torch.manual_seed(0)
    model = VAE(VAEConfig())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(OneByOne(images), batch_size=batch_size, shuffle=True, drop_last=True)
    batches = iter(loader)

    def run(k: int) -> None:
        nonlocal batches
        for _ in range(k):
            try:
                x = next(batches)
            except StopIteration:
                batches = iter(loader)
                x = next(batches)
            optimizer.zero_grad()
            model.loss(x)["loss"].backward()
            optimizer.step()

    return run, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60, help="steps per timed repeat at batch 128 (scaled for 512)")
    parser.add_argument("--no-compile", action="store_true", help="measure the engine's eager step only")
    args = parser.parse_args()

    torch.set_num_threads(torch.get_num_threads())
    images = load_mnist().train.images
    peaks = [matmul_peak()]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    variants = [("genapp eager", lambda bs: genapp_steps(images, bs, compile=False))]
    if not args.no_compile:
        variants.append(("genapp compiled", lambda bs: genapp_steps(images, bs, compile=True)))
    variants.append(("dataloader", lambda bs: dataloader_steps(images, bs)))

    # All variants are built and warmed up first, then timed in turns (A, B, C, A, B, C, ...),
    # so the machine's drifts fall on every variant alike: the ratios are side by side.
    results, runners = {}, {}
    for batch_size in (128, 512):
        steps = max(10, args.steps * 128 // batch_size)
        for name, make in variants:
            run, model = make(batch_size)
            run(max(10, steps // 4))  # warm up (and compile)
            runners[name, batch_size] = (run, steps)
            results[name, batch_size] = []
            flops_per_image = 6 * model.num_parameters()
    for _ in range(args.repeats):
        for (name, batch_size), (run, steps) in runners.items():
            start = time.perf_counter()
            run(steps)
            results[name, batch_size].append(steps * batch_size / (time.perf_counter() - start))
        peaks.append(matmul_peak())

    peak = statistics.median(peaks)
    print(f"float32 matmul peak (2048x2048): {peak:.1f} GFLOP/s (median of {len(peaks)} checks between repeats, "
          f"{min(peaks):.1f}..{max(peaks):.1f})")
    print(f"VAE z=20, {flops_per_image / 1e6:.2f} MFLOP per image (6 x {flops_per_image // 6:,} parameters)")
    print()
    print(f"{'batch':>5}  {'loop':<16} {'images/s':>9} {'spread':>15}  {'GFLOP/s':>7} {'% peak':>6} {'vs dataloader':>13}")
    for batch_size in (128, 512):
        base = statistics.median(results["dataloader", batch_size])
        for name, _ in variants:
            rates = results[name, batch_size]
            rate = statistics.median(rates)
            gflops = rate * flops_per_image / 1e9
            print(f"{batch_size:>5}  {name:<16} {rate:>9,.0f} {min(rates):>7,.0f}..{max(rates):<7,.0f}"
                  f"  {gflops:>7.1f} {100 * gflops / peak:>5.1f}% {rate / base:>12.2f}x")


if __name__ == "__main__":
    main()
