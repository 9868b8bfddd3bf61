"""A Copy button that puts a text on the clipboard in one click, with no rerun.

A Streamlit v2 component: the button and its script are ours (trusted); the text to copy is
passed as `data`, which the script only hands to `navigator.clipboard` and never renders.

Each one costs the browser ~3 ms on every run of the page (measured: 20 messages with Copy made
the first words of a turn ~50 ms later than without), so the chat draws it under its newest
answers only; older ones get a plain button that brings it (see view/messages.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import streamlit as st

_HTML = (
    '<button type="button" class="copy" title="Copy to the clipboard" aria-label="Copy">'
    '<svg aria-hidden="true" width="16" height="16" viewBox="0 0 24 24" fill="currentColor">'
    '<path d="M16 1H4a2 2 0 0 0-2 2v14h2V3h12V1zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 '
    '2-2V7a2 2 0 0 0-2-2zm0 16H8V7h11v14z"/></svg><span class="label">Copy</span></button>'
)
_CSS = """
button.copy {
  font: inherit; font-size: 0.875rem; line-height: 1.6; color: inherit; background: transparent;
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2)); border-radius: 0.5rem;
  padding: 0.25rem 0.75rem; cursor: pointer; display: inline-flex; gap: 0.4rem; align-items: center;
}
button.copy:hover { border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b); }
"""
_JS = """
export default function (component) {
  const { data, parentElement } = component;
  const button = parentElement.querySelector("button.copy");
  const label = button.querySelector(".label");
  const text = data && typeof data.text === "string" ? data.text : "";
  const copy = async (quiet) => {
    try {
      await navigator.clipboard.writeText(text);
      label.textContent = "Copied";
      button.dataset.copied = "yes";
    } catch (error) {
      if (quiet) return;  // copying at once needs the browser's leave: the button is there to press
      label.textContent = "Copy refused by the browser";
    }
    setTimeout(() => { label.textContent = "Copy"; }, 1500);
  };
  button.onclick = () => copy(false);
  if (data && data.now && !button.dataset.tried) {
    button.dataset.tried = "yes";
    copy(true);
  }
}
"""


@cache
def _component() -> Any:
    return st.components.v2.component("bnagpt.copy", html=_HTML, css=_CSS, js=_JS)


def copy_button(text: str, key: str, now: bool = False) -> None:
    """A Copy button for `text` (the page is not rerun when it is pressed); `now`: also copy
    as it appears, where the browser allows it (it was asked for with a click just before)."""
    _component()(data={"text": text, "now": now}, key=key, width="content")
