"""Fault injection: training processes killed with SIGKILL at random moments (and inside checkpoint
writes), a full disk, an unwritable runs directory. Afterwards every run reads as failed, resumes
from its last checkpoint with one unbroken history, and no reader ever met a torn file.

The killed processes are forked from a forkserver that has imported torch once, so each of the
21 kills costs the training it interrupts, not a 2-3 s interpreter start-up; a second test kills a
real ``python -m train`` job started by the launcher, inside a checkpoint write.
"""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from genapp.checkpoint import CheckpointError, read_checkpoint
from genapp.files import PAUSE_WRITES_ENV
from genapp.config import TrainConfig
from genapp.models import RunConfig
from genapp.models import FlowConfig, GANConfig, VAEConfig
from genapp.runs import RunDir, RunError
from genapp.training import resume, train
from genapp.jobs.local import JobTable, LaunchError, resume_run, run_state, start_run
from genapp.runs import StorageError, read_json, storage_message
from tests.conftest import ROOT
from tests.test_data import write_mnist_dir

FAMILIES = ("vae", "gan", "flow")
CYCLES = 7  # kills per family: 21 in all
PAUSED_CYCLES = {1: "last.pt", 3: "last.pt", 5: "status.json"}  # killed inside these writes
ENDLESS = 100_000  # epochs: a run that never ends by itself within a test


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory) -> Path:
    """Random IDX files (10,064 training images): read in milliseconds, unlike the real pickle."""
    directory = tmp_path_factory.mktemp("mnist")
    write_mnist_dir(directory)
    return directory


def small_run(family: str, data_dir: Path, epochs: int = ENDLESS) -> RunConfig:
    """A few milliseconds per step: 4 steps an epoch, a checkpoint every epoch."""
    train_config = TrainConfig(epochs=epochs, batch_size=16, train_size=64, valid_size=32, sample_count=4,
                               log_every=1, quality_every=0, device="cpu", data_dir=str(data_dir))
    model = {"vae": VAEConfig(latent_dim=2, hidden=(32, 16)),
             "gan": GANConfig(generator_hidden=(16, 32), discriminator_hidden=(32, 16)),
             "flow": FlowConfig(couplings=2, hidden=16, mlp_layers=1)}[family]
    return RunConfig(family, model, train_config)


def _child(family: str, runs_dir: str, name: str, data_dir: str, paused: str) -> None:
    """A training process (forked from the forkserver): a new run, or a resume of an existing one."""
    os.environ[PAUSE_WRITES_ENV] = paused
    torch.set_num_threads(1)
    run = RunDir.open(runs_dir, name)
    if run.exists():
        resume(runs_dir, name)
    else:
        train(small_run(family, Path(data_dir)), runs_dir, name)


def _forkserver():
    context = multiprocessing.get_context("forkserver")
    # torch._dynamo: the first Adam imports it, seconds that each child would pay again.
    context.set_forkserver_preload(["torch", "torch._dynamo", "genapp.training.engine", "tests.test_faults"])
    return context


# ----------------------------------------------------------------------------- what a reader sees


def check_nothing_torn(run: RunDir) -> None:
    """Every file a reader opens is whole: status and config parse, checkpoints load, sample grids
    decode, and every complete line of metrics.jsonl is a JSON object (a partial last line is
    what a killed append leaves, and what readers skip)."""
    for path in (run.config_path, run.status_path):
        if path.exists():
            read_json(path)  # raises RunError on a torn document
    for path in (run.last_checkpoint, run.best_checkpoint):
        if path.exists():
            read_checkpoint(path)  # raises CheckpointError on a torn checkpoint
    for path in run.samples_dir.glob("epoch-*.png") if run.samples_dir.is_dir() else []:
        with Image.open(path) as image:
            image.load()
    if run.metrics_path.exists():
        *lines, _partial = run.metrics_path.read_bytes().split(b"\n")
        assert all(isinstance(json.loads(line), dict) for line in lines)


def read_while(runs: list[RunDir], seconds: float) -> int:
    """Read every run's files for ``seconds`` (while their jobs write them); returns the reads."""
    reads, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run in runs:
            try:
                check_nothing_torn(run)
            except (FileNotFoundError, RunError, CheckpointError) as e:
                if isinstance(e, FileNotFoundError) or "missing" in str(e) or "no such" in str(e):
                    continue  # deleted between exists() and open(): a rename, not a tear
                raise
            reads += 1
    return reads


