"""Job slots and the queue: how training jobs started by the explorer share a machine.

Standard library only: the queue waiter below runs before torch is imported, so a job waiting
for its turn costs about 15 MB, not the 200+ MB of a process that has loaded torch.

Like the run locks (``genapp.runs.locks``), everything rests on ``flock`` locks that the kernel
drops when their process dies, so nothing stale outlives a killed job. Under a runs directory:

    .queue/slot-<i>.lock   i < max jobs; held by a job started through the queue until it exits
    .queue/<run>.ticket    JSON {run, family, pid, pid_start, queued, started}: a job waiting for
                           a slot, held locked by its process; ``queued`` orders the queue. Once
                           the job has its slot the ticket says ``started`` and stays until the
                           engine holds the run's lock, so no moment of the hand-over is unseen.

The waiter, which the local backend puts in front of every training command it starts::

    python -m genapp.jobs.queue --runs-dir D --run NAME --family F --max-jobs N --nice K -- COMMAND...

lowers its priority by K (so that training yields the CPU to the explorer's server: pages stay
responsive while jobs use every core), waits its turn (first come, first served; N = 0: no
limit, no wait), takes a free slot and then ``exec``s COMMAND: the training process keeps the
waiter's pid, priority and slot lock, so the slot frees itself exactly when training ends,
however it ends. The training process learns which ticket is its own from ``GENAPP_QUEUE_TICKET``
and removes it once it holds the run's lock (``release_ticket``).
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from genapp.runs.locks import is_locked, process_start, try_lock

QUEUE_DIR = ".queue"
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

# ----------------------------------------------------------------------------- slots


def slot_path(runs_dir: str | Path, index: int) -> Path:
    return Path(runs_dir) / QUEUE_DIR / f"slot-{index}.lock"


def busy_slots(runs_dir: str | Path, limit: int) -> int:
    """How many of the first ``limit`` job slots are held by running jobs."""
    return sum(is_locked(slot_path(runs_dir, i)) for i in range(limit))


def take_slot(runs_dir: str | Path, limit: int) -> int | None:
    """A descriptor holding a free slot's lock, or None when all ``limit`` slots are busy."""
    (Path(runs_dir) / QUEUE_DIR).mkdir(parents=True, exist_ok=True)
    for i in range(limit):
        fd = try_lock(slot_path(runs_dir, i))
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
    position: int = 0


def ticket_path(runs_dir: str | Path, run: str) -> Path:
    return Path(runs_dir) / QUEUE_DIR / f"{run}.ticket"


def tickets(runs_dir: str | Path) -> list[Ticket]:
    """Every live ticket in ``runs_dir``: the waiting jobs head first (with their positions), then
    those starting. Tickets of dead processes are removed."""
    folder = Path(runs_dir) / QUEUE_DIR
    try:
        paths = list(folder.glob("*.ticket"))
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
                               data.get("pid_start"), float(data["queued"]), bool(data.get("started"))))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: not ours to judge; it leaves with its process
    waiting = sorted((t for t in live if not t.started), key=lambda t: (t.queued, t.run))
    return [dataclasses.replace(t, position=i + 1) for i, t in enumerate(waiting)] + [t for t in live if t.started]


def queue(runs_dir: str | Path) -> list[Ticket]:
    """The jobs waiting for a slot in ``runs_dir``, head first."""
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


def _write_ticket(runs_dir: Path, run: str, family: str, queued: float | None = None) -> int:
    """Join the queue (or, given the time it joined, say the job has started): a locked ticket,
    renamed into place so no one sees it unlocked or half-written."""
    folder = runs_dir / QUEUE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = ticket_path(runs_dir, run)
    if queued is None and is_locked(final):
        raise SystemExit(f"error: run {run} is already waiting in the queue")
    tmp = folder / f".{run}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    pid = os.getpid()
    data = {"run": run, "family": family, "pid": pid, "pid_start": process_start(pid),
            "queued": time.time() if queued is None else queued, "started": queued is not None}
    os.write(fd, json.dumps(data).encode())
    os.replace(tmp, final)
    return fd


def wait_for_slot(runs_dir: str | Path, run: str, family: str, limit: int, log=print) -> tuple[int, int]:
    """Queue for one of ``limit`` slots (first come, first served); returns the descriptors of the
    slot and of the "started" ticket, both locked, for the training process to keep.

    Only the head of the queue takes a slot, so later jobs never overtake it.
    """
    runs_dir = Path(runs_dir)
    ticket_fd = _write_ticket(runs_dir, run, family)
    queued = json.loads(ticket_path(runs_dir, run).read_text(encoding="utf-8"))["queued"]
    reported = 0
    slot = None
    try:
        while slot is None:
            mine = next((t for t in queue(runs_dir) if t.run == run), None)
            position = mine.position if mine else 1
            if position == 1:
                slot = take_slot(runs_dir, limit)
                if slot is not None:
                    return slot, _write_ticket(runs_dir, run, family, queued)
            if position != reported:
                log(f"waiting for a free training slot ({limit} at a time): position {position} in the queue")
                reported = position
            time.sleep(POLL_SECONDS)
    except BaseException:
        ticket_path(runs_dir, run).unlink(missing_ok=True)  # we hold its lock: ours to remove
        if slot is not None:
            os.close(slot)
        raise
    finally:
        os.close(ticket_fd)
    raise AssertionError("not reached")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genapp.jobs.queue",
                                     description="Wait for a free training slot, then run COMMAND in its place.")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--family", default="")
    parser.add_argument("--max-jobs", type=int, required=True, help="jobs at a time (0 = no limit)")
    parser.add_argument("--nice", type=int, default=0, help="lower the priority by this much (0-19)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the training command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.max_jobs < 0:
        parser.error("needs --max-jobs of at least 0 and a command after --")
    if args.nice > 0 and hasattr(os, "nice"):
        os.nice(args.nice)
    if args.max_jobs == 0:
        sys.stdout.flush()
        os.execvp(command[0], command)

    def cancel(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, cancel)  # Stop while waiting: leave the queue, write nothing
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        held = wait_for_slot(args.runs_dir, args.run, args.family, args.max_jobs, log)
    except SystemExit:
        log("left the queue before training started (stopped)")
        raise
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log("a training slot is free: starting")
    for fd in held:  # the training process holds the slot until it exits, the ticket until it starts
        os.set_inheritable(fd, True)
    os.environ[TICKET_ENV] = str(ticket_path(args.runs_dir, args.run).resolve())
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
