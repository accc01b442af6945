"""The new-run form, built from a family's config dataclass: one widget per field, presets that
fill it, and Start, which asks the job backend to train it (``python -m train ...`` in a process of
its own; the page only reads the run directory afterwards).

A field's widget follows its type (a ``Literal`` of choices gets a select box, a bool a checkbox,
numbers a number input, tuples comma-separated text); its label and help come from the field
(``genapp.config.setting``), so a new family needs nothing here.
"""
from __future__ import annotations

import dataclasses
import math
import typing

import streamlit as st

from genapp.config import ConfigError, TrainConfig, choices, coerce, field_help, field_label, from_dict
from genapp.jobs import LaunchError
from genapp.models import RunConfig, get_family
from genapp.runs import RunError, check_run_name, new_run_name
from genapp.ui.presets import CUSTOM, DESCRIPTIONS, preset_names, preset_values
from genapp.ui.resources import Settings, devices, job_backend
from genapp.ui.text import plain

MAIN_TRAIN_FIELDS = ("epochs", "batch_size", "lr", "lr_schedule", "seed")
SIDEBAR_FIELDS = ("device",)  # chosen once in the sidebar, not per run


@dataclasses.dataclass(frozen=True)
class FormField:
    """One widget of the form: config section ("model" or "train"), the dataclass field, its type
    and default."""

    family: str
    section: str
    field: dataclasses.Field
    hint: typing.Any
    default: typing.Any

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def key(self) -> str:
        return f"{self.family}-{self.section}-{self.name}"

    @property
    def label(self) -> str:
        return field_label(self.field)

    @property
    def help(self) -> str | None:
        text = field_help(self.field)
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
                fields.append(FormField(family, section, f, hints[f.name], defaults[f.name]))
    return fields


def widget_value(field: FormField, value: typing.Any) -> typing.Any:
    """A config value as its widget holds it (a tuple becomes "500,250" text)."""
    return ",".join(map(str, value)) if typing.get_origin(field.hint) is tuple else value


def draw_widget(field: FormField, on_change) -> None:
    """The widget for ``field``'s type; its value lives in ``st.session_state[field.key]``."""
    common = dict(key=field.key, help=field.help, on_change=on_change, args=(field.family,))
    allowed = choices(field.hint)
    if field.hint is bool:
        st.checkbox(field.label, **common)
    elif allowed is not None:
        st.selectbox(field.label, allowed, **common)
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
        job_backend().submit(config, settings.runs_dir, name)
    except (ConfigError, RunError, LaunchError, OSError) as e:
        st.session_state[message_key] = f"Not started: {plain(e)}"  # markdown: the error's text escaped
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
    st.caption(f"Trains on **{plain(settings.device)}**: {plain(description)}. Choose the device in the sidebar.")
    st.button("Start training", key=f"{family}-start", type="primary", on_click=_start, args=(family, settings))
    message = st.session_state.pop(f"{family}-start-message", None)
    if message:
        st.error(message)
    if st.session_state.pop(f"{family}-launched", False):
        st.rerun()  # the whole page, so the run view switches to the new run and starts polling


def _field_with_error(field: FormField, errors: dict[str, str]) -> None:
    draw_widget(field, _field_changed)
    if field.key in errors:
        st.error(plain(errors[field.key]))


def state_keys(family: str) -> list[str]:
    """The session-state keys of the form's widgets whose values should outlive a tab switch."""
    return [*(field.key for field in form_fields(family)), _preset_key(family), f"{family}-run-name"]
