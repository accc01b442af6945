"""The training panel, shared by every family's tab: a form built from the family's config
dataclass and a live view of one run.

The form has one widget per config field (its type picks the widget) and presets that fill it.
Start launches ``python -m train ...`` as a separate process (see ``genapp.training.launcher``):
the page only reads the run directory, so a refresh, a second tab or a closed browser never
touches training. The live view is a fragment that polls the run directory about once a second
while the job is active, and stops polling (with one full rerun) when it ends.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from genapp.config import LR_SCHEDULES, ConfigError, RunConfig, TrainConfig, coerce, from_dict
from genapp.images import gif_bytes
from genapp.models import get_family
from genapp.models.flow import PRESETS as FLOW_PRESETS
from genapp.models.gan import GENERATOR_LOSSES
from genapp.training.launcher import LaunchError, pending_run_names, resume_run, run_state, start_run, stop_run
from genapp.training.slots import max_jobs
from genapp.training.runs import RunDir, RunError, check_run_name, list_runs, new_run_name
from genapp.ui import charts
from genapp.ui.presets import CUSTOM, DESCRIPTIONS, preset_names, preset_values
from genapp.ui.resources import Settings, devices, job_table, metrics_history

POLL_SECONDS = 1.0
GIF_MAX_FRAMES = 100

# How each config field is shown. Fields not named here get a label made from their name.
LABELS = {
    "latent_dim": "Latent dimensions",
    "hidden": "Hidden layer sizes",
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "lr_schedule": "Learning-rate schedule",
    "seed": "Seed",
    "train_size": "Training images (0 = all 50,000)",
    "valid_size": "Validation images (0 = all 10,000)",
    "compile": "Compile the training step (torch.compile)",
    "cuda_graph": "Replay the step as one CUDA graph (GPU)",
    "log_every": "Steps between host synchronisations",
    "sample_count": "Images in each epoch's sample grid",
    "quality_every": "Score samples every N epochs (0 = never)",
    "quality_samples": "Samples scored each time",
    "data_dir": "MNIST directory of IDX files (empty = default)",
}
# Where one field name means different things in different families.
FAMILY_LABELS = {
    ("gan", "generator_hidden"): "Generator layer sizes",
    ("gan", "discriminator_hidden"): "Discriminator layer sizes",
    ("gan", "d_warmup_steps"): "Discriminator-only steps first",
    ("gan", "same_noise"): "Generator step reuses the discriminator's noise",
    ("gan", "beta1"): "Adam β1",
    ("gan", "ema"): "Average of the generator's weights: decay (0 = off)",
    ("flow", "preset"): "Architecture",
    ("flow", "hidden"): "Hidden width of the coupling networks",
    ("flow", "mlp_layers"): "Hidden layers per coupling network",
    ("flow", "grad_clip"): "Gradient-norm clipping (0 = off)",
}
HELP = {
    ("vae", "hidden"): "From the image inwards; the decoder mirrors them.",
    ("gan", "ema"): "Samples come from a moving average of G's weights, which wanders less than G "
                    "itself; 0.999 averages over about the last 1,000 steps.",
    ("train", "lr_schedule"): "cosine decays the learning rate to 0 over the run, per epoch.",
    ("train", "compile"): "A 20-30 s compile at the start, then faster steps.",
    ("train", "cuda_graph"): "On a GPU, one launch per step instead of hundreds: 2-7x faster on an H200. "
                             "Ignored on a CPU.",
    ("train", "log_every"): "Every step is still recorded; this only sets how often the job waits for the device.",
    ("train", "quality_every"): "With the project's MNIST classifier: how recognisable and how varied the samples are.",
}
# Text fields with a fixed set of values get a select box.
CHOICES = {"lr_schedule": LR_SCHEDULES, "generator_loss": GENERATOR_LOSSES, "preset": FLOW_PRESETS}
MAIN_TRAIN_FIELDS = ("epochs", "batch_size", "lr", "lr_schedule", "seed")
SIDEBAR_FIELDS = ("device",)  # chosen once in the sidebar, not per run


# ----------------------------------------------------------------------------- form fields


@dataclasses.dataclass(frozen=True)
class FormField:
    """One widget of the form: config section ("model" or "train"), field name and type."""

    family: str
    section: str
    name: str
    hint: typing.Any
    default: typing.Any

    @property
    def key(self) -> str:
        return f"{self.family}-{self.section}-{self.name}"

    @property
    def label(self) -> str:
        default = LABELS.get(self.name, self.name.replace("_", " ").capitalize())
        return FAMILY_LABELS.get((self.family, self.name), default)

    @property
    def help(self) -> str | None:
        text = HELP.get((self.family, self.name)) or HELP.get((self.section, self.name))
        if typing.get_origin(self.hint) is tuple:
            text = f"Comma-separated, e.g. {widget_value(self, self.default)}. {text or ''}".strip()
        return text


def form_fields(family: str) -> list[FormField]:
    """A widget per field of the family's config and of ``TrainConfig`` (but the device)."""
    fields = []
    family_cls = get_family(family)
    for section, cls, instance in (("model", family_cls.Config, family_cls.Config()),
                                   ("train", TrainConfig, family_cls.default_train_config())):
        hints = typing.get_type_hints(cls)
        defaults = dataclasses.asdict(instance)
        for f in dataclasses.fields(cls):
            if f.name not in SIDEBAR_FIELDS:
                fields.append(FormField(family, section, f.name, hints[f.name], defaults[f.name]))
    return fields


