"""The run monitor: one run's state, progress, live loss curves and its sample grid of every
epoch (scrub back through them, download them as a GIF), with Stop and Resume.

It only reads the run directory (and asks the job backend whether the job lives), so a refresh,
a second tab or a closed browser never touches training. The view is a fragment that polls about
once a second while the job is active, and stops polling (with one full rerun) when it ends.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from genapp.images import gif_bytes
from genapp.config import ConfigError
from genapp.jobs import LaunchError
from genapp.models import RunConfig
from genapp.jobs.queue import max_jobs
from genapp.runs import PICTURES, RunDir, RunError, list_runs
from genapp.smoothing import DEFAULT_WEIGHT, MAX_WEIGHT
from genapp.ui import charts
from genapp.ui.resources import Settings, job_backend, metrics_history
from genapp.ui.text import duration, plain

POLL_SECONDS = 1.0
MAX_EPOCHS = 1_000_000
GIF_MAX_FRAMES = 100
X_AXIS_LABELS = {"step": "Step", "epoch": "Epoch", "relative": "Wall time"}  # charts.X_AXES


def family_run_names(family: str, runs_dir: Path) -> list[str]:
    """This family's runs, newest first, with those just launched (no directory yet) on top."""
    names = [run.name for run in list_runs(runs_dir) if run.family == family]
    pending = [n for n in job_backend().pending(runs_dir, family) if n not in names]
    return [*pending, *names]


def run_view(family: str, settings: Settings) -> None:
    """Pick a run of this family and watch it."""
    st.subheader("Runs")
    job_backend().reap()
    names = family_run_names(family, settings.runs_dir)
    if not names:
        st.info(f"No {family} runs in {plain(settings.runs_dir)} yet: start one with the form.")
        return
    key = f"{family}-watched"
    if st.session_state.get(key) not in names:  # first look: a run in progress, else the newest
        active = [n for n in names if job_backend().status(RunDir(settings.runs_dir / n)).active]
        st.session_state[key] = (active or names)[0]
    name = st.selectbox("Run", names, key=key)
    run = RunDir(settings.runs_dir / name)
    _live_view(run, family, polling=job_backend().status(run).active)


def _live_view(run: RunDir, family: str, polling: bool) -> None:
    @st.fragment(run_every=POLL_SECONDS if polling else None)
    def live() -> None:
        state = job_backend().status(run)
        if polling and not state.active:
            st.rerun()  # the job ended: one full rerun switches polling off
        _status(run, state)
        _actions(run, state, family)
        history = metrics_history(str(run.path))
        history.refresh()
        _curves(run, history, family)
        picture_history(run)

    live()


STATE_COLORS = {"starting": "blue", "queued": "blue", "running": "green", "finished": "gray",
                "stopped": "orange", "failed": "red", "diverged": "red", "unknown": "gray"}


def _status(run: RunDir, state) -> None:
    """State, progress bar with images/s and time left, and the error of a failed run."""
    status = state.status
    color = STATE_COLORS.get(state.state, "gray")
    where = f" on {plain(status['device'])}" if status.get("device") else ""
    if status.get("cuda_graph"):
        where += " (one CUDA graph per step)"
    if state.where:
        where += f" · node {plain(state.where)}"  # a cluster's job: the machine it runs on
    st.markdown(f"**{plain(run.name)}** · :{color}[{state.state}]{where}")
    total = status.get("total_steps")
    if state.ticket is not None:
        st.progress(0.0, text=queue_text(state))
    elif state.reason:  # queued by the backend (Ray's queue), in its words
        st.progress(0.0, text=plain(state.reason)[:300])
    elif total:
        step = status.get("step", 0)
        st.progress(min(1.0, step / total), text=_progress_text(status, state.active))
    elif state.active:
        st.progress(0.0, text="starting: loading data and building the model…")
    if state.error:
        st.error(plain(state.error))


def queue_text(state) -> str:
    """Where a queued job stands: "waiting for a free training slot: 2nd of 3 in the queue · ..."."""
    try:
        limit = max_jobs()
    except ValueError:
        limit = 0
    position, waiting = state.ticket.position, state.waiting
    ordinal = {1: "1st", 2: "2nd", 3: "3rd"}.get(position, f"{position}th")
    at_a_time = f" · {limit} job{'s' if limit != 1 else ''} train at a time" if limit else ""
    return f"waiting for a free training slot: {ordinal} of {waiting} in the queue{at_a_time}"


