"""A family's tab: Explore (the family's own explorer, when it has one) and Train (the new-run form
beside the run monitor). A family without an explorer of its own gets the Train view alone."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from genapp.ui import run_form, run_monitor
from genapp.ui.resources import Settings


def render_training(family: str, settings: Settings) -> None:
    """The new-run form on the left, the chosen run on the right."""
    form, view = st.columns([1, 2.6], gap="large")
    with form:
        run_form.new_run_form(family, settings)
    with view:
        run_monitor.run_view(family, settings)


def render_with_explorer(family: str, settings: Settings, explore: Callable[[Settings], None]) -> None:
    """A family tab's Explore (``explore(settings)``) and Train sub-tabs, key ``<family>-view``;
    only the open one runs."""
    explore_tab, train_tab = st.tabs(["Explore", "Train"], key=f"{family}-view", on_change="rerun")
    if explore_tab.open:
        with explore_tab:
            explore(settings)
    if train_tab.open:
        with train_tab:
            render_training(family, settings)


def state_keys(family: str) -> list[str]:
    """The session-state keys of the Train view's widgets whose values should outlive a tab switch."""
    return [*run_form.state_keys(family), *run_monitor.state_keys(family)]
