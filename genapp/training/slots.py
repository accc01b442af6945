"""Run locks, job slots and the queue: how training processes share a machine and show they live.

Standard library only: the queue waiter below runs before torch is imported, so a job waiting
for its turn costs about 15 MB, not the 200+ MB of a process that has loaded torch.

Everything rests on ``flock`` locks, which the kernel drops when their process dies, SIGKILL and
out-of-memory kills included. "Is anyone training this run?" then has an exact answer with no
guessing from process ids, and nothing stale is left behind to clean up by hand. Under a runs
directory:

    .locks/<run>.lock      held by the process training <run> for its whole life (the engine)
    .queue/slot-<i>.lock   i < max jobs; held by a job started through the queue until it exits
    .queue/<run>.ticket    JSON {run, family, pid, pid_start, queued, started}: a job waiting for
                           a slot, held locked by its process; ``queued`` orders the queue. Once
                           the job has its slot the ticket says ``started`` and stays until the
                           engine holds the run's lock, so no moment of the hand-over is unseen.

A locked file is tested with a shared, non-blocking lock taken and dropped at once, so testers
never block each other and never block the owner for longer than that instant.

The waiter, which the launcher puts in front of every training command it starts::

    python -m genapp.training.slots --runs-dir D --run NAME --family F --max-jobs N --nice K -- COMMAND...

lowers its priority by K (so that training yields the CPU to the explorer's server: pages stay
responsive while jobs use every core), waits its turn (first come, first served; N = 0: no
limit, no wait), takes a free slot and then ``exec``s COMMAND: the training process keeps the
waiter's pid, priority and slot lock, so the slot frees itself exactly when training ends,
however it ends.
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

LOCKS_DIR = ".locks"
QUEUE_DIR = ".queue"
MAX_JOBS_ENV = "GENAPP_MAX_JOBS"  # training jobs at a time, for the explorer's launcher; 0 = no limit
DEFAULT_MAX_JOBS = 2
NICE_ENV = "GENAPP_JOB_NICE"  # how much lower the priority of the explorer's jobs is; 0 = the same
DEFAULT_NICE = 10
POLL_SECONDS = 0.2


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


# ----------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None where /proc is not available.

    A pid is reused once its process is gone; the pair (pid, start) is not.
    """
    fields = _proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def process_alive(pid: object, start: object = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) and the one that started at ``start``.

    Without ``start`` (a status written by an older genapp), a live pid must at least be a
    Python training process: its command line mentions ``train``.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not Path("/proc/self/stat").exists():
        return True  # no /proc (macOS): trust the signal check
    fields = _proc_stat(pid)
    if fields is None or fields[0] == b"Z":
        return False
    if isinstance(start, int):
        return int(fields[19]) == start
    try:
        return b"train" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# ----------------------------------------------------------------------------- locks


def try_lock(path: Path) -> int | None:
    """An open descriptor holding ``path``'s exclusive lock (the file is created), or None when
    another process holds it. Close the descriptor (or exit) to release."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_locked(path: Path) -> bool:
    """Whether a live process holds ``path``'s lock; a missing file is not locked.

    Needs only read access: a reader (the explorer) never creates or changes anything.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def run_lock_path(runs_dir: str | Path, run: str) -> Path:
    return Path(runs_dir) / LOCKS_DIR / f"{run}.lock"


def lock_run(runs_dir: str | Path, run: str, timeout: float = 2.0) -> int | None:
    """Take run ``run``'s lock (waiting up to ``timeout`` s for a tester's instant); None if a
    process is training it. Raises OSError if the runs directory cannot be written."""
    path = run_lock_path(runs_dir, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        fd = try_lock(path)
        if fd is not None or time.monotonic() >= deadline:
            return fd
        time.sleep(0.05)


def run_locked(runs_dir: str | Path, run: str) -> bool:
    """Whether a process is training run ``run`` now (it holds the run's lock)."""
    return is_locked(run_lock_path(runs_dir, run))


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


def release_ticket(runs_dir: str | Path, run: str) -> None:
    """For the engine, once it holds the run's lock: remove the ticket this process started with."""
    path = ticket_path(runs_dir, run)
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
    parser = argparse.ArgumentParser(prog="python -m genapp.training.slots",
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
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
