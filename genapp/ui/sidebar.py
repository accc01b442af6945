"""The sidebar: where runs live, where new training jobs run, and how busy the machine is."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from genapp.jobs import BACKEND_ENV, LaunchError
from genapp.runs import RunError, check_runs_dir, runs_root
from genapp.ui.resources import Settings, checkpoints_dir, default_runs_dir, devices, job_backend
from genapp.ui.text import plain

FIXED_RUNS_DIR_ENV = "GENAPP_FIXED_RUNS_DIR"  # "1": users cannot point the explorer at another folder


def default_device(ids: list[str]) -> int:
    """Index of the device "auto" would pick: the first CUDA device, then MPS, then the CPU."""
    for prefix in ("cuda", "mps"):
        for i, device in enumerate(ids):
            if device.startswith(prefix):
                return i
    return 0


def runs_directory() -> Path:
    """The runs directory: the server's own (``GENAPP_FIXED_RUNS_DIR``), else the one typed in the
    sidebar, when it is a usable folder (inside ``GENAPP_RUNS_ROOT`` where the server sets one);
    otherwise the server's default, with a message saying why."""
    default = default_runs_dir()
    try:
        fallback = check_runs_dir(default)
    except RunError as e:  # the server's own setting is wrong: say so, keep to the root
        st.error(f"The server's runs directory is unusable: {plain(e)}")
        fallback = runs_root() or Path.cwd()
    if os.environ.get(FIXED_RUNS_DIR_ENV, "") not in ("", "0"):
        st.caption(f"Runs directory: {plain(fallback)}")  # a shared server: one folder, chosen by its operator
        return fallback
    root = runs_root()
    text = st.text_input("Runs directory", value=default, key="runs-dir",
                         help="Where runs are kept, whether started here or with `python -m train`."
                              + (f" This server keeps them under {plain(root)}." if root else ""))
    try:
        return check_runs_dir(text)
    except RunError as e:
        st.error(f"{plain(e)}. Showing {plain(fallback)} instead.")
        return fallback


def render() -> Settings:
    """Draw the sidebar; returns the settings every tab uses."""
    with st.sidebar:
        st.title("genapp")
        st.caption("Train generative models on MNIST and explore what they learned.")
        path = runs_directory()
        if not path.is_dir():
            st.caption(f"{plain(path)} does not exist yet; the first run creates it.")
        backend = _backend()
        options = devices() if backend.name == "local" else backend.devices()  # a cluster's, on a cluster
        descriptions = dict(options)
        ids = [device for device, _ in options]
        device = st.selectbox(
            "Training device", ids, index=default_device(ids), key="device",
            format_func=lambda d: f"{d}: {descriptions[d]}",
            help="The device new training jobs use. Jobs run as their own processes: closing the "
                 "browser or refreshing the page does not stop them.",
        )
        jobs_summary(backend, path)
    return Settings(runs_dir=path, device=device, checkpoints_dir=checkpoints_dir())


def _backend():
    """The server's job backend; one that cannot start (Ray asked for, not installed) stops the
    page with what to do."""
    try:
        return job_backend()
    except LaunchError as e:
        st.error(plain(e))
        st.stop()


def jobs_summary(backend, runs_dir: Path) -> None:
    """The job backend, where its jobs run and how busy it is: "Training now: 2 jobs, 1 waiting (2 at
    a time, GENAPP_MAX_JOBS)." here; a Ray cluster's free and total CPUs and GPUs there."""
    st.caption(f"Job backend: **{backend.name}** ({BACKEND_ENV})")
    st.caption(backend.summary(runs_dir))  # genapp's own words and the operator's address: shown as markdown
