"""Start, stop, resume and inspect training jobs as separate processes (used by the explorer).

A job is ``python -m train <family> ...``: the same CLI and engine as a headless run, in its own
session, so closing the browser, refreshing the page or restarting the server never stops it.
The launcher writes nothing that the engine writes: the run directory (config, status, metrics)
belongs to the job. The launcher only keeps the job's console output, in
``<runs-dir>/.logs/<run>.log`` (outside the run directory, which the engine creates itself and
refuses to start in if it is not empty).

What a run is doing is read from its ``status.json``, corrected for a job that died without a
word (killed, out of memory): a status that still says running while its process is gone reads
as failed.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from genapp.config import RunConfig, option_name
from genapp.training.runs import ACTIVE_STATES, RunDir, RunError, check_run_name, pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]  # where ``python -m train`` is importable
LOG_DIR = ".logs"
LOG_TAIL_LINES = 20


class LaunchError(RuntimeError):
    """A job could not be started, stopped or deleted; the message says why, for a user."""


# ----------------------------------------------------------------------------- commands


def option_value(value: object) -> str:
    """A config value as the CLI reads it back: tuples comma-separated, booleans true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def config_options(config: object) -> list[str]:
    """``["--latent-dim", "2", ...]``: every field of a config dataclass, explicitly."""
    options = []
    for f in dataclasses.fields(config):
        options += [option_name(f.name), option_value(getattr(config, f.name))]
    return options


def train_command(config: RunConfig, runs_dir: Path, run_name: str) -> list[str]:
    """The argv that trains ``config`` as a new run ``runs_dir/run_name``."""
    return [
        sys.executable, "-m", "train", config.family,
        *config_options(config.model), *config_options(config.train),
        "--runs-dir", str(runs_dir), "--run-name", run_name, "--no-progress",
    ]


def resume_command(family: str, runs_dir: Path, run_name: str, epochs: int | None = None) -> list[str]:
    """The argv that continues run ``runs_dir/run_name`` (to ``epochs`` in all, if given)."""
    command = [sys.executable, "-m", "train", family, "--runs-dir", str(runs_dir), "--resume", run_name]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    return command + ["--no-progress"]


def log_path(runs_dir: str | Path, run_name: str) -> Path:
    """Where the console output of run ``run_name``'s jobs goes (appended by each job)."""
    return Path(runs_dir) / LOG_DIR / f"{run_name}.log"


def log_tail(runs_dir: str | Path, run_name: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the run's log, or "" when there is none."""
    try:
        text = log_path(runs_dir, run_name).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# ----------------------------------------------------------------------------- jobs


@dataclass
class Job:
    """A training process this server started."""

    family: str
    run_name: str
    runs_dir: Path
    process: subprocess.Popen
    command: list[str]
    started: float = field(default_factory=time.time)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class JobTable:
    """The jobs this server started, by run directory; thread-safe, one per server.

    Keeping the ``Popen`` objects lets the server reap its children (a finished child that is
    never waited for stays a zombie, and a zombie's pid still answers ``kill(pid, 0)``) and
    tell "starting" from "never started" before the engine has written anything.
    """

    def __init__(self) -> None:
        self._jobs: dict[Path, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.runs_dir / job.run_name] = job

    def get(self, runs_dir: str | Path, run_name: str) -> Job | None:
        """The latest job of that run, reaped if it has ended; None if this server started none."""
        with self._lock:
            job = self._jobs.get(Path(runs_dir).resolve() / run_name)
        if job is not None:
            job.process.poll()
        return job

    def in_dir(self, runs_dir: str | Path) -> list[Job]:
        """Jobs started in ``runs_dir``, newest first."""
        root = Path(runs_dir).resolve()
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.runs_dir == root]
        return sorted(jobs, key=lambda j: j.started, reverse=True)

    def reap(self) -> None:
        """Collect the exit status of every ended job (``poll`` waits without blocking)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.process.poll()


def _spawn(command: list[str], runs_dir: Path, run_name: str) -> subprocess.Popen:
    """Start ``command`` in its own session, console output appended to the run's log."""
    log = log_path(runs_dir, run_name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        return subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # not in the server's process group: a Ctrl-C there spares it
        )


def start_run(config: RunConfig, runs_dir: str | Path, run_name: str, jobs: JobTable | None = None) -> Job:
    """Launch a new run; returns at once (the job creates the run directory a moment later)."""
    runs_dir = Path(runs_dir).resolve()
    check_run_name(run_name)
    run = RunDir(runs_dir / run_name)
    if run.path.exists():
        raise LaunchError(f"a run named {run_name!r} already exists in {runs_dir}; choose another name")
    command = train_command(config, runs_dir, run_name)
    job = Job(config.family, run_name, runs_dir, _spawn(command, runs_dir, run_name), command)
    if jobs is not None:
        jobs.add(job)
    return job


