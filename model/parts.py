"""What a message carries beside its text: files attached to it, the sources an answer cites, and
the tools that ran for it. Pure values with a JSON form; a malformed entry in a file is left out
when read, never a reason to refuse the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SourceKind = Literal["document", "web"]


def _text(data: dict[str, Any], key: str, limit: int = 100_000) -> str:
    value = data.get(key, "")
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message, stored once by its SHA-256 beside the conversations."""

    sha256: str
    name: str
    kind: str  # "pdf", "docx", "markdown", "text", "html", "csv", "png"…
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "kind": self.kind, "size": self.size}

    @classmethod
    def from_dict(cls, data: object) -> Attachment | None:
        if not isinstance(data, dict) or not _text(data, "sha256"):
            return None
        size = data.get("size")
        return cls(_text(data, "sha256"), _text(data, "name"), _text(data, "kind"), size if type(size) is int else 0)


@dataclass(frozen=True)
class Source:
    """What an answer's [n] points at: a passage of an attached file, or a web page."""

    number: int
    kind: SourceKind
    title: str  # the file's name, or the page's title
    location: str  # "page 3", "Introduction", or the page's address
    excerpt: str  # the passage the model was given
    url: str = ""  # http(s) address of a web page
    sha256: str = ""  # the attached file's

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "number": self.number,
            "kind": self.kind,
            "title": self.title,
            "location": self.location,
            "excerpt": self.excerpt,
        }
        if self.url:
            data["url"] = self.url
        if self.sha256:
            data["sha256"] = self.sha256
        return data

    @classmethod
    def from_dict(cls, data: object) -> Source | None:
        if not isinstance(data, dict) or type(data.get("number")) is not int:
            return None
        kind = data.get("kind")
        url = _text(data, "url")
        return cls(
            data["number"],
            kind if kind in ("document", "web") else "document",
            _text(data, "title"),
            _text(data, "location"),
            _text(data, "excerpt"),
            url if url.startswith(("http://", "https://")) else "",  # only links that are safe to show
            _text(data, "sha256"),
        )


@dataclass(frozen=True)
class ToolRun:
    """A tool that ran for an answer: what it was asked and what it gave back."""

    tool: str  # "documents", "web_search", "run_code"
    input: str  # the query searched, or the code run
    output: str  # what came back (results, stdout/stderr), as the model saw it
    ok: bool = True
    images: tuple[str, ...] = ()  # SHA-256 of stored PNG files the code wrote

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tool": self.tool, "input": self.input, "output": self.output}
        if not self.ok:
            data["ok"] = False
        if self.images:
            data["images"] = list(self.images)
        return data

    @classmethod
    def from_dict(cls, data: object) -> ToolRun | None:
        if not isinstance(data, dict) or not _text(data, "tool"):
            return None
        images = data.get("images")
        kept = tuple(i for i in images if isinstance(i, str)) if isinstance(images, list) else ()
        return cls(_text(data, "tool"), _text(data, "input"), _text(data, "output"), data.get("ok") is not False, kept)


def read_all(items: object, kind: type[Attachment] | type[Source] | type[ToolRun]) -> tuple[Any, ...]:
    """The well-formed entries of a list read from a file (others are left out)."""
    if not isinstance(items, list):
        return ()
    return tuple(found for item in items if (found := kind.from_dict(item)) is not None)
