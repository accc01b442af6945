"""The run directory: how a training job reports to everyone else (the UI, the CLI, a later job).

Standard library only (the job queue and the explorer read runs without loading torch).

    runs/<run-id>/
      .genapp-run          the marker: genapp made this folder (only such folders are runs)
      config.json          RunConfig as JSON
      status.json          state (queued/running/finished/stopped/failed/diverged), progress, error
      metrics.jsonl        one JSON object a line: step, epoch, split, time, then named values
      events.out.tfevents.*  the same curves, the grids and the config for TensorBoard
      samples/epoch-0001.png  the fixed-noise grid after each epoch (epoch 0: before training)
      samples/<kind>/epoch-0001.png  the family's other pictures of each epoch (fresh noise,
                           Bernoulli draws, the 2-D manifold: see ``PICTURES``)
      samples/latents/epoch-0001.npz  a 2-D latent's codes of validation images (points, labels)
      checkpoints/last.pt, best.pt, epoch-0001.pt (snapshots kept at chosen epochs)

Writers append whole lines or write a temporary file and rename it, so a reader never sees a
torn JSON document; a partial *last* line of metrics.jsonl (a write in progress) is skipped.
Readers never trust what they read: a malformed file or field reads as missing, with a message,
never as an exception in the explorer.
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genapp import schema
from genapp.files import write_json

STATES = ("queued", "running", "finished", "stopped", "failed", "diverged")
ACTIVE_STATES = ("queued", "running")
# The pictures a run can record each epoch, and what each one is; "fixed" is samples/epoch-*.png.
PICTURES = {
    "fixed": "samples from fixed noise (the same noise every epoch)",
    "fixed-draws": "Bernoulli draws from the fixed noise's decodings",
    "fresh": "samples from fresh noise (new noise every epoch)",
    "fresh-draws": "Bernoulli draws from the fresh noise's decodings",
    "manifold": "the decoder's 2-D latent manifold",
}
RUNS_ROOT_ENV = "GENAPP_RUNS_ROOT"  # a server's runs directories must lie under this folder
MARKER = ".genapp-run"  # written when a run is created: what genapp lists and may delete
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # the whole name (fullmatch)


class RunError(RuntimeError):
    """A run directory is missing, misnamed or unreadable."""


class StorageError(RunError):
    """The runs directory cannot be written (full disk, no permission, read-only, not a folder)."""


def storage_message(error: OSError, what: str = "") -> str:
    """A user's explanation of a failed write, naming the file and what to do about it."""
    path = error.filename or what or "the runs directory"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device holding {path}: free some space (delete old runs), then "
                "resume the run: it continues from its last checkpoint")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {path} ({error.strerror}): choose a writable runs directory "
                "(--runs-dir, GENAPP_RUNS_DIR or the sidebar) or fix its permissions")
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"cannot create {path}: a file stands where the runs directory should be"
    return f"cannot write {path}: {error.strerror or error}"