def widget_value(field: FormField, value: typing.Any) -> typing.Any:
    """A config value as its widget holds it (a tuple becomes "500,250" text)."""
    return ",".join(map(str, value)) if typing.get_origin(field.hint) is tuple else value


def draw_widget(field: FormField, on_change) -> None:
    """The widget for ``field``'s type; its value lives in ``st.session_state[field.key]``."""
    common = dict(key=field.key, help=field.help, on_change=on_change, args=(field.family,))
    if field.hint is bool:
        st.checkbox(field.label, **common)
    elif field.name in CHOICES:
        st.selectbox(field.label, CHOICES[field.name], **common)
    elif field.hint is int:
        st.number_input(field.label, step=1, **common)
    elif field.hint is float:
        step = 10.0 ** math.floor(math.log10(abs(field.default))) / 10 if field.default else 0.01
        st.number_input(field.label, step=step, format="%g", **common)
    else:  # str, and tuples as comma-separated text
        st.text_input(field.label, **common)


def form_values(family: str) -> dict[str, dict]:
    """{"model": {...}, "train": {...}}: the widgets' current values, unconverted."""
    values: dict[str, dict] = {"model": {}, "train": {}}
    for field in form_fields(family):
        values[field.section][field.name] = st.session_state[field.key]
    return values


def field_errors(family: str, values: dict[str, dict]) -> dict[str, str]:
    """Widget key -> message, for each value its dataclass refuses on its own."""
    classes = {"model": get_family(family).Config, "train": TrainConfig}
    errors = {}
    for section, section_values in values.items():
        for name, value in section_values.items():
            try:
                from_dict(classes[section], {name: value})
            except ConfigError as e:
                errors[f"{family}-{section}-{name}"] = str(e)
    return errors


def build_config(family: str, values: dict[str, dict], device: str) -> RunConfig:
    """The RunConfig the form describes, on ``device``. Raises ``ConfigError``."""
    return RunConfig(
        family=family,
        model=from_dict(get_family(family).Config, values["model"]),
        train=from_dict(TrainConfig, {**values["train"], "device": device}),
    )


# ----------------------------------------------------------------------------- presets


def _preset_key(family: str) -> str:
    return f"{family}-preset"


def _init_form(family: str) -> None:
    """First visit: the form holds the first preset."""
    if _preset_key(family) not in st.session_state:
        st.session_state[_preset_key(family)] = preset_names(family)[0]
        _apply_preset(family)


def _apply_preset(family: str) -> None:
    """Fill every field from the chosen preset (a callback of the preset selector)."""
    name = st.session_state[_preset_key(family)]
    if name == CUSTOM:
        return
    values = preset_values(family, name)
    for field in form_fields(family):
        st.session_state[field.key] = widget_value(field, values[field.section][field.name])


def _matching_preset(family: str) -> str:
    """The preset whose values the form holds, else "Custom"."""
    current = form_values(family)
    for name in preset_names(family)[:-1]:
        preset = preset_values(family, name)
        try:
            if all(coerce(f.hint, current[f.section][f.name], f.name) == preset[f.section][f.name]
                   for f in form_fields(family)):
                return name
        except ConfigError:
            return CUSTOM
    return CUSTOM


def _field_changed(family: str) -> None:
    st.session_state[_preset_key(family)] = _matching_preset(family)


# ----------------------------------------------------------------------------- the form


def _start(family: str, settings: Settings) -> None:
    """Start button callback: launch the job, or leave a message saying why not."""
    message_key = f"{family}-start-message"
    values = form_values(family)
    if field_errors(family, values):
        st.session_state[message_key] = "Not started: correct the values marked above."
        return
    name = st.session_state.get(f"{family}-run-name", "").strip() or new_run_name(family)
    try:
        check_run_name(name)
        config = build_config(family, values, settings.device)
        start_run(config, settings.runs_dir, name, job_table())
    except (ConfigError, RunError, LaunchError, OSError) as e:
        st.session_state[message_key] = f"Not started: {e}"
        return
    st.session_state[f"{family}-watched"] = name
    st.session_state[f"{family}-run-name"] = ""
    st.session_state[f"{family}-launched"] = True


