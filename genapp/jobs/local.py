"""The local job backend: training jobs as separate processes of this machine, behind a queue.

A job is ``python -m train <family> ...``: the same CLI and engine as a headless run, in its own
session, so closing the browser, refreshing the page or restarting the server never stops it.
The launcher writes nothing that the engine writes: the run directory (config, status, metrics)
belongs to the job. The launcher only keeps the job's console output, in
``<runs-dir>/.logs/<run>.log`` (outside the run directory, which the engine creates itself and
refuses to start in if it is not empty).

What a run is doing is read from its ``status.json``, corrected for a job that died without a
word (killed, out of memory): a status that still says running while no process holds the run's
lock (see ``genapp.runs.locks``) reads as failed. Nothing of this lives only in the server, so
a restarted server (or a second one) finds every job again.

At most ``GENAPP_MAX_JOBS`` jobs (default 2; 0 = no limit) train at once: each job starts
behind the queue waiter of ``genapp.jobs.waiter``, which waits for a free slot, first come,
first served, and shows the job as ``queued`` with its place in the line meanwhile. Jobs run
``GENAPP_JOB_NICE`` (default 10) steps below the server's CPU priority, so that pages keep
answering while training uses every core.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from genapp.jobs import queue
from genapp.runs import ACTIVE_STATES, RunDir, RunError, check_run_name, storage_message
from genapp.runs.locks import LOCKS_DIR, is_locked, lock_run, process_alive, run_lock_path, run_locked

REPO_ROOT = Path(__file__).resolve().parents[2]  # where ``python -m train`` is importable
LOG_DIR = ".logs"
LOG_TAIL_LINES = 20


class LaunchError(RuntimeError):
    """A job could not be started, stopped or deleted; the message says why, for a user."""


# ----------------------------------------------------------------------------- commands


def train_command(config, runs_dir: Path, run_name: str) -> list[str]:
    """The argv that trains ``config`` (a ``RunConfig``) as a new run ``runs_dir/run_name``."""
    return [sys.executable, "-m", "train", *config.to_argv(),
            f"--runs-dir={runs_dir}", f"--run-name={run_name}", "--no-progress"]


def resume_command(family: str, runs_dir: Path, run_name: str, epochs: int | None = None,
                   restart: bool = False) -> list[str]:
    """The argv that continues run ``runs_dir/run_name`` (to ``epochs`` in all, if given; from step
    0 with ``restart``)."""
    command = [sys.executable, "-m", "train", family, f"--runs-dir={runs_dir}", f"--resume={run_name}"]
    if epochs is not None:
        command.append(f"--epochs={epochs}")
    return command + (["--restart"] if restart else []) + ["--no-progress"]


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

    def remove(self, job: Job) -> None:
        with self._lock:
            if self._jobs.get(job.runs_dir / job.run_name) is job:
                del self._jobs[job.runs_dir / job.run_name]

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


def queued_command(command: list[str], runs_dir: Path, run_name: str, family: str, limit: int,
                   nice: int = 0) -> list[str]:
    """``command`` behind the queue waiter: it trains once one of ``limit`` slots is free (at once
    if ``limit`` is 0), ``nice`` steps below the server's priority."""
    return [sys.executable, "-m", "genapp.jobs.waiter", f"--runs-dir={runs_dir}", f"--run={run_name}",
            f"--family={family}", f"--max-jobs={limit}", f"--nice={nice}", "--", *command]


def _spawn(command: list[str], runs_dir: Path, run_name: str) -> subprocess.Popen:
    """Start ``command`` in its own session, console output appended to the run's log."""
    log = log_path(runs_dir, run_name)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")
    except OSError as e:  # an unwritable or full runs directory: refuse before starting anything
        raise LaunchError(storage_message(e, str(runs_dir))) from None
    with out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        return subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # not in the server's process group: a Ctrl-C there spares it
        )


