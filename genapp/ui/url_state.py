"""Shareable views: the open tab, the model chosen and the main controls of each Explore view,
kept in the page's URL (``st.query_params``), so that a copied link opens the same view.

The URL's parameters are the widgets' own session-state keys (``?main-tab=GAN&gan-view=Explore&
gan-steps=12``). ``restore(labels)`` runs once per browser session, before any widget is drawn: it
reads the link, checks each value against ``FIELDS`` (its kind and range, so that no widget is ever
handed a value it would raise on) and puts the good ones in session state, where the widgets pick
them up. ``publish()`` writes the open view's values back into the URL; app.py calls it at the end
of every run and the fragments that hold shared controls call it at their end (a click inside a
fragment reruns only the fragment). A value the link gives but the view cannot use (a model that is
not here, a frame past the path's end) is corrected by the view itself as usual; ``publish`` sees
the difference and says so in a short notice at the top of the page. A bad link never raises.

Which keys are shared: ``main-tab`` always; a key ``<owner>-...`` when the open tab is its owner's
(a family's tab, or a tab whose label starts with the owner, as "playground" for a Playground tab);
a family's Explore keys only while its ``<family>-view`` is Explore. A new tab's widget becomes
shareable by adding its key to ``FIELDS`` (``playground-preset`` is there already).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from genapp.models import FAMILIES

TAB_KEY = "main-tab"
_RESTORED = "_url-state-restored"  # session state: the link was read (once per session)
_FROM_LINK = "_url-state-from-link"  # session state: {key: value} the link set, checked once
_TABS = "_url-state-tabs"  # session state: the main tabs' labels
_PROBLEMS = "_url-state-problems"  # session state: what the link held that could not be used
MAX_TEXT = 200
SEED_MAX = 2**31 - 1


@dataclass(frozen=True)
class Field:
    """What a parameter may hold: ``kind`` "int", "float", "choice" or "text"; ``low``/``high``
    bound numbers (inclusive; the widget's own range); ``choices`` for "choice"."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, text: str) -> object:
        """The value ``text`` stands for; raises ValueError with what was expected."""
        if self.kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"a whole number from {self.low:g} to {self.high:g}") from None
            if not self.low <= value <= self.high:
                raise ValueError(f"a whole number from {self.low:g} to {self.high:g}")
            return value
        if self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and self.low <= value <= self.high):
                raise ValueError(f"a number from {self.low:g} to {self.high:g}")
            return value
        if self.kind == "choice":
            if text not in self.choices:
                raise ValueError("one of " + ", ".join(self.choices))
            return text
        if not text or len(text) > MAX_TEXT or not text.isprintable():
            raise ValueError(f"a name of at most {MAX_TEXT} characters")
        return text

    def format(self, value: object) -> str:
        return f"{value:.6g}" if self.kind == "float" else str(value)

    def same(self, a: object, b: object) -> bool:
        if self.kind == "float" and isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return math.isclose(a, b, abs_tol=1e-9)
        return a == b


VIEWS = Field("choice", choices=("Explore", "Train"))
SEED = Field("int", 0, SEED_MAX)
# Each shared widget's key and what it may hold: the ranges are the widgets' own (vae_tab,
# gan_tab, flow_tab), so that a value from a link never makes a widget raise.
FIELDS: dict[str, Field] = {
    **{f"{family}-view": VIEWS for family in ("vae", "gan", "flow")},
    **{f"{family}-source": Field("text") for family in ("vae", "gan", "flow")},
    # VAE: the point of the 2-D manifold and the grid's size
    "vae-manifold-n": Field("int", 5, 30),
    "vae-z1": Field("float", -3.0, 3.0),
    "vae-z2": Field("float", -3.0, 3.0),
    # GAN: the interpolation's endpoints, steps and path (and the grid whose samples it may join)
    "gan-samples-seed": SEED,
    "gan-endpoints": Field("choice", choices=("two seeds", "two samples of the grid")),
    "gan-seed-start": SEED,
    "gan-seed-end": SEED,
    "gan-cell-start": Field("int", 1, 24),  # gan_tab.SAMPLE_COUNT
    "gan-cell-end": Field("int", 1, 24),
    "gan-steps": Field("int", 3, 24),
    "gan-mode": Field("choice", choices=("linear", "slerp")),
    "gan-frame": Field("int", 1, 24),
    # Flow: the sampling temperature and the noise seed
    "flow-temperature": Field("float", 0.0, 1.2),
    "flow-noise-seed": SEED,
    # The Playground tab's preset (a selectbox of preset names; the tab checks the name)
    "playground-preset": Field("text"),
}
IGNORED = ("embed", "embed_options")  # Streamlit's own parameters


