"""TensorBoard event files for every run, written beside its metrics.jsonl by the maintained
writer (``torch.utils.tensorboard.SummaryWriter``), so that ``tensorboard --logdir runs`` shows
every run with no conversion, and W&B (``sync_tensorboard``) and Aim (``aim convert tensorboard``)
import them.

Tags are grouped by quantity, the split after it: ``loss/train`` every step, ``loss/valid``
every epoch, ``fid/quality`` where samples were scored; ``samples/fixed`` is each epoch's
fixed-noise grid and ``config`` the run's configuration as text. Steps are the run's global
training steps. Events are flushed after every epoch, so a run killed at any moment leaves
readable events up to then; a resumed run writes a new event file that starts with a purge at
its checkpoint's step, so readers drop what the killed session wrote after it (no duplicated
steps).
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
from PIL import Image

from genapp.training.engine import Callback

META = ("step", "epoch", "split", "time")


class TensorBoardEvents(Callback):
    """Write the run's curves, grids and config as TensorBoard events (nothing when the
    tensorboard package is missing: the run says so in its log and trains on)."""

    def __init__(self) -> None:
        self.writer = None
        self._first_grid = False  # epoch 0's grid, drawn by the engine after on_start

    def on_start(self, trainer) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard not installed
            print(f"no TensorBoard event files: {e} (pip install tensorboard)", file=sys.stderr)
            return
        resumed = trainer.step > 0
        if resumed:
            _after_existing_files(trainer.run.path)
        self.writer = SummaryWriter(log_dir=str(trainer.run.path), purge_step=trainer.step if resumed else None,
                                    flush_secs=30)
        if not resumed:
            config = json.dumps(trainer.config.to_dict(), indent=2)
            self.writer.add_text("config", f"```\n{config}\n```", global_step=0)
            self._first_grid = True
            return
        records, _ = trainer.run.read_metrics()
        self._epoch_records(r for r in records if r["split"] != "train" and r["step"] == trainer.step)
        self._grid(trainer, trainer.epoch, trainer.step)

    def on_steps(self, trainer, records: list[dict]) -> None:
        if self.writer is None:
            return
        self._write_first_grid(trainer)
        for record in records:
            for name, value in record.items():
                if name not in META:
                    self.writer.add_scalar(f"{name}/train", value, record["step"], walltime=record["time"])

    def on_epoch_end(self, trainer, record: dict) -> None:
        if self.writer is None:
            return
        self._write_first_grid(trainer)
        self._epoch_records(trainer.epoch_records)
        self._grid(trainer, trainer.epoch, trainer.step)
        self.writer.flush()

    def _epoch_records(self, records) -> None:
        """Validation and quality records as ``<name>/<split>`` scalars at their step."""
        for record in records:
            for name, value in record.items():
                if name not in META and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{name}/{record['split']}", value, record["step"],
                                           walltime=record.get("time"))

    def on_end(self, trainer, state: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _write_first_grid(self, trainer) -> None:
        if self._first_grid:
            self._first_grid = False
            self._grid(trainer, 0, 0)

    def _grid(self, trainer, epoch: int, step: int) -> None:
        path = trainer.run.sample_path(epoch)
        try:
            with Image.open(path) as image:
                grid = np.asarray(image.convert("L"))
        except OSError:
            return
        self.writer.add_image("samples/fixed", grid, step, dataformats="HW")


def _after_existing_files(folder) -> None:
    """Wait, if need be, until the clock is past the second in the newest event file's name.

    TensorBoard reads a run's event files in name order, and a name starts with the second it
    was created in, then the writer's pid: a session resumed within the same second as the one
    it continues (a quick kill and resume) could otherwise sort first, and its purge would then
    drop the history it was meant to keep."""
    seconds = []
    for path in folder.glob("events.out.tfevents.*"):
        try:
            seconds.append(int(path.name.split(".")[3]))
        except (IndexError, ValueError):
            continue
    while seconds and int(time.time()) <= max(seconds):
        time.sleep(0.05)
