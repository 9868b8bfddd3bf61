"""A sentence for the next draw: kept in the session under a page's own key until the place it is
meant for (a panel, or None for the top) is drawn, then shown once. The sidebar and the Assistants
page each keep one this way; a callback cannot draw, so it says and the next run shows."""

from __future__ import annotations

import streamlit as st

Panel = tuple[str, str]


def say(key: str, level: str, markdown: str, panel: Panel | None = None) -> None:
    """Show `markdown` (already safe: names through as_text) on the next draw, in `panel` if open.
    `level`: toast, info (a summary to read: kept on the page, and a toast), success, warning, error."""
    st.session_state[key] = (level, markdown, panel)


def show(key: str, where: Panel | None, leftover: bool = False) -> None:
    """Show the notice under `key` meant for `where` (None: the top), or any notice when `leftover`."""
    notice = st.session_state.get(key)
    if notice is None or not leftover and notice[2] != where:
        return
    del st.session_state[key]
    level, markdown, _ = notice
    if level in ("toast", "info"):
        st.toast(markdown)
    if level in ("info", "success"):
        st.success(markdown)
    elif level == "warning":
        st.warning(markdown)
    elif level != "toast":
        st.error(markdown)


def naming(name: str, sentence: str) -> str:
    """A sentence about the file `name`, after its name unless it already names it (shared by the
    chat's attachments and an assistant's knowledge files)."""
    return sentence if name in sentence else f"{name}: {sentence}"