def _progress_text(status: dict, active: bool) -> str:
    parts = [f"{status.get('epoch', 0)} of {status.get('epochs', '?')} epochs done",
             f"step {status.get('step', 0):,} of {status.get('total_steps', 0):,}"]
    if active and status.get("images_per_s"):
        parts.append(f"{status['images_per_s']:,.0f} images/s")
    if active and status.get("eta_s") is not None:
        parts.append(f"about {duration(status['eta_s'])} left")
    return " · ".join(parts)


def _actions(run: RunDir, state, family: str) -> None:
    """Stop while active; Resume (to a chosen number of epochs) otherwise."""
    backend = job_backend()
    if state.active:
        queued = state.ticket is not None or bool(state.reason)
        help_text = "Leaves the queue." if queued else "The job saves a checkpoint and ends as stopped."
        if st.button("Stop", key=f"{family}-stop", help=help_text):
            try:
                backend.stop(run)
                st.info("Left the queue." if queued else "Stopping: the job saves a checkpoint and ends.")
            except LaunchError as e:
                st.error(plain(e))
        return
    if not run.exists():
        return
    try:
        epochs = RunConfig.from_dict(run.read_config()).train.epochs
    except (RunError, ConfigError) as e:
        st.error(f"This run's config.json is not a valid configuration, so it cannot be resumed: {plain(e)}")
        return
    if not run.last_checkpoint.is_file() and run.best_checkpoint.is_file():
        st.warning("This run has no checkpoints/last.pt (deleted?): it cannot continue where it stopped.")
        if st.button("Start it over from step 0", key=f"{family}-restart",
                     help="Removes its metrics, pictures and checkpoints, keeps its configuration, and trains again."):
            _resume(backend, run, None, restart=True)
        return
    done = min(int(state.status.get("epoch", 0)), MAX_EPOCHS - 1)
    target_default = max(done + 1, epochs if done < epochs else epochs * 2)
    columns = st.columns([2, 1, 3], vertical_alignment="bottom")
    target = columns[0].number_input("Train until epoch", min_value=done + 1, max_value=MAX_EPOCHS,
                                     value=min(target_default, MAX_EPOCHS), step=1,
                                     key=f"{family}-resume-epochs-{run.name}")
    if columns[1].button("Resume", key=f"{family}-resume"):
        _resume(backend, run, int(target))


def _resume(backend, run: RunDir, epochs: int | None, restart: bool = False) -> None:
    try:
        backend.resume(run, epochs=epochs, restart=restart)
    except (LaunchError, RunError, OSError) as e:
        st.error(f"Not resumed: {plain(e)}")
        return
    st.rerun()


def _curves(run: RunDir, history, family: str) -> None:
    names = history.metric_names("train")
    if not names:
        st.info("The loss curves appear with the first training steps.")
        return
    key = f"{family}-curve-metric"
    if st.session_state.get(key) not in names:  # first view, or a run that logs other metrics
        st.session_state[key] = "loss" if "loss" in names else names[0]
    left, right = st.columns([3, 2])
    with left:
        metric = st.radio("Metric", names, horizontal=True, key=key)
    with right:
        smoothing, x = curve_controls(family)
    fig = charts.training_curves(history.columns("train"), history.columns("valid"), metric, uirevision=run.name,
                                 smoothing=smoothing, x=x)
    st.plotly_chart(fig, key=f"{family}-curves", config={"displaylogo": False})


def curve_controls(prefix: str) -> tuple[float, str]:
    """TensorBoard's two curve controls: the smoothing weight (keys ``<prefix>-smoothing``) and
    the x axis (``<prefix>-curve-x``). Returns (weight in [0, 0.99], a key of ``charts.X_AXES``)."""
    x_key = f"{prefix}-curve-x"
    if st.session_state.get(x_key) not in X_AXIS_LABELS:
        st.session_state[x_key] = "step" if prefix != "runs" else "epoch"
    smoothing = smoothing_slider(prefix)
    x = st.segmented_control("X axis", list(X_AXIS_LABELS), format_func=X_AXIS_LABELS.get, key=x_key,
                             required=True)
    return smoothing, x or "step"


def smoothing_slider(prefix: str) -> float:
    """TensorBoard's smoothing slider (key ``<prefix>-smoothing``): the weight, in [0, 0.99]."""
    key = f"{prefix}-smoothing"
    if not isinstance(st.session_state.get(key), float):
        st.session_state[key] = DEFAULT_WEIGHT
    return float(st.slider("Smoothing", 0.0, MAX_WEIGHT, step=0.01, key=key,
                           help="TensorBoard's debiased exponential moving average: 0 draws the raw values, "
                                "the same value draws the same curve as TensorBoard's slider."))