@st.fragment
def new_run_form(family: str, settings: Settings) -> None:
    """Preset, one widget per config field with its error beneath it, run name and Start."""
    _init_form(family)
    st.subheader("New run")
    st.selectbox("Preset", preset_names(family), key=_preset_key(family), on_change=_apply_preset, args=(family,))
    st.caption(DESCRIPTIONS.get(st.session_state[_preset_key(family)], ""))
    errors = field_errors(family, form_values(family))
    fields = form_fields(family)
    main = [f for f in fields if f.section == "model" or f.name in MAIN_TRAIN_FIELDS]
    more = [f for f in fields if f not in main]
    for field in main:
        _field_with_error(field, errors)
    with st.expander("More options", expanded=any(f.key in errors for f in more)):
        for field in more:
            _field_with_error(field, errors)
    st.text_input("Run name", key=f"{family}-run-name", placeholder="automatic: family-date-time-id")
    description = dict(devices()).get(settings.device, settings.device)
    st.caption(f"Trains on **{settings.device}**: {description}. Choose the device in the sidebar.")
    st.button("Start training", key=f"{family}-start", type="primary", on_click=_start, args=(family, settings))
    message = st.session_state.pop(f"{family}-start-message", None)
    if message:
        st.error(message)
    if st.session_state.pop(f"{family}-launched", False):
        st.rerun()  # the whole page, so the run view switches to the new run and starts polling


def _field_with_error(field: FormField, errors: dict[str, str]) -> None:
    draw_widget(field, _field_changed)
    if field.key in errors:
        st.error(errors[field.key])


# ----------------------------------------------------------------------------- the run view


def family_run_names(family: str, runs_dir: Path) -> list[str]:
    """This family's runs, newest first, with those just launched (no directory yet) on top."""
    names = []
    for run in list_runs(runs_dir):
        try:
            if run.read_config().get("family") == family:
                names.append(run.name)
        except RunError:
            continue
    pending = [n for n in pending_run_names(runs_dir, job_table(), family) if n not in names]
    return [*pending, *names]


def run_view(family: str, settings: Settings) -> None:
    """Pick a run of this family and watch it."""
    st.subheader("Runs")
    job_table().reap()
    names = family_run_names(family, settings.runs_dir)
    if not names:
        st.info(f"No {family} runs in {settings.runs_dir} yet: start one with the form.")
        return
    key = f"{family}-watched"
    if st.session_state.get(key) not in names:  # first look: a run in progress, else the newest
        active = [n for n in names if run_state(RunDir(settings.runs_dir / n), job_table()).active]
        st.session_state[key] = (active or names)[0]
    name = st.selectbox("Run", names, key=key)
    run = RunDir(settings.runs_dir / name)
    _live_view(run, family, polling=run_state(run, job_table()).active)


def _live_view(run: RunDir, family: str, polling: bool) -> None:
    @st.fragment(run_every=POLL_SECONDS if polling else None)
    def live() -> None:
        state = run_state(run, job_table())
        if polling and not state.active:
            st.rerun()  # the job ended: one full rerun switches polling off
        _status(run, state)
        _actions(run, state, family)
        history = metrics_history(str(run.path))
        history.refresh()
        _curves(run, history, family)
        _samples(run)

    live()


STATE_COLORS = {"starting": "blue", "queued": "blue", "running": "green", "finished": "gray",
                "stopped": "orange", "failed": "red", "diverged": "red", "unknown": "gray"}


def _status(run: RunDir, state) -> None:
    """State, progress bar with images/s and time left, and the error of a failed run."""
    status = state.status
    color = STATE_COLORS.get(state.state, "gray")
    where = f" on {status['device']}" if status.get("device") else ""
    if status.get("cuda_graph"):
        where += " (one CUDA graph per step)"
    st.markdown(f"**{run.name}** · :{color}[{state.state}]{where}")
    total = status.get("total_steps")
    if state.ticket is not None:
        st.progress(0.0, text=queue_text(state))
    elif total:
        step = status.get("step", 0)
        st.progress(min(1.0, step / total), text=_progress_text(status, state.active))
    elif state.active:
        st.progress(0.0, text="starting: loading data and building the model…")
    if state.error:
        st.error(state.error)


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
        parts.append(f"about {format_duration(status['eta_s'])} left")
    return " · ".join(parts)