def restore(tab_labels: list[str]) -> "st.delta_generator.DeltaGenerator":
    """Once per session, before any widget: the link's good values into session state.

    Returns the notice's place at the top of the page (for ``publish``), already holding a note
    on whatever in the link could not be used."""
    notice = st.empty()
    st.session_state[_TABS] = list(tab_labels)
    if st.session_state.get(_RESTORED):
        return notice
    st.session_state[_RESTORED] = True
    problems, taken = [], {}
    for key in st.query_params:
        if key in IGNORED:
            continue
        text = st.query_params.get(key, "")
        field = Field("choice", choices=tuple(tab_labels)) if key == TAB_KEY else FIELDS.get(key)
        if field is None:
            problems.append(f"`{key}` is not a setting of this app")
            continue
        try:
            value = field.parse(text)
        except ValueError as e:
            problems.append(f"`{key}` should be {e}")
            continue
        st.session_state[key] = value
        taken[key] = value
    st.session_state[_FROM_LINK] = taken
    st.session_state[_PROBLEMS] = problems
    return notice


def open_tab() -> str | None:
    tabs = st.session_state.get(_TABS) or []
    tab = st.session_state.get(TAB_KEY)
    return tab if tab in tabs else (tabs[0] if tabs else None)


def shared_keys() -> list[str]:
    """The keys the open view shares besides ``main-tab`` (see the module's docstring), in
    ``FIELDS`` order."""
    tab, keys = open_tab(), []
    for key in FIELDS:
        owner = key.split("-")[0]
        if not _owns(owner, tab):
            continue
        if owner in FAMILIES and key != f"{owner}-view" and st.session_state.get(f"{owner}-view", "Explore") != "Explore":
            continue
        keys.append(key)
    return [k for k in keys if k in st.session_state]


def _owns(owner: str, tab: str | None) -> bool:
    if tab is None:
        return False
    if owner in FAMILIES:
        return FAMILIES[owner].label == tab
    return tab.lower().startswith(owner)


def publish(notice=None) -> None:
    """The open view's values into the URL (only when they changed). On the run after a link
    was read, also notes the link's values that the view had to change (into ``notice``)."""
    tab = open_tab()
    params = {TAB_KEY: tab} if tab else {}
    for key in shared_keys():
        params[key] = _field(key).format(st.session_state[key])
    if notice is not None and _FROM_LINK in st.session_state:  # the first full run after the link was read
        taken, problems = st.session_state.pop(_FROM_LINK), st.session_state.pop(_PROBLEMS, [])
        problems += [f"`{key}` = {_field(key).format(value)} is not available here" for key, value in taken.items()
                     if key in st.session_state and not _field(key).same(st.session_state[key], value)]
        if problems:
            _note(notice, problems)
    current = {k: st.query_params.get(k) for k in st.query_params if k not in IGNORED}
    if current != params:
        st.query_params.from_dict({**{k: st.query_params.get(k) for k in IGNORED if k in st.query_params}, **params})


def _field(key: str) -> Field:
    return Field("choice", choices=tuple(st.session_state.get(_TABS) or ())) if key == TAB_KEY else FIELDS[key]


def _note(notice, problems: list[str]) -> None:
    notice.warning("This link's view could not be opened exactly; the defaults are used instead where "
                   "it says: " + "; ".join(problems) + ".", icon="🔗")