def _launch(family: str, command: list[str], runs_dir: Path, run_name: str, jobs: JobTable | None,
            max_jobs: int | None) -> Job:
    try:
        limit = queue.max_jobs() if max_jobs is None else max_jobs
        nice = queue.job_nice()
    except ValueError as e:
        raise LaunchError(str(e)) from None
    command = queued_command(command, runs_dir, run_name, family, limit, nice)
    job = Job(family, run_name, runs_dir, _spawn(command, runs_dir, run_name), command)
    if jobs is not None:
        jobs.add(job)
    return job


def start_run(config, runs_dir: str | Path, run_name: str, jobs: JobTable | None = None,
              max_jobs: int | None = None) -> Job:
    """Launch a new run; returns at once (the job creates the run directory a moment later).

    ``max_jobs`` (default ``GENAPP_MAX_JOBS``, else 2; 0 = no limit) jobs train at a time: a
    job started beyond that waits in the queue.
    """
    runs_dir = Path(runs_dir).resolve()
    check_run_name(run_name)
    run = RunDir(runs_dir / run_name)
    if run.path.exists() and not run.is_blank() or run_locked(runs_dir, run_name):
        raise LaunchError(f"a run named {run_name!r} already exists in {runs_dir}; choose another name")
    if queue.ticket(runs_dir, run_name) is not None:
        raise LaunchError(f"a run named {run_name!r} is already waiting in the queue; choose another name")
    return _launch(config.family, train_command(config, runs_dir, run_name), runs_dir, run_name, jobs, max_jobs)


def check_resumable(run: RunDir, state: RunState, epochs: int | None, restart: bool) -> str:
    """The run's family, when a backend may resume it (``state`` its state there); else raises
    ``LaunchError`` saying why not."""
    if state.active:
        raise LaunchError(f"run {run.name} is {state.state}; it cannot be resumed while it runs")
    family = run.family
    if family is None:
        raise LaunchError(f"run {run.name}: its config.json is unreadable, so it cannot be resumed")
    if not restart and not run.last_checkpoint.is_file() and run.best_checkpoint.is_file():
        raise LaunchError(f"run {run.name} has no checkpoints/last.pt to continue from: start it over instead")
    if epochs is not None and not 1 <= epochs <= 1_000_000:
        raise LaunchError(f"epochs must be in 1..1000000, got {epochs}")
    return family


def resume_run(run: RunDir, epochs: int | None = None, jobs: JobTable | None = None,
               max_jobs: int | None = None, restart: bool = False) -> Job:
    """Continue a run that is not active from its last checkpoint (raising ``epochs`` if given),
    or, with ``restart``, train it again from step 0 (for a run whose last.pt is gone)."""
    family = check_resumable(run, run_state(run, jobs), epochs, restart)
    runs_dir = run.path.parent.resolve()
    command = resume_command(family, runs_dir, run.name, epochs, restart)
    return _launch(family, command, runs_dir, run.name, jobs, max_jobs)


