"""The model picker the family tabs share: pretrained checkpoints, any run's checkpoint, or an upload.

``choose_model(settings, family, pretrained, prefix)`` draws a selectbox (key ``<prefix>-source``)
and, for an upload, a file uploader (key ``<prefix>-upload``); it returns the loaded model, a key
that changes whenever the weights do (for caches), and the ``Source`` it came from. A pretrained
name whose file is missing is listed with the command that makes it (the manifest's exact command
when it records one). The VAE, GAN and flow tabs all pick their models here.
"""
from __future__ import annotations

from collections.abc import Callable
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
        sources.append(Source(f"Pretrained {name}", path, history_of(settings, name, entry), entry))
    for run in list_runs(settings.runs_dir):
        checkpoint = run.checkpoint
        if checkpoint is not None and run.family == family:
            sources.append(Source(f"Run {run.name} ({checkpoint.name})", checkpoint, run))
    return [*sources, Source(UPLOAD)], missing


def history_of(settings: Settings, name: str, entry: dict | None) -> RunDir | None:
    """The training history of a pretrained checkpoint: the run that made it when it is still in the
    runs directory (the manifest names it; older entries were named after the checkpoint), else the
    history shipped beside it (``checkpoints/history/<name>``), else None."""
    local = RunDir(settings.runs_dir / str((entry or {}).get("run") or name))
    return local if local.exists() else shipped_history(settings.checkpoints_dir, entry)


def shipped_history(checkpoints_dir: Path, entry: dict | None) -> RunDir | None:
    """The run directory a manifest entry ships (its ``history`` field), when it is one and lies
    inside ``checkpoints_dir``; else None."""
    folder = entry.get("history") if isinstance(entry, dict) else None
    if not isinstance(folder, str) or not folder:
        return None
    history = RunDir((checkpoints_dir / folder).resolve())
    inside = history.path.is_relative_to(checkpoints_dir.resolve())
    return history if inside and history.exists() else None


def open_checkpoint(path: Path, family: str) -> tuple[GenerativeModel, str]:
    """(the model saved at ``path``, a cache key that changes with the file). Raises
    ``CheckpointError`` or ``OSError``."""
    modified = path.stat().st_mtime
    return model_from_file(str(path), modified, family), f"{path}:{modified}"


def final_epoch(model: GenerativeModel) -> int | None:
    """The epoch a loaded model's checkpoint was saved after, when it says."""
    return (getattr(model, "checkpoint_info", None) or {}).get("epoch")


def snapshot_epochs(model: GenerativeModel, source: Source) -> list[int]:
    """The epochs whose model the source's run kept (for a pretrained model, the seed's epochs),
    apart from the final model's own."""
    epochs = source.run.snapshot_epochs() if source.run is not None else []
    return [e for e in epochs if e != final_epoch(model)]


def then_and_now(model: GenerativeModel, model_key: str, source: Source, family: str, prefix: str,
                 draw: Callable[[GenerativeModel, str], None]) -> None:
    """The model as it was after an epoch the run kept, beside the final one: a slider over the
    snapshot epochs (key ``<prefix>-epoch``) and two columns, each filled by ``draw(model, key)``.
    Nothing when the run kept no snapshots."""
    epochs = snapshot_epochs(model, source)
    if not epochs:
        return
    final = final_epoch(model)
    st.subheader("During training: the model after an earlier epoch, beside the final one")
    key = f"{prefix}-epoch"
    if st.session_state.get(key) not in epochs:
        st.session_state[key] = epochs[0]
    epoch = st.select_slider("The model after epoch", epochs, key=key,
                             help="The run kept its model after these epochs (float16; for a pretrained model, "
                                  "the seed's epochs): the left column draws it, the right the final model.")
    then, now = st.columns(2, gap="large")
    try:
        earlier, earlier_key = open_checkpoint(source.run.snapshot_path(int(epoch)), family)
    except (CheckpointError, OSError) as e:
        then.error(f"Cannot open the model of epoch {epoch}: {plain(e)}")
    else:
        with then:
            st.markdown(f"**After epoch {epoch}**")
            draw(earlier, earlier_key)
    with now:
        st.markdown(f"**Final (epoch {final})**" if final is not None else "**Final**")
        draw(model, model_key)


def shipped(settings: Settings, name: str, family: str) -> tuple[GenerativeModel, str, RunDir | None] | None:
    """A pretrained model by its manifest name: (model, cache key, its training history or None);
    None, with a message saying how to make it, when its file is missing or cannot be opened."""
    entry = read_manifest(settings.checkpoints_dir / "MANIFEST.json").get(name)
    path = settings.checkpoints_dir / str((entry or {}).get("file") or f"{name}.pt")
    try:
        model, key = open_checkpoint(path, family)
    except (CheckpointError, OSError) as e:
        command = (entry or {}).get("command")
        st.info(f"{name} cannot be opened ({plain(e)})" + (f": `{command}` makes it." if command else "."))
        return None
    return model, key, history_of(settings, name, entry)


def no_history(source: Source) -> None:
    """Why a model shows no training: an upload, or a checkpoint whose run is not here."""
    if source.path is None:
        st.info("An uploaded checkpoint carries its weights, not its training: open a run (or a pretrained "
                "model) to see curves and pictures from every epoch.")
    else:
        st.info("No training history for this checkpoint: its run is not in the runs directory and none was "
                "shipped beside it (`python -m train export` ships one).")


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
            return (*open_checkpoint(source.path, family), source)
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
