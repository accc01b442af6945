"""What the explorer's tabs share: the sidebar settings and the server-wide cached resources.

Everything heavy is created on first use and cached with ``st.cache_resource`` (one per server,
shared by every browser tab): the job backend, loaded models, the test images, metric histories.
Importing this module does no work.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from genapp.checkpoint import load_model
from genapp.data import Split, load_mnist
from genapp.manifest import CHECKPOINTS_DIR
from genapp.models import GenerativeModel
from genapp.devices import available_devices
from genapp.jobs import JobBackend, backend
from genapp.runs import RunDir
from genapp.runs.history import MetricsHistory

RUNS_DIR_ENV = "GENAPP_RUNS_DIR"  # default runs directory (else ./runs)
CHECKPOINTS_DIR_ENV = "GENAPP_CHECKPOINTS_DIR"  # where the pretrained checkpoints are (else <repo>/checkpoints)


@dataclass(frozen=True)
class Settings:
    """The sidebar's choices, passed to every tab."""

    runs_dir: Path  # absolute
    device: str  # where new training jobs run: "cpu", "cuda:0", "mps"
    checkpoints_dir: Path  # the pretrained checkpoints


def default_runs_dir() -> str:
    return os.environ.get(RUNS_DIR_ENV, "runs")


def checkpoints_dir() -> Path:
    return Path(os.environ.get(CHECKPOINTS_DIR_ENV, CHECKPOINTS_DIR)).resolve()


@st.cache_resource
def job_backend() -> JobBackend:
    """What starts, stops and watches this server's training jobs (``GENAPP_JOB_BACKEND``)."""
    return backend()


@st.cache_resource
def devices() -> list[tuple[str, str]]:
    """(id, description) of each device this machine can train on; asked once per server."""
    return available_devices()


@st.cache_resource(max_entries=64)
def metrics_history(run_path: str) -> MetricsHistory:
    """One incremental reader per run, shared by all sessions; call ``refresh()`` before use."""
    return MetricsHistory(RunDir(Path(run_path)))


@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint…")
def model_from_file(path: str, modified: float, family: str) -> GenerativeModel:
    """The model saved at ``path`` on the CPU, in eval mode; ``modified`` (mtime) keys a reload
    when a running job rewrites the file. Raises ``CheckpointError``."""
    return load_model(path, family=family)


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint…")
def model_from_upload(file_id: str, _data: bytes, family: str) -> GenerativeModel:
    """A model from an uploaded checkpoint's bytes, keyed by the upload's id. Raises ``CheckpointError``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.pt"
        path.write_bytes(_data)
        return load_model(path, family=family)


@st.cache_resource(show_spinner="Loading MNIST…")
def test_split() -> Split:
    """The 10k MNIST test images, uint8 [10000,1,28,28], and labels int64 [10000]."""
    return load_mnist().test


def retain_widget_state(keys: Iterable[str]) -> None:
    """Keep these widgets' values while they are not drawn (another tab is open).

    Streamlit forgets the value of a widget that a run does not draw, unless the value was set
    from code; setting each to itself at the start of every run keeps them.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
