"""The Streamlit explorer: one module per tab, plotly chart builders, and the shared training panel.

Only this package and ``app.py`` import streamlit. The UI trains nothing itself: it launches jobs
(``genapp.training.launcher``) and reads their run directories.
"""