def wait_for_partial_write(run: RunDir, paused: str, timeout: float) -> bool:
    """Wait until a write of ``paused`` hangs half-done (its temporary file is on disk)."""
    folder = run.checkpoints_dir if paused.endswith(".pt") else run.path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and any(p.stat().st_size > 0 for p in folder.glob(f".{paused}.*.tmp")):
            return True
        time.sleep(0.02)
    return False


def check_history(run: RunDir, steps: int, epochs: int) -> None:
    """One unbroken history: every step once, every epoch's validation once."""
    records, _ = run.read_metrics()
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(steps))
    assert [r["epoch"] for r in records if r["split"] == "valid"] == list(range(1, epochs + 1))


# ----------------------------------------------------------------------------- the tests


def test_random_sigkills_leave_failed_runs_that_resume_with_their_history(tmp_path, small_mnist):
    rng = random.Random(8)
    context = _forkserver()
    runs_dir = tmp_path / "runs"
    runs = {family: RunDir.open(runs_dir, f"{family}-killed") for family in FAMILIES}
    kills, paused_kills, reads = 0, 0, 0
    for cycle in range(CYCLES):
        paused = PAUSED_CYCLES.get(cycle, "")
        children = {}
        for family, run in runs.items():
            children[family] = context.Process(target=_child, args=(family, str(runs_dir), run.name,
                                                                      str(small_mnist), paused))
            children[family].start()
        if paused:  # kill each inside its hanging write (if the write comes; else at a random moment)
            for family, child in children.items():
                paused_kills += wait_for_partial_write(runs[family], paused, timeout=30)
                child.kill()
        else:  # kill each at its own random moment: while starting, training, validating or saving
            moments = sorted((rng.uniform(0.0, 1.5), family) for family in FAMILIES)
            elapsed = 0.0
            for moment, family in moments:
                reads += read_while(list(runs.values()), moment - elapsed)
                elapsed = moment
                children[family].kill()
        for family, child in children.items():
            child.join(30)
            assert child.exitcode == -signal.SIGKILL, f"{family} ended by itself ({child.exitcode}) in cycle {cycle}"
            kills += 1
            run = runs[family]
            check_nothing_torn(run)
            if run.exists():  # else killed before it saved its config: the next cycle starts it anew
                state = run_state(run)
                assert state.state == "failed", (family, cycle, state)
                assert "ended without reporting" in state.error
    assert kills >= 20 and paused_kills >= 6 and reads > 0

    # Each resumes from its last checkpoint and trains two more epochs to the end.
    for family, run in runs.items():
        assert run.exists(), f"{family} never saved its config in {CYCLES} lives"
        done = read_checkpoint(run.last_checkpoint)["epoch"] if run.last_checkpoint.exists() else 0
        result = resume(runs_dir, run.name, epochs=done + 2)
        assert result.state == "finished"
        steps_per_epoch = 64 // 16
        assert result.step == steps_per_epoch * (done + 2)
        check_history(run, result.step, done + 2)
        assert list(run.path.rglob("*.tmp")) == []  # the half-written files of the killed jobs are gone
        assert read_checkpoint(run.last_checkpoint)["step"] == result.step


def test_a_job_killed_inside_a_checkpoint_write_reads_failed_and_resumes(tmp_path, small_mnist, monkeypatch):
    """The real thing: ``python -m train`` behind the queue waiter, started by the launcher,
    SIGKILLed while its last.pt is half-written; then resumed from the launcher."""
    jobs = JobTable()
    monkeypatch.setenv(PAUSE_WRITES_ENV, "last.pt")
    job = start_run(small_run("vae", small_mnist), tmp_path, "hard-kill", jobs, max_jobs=2)
    run = RunDir(tmp_path / "hard-kill")
    assert wait_for_partial_write(run, "last.pt", timeout=120), "the job never wrote a checkpoint"
    assert run_state(run, jobs).state == "running"
    os.kill(job.process.pid, signal.SIGKILL)
    job.process.wait(30)
    state = run_state(run, jobs)
    assert state.state == "failed" and "ended without reporting" in state.error
    assert run_state(run).state == "failed"  # a restarted server, with no job table, agrees
    assert not run.last_checkpoint.exists()  # killed inside the first one: nothing torn in its place
    check_nothing_torn(run)

    monkeypatch.delenv(PAUSE_WRITES_ENV)
    resume_run(run, epochs=2, jobs=jobs, max_jobs=2)
    deadline = time.monotonic() + 120
    while run_state(run, jobs).active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_state(run, jobs).state == "finished", run_state(run, jobs)
    check_history(run, 8, 2)


