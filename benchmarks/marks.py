"""Time to a quality mark: how long the real engine takes, on this machine, to reach a figure.

    python -m benchmarks.marks [--marks vae,gan,flow] [--budget-scale 1.0]

Each mark trains a fresh run with ``genapp.training.train`` (the engine the CLI and the app use:
validation, sample grids and checkpoints included) in a temporary runs folder, measures the figure
every so often from a callback, and stops the run once it is reached. The time reported is the
wall time from the call to ``train`` (data loading and model building included) to the measurement
that reached the mark, minus the time the measurements themselves took.

  * vae:  VAE z=20, test negative ELBO (fixed binarization, all 10k test images) <= 100 nats,
          measured every 100 steps;
  * gan:  GAN as shipped (the seed's networks, --ema 0.999, cosine lr over 200 epochs, compiled),
          classifier Inception Score of 5,000 samples >= 8.5, measured every epoch;
  * flow: RealNVP mlp (the seed's 8 couplings x 1024 hidden), validation bits/dim (the engine's
          own validation record) <= 2.0, measured every epoch.

A mark not reached within its budget prints the best figure and the time spent.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from genapp.config import TrainConfig
from genapp.data import fixed_binarization, load_mnist
from genapp.models import FAMILIES, RunConfig
from genapp.training import Callback, train


@dataclass
class Mark:
    name: str
    family: str
    train: dict  # TrainConfig fields over the family's defaults
    target: float
    lower_is_better: bool
    budget_s: float
    every_steps: int = 0  # measure every so many steps; 0 = at each epoch end
    model: dict = field(default_factory=dict)

    def reached(self, value: float) -> bool:
        return value <= self.target if self.lower_is_better else value >= self.target


def vae_test_neg_elbo(trainer, record: dict) -> float:
    test = getattr(vae_test_neg_elbo, "images", None)
    if test is None:
        test = vae_test_neg_elbo.images = fixed_binarization(load_mnist().test.images)
    model = trainer.model
    model.eval()
    with torch.no_grad():
        value = model.mean_neg_elbo(test, torch.Generator().manual_seed(0))
    model.train()
    return value


def gan_inception_score(trainer, record: dict) -> float:
    from genapp.evaluation.quality import sample_quality

    return sample_quality(trainer.model, n=5000)["inception_score"]


def flow_valid_bpd(trainer, record: dict) -> float:
    return record["bpd"]


MEASURES: dict[str, Callable] = {"vae": vae_test_neg_elbo, "gan": gan_inception_score, "flow": flow_valid_bpd}

MARKS = {
    "vae": Mark("VAE z=20: test negative ELBO <= 100 nats", "vae",
                {"batch_size": 128, "lr": 1e-3, "epochs": 40}, 100.0, True, budget_s=300, every_steps=100),
    "gan": Mark("GAN: classifier Inception Score >= 8.5", "gan",
                {"epochs": 200, "lr_schedule": "cosine", "compile": True, "quality_every": 0}, 8.5, False,
                budget_s=3600, model={"ema": 0.999}),
    "flow": Mark("RealNVP mlp: validation bits/dim <= 2.0", "flow", {"epochs": 100}, 2.0, True, budget_s=3600),
}


class Watch(Callback):
    """Measures the figure, keeps the time line, stops the run at the mark or the budget."""

    def __init__(self, mark: Mark, started: float) -> None:
        self.mark, self.started = mark, started
        self.measure = MEASURES[mark.family]
        self.spent = 0.0  # seconds inside the measurements
        self.last_step = 0
        self.points: list[tuple[float, int, float]] = []  # (training seconds, step, value)
        self.reached_at: tuple[float, int, float] | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started - self.spent

    def check(self, trainer, record: dict) -> None:
        elapsed = self.elapsed()
        start = time.perf_counter()
        value = self.measure(trainer, record)
        self.spent += time.perf_counter() - start
        self.points.append((elapsed, trainer.step, value))
        print(f"    {elapsed:7.1f} s  step {trainer.step:>6}  epoch {trainer.epoch:>3}  {value:8.3f}", flush=True)
        if self.mark.reached(value):
            self.reached_at = (elapsed, trainer.step, value)
        if self.reached_at or elapsed > self.mark.budget_s:
            trainer.stop_requested = True

    def on_steps(self, trainer, records: list[dict]) -> None:
        every = self.mark.every_steps
        if every and trainer.step - self.last_step >= every:
            self.last_step = trainer.step
            self.check(trainer, {})

    def on_epoch_end(self, trainer, record: dict) -> None:
        if not self.mark.every_steps:
            self.check(trainer, record)


def time_to_mark(mark: Mark, budget_scale: float = 1.0) -> dict:
    """Train until ``mark`` is reached (or its budget is spent); returns the figures."""
    mark = Mark(**{**mark.__dict__, "budget_s": mark.budget_s * budget_scale})
    family = FAMILIES[mark.family]
    config = RunConfig(mark.family, family.Config(**mark.model),
                       family.default_train_config(**{"device": "cpu", **mark.train}))
    with tempfile.TemporaryDirectory() as runs:
        started = time.perf_counter()
        watch = Watch(mark, started)
        train(config, runs, "mark", callbacks=[watch])
    best = (min if mark.lower_is_better else max)((p[2] for p in watch.points), default=float("nan"))
    return {"mark": mark.name, "reached": watch.reached_at is not None,
            "seconds": watch.reached_at[0] if watch.reached_at else watch.elapsed(),
            "step": watch.reached_at[1] if watch.reached_at else None, "best": best,
            "config": f"batch {config.train.batch_size}, lr {config.train.lr:g}, {config.train.lr_schedule} lr"
                      + "".join(f", {k} {v}" for k, v in mark.model.items())}


def describe(result: dict) -> str:
    if result["reached"]:
        return f"{result['mark']}: reached in {result['seconds']:.1f} s (step {result['step']}; {result['config']})"
    return (f"{result['mark']}: NOT reached in {result['seconds']:.0f} s (best {result['best']:.3f}; "
            f"{result['config']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", default="vae", help="comma-separated: vae,gan,flow")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every mark's time budget")
    args = parser.parse_args()
    results = []
    for name in args.marks.split(","):
        print(f"{MARKS[name].name}", flush=True)
        results.append(time_to_mark(MARKS[name], args.budget_scale))
    print()
    for result in results:
        print(describe(result))


if __name__ == "__main__":
    main()