def stop_run(run: RunDir, jobs: JobTable | None = None) -> None:
    """Ask a job to stop: SIGTERM, on which it checkpoints and ends as ``stopped``; a job still
    waiting in the queue leaves it (a new run then leaves no trace).

    A job that has not reached its training loop yet (still loading data) has no handler for
    the signal and simply ends; its run then reads as failed and can be started again.
    """
    state = run_state(run, jobs)
    if not state.active:
        raise LaunchError(f"run {run.name} is {state.state}, not running")
    job = jobs.get(run.path.parent, run.name) if jobs is not None else None
    ticket = queue.ticket(run.path.parent, run.name)
    if ticket is not None:
        pid, start = ticket.pid, ticket.pid_start
    elif job is not None and job.alive:
        pid, start = job.process.pid, None
    else:
        pid, start = state.status.get("pid"), state.status.get("pid_start")
    if not process_alive(pid, start):
        raise LaunchError(f"run {run.name}: its process is gone")
    os.kill(pid, signal.SIGTERM)
    if state.ticket is not None:  # queued (not started)
        # The waiter leaves at once; wait for it, so the page that asked shows it gone.
        deadline = time.monotonic() + 5
        while is_locked(queue.ticket_path(run.path.parent, run.name)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if job is not None and not run.exists():
            jobs.remove(job)


def delete_run(run: RunDir, jobs: JobTable | None = None) -> None:
    """Remove a run directory and its log; refused while the run is active.

    Only ever a real directory directly inside the runs directory: a run name is one path
    component, a symbolic link is refused (never followed), and the run's lock is held while
    deleting, so no job can start writing into it meanwhile.
    """
    try:
        check_run_name(run.name)
    except RunError as e:
        raise LaunchError(f"not deleted: {e}") from None
    root = run.path.parent.resolve()
    if run.path.is_symlink():
        raise LaunchError(f"{run.path} is a symbolic link: genapp deletes only run directories it "
                          "made; remove the link by hand")
    target = run.path.resolve()
    if target.parent != root or not target.is_relative_to(root):
        raise LaunchError(f"{run.path} is not inside the runs directory {root}")
    state = run_state(run, jobs)
    if state.active:
        raise LaunchError(f"run {run.name} is {state.state}: stop it before deleting it")
    if not run.exists():
        raise LaunchError(f"{run.path} is not a run directory")
    try:
        lock = lock_run(root, run.name, timeout=0.5)
    except OSError as e:
        raise LaunchError(f"not deleted: {storage_message(e)}") from None
    if lock is None:
        raise LaunchError(f"run {run.name} is being trained: stop it before deleting it")
    try:
        shutil.rmtree(target)  # removes links inside the run, never what they point to
        log_path(root, run.name).unlink(missing_ok=True)
        run_lock_path(root, run.name).unlink(missing_ok=True)  # ours while we hold it
    finally:
        os.close(lock)


# ----------------------------------------------------------------------------- state


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
    ticket: queue.Ticket | None = None  # its place in the queue, while queued for a slot
    waiting: int = 0  # jobs in that queue
    reason: str = ""  # why it waits, in the backend's words (Ray's PENDING message)
    where: str = ""  # the node the job runs on, on a cluster ("" on this machine)

    @property
    def active(self) -> bool:
        return self.state in (*ACTIVE_STATES, "starting")

    @property
    def label(self) -> str:
        """The state as a table shows it: "queued (2 of 3)" while waiting for a slot."""
        if self.ticket is not None:
            return f"queued ({self.ticket.position} of {self.waiting})"
        if self.reason:
            return f"{self.state} ({self.reason.split(':')[0]})"
        return self.state


def run_state(run: RunDir, jobs: JobTable | None = None) -> RunState:
    """The run's status, corrected for a job that ended without writing its final status, and for
    one that waits in the queue or is starting (it has written nothing yet)."""
    root = run.path.parent
    job = jobs.get(root, run.name) if jobs is not None else None
    live = queue.tickets(root) if is_locked(queue.ticket_path(root, run.name)) else []
    ticket = next((t for t in live if t.run == run.name), None)
    status = run.read_status() if run.status_path.is_file() else {}
    if ticket is not None and ticket.started:
        return RunState("starting", status)  # has its slot; the engine has not taken over yet
    if ticket is not None:
        return RunState("queued", status, "", ticket, len(queue.queue()))  # its place in the server's line
    if not status:
        return _state_without_status(run, job)
    if status["state"] not in ACTIVE_STATES:
        if job is not None and job.alive and job.started > status.get("updated", 0):
            return RunState("starting", status)  # resumed: the new job has not reported yet
        return RunState(status["state"], status, status.get("error", ""))
    if _job_alive(run, status, job):
        return RunState(status["state"], status, status.get("error", ""))
    status = run.read_status()  # it may have finished between the first read and the check
    if status["state"] not in ACTIVE_STATES:
        return RunState(status["state"], status, status.get("error", ""))
    return RunState("failed", status, _died_message(run, status.get("pid")))


def _job_alive(run: RunDir, status: dict, job: Job | None) -> bool:
    if run_locked(run.path.parent, run.name) or (job is not None and job.alive):
        return True
    if "pid_start" in status:
        return False  # written by an engine that holds the run's lock while it lives: the lock said no
    return process_alive(status.get("pid"))  # an older status: the pid is all there is


def _state_without_status(run: RunDir, job: Job | None) -> RunState:
    if run_locked(run.path.parent, run.name):
        return RunState("starting", {})
    if job is None:
        if run.exists():
            return RunState("failed", {}, _died_message(run, None))  # it never reported at all
        return RunState("unknown", {}, f"{run.path}: no status.json")
    if job.alive:
        return RunState("starting", {})
    message = f"the job ended (exit code {job.process.returncode}) before creating the run"
    tail = log_tail(job.runs_dir, job.run_name)
    return RunState("failed", {}, message + (f":\n{tail}" if tail else ""))


def _died_message(run: RunDir, pid: object) -> str:
    process = f"the training process (pid {pid})" if pid is not None else "the training process"
    message = f"{process} ended without reporting (killed, or crashed); resume the run to continue " \
              "from its last checkpoint"
    tail = log_tail(run.path.parent, run.name)
    return message + (f"; the end of its log:\n{tail}" if tail else "")


def pending_run_names(runs_dir: str | Path, jobs: JobTable, family: str) -> list[str]:
    """Runs of ``family`` launched in ``runs_dir`` that have no run directory yet: this server's
    jobs, then those waiting in the queue (whoever started them, before a restart too)."""
    names = [j.run_name for j in jobs.in_dir(runs_dir) if j.family == family]
    names += [t.run for t in queue.tickets(runs_dir) if t.family == family and t.run not in names]
    return [name for name in names if not RunDir(Path(runs_dir) / name).exists()]


def activity(runs_dir: str | Path) -> tuple[int, int]:
    """(jobs training in ``runs_dir``, whoever started them; jobs waiting in the server's queue)."""
    locks = Path(runs_dir) / LOCKS_DIR
    try:
        training = sum(is_locked(p) for p in locks.glob("*.lock"))
    except OSError:
        training = 0
    return training, len(queue.queue())


class LocalBackend:
    """The ``JobBackend`` of this machine: jobs are subprocesses behind the queue, and their
    liveness comes from the run locks. The default; needs nothing beyond genapp."""

    name = "local"

    def __init__(self, max_jobs: int | None = None) -> None:
        self.jobs = JobTable()
        self.max_jobs = max_jobs

    def submit(self, config, runs_dir: str | Path, run_name: str) -> None:
        start_run(config, runs_dir, run_name, self.jobs, self.max_jobs)

    def resume(self, run: RunDir, epochs: int | None = None, restart: bool = False) -> None:
        resume_run(run, epochs, self.jobs, self.max_jobs, restart)

    def status(self, run: RunDir) -> RunState:
        return run_state(run, self.jobs)

    def stop(self, run: RunDir) -> None:
        stop_run(run, self.jobs)

    def logs(self, run: RunDir, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(run.path.parent, run.name, lines)

    def list(self, runs_dir: str | Path) -> list[str]:
        """Runs with a job of this backend in ``runs_dir``: launched by this server, or waiting in
        the queue (whoever started them), newest first."""
        names = [j.run_name for j in self.jobs.in_dir(runs_dir)]
        return names + [t.run for t in queue.tickets(runs_dir) if t.run not in names]

    def pending(self, runs_dir: str | Path, family: str) -> list[str]:
        return pending_run_names(runs_dir, self.jobs, family)

    def activity(self, runs_dir: str | Path) -> tuple[int, int]:
        return activity(runs_dir)

    def delete(self, run: RunDir) -> None:
        delete_run(run, self.jobs)

    def reap(self) -> None:
        self.jobs.reap()

    def summary(self, runs_dir: str | Path) -> str:
        """"Training now: 2 jobs, 1 waiting (2 at a time, GENAPP_MAX_JOBS)."."""
        return activity_text(*activity(runs_dir))


def activity_text(training: int, waiting: int, limit_text: str | None = None) -> str:
    if limit_text is None:
        try:
            limit = queue.max_jobs()
            limit_text = f"{limit} at a time" if limit else "no limit"
        except ValueError as e:
            limit_text = str(e)
        limit_text += f", {queue.MAX_JOBS_ENV}"
    jobs = f"{training} job{'s' if training != 1 else ''}"
    return f"Training now: {jobs}, {waiting} waiting ({limit_text})."
