"""The sidebar: where runs live and where new training jobs run."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from genapp.ui.resources import Settings, checkpoints_dir, default_runs_dir, devices


def default_device(ids: list[str]) -> int:
    """Index of the device "auto" would pick: the first CUDA device, then MPS, then the CPU."""
    for prefix in ("cuda", "mps"):
        for i, device in enumerate(ids):
            if device.startswith(prefix):
                return i
    return 0


def render() -> Settings:
    """Draw the sidebar; returns the settings every tab uses."""
    with st.sidebar:
        st.title("genapp")
        st.caption("Train generative models on MNIST and explore what they learned.")
        runs_dir = st.text_input(
            "Runs directory", value=default_runs_dir(), key="runs-dir",
            help="Where runs are kept, whether started here or with `python -m train`.",
        )
        path = Path(runs_dir).expanduser().resolve()
        if not path.is_dir():
            st.caption(f"`{path}` does not exist yet; the first run creates it.")
        options = devices()
        descriptions = dict(options)
        ids = [device for device, _ in options]
        device = st.selectbox(
            "Training device", ids, index=default_device(ids), key="device",
            format_func=lambda d: f"{d}: {descriptions[d]}",
            help="The device new training jobs use. Jobs run as their own processes: closing the "
                 "browser or refreshing the page does not stop them.",
        )
    return Settings(runs_dir=path, device=device, checkpoints_dir=checkpoints_dir())
