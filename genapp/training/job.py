"""A run as a job: the lock that says "being trained", SIGTERM as "stop cleanly", and the run
directory created (``train``) or continued (``resume``) around the engine's loop.

    train(config, runs_dir, run_name)   a new run, trained to the end or a stop
    resume(runs_dir, run_name)          continue a run from its last.pt, metrics up to it

The CLI (``python -m train``) calls these; so does any test or notebook that trains in-process.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
from pathlib import Path

from genapp.checkpoint import read_checkpoint
from genapp.config import ConfigError
from genapp.files import atomic_write
from genapp.jobs.queue import release_ticket
from genapp.models import RunConfig
from genapp.runs import RunDir, RunError, StorageError, new_run_name, storage_message
from genapp.runs.locks import lock_run, process_start
from genapp.training.engine import RunResult, Trainer
from genapp.training.tensorboard import TensorBoardEvents

# A SIGTERM that arrives before the trainer exists (while data loads or the step compiles):
# ``catch_sigterm_early`` records it here, and the trainer stops as soon as its loop begins.
_early_stop = threading.Event()


def catch_sigterm_early() -> None:
    """For a training process: from now on SIGTERM means "stop cleanly", even during start-up."""
    signal.signal(signal.SIGTERM, lambda signum, frame: _early_stop.set())


def _install_sigterm(trainer: Trainer):
    """SIGTERM asks the loop to stop after the current step (checkpoint, status ``stopped``)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if _early_stop.is_set():
        trainer.stop_requested = True

    def handler(signum, frame):
        trainer.stop_requested = True

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _run_lock(run: RunDir):
    """Hold the run's lock while training it: one writer per run, and a lock the kernel drops
    when this process dies, however it dies (which is how the explorer tells a killed job)."""
    try:
        fd = lock_run(run.path.parent, run.name)
    except OSError as e:
        raise StorageError(storage_message(e)) from e
    if fd is None:
        raise RunError(f"run {run.name} is being trained by another process: stop it first, or wait for it to end")
    release_ticket()  # started from the queue: the lock tells from now on
    try:
        yield
    finally:
        os.close(fd)


def train(config: RunConfig, runs_dir: str | Path = "runs", run_name: str | None = None, callbacks=()) -> RunResult:
    """Start a new run in ``runs_dir/run_name`` and train it to the end (or a stop)."""
    run = RunDir.open(runs_dir, run_name or new_run_name(config.family))
    with _run_lock(run):
        if not run.is_blank():  # a job killed before it saved anything leaves a blank folder: reuse it
            raise RunError(f"run {run.name} already exists in {runs_dir}; resume it or choose another name")
        try:
            run.remove_partial_writes()
            run.create(config.to_dict())
            run.write_status("queued", pid=os.getpid(), pid_start=process_start(os.getpid()))
        except OSError as e:
            raise StorageError(storage_message(e)) from e
        return _fit(config, run, callbacks)


def _fit(config: RunConfig, run: RunDir, callbacks, checkpoint: dict | None = None) -> RunResult:
    """Build the trainer (a failure there, e.g. no data, still ends the run as failed) and train,
    writing TensorBoard events beside the metrics."""
    try:
        trainer = Trainer(config, run, [TensorBoardEvents(), *callbacks], checkpoint)
    except BaseException as e:
        with contextlib.suppress(OSError):
            run.write_status("failed", error=f"{type(e).__name__}: {e}")
        raise
    previous_handler = _install_sigterm(trainer)
    try:
        return trainer.fit()
    finally:
        _restore_sigterm(previous_handler)


def resume(runs_dir: str | Path, run_name: str, callbacks=(), epochs: int | None = None,
           restart: bool = False) -> RunResult:
    """Continue a run from its ``last.pt``, with the same config (``epochs`` may be raised).

    Everything is checked before any file changes: the new epoch count (against the config's own
    rules and the epochs already done) and the checkpoint itself. A run whose ``last.pt`` is gone
    is refused, unless ``restart``: then its training starts over from step 0 (its metrics,
    pictures, events and checkpoints are removed first; its config stays).
    """
    run = RunDir.open(runs_dir, run_name)
    if not run.exists():
        raise RunError(f"no run {run_name!r} in {runs_dir}")
    with _run_lock(run):
        config = RunConfig.from_dict(run.read_config())
        if epochs is not None:
            config.train = dataclasses.replace(config.train, epochs=epochs)  # runs TrainConfig's checks
        checkpoint = None
        if run.last_checkpoint.is_file() and not restart:
            checkpoint = read_checkpoint(run.last_checkpoint, config.family)
            if checkpoint["epoch"] > config.train.epochs:
                raise ConfigError(f"run {run.name} has done {checkpoint['epoch']} epochs already: --epochs must be "
                                  f"at least {checkpoint['epoch']}")
        elif not restart and run.best_checkpoint.is_file():
            raise RunError(f"run {run.name} has no checkpoints/last.pt to continue from (deleted?): resuming "
                           "would start it over from step 0 and replace its best.pt; resume with --restart to "
                           "do exactly that")
        # (killed before its first checkpoint, a run has nothing to lose: it starts over)
        try:
            run.remove_partial_writes()  # of a job killed mid-write; ours to clean now we hold the lock
            if epochs is not None:
                run.create(config.to_dict())
            if checkpoint is not None:
                # Anything logged after the checkpoint will be logged again: drop it, keep one history.
                _truncate_metrics(run, checkpoint["step"])
            else:
                run.clear_training()
        except OSError as e:
            raise StorageError(storage_message(e)) from e
        return _fit(config, run, callbacks, checkpoint)


def _truncate_metrics(run: RunDir, step: int) -> None:
    """Keep metric records up to the checkpoint: train steps < step, validation at steps <= step.

    Rewritten whenever the file exists, even if no record is dropped: a job killed mid-write
    leaves a partial last line, which the resumed job's first append would otherwise extend.
    """
    if not run.metrics_path.exists():
        return
    records, _ = run.read_metrics()
    kept = [r for r in records if r["step"] < step or (r["split"] != "train" and r["step"] <= step)]
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept)
    atomic_write(run.metrics_path, lambda f: f.write(text.encode()))
