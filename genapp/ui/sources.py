"""The model picker the family tabs share: pretrained checkpoints, any run's checkpoint, or an upload.

``choose_model(settings, family, pretrained, prefix)`` draws a selectbox (key ``<prefix>-source``)
and, for an upload, a file uploader (key ``<prefix>-upload``); it returns the loaded model, a key
that changes whenever the weights do (for caches), and the ``Source`` it came from. A pretrained
name whose file is missing is listed with the command that makes it (the manifest's exact command
when it records one). The VAE, GAN and flow tabs all pick their models here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from genapp.checkpoint import CheckpointError
from genapp.manifest import read_manifest
from genapp.models import GenerativeModel, get_family
from genapp.runs import RunDir, list_runs
from genapp.ui.resources import Settings, metrics_history, model_from_file, model_from_upload
from genapp.ui.text import plain

UPLOAD = "Upload a checkpoint…"


@dataclass(frozen=True)
class Source:
    """A model to explore: a checkpoint file, the run whose history goes with it, or an upload."""

    label: str
    path: Path | None = None
    run: RunDir | None = None
    manifest: dict | None = None  # a pretrained checkpoint's MANIFEST.json entry


def model_sources(settings: Settings, family: str, pretrained: dict[str, str]) -> tuple[list[Source], dict[str, str]]:
    """(the sources to choose from, {missing pretrained name: the command that makes it}).

    ``pretrained`` maps the checkpoint names offered first to the command that makes each (used
    when the manifest does not record one); other manifest entries of ``family`` follow them.
    """
    entries = read_manifest(settings.checkpoints_dir / "MANIFEST.json")
    names = [*pretrained, *(n for n, e in entries.items() if e.get("family") == family and n not in pretrained)]
    sources, missing = [], {}
    for name in names:
        path = settings.checkpoints_dir / f"{name}.pt"
        entry = entries.get(name)
        if not path.is_file():
            missing[name] = (entry or {}).get("command") or pretrained.get(name, "")
            continue
        # The run that made it, when it is still here: the manifest names it (older entries do
        # not, and their runs were named after the checkpoint).
        run = RunDir(settings.runs_dir / ((entry or {}).get("run") or name))
        sources.append(Source(f"Pretrained {name}", path, run if run.exists() else None, entry))
    for run in list_runs(settings.runs_dir):
        checkpoint = run.checkpoint
        if checkpoint is not None and run.family == family:
            sources.append(Source(f"Run {run.name} ({checkpoint.name})", checkpoint, run))
    return [*sources, Source(UPLOAD)], missing


def show_missing(settings: Settings, missing: dict[str, str], nothing_else: bool) -> None:
    """An expander naming the missing pretrained files and the commands that make them."""
    names = " and ".join(f"{name}.pt" for name in missing)
    with st.expander(f"Pretrained {names} not found: how to make {'it' if len(missing) == 1 else 'them'}",
                     expanded=nothing_else):
        st.markdown(f"The explorer looks in {plain(settings.checkpoints_dir)}. From the repository, train and "
                    "export (or explore a run of your own, or upload a checkpoint):")
        st.code("\n".join(missing.values()), language="bash")


def choose_model(settings: Settings, family: str, pretrained: dict[str, str],
                 prefix: str) -> tuple[GenerativeModel, str, Source] | None:
    """The model picker; returns (model, cache key, source) or None (with a message shown).

    ``prefix`` names the widgets (``<prefix>-source``, ``<prefix>-upload``).
    """
    sources, missing = model_sources(settings, family, pretrained)
    labels = [s.label for s in sources]
    key = f"{prefix}-source"
    if st.session_state.get(key) not in labels:
        st.session_state[key] = labels[0]
    label = st.selectbox("Model", labels, key=key, help="A pretrained checkpoint, a run's best (or last) "
                         "checkpoint, or a .pt file of your own.")
    if missing:
        show_missing(settings, missing, nothing_else=len(sources) == 1)
    source = sources[labels.index(label)]
    try:
        if source.path is not None:
            modified = source.path.stat().st_mtime
            model = model_from_file(str(source.path), modified, family)
            return model, f"{source.path}:{modified}", source
        upload = st.file_uploader(f"A genapp {get_family(family).label} checkpoint (.pt)", type=["pt"], key=f"{prefix}-upload")
        if upload is None:
            st.info("Upload a checkpoint saved by genapp (a run's checkpoints/best.pt, for example).")
            return None
        return model_from_upload(upload.file_id, upload.getvalue(), family), f"upload:{upload.file_id}", source
    except (CheckpointError, OSError) as e:
        st.error(f"Cannot open this checkpoint: {plain(e)}")
        return None


def run_columns(source: Source, split: str) -> dict[str, np.ndarray]:
    """The columns of the source's run history for ``split`` ("train", "valid", "quality"); {} without a run."""
    if source.run is None:
        return {}
    history = metrics_history(str(source.run.path))
    history.refresh()
    return history.columns(split)


def training_summary(info: dict) -> str:
    """"trained 1 epoch (390 steps)" from a checkpoint's info (``checkpoint_info``)."""
    epochs, steps = info["epoch"], info.get("step", 0)
    return f"trained {epochs} epoch{'s' if epochs != 1 else ''} ({steps:,} step{'s' if steps != 1 else ''})"
