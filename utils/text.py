"""Keeping model output inert on the page: shown as text, never fetched or run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def inert_markdown(text: str) -> str:
    """Markdown in which image syntax `![alt](url)` becomes a plain link, so nothing is fetched."""
    return text.replace("![", "\\![")


def inert_stream(deltas: Iterable[str]) -> Iterator[str]:
    """`inert_markdown` over a stream whose `![` may be split across two deltas."""
    held = ""
    for delta in deltas:
        text = inert_markdown(held + delta)
        held = ""
        if text.endswith("!") and not text.endswith("\\!"):
            text, held = text[:-1], "!"
        if text:
            yield text
    if held:
        yield held


_MARKDOWN_SPECIALS = "\\`*_{}[]<>()#+-.!|~$:"


def as_text(text: str) -> str:
    """`text` escaped so Streamlit's markdown labels show it literally (names, not markup)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in " ".join(text.split()))
