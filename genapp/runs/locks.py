"""Locks on runs, and which process is alive: how the explorer tells a training job that lives
from one that died, with no guessing from process ids. Standard library only.

Everything rests on ``flock`` locks, which the kernel drops when their process dies, SIGKILL and
out-of-memory kills included. "Is anyone training this run?" then has an exact answer, and nothing
stale is left behind to clean up by hand::

    <runs>/.locks/<run>.lock   held by the process training <run> for its whole life (the engine)

A locked file is tested with a shared, non-blocking lock taken and dropped at once, so testers
never block each other and never block the owner for longer than that instant.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

LOCKS_DIR = ".locks"


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
