"""The training engine: one loop for every family, reporting through a run directory and callbacks.

The loop knows nothing of any model: it asks the family to ``prepare`` a uint8 batch, to take a
``train_step`` with the optimizers it configured, to ``validate`` and to ``sample``. Logging goes
through callbacks, so the same loop serves a console progress bar, a test and the explorer (which
reads the run directory that the loop writes).

Determinism: every random choice derives from the seed. The epoch's permutation is seeded by
(seed, epoch), each batch's data noise by (seed, step), and the global RNG state (used inside the
models) travels in the checkpoint, so a resumed run continues exactly where it stopped.

On a CUDA device the step is captured once as a CUDA graph and replayed (``cuda_graph``, on by
default; ``genapp/training/graphs.py``); the status says so with ``cuda_graph: true``.

What surrounds a run as a process (its lock, SIGTERM meaning "stop", creating or resuming the
run directory) is in ``genapp/training/job.py``: start runs with ``train()`` or ``resume()``.
"""
from __future__ import annotations

import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genapp import schema
from genapp.checkpoint import CheckpointError, model_from_checkpoint, read_header, save_checkpoint
from genapp.files import atomic_write
from genapp.config import lr_factor
from genapp.data import load_mnist
from genapp.devices import device_name, resolve_device
from genapp.images import make_grid, save_png
from genapp.models import RunConfig, get_family
from genapp.runs import RunDir, StorageError, storage_message
from genapp.runs.locks import process_start
from genapp.training.graphs import GraphedStep, plain_optimizer_state, set_lr

SAMPLE_SEED_OFFSET = 7919  # fixed noise for the per-epoch sample grids
FRESH_SEED_OFFSET = 104_729  # fresh noise: a new seed each epoch, from the run's seed
LATENT_IMAGES = 2000  # validation images whose 2-D codes are recorded each epoch


class Diverged(RuntimeError):
    def __init__(self, step: int, name: str, value: float) -> None:
        super().__init__(f"{name} became {value} at step {step}")
        self.step = step


class Callback:
    """Hooks into the loop; every method is optional."""

    def on_start(self, trainer: "Trainer") -> None: ...
    def on_steps(self, trainer: "Trainer", records: list[dict]) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_end(self, trainer: "Trainer", state: str) -> None: ...


@dataclass
class RunResult:
    run: RunDir
    state: str  # finished | stopped | diverged | failed
    step: int
    metrics: dict


