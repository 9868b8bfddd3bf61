"""Which panel of the Assistants page is open, and the notice waiting for the next draw: the
session state the page (view.assistants_view) and its form (view.assistant_form) share.

One panel (the form, or a delete confirmation) is open at a time. Callbacks only change session
state; what they have to say is shown on the next draw, in the panel it belongs to.
"""

from __future__ import annotations

import streamlit as st

PANEL = "asst:panel"  # session state: the one open panel, ("new", "") or ("edit" | "delete", id)
NOTICE = "asst:notice"  # session state: (level, markdown, panel or None) to show on the next draw
FIELD_ERROR = "asst:field-error"  # session state: (field, sentence) from the last Create / Save

Panel = tuple[str, str]


def close_panel() -> None:
    st.session_state.pop(PANEL, None)
    st.session_state.pop(FIELD_ERROR, None)  # the form's error goes with it


def say(level: str, markdown: str, panel: Panel | None = None) -> None:
    """Show `markdown` (already safe: names through as_text) on the next draw, in `panel` if open."""
    st.session_state[NOTICE] = (level, markdown, panel)


def notices(where: Panel | None, leftover: bool = False) -> None:
    notice = st.session_state.get(NOTICE)
    if notice is None or not leftover and notice[2] != where:
        return
    del st.session_state[NOTICE]
    level, markdown, _ = notice
    if level == "toast":
        st.toast(markdown)
    elif level == "success":
        st.success(markdown)
    elif level == "warning":
        st.warning(markdown)
    else:
        st.error(markdown)
