"""The Runs tab: every run in the runs directory (from the explorer or the CLI); several runs (and
the pretrained models whose history ships with them) side by side, their sample grids under one
epoch slider and their curves on one chart with TensorBoard's smoothing; a run's details with a
guarded delete."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from genapp.config import ConfigError, TrainConfig
from genapp.models import get_family
from genapp.jobs import LaunchError, RunState
from genapp.jobs.queue import queue
from genapp.manifest import read_manifest
from genapp.runs import RunDir, RunError, list_runs
from genapp.ui import charts, sources
from genapp.ui.resources import Settings, job_backend, metrics_history
from genapp.ui.run_monitor import curve_controls, read_grid
from genapp.ui.text import plain

POLL_SECONDS = 2.0
STATE_KEYS = ["runs-compare", "runs-metric", "runs-detail", "runs-epoch", "runs-smoothing", "runs-curve-x"]


def _monitor(family: str) -> tuple[str, bool]:
    """(validation metric that picks best.pt, lower is better) of a family; ("loss", True) if unknown."""
    try:
        cls = get_family(family)
    except ConfigError:
        return "loss", True
    return cls.monitor, cls.monitor_lower_is_better


def config_summary(config: dict) -> tuple[str, str]:
    """("latent_dim=2, hidden=500,250", "3 epochs, batch 128, lr 0.002, ..."): the model config and
    the main training settings, then any other training setting that differs from the family's
    defaults."""
    def text(value: object) -> str:
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    model_config, train_config = config.get("model"), config.get("train")  # a hand-edited file may hold anything
    model = ", ".join(f"{k}={text(v)}" for k, v in model_config.items()) if isinstance(model_config, dict) else ""
    train = dict(train_config) if isinstance(train_config, dict) else {}
    try:
        defaults = dataclasses.asdict(get_family(config.get("family")).default_train_config())
    except ConfigError:
        defaults = dataclasses.asdict(TrainConfig())
    parts = [f"{train.pop('epochs', '?')} epochs", f"batch {train.pop('batch_size', '?')}",
             f"lr {train.pop('lr', '?')} {train.pop('lr_schedule', '')}".rstrip()]
    parts += [f"{k}={text(v)}" for k, v in train.items() if k in defaults and v != defaults[k]]
    return model, ", ".join(parts)


def run_row(run: RunDir, state: RunState) -> dict:
    """One line of the runs table."""
    try:
        config = run.read_config()
    except RunError:
        config = {}
    family = str(config.get("family", "?"))
    model, train = config_summary(config)
    status = state.status
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    history = metrics_history(str(run.path))
    history.refresh()
    metric, lower = _monitor(family)
    best = history.best(metric, lower)
    started = status.get("started")
    return {
        "run": run.name,
        "family": family,
        "status": state.label,
        "epochs done": f"{status.get('epoch', 0)}/{status.get('epochs', train.get('epochs', '?'))}",
        "best validation": f"{best[0]:.2f} {metric} (epoch {best[1]})" if best else "",
        "model": model,
        "training": train,
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "",
        "runs on": state.where or "this machine",
    }


def _runs_table(runs: list[RunDir], states: dict[str, RunState]) -> None:
    rows = [run_row(run, states[run.name]) for run in runs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="runs-table")


PRETRAINED = "pretrained "  # the label of a shipped history: "pretrained gan"


def shipped_histories(settings: Settings) -> dict[str, RunDir]:
    """{"pretrained <name>": its run directory} for each manifest entry that ships its history
    (``checkpoints/history/<name>``: metrics.jsonl, samples/), those present on disk."""
    entries = read_manifest(settings.checkpoints_dir / "MANIFEST.json")
    found = {}
    for name, entry in entries.items():
        run = sources.shipped_history(settings.checkpoints_dir, entry)
        if run is not None and run.metrics_path.is_file():
            found[f"{PRETRAINED}{name}"] = run
    return found


def grid_at(run: RunDir, epoch: int) -> tuple[int, Path] | None:
    """(the epoch shown, its fixed-noise grid) for ``epoch``: that epoch's grid, or the run's last
    one before it (a shorter run, or one with snapshots every few epochs); None before its first."""
    earlier = [e for e in run.sample_epochs() if e <= epoch]
    return (earlier[-1], run.sample_path(earlier[-1])) if earlier else None


def _overlay(runs: list[RunDir], settings: Settings) -> None:
    """Pick runs (and pretrained models' shipped histories): their sample grids side by side at
    one epoch, and their validation and smoothed training curves on one chart."""
    choices = {run.name: run for run in runs} | shipped_histories(settings)
    names = list(choices)
    if "runs-compare" not in st.session_state:  # first look: the newest runs of the newest run's family
        family = runs[0].family if runs else None
        st.session_state["runs-compare"] = [run.name for run in runs if run.family == family][:3] or names[:1]
    st.session_state["runs-compare"] = [n for n in st.session_state["runs-compare"] if n in names]
    chosen = st.multiselect("Compare", names, key="runs-compare",
                            help="Runs here, and the pretrained models whose training history ships with them.")
    if not chosen:
        st.info("Choose runs to see their samples and curves side by side.")
        return
    _side_by_side({name: choices[name] for name in chosen})
    histories = {}
    for name in chosen:
        history = metrics_history(str(choices[name].path))
        history.refresh()
        histories[name] = (history.columns("train"), history.columns("valid"))
    metrics = sorted({m for _, valid in histories.values() for m in valid if m not in ("step", "epoch", "time")})
    if not metrics:
        st.info("Choose runs that have finished at least one epoch to compare their curves.")
        return
    if st.session_state.get("runs-metric") not in metrics:  # the metric that picks best.pt, if logged
        monitor, _ = _monitor(choices[chosen[0]].family)
        st.session_state["runs-metric"] = monitor if monitor in metrics else metrics[0]
    left, right = st.columns([3, 2])
    metric = left.selectbox("Metric", metrics, key="runs-metric")
    with right:
        smoothing, x = curve_controls("runs")
    st.plotly_chart(charts.overlay_curves(histories, metric, smoothing=smoothing, x=x), key="runs-overlay",
                    config={"displaylogo": False})


def _side_by_side(chosen: dict[str, RunDir]) -> None:
    """One epoch slider; every chosen run's fixed-noise grid at that epoch, in a row."""
    epochs = sorted({e for run in chosen.values() for e in run.sample_epochs()})
    if not epochs:
        return
    if st.session_state.get("runs-epoch") not in epochs:
        st.session_state["runs-epoch"] = epochs[-1]
    epoch = (st.select_slider("Samples at epoch", options=epochs, key="runs-epoch") if len(epochs) > 1
             else epochs[0])
    for column, (name, run) in zip(st.columns(len(chosen)), chosen.items()):
        shown = grid_at(run, epoch)
        grid = read_grid(shown[1]) if shown else None
        if grid is None:
            column.caption(f"{plain(name)}: no samples by epoch {epoch}")
            continue
        note = "" if shown[0] == epoch else f" (its last before {epoch})"
        column.image(grid, caption=f"{name}, epoch {shown[0]}{note}", width="stretch")


def _details(runs: list[RunDir], states: dict[str, RunState], settings: Settings) -> None:
    """One run's full configuration and log, and Delete behind a confirmation."""
    names = [run.name for run in runs]
    if st.session_state.get("runs-detail") not in names:
        st.session_state["runs-detail"] = names[0]
    name = st.selectbox("Run", names, key="runs-detail")
    run, state = runs[names.index(name)], states[name]
    config, status = st.columns(2)
    with config:
        st.caption("Configuration")
        try:
            st.json(run.read_config(), expanded=True)
        except RunError as e:
            st.error(plain(e))
    with status:
        st.caption("Status")
        st.json(json.loads(json.dumps(state.status, default=str)), expanded=1)
        tail = job_backend().logs(run)
        if tail:
            with st.expander("End of the job's log (runs started here)"):
                st.code(tail, language=None)
    _delete_controls(run, state)


def _delete_controls(run: RunDir, state: RunState) -> None:
    if st.session_state.get("runs-delete-pending") != run.name:
        help_text = "Stop the run first." if state.active else "Asks for confirmation."
        if st.button("Delete this run…", key="runs-delete", disabled=state.active, help=help_text):
            st.session_state["runs-delete-pending"] = run.name
            st.rerun()
        return
    st.warning(f"Delete run **{plain(run.name)}** with its checkpoints, samples and metrics? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", key="runs-delete-confirm", type="primary"):
        st.session_state.pop("runs-delete-pending")
        try:
            job_backend().delete(run)
            st.session_state["runs-message"] = f"Deleted run {run.name}."
        except (LaunchError, OSError) as e:
            st.session_state["runs-message"] = f"Not deleted: {e}"
        st.rerun()
    if no.button("Cancel", key="runs-delete-cancel"):
        st.session_state.pop("runs-delete-pending")
        st.rerun()


def render(settings: Settings) -> None:
    """The tab: table and overlay (polled while a run is active), then one run's details."""
    message = st.session_state.pop("runs-message", None)
    if message and message.startswith("Deleted"):
        st.success(plain(message))
    elif message:
        st.error(plain(message))
    backend = job_backend()
    backend.reap()
    runs = list_runs(settings.runs_dir)
    if not runs:
        st.info(f"No runs in {plain(settings.runs_dir)} yet. Start one from a model's Train tab, or with "
                f"`python -m train vae --runs-dir {settings.runs_dir}`.")
        if shipped_histories(settings):  # the pretrained models' histories can still be compared
            _overlay([], settings)
        return
    polling = any(backend.status(run).active for run in runs) or bool(queue(settings.runs_dir)) \
        or any(backend.status(RunDir(settings.runs_dir / n)).active for n in backend.list(settings.runs_dir))

    @st.fragment(run_every=POLL_SECONDS if polling else None)
    def table_and_overlay() -> None:
        current = list_runs(settings.runs_dir)
        states = {run.name: backend.status(run) for run in current}
        waiting = [t for t in queue(settings.runs_dir) if t.run not in states]
        st.caption(f"{len(current)} runs in {plain(settings.runs_dir)}, newest first")
        if waiting:  # new runs that have no directory until their turn comes
            st.caption("Waiting for a free training slot: " + ", ".join(f"{plain(t.run)} ({t.position})" for t in waiting))
        elsewhere = [n for n in backend.list(settings.runs_dir) if n not in states and n not in {t.run for t in waiting}]
        elsewhere = [(n, backend.status(RunDir(settings.runs_dir / n))) for n in elsewhere]
        elsewhere = [(n, s) for n, s in elsewhere if s.reason or s.state == "failed"]
        if polling and not waiting and not any(s.active for s in [*states.values(), *(s for _, s in elsewhere)]):
            st.rerun()  # the last active run ended: stop polling
        if elsewhere:  # a cluster's jobs that have no directory yet: queued there, or failed to start
            st.caption("Not started yet: " + "; ".join(f"{plain(n)}: {s.state}, {plain(s.reason or s.error)[:200]}"
                                                       for n, s in elsewhere))
        _runs_table(current, states)
        _overlay(current, settings)

    table_and_overlay()
    st.divider()
    st.subheader("Details")
    _details(runs, {run.name: backend.status(run) for run in runs}, settings)
