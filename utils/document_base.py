"""What every document reader shares: the `Section`s they return, the `Limits` they keep to,
the `DocumentError` they raise, and the small text helpers behind their sentences.

A module of its own so that utils/documents.py can import the readers, and the readers these,
without an import cycle; utils/documents.py re-exports the three types.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


class DocumentError(ValueError):
    """A file cannot be read; `str(error)` is a sentence for the user that says why."""


@dataclass(frozen=True)
class Limits:
    """How much one upload may hold; each becomes a setting."""

    max_bytes: int = 25 * 1024 * 1024
    max_pages: int = 500
    max_csv_rows: int = 5_000
    max_unpacked_bytes: int = 200 * 1024 * 1024  # a DOCX's parts, inflated
    max_ratio: int = 100  # a DOCX part that would grow more than this is a zip bomb
    pdf_memory_bytes: int = 1024 * 1024 * 1024  # the PDF reader's process; a 300-page book takes ~25 MB
    pdf_seconds: float = 60  # the same book reads in 0.3 s


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a file: a PDF page, or what follows a heading."""

    text: str
    page: int | None = None
    heading: str | None = None


_TERMINAL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # colours in a saved log: "\x1b[31mERROR" is "ERROR"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """Line ends as \\n, no control characters, runs of spaces as one, at most one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", _TERMINAL_CODES.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def human_size(count: int) -> str:
    """A size for a sentence: "2.5 MB", "512 bytes"."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} bytes"


def short_list(items: list[str]) -> str:
    """The first twenty items, and how many more."""
    return ", ".join(items[:20]) + (f" and {len(items) - 20:,} more" if len(items) > 20 else "")