def format_duration(seconds: float) -> str:
    """12 -> "12 s", 75 -> "1 min 15 s", 3725 -> "1 h 02 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _actions(run: RunDir, state, family: str) -> None:
    """Stop while active; Resume (to a chosen number of epochs) otherwise."""
    jobs = job_table()
    if state.active:
        queued = state.ticket is not None
        help_text = "Leaves the queue." if queued else "The job saves a checkpoint and ends as stopped."
        if st.button("Stop", key=f"{family}-stop", help=help_text):
            try:
                stop_run(run, jobs)
                st.info("Left the queue." if queued else "Stopping: the job saves a checkpoint and ends.")
            except LaunchError as e:
                st.error(str(e))
        return
    if not run.exists():
        return
    try:
        epochs = int(run.read_config()["train"]["epochs"])
    except (RunError, KeyError, TypeError, ValueError) as e:
        st.error(f"This run's config.json is unreadable, so it cannot be resumed: {e}")
        return
    done = int(state.status.get("epoch", 0))
    target_default = epochs if done < epochs else epochs * 2
    columns = st.columns([2, 1, 3], vertical_alignment="bottom")
    target = columns[0].number_input("Train until epoch", min_value=1, value=target_default, step=1,
                                     key=f"{family}-resume-epochs-{run.name}")
    if columns[1].button("Resume", key=f"{family}-resume"):
        if target <= done:
            st.error(f"The run has done {done} epochs already: choose more to resume it.")
            return
        try:
            resume_run(run, epochs=int(target), jobs=jobs)
        except (LaunchError, RunError, OSError) as e:
            st.error(f"Not resumed: {e}")
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
    metric = st.radio("Metric", names, horizontal=True, key=key)
    fig = charts.training_curves(history.columns("train"), history.columns("valid"), metric, uirevision=run.name)
    st.plotly_chart(fig, key=f"{family}-curves", config={"displaylogo": False})


def _samples(run: RunDir) -> None:
    """The fixed-noise grid of the latest epoch, a slider back through every epoch, a GIF."""
    epochs = run.sample_epochs()
    if not epochs:
        st.info("The first sample grid appears once the model is built.")
        return
    picture, controls = st.columns(2, gap="large")
    with controls:
        shown = _scrubbed_epoch(run, epochs)
        st.caption("The same noise decoded after every epoch: scrub back to watch the digits form.")
        st.download_button(
            "Download the progress as a GIF", data=lambda: progress_gif(run), file_name=f"{run.name}-samples.gif",
            mime="image/gif", key=f"gif-{run.path}", on_click="ignore",
        )
    grid = read_grid(run.sample_path(shown))
    if grid is not None:
        caption = "before training" if shown == 0 else f"after epoch {shown}"
        picture.image(grid, caption=f"Samples from fixed noise, {caption}", width="stretch")


def _scrubbed_epoch(run: RunDir, epochs: list[int]) -> int:
    """The slider's epoch: it follows the newest grid unless the user has picked an earlier one."""
    latest = epochs[-1]
    if len(epochs) < 2:
        return latest
    pin_key = f"scrub-pin-{run.path}"
    pinned = st.session_state.get(pin_key)
    key = f"scrub-{run.path}-{latest}"  # a new slider per new epoch: its range grows
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


def progress_gif(run: RunDir) -> bytes:
    """Every epoch's sample grid (at most ``GIF_MAX_FRAMES``, evenly spread) as a looping GIF."""
    epochs = run.sample_epochs()
    if len(epochs) > GIF_MAX_FRAMES:
        keep = np.linspace(0, len(epochs) - 1, GIF_MAX_FRAMES).round().astype(int)
        epochs = [epochs[i] for i in keep]
    frames = [g for g in (read_grid(run.sample_path(e)) for e in epochs) if g is not None]
    shapes = {f.shape for f in frames}
    frames = [f for f in frames if f.shape == frames[-1].shape] if len(shapes) > 1 else frames
    return gif_bytes(frames, duration_ms=400, scale=2)


def state_keys(family: str) -> list[str]:
    """The session-state keys of the panel's widgets whose values should outlive a tab switch."""
    keys = [field.key for field in form_fields(family)]
    return [*keys, _preset_key(family), f"{family}-run-name", f"{family}-watched", f"{family}-curve-metric"]


def render(family: str, settings: Settings) -> None:
    """The panel: the new-run form on the left, the chosen run on the right."""
    form, view = st.columns([1, 2.6], gap="large")
    with form:
        new_run_form(family, settings)
    with view:
        run_view(family, settings)


def render_with_explorer(family: str, settings: Settings, explore: Callable[[Settings], None]) -> None:
    """A family tab's Explore (``explore(settings)``) and Train sub-tabs, key ``<family>-view``;
    only the open one runs."""
    explore_tab, train_tab = st.tabs(["Explore", "Train"], key=f"{family}-view", on_change="rerun")
    if explore_tab.open:
        with explore_tab:
            explore(settings)
    if train_tab.open:
        with train_tab:
            render(family, settings)


__all__ = ["build_config", "field_errors", "form_fields", "format_duration", "progress_gif", "render",
           "render_with_explorer", "state_keys"]