def check_run_name(name: str) -> str:
    """A run name is one path component of letters, digits, '.', '_' and '-', never '..' (the
    whole name: a trailing newline is no part of one)."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise RunError(
            f"invalid run name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no path separators, no '..')"
        )
    return name


def runs_root() -> Path | None:
    """``GENAPP_RUNS_ROOT``: the folder every runs directory must lie in, when a server sets one."""
    named = os.environ.get(RUNS_ROOT_ENV, "").strip()
    return Path(named).expanduser().resolve() if named else None


def check_runs_dir(text: str) -> Path:
    """The runs directory a user typed, as an absolute path; ``RunError`` with a message for text
    that names no usable folder, or one outside ``GENAPP_RUNS_ROOT`` when the server sets it."""
    if not isinstance(text, str) or not text.strip():
        raise RunError("the runs directory is empty: name a folder")
    if "\x00" in text or len(text) > 4096 or any(c in text for c in "\n\r"):
        raise RunError("the runs directory must be a folder's path: no NUL byte, no line break, at most 4,096 characters")
    try:
        path = Path(text.strip()).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as e:
        raise RunError(f"cannot use {text.strip()[:200]!r} as the runs directory: {e}") from None
    root = runs_root()
    if root is not None and not path.is_relative_to(root):
        raise RunError(f"this server keeps runs under {root} ({RUNS_ROOT_ENV}): choose a folder inside it")
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is a file, not a folder")
    return path


def new_run_name(family: str) -> str:
    return f"{family}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise RunError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise RunError(f"{path}: expected a JSON object")
    return obj


@dataclass(frozen=True)
class RunDir:
    """Paths and readers/writers for one run; ``RunDir.open(root, name)`` checks the name."""

    path: Path

    @classmethod
    def open(cls, root: str | Path, name: str) -> "RunDir":
        return cls(Path(root) / check_run_name(name))

    @property
    def name(self) -> str:
        return self.path.name

    marker_path = property(lambda self: self.path / MARKER)  # "genapp made this run"
    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    samples_dir = property(lambda self: self.path / "samples")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.pt")
    best_checkpoint = property(lambda self: self.path / "checkpoints" / "best.pt")

    def exists(self) -> bool:
        """A run genapp made: the folder has the marker and a config. Any other folder, whatever
        it holds, is not a run: never listed, never deleted."""
        return self.marker_path.is_file() and self.config_path.is_file()

    @property
    def family(self) -> str | None:
        """The model family its config names, or None when the config cannot be read."""
        try:
            family = self.read_config().get("family")
        except RunError:
            return None
        return family if isinstance(family, str) else None

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint that stands for the run: best.pt, else last.pt, else None."""
        return next((p for p in (self.best_checkpoint, self.last_checkpoint) if p.is_file()), None)

    # -- writers (the job) --------------------------------------------------------------------

    def create(self, config: dict) -> None:
        # The marker and config.json first: a job killed in here leaves a run that exists, or an
        # empty folder.
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.marker_path.is_file():
            write_json(self.marker_path, {"made_by": "genapp", "created": time.time()})
        write_json(self.config_path, config)
        self.samples_dir.mkdir(exist_ok=True)
        self.checkpoints_dir.mkdir(exist_ok=True)

    def is_blank(self) -> bool:
        """True if nothing was ever saved here: no files but empty folders and the temporary
        files of writes a killed job never finished."""
        if not self.path.is_dir():
            return True
        return all(p.is_dir() or (p.name.startswith(".") and p.name.endswith(".tmp")) for p in self.path.rglob("*"))

    def clear_training(self) -> None:
        """Remove everything training wrote (metrics, pictures, events, checkpoints), keeping the
        run's marker and config: for a run that starts over (only its own writer may call this)."""
        self.metrics_path.unlink(missing_ok=True)
        for path in self.path.glob("events.out.tfevents.*"):
            path.unlink(missing_ok=True)
        for folder in (self.samples_dir, self.checkpoints_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(exist_ok=True)

    def remove_partial_writes(self) -> None:
        """Delete the temporary files of writes cut short (only the run's own writer may call this)."""
        for p in self.path.rglob(".*.tmp"):
            p.unlink(missing_ok=True)

    def write_status(self, state: str, **fields) -> None:
        assert state in STATES, state
        write_json(self.status_path, {"state": state, "updated": time.time(), **fields})

    def append_metrics(self, records: list[dict]) -> None:
        if not records:
            return
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(text)

    def sample_path(self, epoch: int, kind: str = "fixed") -> Path:
        """Where the ``kind`` picture (one of ``PICTURES``) of ``epoch`` goes."""
        folder = self.samples_dir if kind == "fixed" else self.samples_dir / kind
        return folder / f"epoch-{epoch:04d}.png"

    def latents_path(self, epoch: int) -> Path:
        return self.samples_dir / "latents" / f"epoch-{epoch:04d}.npz"

    def snapshot_path(self, epoch: int) -> Path:
        return self.checkpoints_dir / f"epoch-{epoch:04d}.pt"

    # -- readers (anyone) ---------------------------------------------------------------------

    def read_config(self) -> dict:
        return read_json(self.config_path)

    def read_status(self) -> dict:
        """The status dict; a run whose status cannot be read says so instead of raising.

        Fields of the wrong type or out of range (a hand-edited or foreign file) are dropped
        (``genapp.schema.status``), so whoever shows them can rely on what the engine writes.
        """
        try:
            raw = read_json(self.status_path)
        except RunError as e:
            return {"state": "unknown", "error": str(e)}
        if raw.get("state") not in STATES:
            return {"state": "unknown", "error": f"{self.status_path}: unknown state {str(raw.get('state'))[:40]!r}"}
        status, _ = schema.status(raw)
        return status

    def read_metrics(self, offset: int = 0) -> tuple[list[dict], int]:
        """Complete metric lines from byte ``offset`` on, and the offset to continue from.

        A partial last line (being written) is left for the next call; a malformed complete
        line is skipped, so one bad write never hides the rest of a run.
        """
        try:
            with open(self.metrics_path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return [], offset
        end = chunk.rfind(b"\n") + 1
        records = []
        for line in chunk[:end].splitlines():
            try:
                record = schema.metrics_record(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                continue
            if record is not None:
                records.append(record)
        return records, offset + end

    def sample_epochs(self, kind: str = "fixed") -> list[int]:
        """Epochs that have a ``kind`` picture, in order."""
        return _epochs(self.sample_path(0, kind).parent, ".png")

    def picture_kinds(self) -> list[str]:
        """The kinds of picture (of ``PICTURES``, in its order) this run has recorded."""
        return [kind for kind in PICTURES if self.sample_epochs(kind)]

    def read_latents(self, epoch: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(codes float [n, 2], digit labels int [n]) recorded after ``epoch``; None when the file
        is missing or not what the engine writes."""
        try:
            with np.load(self.latents_path(epoch), allow_pickle=False) as stored:
                points, labels = np.asarray(stored["points"], np.float32), np.asarray(stored["labels"], np.int64)
        except (OSError, KeyError, ValueError, EOFError):
            return None
        if points.ndim != 2 or points.shape[1] != 2 or labels.shape != points.shape[:1] or not np.isfinite(points).all():
            return None
        return points, labels

    def latent_epochs(self) -> list[int]:
        return _epochs(self.samples_dir / "latents", ".npz")

    def snapshot_epochs(self) -> list[int]:
        """Epochs whose model was kept (``checkpoints/epoch-NNNN.pt``)."""
        return _epochs(self.checkpoints_dir, ".pt")


def _epochs(folder: Path, suffix: str) -> list[int]:
    """The N of each ``epoch-N<suffix>`` file in ``folder``, in order; none if it is missing."""
    epochs = []
    try:
        names = [p.name for p in folder.glob(f"epoch-*{suffix}")]
    except OSError:
        return []
    for name in names:
        try:
            epochs.append(int(name[len("epoch-"):-len(suffix)]))
        except ValueError:
            continue
    return sorted(epochs)


def list_runs(root: str | Path) -> list[RunDir]:
    """Every run genapp made under ``root`` (newest first); an absent root is simply empty."""
    root = Path(root)
    try:
        if not root.is_dir():
            return []
        runs = [RunDir(p) for p in root.iterdir()
                if RUN_NAME.fullmatch(p.name) and ".." not in p.name and not p.is_symlink() and RunDir(p).exists()]
    except (OSError, ValueError):  # unreadable, or a name the system refuses: nothing to list
        return []

    def modified(run: RunDir) -> float:
        try:
            return run.config_path.stat().st_mtime
        except OSError:  # deleted meanwhile
            return 0.0

    return sorted(runs, key=modified, reverse=True)