def picture_history(run: RunDir, key: str = "") -> None:
    """A run's pictures of every epoch (the monitor's, and a pretrained model's shipped ones in the
    Explore tabs; ``key`` prefixes its widget keys): the latest epoch's, a slider back through every
    epoch, a GIF; a run that recorded several kinds (fresh noise, Bernoulli draws, a manifold)
    offers each."""
    kinds = run.picture_kinds()
    if not kinds:
        st.info("The first sample grid appears once the model is built.")
        return
    picture, controls = st.columns(2, gap="large")
    with controls:
        kind = kinds[0]
        if len(kinds) > 1:
            kind = st.radio("Picture", kinds, horizontal=True, key=f"{key or run.path}-picture-kind",
                            format_func=lambda k: KIND_LABELS.get(k, k), help="What the run drew after each epoch.")
        epochs = run.sample_epochs(kind)
        shown = _scrubbed_epoch(run, epochs, kind)
        st.caption(f"{PICTURES[kind][0].upper()}{PICTURES[kind][1:]}, after every epoch the run recorded: "
                   "scrub back to watch the digits form.")
        st.download_button(
            "Download the progress as a GIF", data=lambda: progress_gif(run, kind),
            file_name=f"{run.name}-samples.gif" if kind == "fixed" else f"{run.name}-{kind}.gif",
            mime="image/gif", key=f"gif-{run.path}-{kind}", on_click="ignore",
        )
    grid = read_grid(run.sample_path(shown, kind))
    if grid is not None:
        when = "before training" if shown == 0 else f"after epoch {shown}"
        picture.image(grid, caption=f"{KIND_CAPTIONS.get(kind, kind)}, {when}", width="stretch")


KIND_LABELS = {"fixed": "fixed noise", "fixed-draws": "fixed noise, drawn", "fresh": "fresh noise",
               "fresh-draws": "fresh noise, drawn", "manifold": "manifold"}
KIND_CAPTIONS = {"fixed": "Samples from fixed noise", "fixed-draws": "Bernoulli draws from fixed noise",
                 "fresh": "Samples from fresh noise", "fresh-draws": "Bernoulli draws from fresh noise",
                 "manifold": "The 2-D manifold"}


def _scrubbed_epoch(run: RunDir, epochs: list[int], kind: str = "fixed") -> int:
    """The slider's epoch: it follows the newest grid unless the user has picked an earlier one."""
    latest = epochs[-1]
    if len(epochs) < 2:
        return latest
    pin_key = f"scrub-pin-{run.path}"
    pinned = st.session_state.get(pin_key)
    key = f"scrub-{run.path}-{kind}-{latest}"  # a new slider per new epoch: its range grows
    return st.select_slider("Epoch", options=epochs, value=pinned if pinned in epochs else latest, key=key,
                            on_change=_pin_epoch, args=(pin_key, key, latest))


def _pin_epoch(pin_key: str, key: str, latest: int) -> None:
    value = st.session_state[key]
    st.session_state[pin_key] = None if value == latest else value


def read_grid(path: Path) -> np.ndarray | None:
    """A sample grid PNG as uint8 [H, W], or None if it is missing or still being written."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"))
    except (OSError, SyntaxError, ValueError):
        return None


def progress_gif(run: RunDir, kind: str = "fixed") -> bytes:
    """Every epoch's ``kind`` picture (at most ``GIF_MAX_FRAMES``, evenly spread) as a looping GIF."""
    epochs = run.sample_epochs(kind)
    if len(epochs) > GIF_MAX_FRAMES:
        keep = np.linspace(0, len(epochs) - 1, GIF_MAX_FRAMES).round().astype(int)
        epochs = [epochs[i] for i in keep]
    frames = [g for g in (read_grid(run.sample_path(e, kind)) for e in epochs) if g is not None]
    shapes = {f.shape for f in frames}
    frames = [f for f in frames if f.shape == frames[-1].shape] if len(shapes) > 1 else frames
    return gif_bytes(frames, duration_ms=400, scale=2)


def state_keys(family: str) -> list[str]:
    """The session-state keys of the monitor's widgets whose values should outlive a tab switch."""
    return [f"{family}-watched", f"{family}-curve-metric", f"{family}-smoothing", f"{family}-curve-x"]
