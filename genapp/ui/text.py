"""Text as the explorer shows it: durations, and user text made safe for markdown.

Streamlit renders the text of ``st.markdown``, ``st.caption``, ``st.error`` and their kin as
markdown; a string that came from a user, a file or an error message goes through ``plain`` first.
"""
from __future__ import annotations


def duration(seconds: float | None, precise: bool = True) -> str:
    """12 s, 1 min 15 s, 1 h 02 min; with ``precise`` off, whole minutes past one: 31 min, 1 h 32 min."""
    if seconds is None:
        return "—"
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    if precise and seconds < 3600:
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest:02d} s"
    minutes = int(round(seconds)) // 60 if precise else int(round(seconds / 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
