"""The Streamlit explorer: one module per tab (``<name>_tab.py``), the Train view every family
shares (``run_form`` beside ``run_monitor``, framed by ``family_tab``), plotly chart builders
(``charts`` and ``<family or tab>_charts``) and what the tabs share (``resources``, ``sources``).

Only this package and ``app.py`` import streamlit. The UI trains no MNIST model itself: it asks a
job backend (``genapp.jobs``) to run ``python -m train ...`` and reads the run directories.
"""
