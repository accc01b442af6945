"""Writing files so that no reader ever sees a torn one: every writer in genapp (checkpoints, run
files, sample pictures, the manifest, the MNIST cache) goes through ``atomic_write``, which writes
a temporary file beside the target and renames it over. Standard library only.

A temporary file is named ``.<name>.<random>.tmp``, so the run directory's owner can find and
delete those of a writer that was killed (``RunDir.remove_partial_writes``).
"""
from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Fault injection, for tests only: comma-separated file names ("last.pt,status.json") whose
# writes stop half-way and hang, so that a test can kill the writer in the middle of one.
PAUSE_WRITES_ENV = "GENAPP_FAULT_PAUSE_WRITES"
CACHE_ENV = "GENAPP_CACHE_DIR"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            if path.name in os.environ.get(PAUSE_WRITES_ENV, "").split(","):
                _write_half_and_hang(f, write)
            try:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            except (RuntimeError, ValueError) as e:  # a writer's own error (torch: "unexpected pos ...")
                if _out_of_space(path.parent):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
                raise
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _out_of_space(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (next to) no room left: the reason a writer
    that hides the system's error (torch's zip writer) failed."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 4 * 2**20


def _write_half_and_hang(f: BinaryIO, write: Callable[[BinaryIO], object]) -> None:
    """Fault injection: put half of the bytes on disk, then wait to be killed."""
    buffer = io.BytesIO()
    write(buffer)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    time.sleep(3600)


def cache_dir() -> Path:
    """``$GENAPP_CACHE_DIR``, else ``$XDG_CACHE_HOME/genapp``, else ``~/.cache/genapp``: where
    genapp keeps what it can make again (the decoded MNIST copy) and the server's job queue."""
    named = os.environ.get(CACHE_ENV)
    if named:
        return Path(named).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genapp"


def write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_json(path: str | Path, obj: object) -> None:
    write_bytes(path, json.dumps(obj, indent=2).encode())