def resume_run(run: RunDir, epochs: int | None = None, jobs: JobTable | None = None) -> Job:
    """Continue a run that is not active from its last checkpoint (raising ``epochs`` if given)."""
    state = run_state(run, jobs)
    if state.active:
        raise LaunchError(f"run {run.name} is {state.state}; it cannot be resumed while it runs")
    family = str(run.read_config().get("family"))
    runs_dir = run.path.parent.resolve()
    command = resume_command(family, runs_dir, run.name, epochs)
    job = Job(family, run.name, runs_dir, _spawn(command, runs_dir, run.name), command)
    if jobs is not None:
        jobs.add(job)
    return job


def stop_run(run: RunDir, jobs: JobTable | None = None) -> None:
    """Ask a running job to stop: SIGTERM, on which it checkpoints and ends as ``stopped``.

    A job that has not reached its training loop yet (still loading data) has no handler for
    the signal and simply ends; its run then reads as failed and can be started again.
    """
    state = run_state(run, jobs)
    if not state.active:
        raise LaunchError(f"run {run.name} is {state.state}, not running")
    job = jobs.get(run.path.parent, run.name) if jobs is not None else None
    pid = job.process.pid if job is not None and job.alive else state.status.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        raise LaunchError(f"run {run.name}: its process is gone")
    os.kill(pid, signal.SIGTERM)


def delete_run(run: RunDir, jobs: JobTable | None = None) -> None:
    """Remove a run directory and its log; refused while the run is active."""
    state = run_state(run, jobs)
    if state.active:
        raise LaunchError(f"run {run.name} is {state.state}: stop it before deleting it")
    if not run.exists():
        raise LaunchError(f"{run.path} is not a run directory")
    shutil.rmtree(run.path)
    log_path(run.path.parent, run.name).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- state


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live training process (not a zombie, not a recycled pid).

    On Linux the command line is checked too: a zombie has none, and a pid reused by an
    unrelated program does not mention ``train``.
    """
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.is_dir():
        return True  # no /proc (macOS): trust the signal check
    try:
        return b"train" in cmdline.read_bytes()
    except OSError:
        return False


@dataclass
class RunState:
    """What a run is doing, as the explorer shows it.

    ``state`` is one of the engine's states (queued, running, finished, stopped, failed,
    diverged), ``unknown``, or ``starting`` (launched, nothing written yet). ``status`` is the
    run's status.json (empty while starting); ``error`` a message for failed runs.
    """

    state: str
    status: dict
    error: str = ""

    @property
    def active(self) -> bool:
        return self.state in (*ACTIVE_STATES, "starting")


def run_state(run: RunDir, jobs: JobTable | None = None) -> RunState:
    """The run's status, corrected for a job that ended without writing its final status."""
    job = jobs.get(run.path.parent, run.name) if jobs is not None else None
    if not run.status_path.is_file():
        return _state_without_status(run, job)
    status = run.read_status()
    if status["state"] not in ACTIVE_STATES or _job_alive(status, job):
        return RunState(status["state"], status, status.get("error", ""))
    status = run.read_status()  # it may have finished between the first read and the check
    if status["state"] not in ACTIVE_STATES:
        return RunState(status["state"], status, status.get("error", ""))
    return RunState("failed", status, _died_message(run, status.get("pid")))


def _job_alive(status: dict, job: Job | None) -> bool:
    if job is not None and job.alive:
        return True
    pid = status.get("pid")
    return isinstance(pid, int) and process_alive(pid)


def _state_without_status(run: RunDir, job: Job | None) -> RunState:
    if job is None:
        return RunState("unknown", {}, f"{run.path}: no status.json")
    if job.alive:
        return RunState("starting", {})
    message = f"the job ended (exit code {job.process.returncode}) before creating the run"
    tail = log_tail(job.runs_dir, job.run_name)
    return RunState("failed", {}, message + (f":\n{tail}" if tail else ""))


def _died_message(run: RunDir, pid: object) -> str:
    message = f"the training process (pid {pid}) ended without reporting (killed, or crashed)"
    tail = log_tail(run.path.parent, run.name)
    return message + (f"; the end of its log:\n{tail}" if tail else "")


def pending_run_names(runs_dir: str | Path, jobs: JobTable, family: str) -> list[str]:
    """Runs of ``family`` this server launched in ``runs_dir`` that have no run directory yet."""
    return [
        j.run_name for j in jobs.in_dir(runs_dir)
        if j.family == family and not RunDir(j.runs_dir / j.run_name).exists()
    ]


__all__ = [
    "Job", "JobTable", "LaunchError", "RunError", "RunState", "delete_run", "log_path", "log_tail",
    "pending_run_names", "process_alive", "resume_run", "run_state", "start_run", "stop_run",
    "train_command",
]