class Trainer:
    """Trains one run. Use ``train()`` or ``resume()`` rather than building it by hand."""

    def __init__(self, config: RunConfig, run: RunDir, callbacks=(), checkpoint: dict | None = None) -> None:
        self.config, self.run, self.callbacks = config, run, list(callbacks)
        tc = config.train
        self.device = resolve_device(tc.device)
        self.device_name = device_name(self.device)
        self.quality_error: str | None = None
        self.stop_requested = False  # set by the job's SIGTERM handler (genapp.training.job)
        self.pid_start = process_start(os.getpid())  # with the pid: this process, not a reused pid

        torch.manual_seed(tc.seed)
        mnist = load_mnist(tc.data_dir or None)
        self.train_images = mnist.train.images[: tc.train_size or None].to(self.device)
        self.valid_images = mnist.valid.images[: tc.valid_size or None].to(self.device)
        self.latent_images = mnist.valid.images[:LATENT_IMAGES].to(self.device)
        self.latent_labels = mnist.valid.labels[:LATENT_IMAGES]
        self.epoch_records: list[dict] = []  # the validation (and quality) records of the last epoch
        self.data_source = mnist.source

        family = get_family(config.family)
        if checkpoint is None:
            self.model = family(config.model).to(self.device)
        else:
            self.model = model_from_checkpoint(checkpoint, str(run.last_checkpoint)).to(self.device)
        self.optimizers = self.model.configure_optimizers(tc)
        self.graphed = tc.cuda_graph and self.device.type == "cuda" and self.model.graph_capturable
        if tc.cuda_graph and self.device.type == "cuda" and not self.graphed:
            print("cuda_graph: this step cannot be captured (a GAN with d_warmup_steps); training eagerly",
                  file=sys.stderr)
        if tc.compile and not self.graphed:  # a graph already launches the whole step at once
            self.model.compile_for_training()

        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self._seconds_before = 0.0  # training time of earlier sessions of this run (resume)
        self.started = time.time()
        self.best: float | None = None
        self.best_epoch: int | None = None  # the epoch best.pt holds
        self.last_metrics: dict = {}
        if checkpoint is not None:
            self._restore(checkpoint)
        self.train_step = GraphedStep(self.model, self.optimizers) if self.graphed else \
            (lambda batch: self.model.train_step(batch, self.optimizers))

        # Whole batches only: one shape for every step (no recompiles), and each epoch's few
        # left-over images differ from epoch to epoch with the shuffle.
        self.steps_per_epoch = max(1, len(self.train_images) // tc.batch_size)
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.data_generator = torch.Generator(device=self.device)
        self._pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        self._status_time = 0.0
        self._rate = (time.perf_counter(), self.step)
        self.images_per_s = 0.0

    # -- checkpoint state -----------------------------------------------------------------------

    def _resume_state(self) -> dict:
        state = {
            "optimizers": {k: plain_optimizer_state(o) for k, o in self.optimizers.items()},
            "rng_cpu": torch.get_rng_state(),
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "train_seconds": self.train_seconds,
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore(self, checkpoint: dict) -> None:
        """Take up where ``checkpoint`` (a run's last.pt, already checked as a checkpoint) left
        off; its resume state is checked here, and anything wrong with it is a ``CheckpointError``
        saying so, before training changes any file."""
        self.step, self.epoch = checkpoint["step"], checkpoint["epoch"]
        self.last_metrics = checkpoint.get("metrics", {})
        where = f"{self.run.last_checkpoint}: its resume state"
        try:
            resume = schema.mapping(checkpoint.get("resume") or {}, "resume")
            optimizers = schema.mapping(resume.get("optimizers", {}), "resume.optimizers")
            for name, opt in self.optimizers.items():
                if name in optimizers:
                    opt.load_state_dict(schema.mapping(optimizers[name], f"resume.optimizers[{name!r}]"))
            for key in ("rng_cpu", "rng_cuda"):
                if key in resume and not (isinstance(resume[key], torch.Tensor) and resume[key].dtype == torch.uint8):
                    raise schema.Invalid(f"{key} must be a random generator's state (a uint8 tensor)")
            if "rng_cpu" in resume:
                torch.set_rng_state(resume["rng_cpu"])
            if "rng_cuda" in resume and self.device.type == "cuda":
                torch.cuda.set_rng_state(resume["rng_cuda"], self.device)
            self.batch_in_epoch = schema.integer(resume.get("batch_in_epoch", 0), "batch_in_epoch", 0, 10**9)
            best = resume.get("best")
            self.best = None if best is None else schema.number(best, "best")
            best_epoch = resume.get("best_epoch")
            self.best_epoch = None if best_epoch is None else schema.integer(best_epoch, "best_epoch")
            self._seconds_before = schema.number(resume.get("train_seconds", 0.0), "train_seconds", 0.0)
        except (schema.Invalid, ValueError, KeyError, TypeError, RuntimeError, IndexError) as e:
            raise CheckpointError(f"{where} is damaged ({str(e)[:300]}); resume with --restart to train it "
                                  "again from step 0") from None

    @property
    def train_seconds(self) -> float:
        """Wall time spent in this run so far, over all its sessions."""
        return self._seconds_before + time.time() - self.started

    def save(self, path: Path, with_resume: bool = True) -> None:
        save_checkpoint(
            path, self.model, train_config=self.config.train, step=self.step, epoch=self.epoch,
            metrics=self.last_metrics, resume=self._resume_state() if with_resume else None,
        )

    # -- reporting -------------------------------------------------------------------------------

    def _status(self, state: str, force: bool = False, **extra) -> None:
        now = time.time()
        if not force and now - self._status_time < 1.0:
            return
        self._status_time = now
        remaining = self.total_steps - self.step
        rate_steps = self.images_per_s / self.config.train.batch_size if self.images_per_s else 0.0
        self.run.write_status(
            state, pid=os.getpid(), pid_start=self.pid_start, device=str(self.device), step=self.step, total_steps=self.total_steps,
            epoch=self.epoch, epochs=self.config.train.epochs, images_per_s=round(self.images_per_s, 1),
            eta_s=round(remaining / rate_steps, 1) if rate_steps else None, started=self.started,
            train_seconds=round(self.train_seconds, 1), threads=torch.get_num_threads(),
            device_name=self.device_name, cuda_graph=self.graphed, warning=self.quality_error,
            metrics=self.last_metrics, **extra,
        )

    def _flush(self) -> None:
        """Write the pending per-step losses: one host synchronisation for ``log_every`` steps."""
        if not self._pending:
            return
        names = list(self._pending[0][1])
        values = torch.stack([torch.stack([p[n].float() for n in names]) for _, p in self._pending]).tolist()
        now = time.time()
        records = []
        for (step, _), row in zip(self._pending, values):
            record = {"step": step, "epoch": self.epoch + 1, "split": "train", "time": round(now, 3)}
            for name, value in zip(names, row):
                if not math.isfinite(value):
                    self._pending = []
                    self.run.append_metrics(records)
                    raise Diverged(step, name, value)
                record[name] = value
            records.append(record)
        self._pending = []
        self.run.append_metrics(records)
        t, s = time.perf_counter(), self.step
        if t - self._rate[0] >= 0.5:
            self.images_per_s = (s - self._rate[1]) * self.config.train.batch_size / (t - self._rate[0])
            self._rate = (t, s)
        for cb in self.callbacks:
            cb.on_steps(self, records)
        self._status("running")

    def _record_pictures(self, epoch: int) -> None:
        """The family's pictures of this epoch (fixed noise, fresh noise, ...) and its 2-D codes.

        Every draw comes from generators of its own, so recording changes nothing in training.
        """
        tc = self.config.train
        fixed = torch.Generator(device=self.device).manual_seed(tc.seed + SAMPLE_SEED_OFFSET)
        fresh = torch.Generator(device=self.device).manual_seed(tc.seed * 1_000_003 + FRESH_SEED_OFFSET + epoch)
        self.model.eval()
        with torch.no_grad():
            pictures = self.model.epoch_pictures(tc.sample_count, fixed, fresh)
            latents = self.model.epoch_latents(self.latent_images)
        self.model.train()
        for kind, images in pictures.items():
            save_png(make_grid(images), self.run.sample_path(epoch, kind))
        if latents is not None:
            points, labels = latents.float().cpu().numpy().astype(np.float16), self.latent_labels.numpy().astype(np.uint8)
            atomic_write(self.run.latents_path(epoch), lambda f: np.savez(f, points=points, labels=labels))

    # -- the loop --------------------------------------------------------------------------------

    def fit(self) -> RunResult:
        tc = self.config.train
        try:
            self._status("running", force=True)
            for cb in self.callbacks:
                cb.on_start(self)
            if self.stop_requested:  # stopped while starting: keep the run resumable
                self.save(self.run.last_checkpoint)
                return self._finish("stopped")
            if self.step == 0:
                self._record_pictures(0)
            self._repair_best()
            self.model.train()
            while self.epoch < tc.epochs:
                if self._train_epoch():
                    return self._finish("stopped")
                self._end_epoch()
            return self._finish("finished")
        except Diverged as e:
            return self._finish("diverged", error=str(e), diverged_step=e.step)
        except OSError as e:  # a full disk, a runs directory gone read-only: say so plainly
            message = storage_message(e)
            self._finish_if_possible("failed", error=message)
            raise StorageError(message) from e
        except BaseException as e:
            self._finish_if_possible("failed", error=f"{type(e).__name__}: {e}",
                                     traceback=traceback.format_exc(limit=8))
            raise

    def _train_epoch(self) -> bool:
        """One epoch, from ``batch_in_epoch`` on. Returns True if a stop was requested."""
        tc = self.config.train
        n = len(self.train_images)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(tc.seed * 100_003 + self.epoch))
        order = order.to(self.device)
        factor = lr_factor(tc.lr_schedule, self.epoch, tc.epochs)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", float(group["lr"]))
                set_lr(group, group["initial_lr"] * factor)
        self._rate = (time.perf_counter(), self.step)
        for i in range(self.batch_in_epoch, self.steps_per_epoch):
            images = self.train_images[order[i * tc.batch_size : (i + 1) * tc.batch_size]]
            self.data_generator.manual_seed(tc.seed * 1_000_003 + self.step)
            batch = self.model.prepare(images, self.data_generator)
            self._pending.append((self.step, self.train_step(batch)))
            self.step += 1
            self.batch_in_epoch = i + 1
            if len(self._pending) >= tc.log_every:
                self._flush()
            if self.stop_requested:
                self._flush()
                self.save(self.run.last_checkpoint)
                return True
        self._flush()
        return False

    def _end_epoch(self) -> None:
        tc = self.config.train
        t, s = time.perf_counter(), self.step
        if s > self._rate[1] and not self.images_per_s:  # epochs too short for the rolling rate
            self.images_per_s = (s - self._rate[1]) * self.config.train.batch_size / (t - self._rate[0])
        self.model.end_epoch()
        self.model.eval()
        metrics = self.model.validate(self.valid_images)
        self.model.train()
        self.epoch += 1
        self.batch_in_epoch = 0
        self.last_metrics = metrics
        for name, value in metrics.items():
            if not math.isfinite(value):
                raise Diverged(self.step, f"validation {name}", value)
        records = [{"step": self.step, "epoch": self.epoch, "split": "valid", "time": round(time.time(), 3), **metrics}]
        quality = self._quality()
        if quality:
            records.append({"step": self.step, "epoch": self.epoch, "split": "quality",
                            "time": round(time.time(), 3), **quality})
            metrics = self.last_metrics = {**metrics, **quality}
        self.run.append_metrics(records)
        self.epoch_records = records
        self._record_pictures(self.epoch)
        value = metrics.get(self.model.monitor)
        if value is None and self.best is None:
            better = True  # the monitor was never measured: the latest is the best we know
        else:
            better = value is not None and (
                self.best is None or (value < self.best if self.model.monitor_lower_is_better else value > self.best)
            )
        if better and value is not None:
            self.best = value
        if better:
            self.best_epoch = self.epoch
        self.save(self.run.last_checkpoint)
        if better:  # a job killed inside this write finds best_epoch in last.pt and writes it again
            self.save(self.run.best_checkpoint, with_resume=False)
        if self.epoch in tc.snapshot_epochs:
            save_checkpoint(self.run.snapshot_path(self.epoch), self.model, train_config=tc, step=self.step,
                            epoch=self.epoch, metrics=self.last_metrics, parts=self.model.snapshot_parts(), half=True)
        for cb in self.callbacks:
            cb.on_epoch_end(self, {**records[0], **quality})
        self._status("running", force=True)

    def _repair_best(self) -> None:
        """After a resume: if the epoch of last.pt was the best and the job died writing best.pt
        (which comes second), write it now from the same weights."""
        if self.best_epoch is None or self.best_epoch != self.epoch:
            return
        try:
            held = read_header(self.run.best_checkpoint)["epoch"]
        except CheckpointError:
            held = None
        if held != self.epoch:
            self.save(self.run.best_checkpoint, with_resume=False)

    def _quality(self) -> dict:
        """Sample-quality scores every ``quality_every`` epochs and after the last one; {} otherwise."""
        tc = self.config.train
        if not tc.quality_every or (self.epoch % tc.quality_every and self.epoch != tc.epochs):
            return {}
        from genapp.evaluation.quality import sample_quality  # the classifier loads only when asked

        try:
            scores = sample_quality(self.model, n=tc.quality_samples, seed=tc.seed)
        except Exception as e:  # a missing classifier must not end a training run
            self.quality_error = f"sample-quality scores unavailable: {e}"
            return {}
        return {k: v for k, v in scores.items() if k not in ("samples",)}

    def _finish_if_possible(self, state: str, **extra) -> None:
        """Record the end, if the disk still lets us; the explorer notices a silent end anyway."""
        try:
            self._finish(state, **extra)
        except OSError as e:
            print(f"could not record the run as {state}: {storage_message(e)}", file=sys.stderr)

    def _finish(self, state: str, **extra) -> RunResult:
        self._pending = []
        if state == "finished" and not self.run.best_checkpoint.is_file():
            self.save(self.run.best_checkpoint, with_resume=False)  # a finished run always has one
        self._status(state, force=True, **extra)
        for cb in self.callbacks:
            cb.on_end(self, state)
        return RunResult(self.run, state, self.step, self.last_metrics)
