"""Which panel of the Assistants page is open, and the notice waiting for the next draw: the
session state the page (view.assistants_view) and its form (view.assistant_form) share.

One panel (the form, or a delete confirmation) is open at a time. Callbacks only change session
state; what they have to say is shown on the next draw, in the panel it belongs to.
"""

from __future__ import annotations

import streamlit as st

from view import notices as pending

PANEL = "asst:panel"  # session state: the one open panel, ("new", "") or ("edit" | "delete", id)
NOTICE = "asst:notice"  # session state: (level, markdown, panel or None) to show on the next draw
FIELD_ERROR = "asst:field-error"  # session state: (field, sentence) from the last Create / Save

Panel = pending.Panel


def close_panel() -> None:
    st.session_state.pop(PANEL, None)
    st.session_state.pop(FIELD_ERROR, None)  # the form's error goes with it


def say(level: str, markdown: str, panel: Panel | None = None) -> None:
    """Show `markdown` (already safe: names through as_text) on the next draw, in `panel` if open."""
    pending.say(NOTICE, level, markdown, panel)


def notices(where: Panel | None, leftover: bool = False) -> None:
    """Show the notice meant for `where` (None: the top of the page)."""
    pending.show(NOTICE, where, leftover)
