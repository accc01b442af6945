"""The genapp explorer: ``streamlit run app.py``.

A frame only: page config, the sidebar, one tab per model family, the 2-D Playground, Your digit,
Compare, the seed's Report and a Runs tab, and the view kept in the URL. The tabs live in
``genapp/ui/``; only the open tab runs.
"""
import streamlit as st

from genapp.models import FAMILIES
from genapp.ui import (
    compare_tab, digit_tab, family_tab, flow_tab, gan_tab, playground_tab, report_tab, runs_tab, sidebar, url_state,
    vae_tab,
)
from genapp.ui.resources import retain_widget_state

# A family's own tab (Explore + Train); a family without an explorer gets the Train view alone.
FAMILY_TABS = {"vae": vae_tab, "gan": gan_tab, "flow": flow_tab}

st.set_page_config(page_title="genapp explorer", page_icon="🔢", layout="wide")
settings = sidebar.render()
for family in FAMILIES:
    tab = FAMILY_TABS.get(family)
    retain_widget_state(tab.state_keys() if tab else family_tab.state_keys(family))
retain_widget_state(runs_tab.STATE_KEYS)
retain_widget_state(compare_tab.STATE_KEYS)
retain_widget_state(digit_tab.STATE_KEYS)
retain_widget_state(report_tab.STATE_KEYS)

labels = [FAMILIES[family].label for family in FAMILIES] + ["Playground", "Your digit", "Compare", "Report", "Runs"]
url_notice = url_state.restore(labels)  # a shared link's view, before any widget is drawn
tabs = st.tabs(labels, key="main-tab", on_change="rerun")
for family, tab in zip(FAMILIES, tabs):
    if tab.open:
        with tab:
            if family in FAMILY_TABS:
                FAMILY_TABS[family].render(settings)
            else:
                family_tab.render_training(family, settings)
if tabs[labels.index("Playground")].open:
    with tabs[labels.index("Playground")]:
        playground_tab.render(settings)
if tabs[labels.index("Your digit")].open:
    with tabs[labels.index("Your digit")]:
        digit_tab.render(settings)
if tabs[labels.index("Compare")].open:
    with tabs[labels.index("Compare")]:
        compare_tab.render(settings)
if tabs[labels.index("Report")].open:
    with tabs[labels.index("Report")]:
        report_tab.render(settings)
if tabs[-1].open:
    with tabs[-1]:
        runs_tab.render(settings)
url_state.publish(url_notice)  # the open view into the URL, so a copied link opens it
