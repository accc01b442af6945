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


# Everything CommonMark lets a backslash escape, and the characters of Streamlit's own markdown
# (":emoji:", ":red[...]", "$math$"): escaped, none of them starts a link, an image, emphasis, a
# list or a heading.
MARKDOWN_SPECIALS = set("\\`*_{}[]()<>#+-.!|~$:=&\"'")


# An invisible word joiner after what starts a web address or an e-mail: GitHub-flavoured markdown
# makes links of bare addresses ("http://...", "www.", "a@b.org") whatever is escaped.
AUTOLINKS = (("://", ":\u2060//"), ("www.", "www\u2060."), ("@", "@\u2060"))


def plain(text: object) -> str:
    """``text`` (a user's value, a file's content, an error message) as markdown that shows it
    literally: every markdown-special character backslash-escaped, bare web addresses kept from
    becoming links, line breaks kept as breaks."""
    text = str(text)
    for pattern, broken in AUTOLINKS:
        text = text.replace(pattern, broken)
    escaped = "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in text)
    return escaped.replace("\r", "").replace("\n", "  \n")