class FullDisk:
    """``os.fsync`` that fails with ENOSPC, as a write to a full disk does, for files matching
    ``names`` (every atomic write: checkpoints, status, sample grids) once ``full`` is set."""

    def __init__(self, monkeypatch, suffixes: tuple[str, ...]) -> None:
        self.full, self.suffixes, self.real = False, suffixes, os.fsync
        monkeypatch.setattr(os, "fsync", self.fsync)

    def fsync(self, fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if self.full and any(name.endswith(s) or f"{s}." in name for s in self.suffixes):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        self.real(fd)


class FillAfter:
    def __init__(self, disk: FullDisk, step: int) -> None:
        self.disk, self.step = disk, step

    def on_start(self, trainer): ...
    def on_epoch_end(self, trainer, record): ...
    def on_end(self, trainer, state): ...

    def on_steps(self, trainer, records):
        self.disk.full = self.disk.full or trainer.step >= self.step


def test_a_full_disk_fails_the_run_clearly_and_loses_nothing(tmp_path, small_mnist, monkeypatch):
    runs_dir = tmp_path / "runs"
    other = train(small_run("vae", small_mnist, epochs=1), runs_dir, "other").run
    before = {p: p.read_bytes() for p in other.path.rglob("*") if p.is_file()}

    # A checkpoint does not fit (a few bytes of status still do): the run says why it failed.
    disk = FullDisk(monkeypatch, (".pt",))
    with pytest.raises(StorageError, match="no space left on the device"):
        train(small_run("vae", small_mnist, epochs=4), runs_dir, "full", callbacks=[FillAfter(disk, 6)])
    run = RunDir.open(runs_dir, "full")
    state = run_state(run)
    assert state.state == "failed" and "no space left" in state.error and "resume" in state.error
    assert read_checkpoint(run.last_checkpoint)["step"] == 4  # the epoch before the disk filled
    check_nothing_torn(run)

    # Nothing at all can be written: the status cannot say so, but the dead job reads as failed.
    disk.full, disk.suffixes = False, ("",)
    with pytest.raises(StorageError, match="no space left"):
        resume(runs_dir, "full", callbacks=[FillAfter(disk, 6)])
    assert run.read_status()["state"] == "running" and run_state(run).state == "failed"
    assert read_checkpoint(run.last_checkpoint)["step"] == 4
    check_nothing_torn(run)

    # Space is freed: the run resumes to the end with one history; the other run is untouched.
    disk.full = False
    assert resume(runs_dir, "full").state == "finished"
    check_history(run, 16, 4)
    assert before == {p: p.read_bytes() for p in other.path.rglob("*") if p.is_file()}
    assert list(runs_dir.rglob("*.tmp")) == []


def test_an_unwritable_runs_directory_is_a_clear_message_everywhere(tmp_path, small_mnist):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    runs_dir = blocker / "runs"
    # The engine and the CLI.
    with pytest.raises(StorageError, match="a file stands where the runs directory should be"):
        train(small_run("vae", small_mnist, epochs=1), runs_dir, "nowhere")
    result = subprocess.run([sys.executable, "-m", "train", "vae", "--epochs", "1", "--runs-dir", str(runs_dir)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "error: cannot create" in result.stderr
    assert "Traceback" not in result.stderr
    # The launcher refuses before starting anything.
    with pytest.raises(LaunchError, match="a file stands where the runs directory should be"):
        start_run(small_run("vae", small_mnist), runs_dir, "nowhere", JobTable())
    # Permission and read-only errors name the way out.
    for code in (errno.EACCES, errno.EROFS):
        message = storage_message(OSError(code, os.strerror(code), "/srv/runs/x/status.json"))
        assert "/srv/runs/x/status.json" in message and "writable runs directory" in message
