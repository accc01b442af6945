"""Job slots and the queue: how training jobs started by the explorer share a machine. Standard
library only (the waiter, which uses it, runs before torch is imported).

Like the run locks (``genapp.runs.locks``), everything rests on ``flock`` locks that the kernel
drops when their process dies, so nothing stale outlives a killed job. The queue is the server's,
whatever runs directory each job trains into (a user who points the explorer at another folder
still waits in the same line), in ``GENAPP_QUEUE_DIR`` (default ``~/.cache/genapp/queue``):

    slot-<i>.lock          i < max jobs; held by a job started through the queue until it exits
    <run>@<dir>.ticket     JSON {run, runs_dir, family, pid, pid_start, queued, started}: a job
                           waiting for a slot, held locked by its process; ``queued`` orders the
                           queue. Once the job has its slot the ticket says ``started`` and stays
                           until the engine holds the run's lock, so no moment of the hand-over
                           is unseen. <dir> is a short hash of the runs directory.

The waiter (``genapp.jobs.waiter``) stands in front of every training command the local backend
starts: it waits its turn, takes a slot and becomes the training process. That process learns
which ticket is its own from ``GENAPP_QUEUE_TICKET`` and removes it once it holds the run's lock
(``release_ticket``).
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from genapp.files import cache_dir
from genapp.runs.locks import is_locked, process_start, try_lock

QUEUE_DIR_ENV = "GENAPP_QUEUE_DIR"  # the server's queue: its slots and tickets
MAX_JOBS_ENV = "GENAPP_MAX_JOBS"  # training jobs at a time, for the explorer's launcher; 0 = no limit
DEFAULT_MAX_JOBS = 2
NICE_ENV = "GENAPP_JOB_NICE"  # how much lower the priority of the explorer's jobs is; 0 = the same
DEFAULT_NICE = 10
POLL_SECONDS = 0.2
TICKET_ENV = "GENAPP_QUEUE_TICKET"  # set for the training process: the ticket it started with


def _setting(name: str, default: int, top: int, meaning: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= top:
        raise ValueError(f"{name}={raw!r}: expected {meaning}")
    return value


def max_jobs() -> int:
    """The limit on concurrent training jobs: ``GENAPP_MAX_JOBS`` (0 = none), else 2."""
    return _setting(MAX_JOBS_ENV, DEFAULT_MAX_JOBS, 10_000, "a whole number of jobs (0 = no limit)")


def job_nice() -> int:
    """How much the explorer lowers its jobs' CPU priority: ``GENAPP_JOB_NICE`` (0-19), else 10."""
    return _setting(NICE_ENV, DEFAULT_NICE, 19, "a niceness from 0 (same priority as the server) to 19")

def queue_dir() -> Path:
    """``GENAPP_QUEUE_DIR``, else ``$XDG_CACHE_HOME/genapp/queue``, else ``~/.cache/genapp/queue``."""
    named = os.environ.get(QUEUE_DIR_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    return cache_dir() / "queue"


# ----------------------------------------------------------------------------- slots


def slot_path(index: int) -> Path:
    return queue_dir() / f"slot-{index}.lock"


def busy_slots(limit: int) -> int:
    """How many of the first ``limit`` job slots are held by running jobs."""
    return sum(is_locked(slot_path(i)) for i in range(limit))


def take_slot(limit: int) -> int | None:
    """A descriptor holding a free slot's lock, or None when all ``limit`` slots are busy."""
    queue_dir().mkdir(parents=True, exist_ok=True)
    for i in range(limit):
        fd = try_lock(slot_path(i))
        if fd is not None:
            return fd
    return None


# ----------------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class Ticket:
    """A job waiting for a slot (``position`` counts from 1 at the head of the queue), or one that
    has its slot and is starting (``started``; position 0)."""

    run: str
    family: str
    pid: int
    pid_start: int | None
    queued: float
    started: bool = False
    position: int = 0  # in the server's queue, whatever the runs directory
    runs_dir: str = ""


def _directory(runs_dir: str | Path) -> str:
    return str(Path(runs_dir).resolve())


def ticket_path(runs_dir: str | Path, run: str) -> Path:
    key = hashlib.sha1(_directory(runs_dir).encode()).hexdigest()[:12]
    return queue_dir() / f"{run}@{key}.ticket"


def tickets(runs_dir: str | Path | None = None) -> list[Ticket]:
    """Every live ticket of the server's queue (those of ``runs_dir`` when given): the waiting jobs
    head first, with their places in the whole queue, then those starting. Tickets of dead
    processes are removed."""
    try:
        paths = list(queue_dir().glob("*.ticket"))
    except OSError:
        return []
    live = []
    for path in paths:
        if not is_locked(path):
            _remove_stale(path)
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            live.append(Ticket(str(data["run"]), str(data.get("family", "")), int(data["pid"]),
                               data.get("pid_start"), float(data["queued"]), bool(data.get("started")),
                               runs_dir=str(data.get("runs_dir", ""))))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: not ours to judge; it leaves with its process
    waiting = sorted((t for t in live if not t.started), key=lambda t: (t.queued, t.run))
    ordered = [dataclasses.replace(t, position=i + 1) for i, t in enumerate(waiting)] + [t for t in live if t.started]
    if runs_dir is None:
        return ordered
    directory = _directory(runs_dir)
    return [t for t in ordered if t.runs_dir == directory]


def queue(runs_dir: str | Path | None = None) -> list[Ticket]:
    """The jobs waiting for a slot (those of ``runs_dir`` when given), head first."""
    return [t for t in tickets(runs_dir) if not t.started]


def ticket(runs_dir: str | Path, run: str) -> Ticket | None:
    """Run ``run``'s ticket (waiting, or started and not training yet), or None."""
    if not is_locked(ticket_path(runs_dir, run)):
        return None
    return next((t for t in tickets(runs_dir) if t.run == run), None)


def release_ticket() -> None:
    """For a training process started from the queue, once it holds its run's lock: remove the
    ticket it started with (named by ``GENAPP_QUEUE_TICKET``, and only if this process wrote it)."""
    named = os.environ.pop(TICKET_ENV, "")
    if not named:
        return
    path = Path(named)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
    except (OSError, ValueError, AttributeError):
        pass


def _remove_stale(path: Path) -> None:
    """Remove a ticket whose waiter died (only while holding its lock: never a live one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_ticket(runs_dir: Path, run: str, family: str, queued: float | None = None) -> int:
    """Join the queue (or, given the time it joined, say the job has started): a locked ticket,
    renamed into place so no one sees it unlocked or half-written."""
    folder = queue_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = ticket_path(runs_dir, run)
    if queued is None and is_locked(final):
        raise SystemExit(f"error: run {run} is already waiting in the queue")
    tmp = folder / f".{run}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    pid = os.getpid()
    data = {"run": run, "runs_dir": _directory(runs_dir), "family": family, "pid": pid,
            "pid_start": process_start(pid), "queued": time.time() if queued is None else queued,
            "started": queued is not None}
    os.write(fd, json.dumps(data).encode())
    os.replace(tmp, final)
    return fd
