"""Assistant: a pure value (a custom "GPT": instructions, model, starters…) with a JSON wire format.

`from_dict` reads what a file or an export holds: fields it does not know (from a newer bnaGPT)
are ignored, so are tools it does not have; missing optional fields get their defaults; a field
of the wrong type is a ValueError naming it. Limits on lengths and ranges are the controller's
(controller.assistant_fields): a value read from a file is taken as it is. A malformed knowledge file
entry is left out, as a message's attachments are (model.parts).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from model.document import _kind
from model.files import _SHA256
from model.message import utc_now, valid_text
from model.parts import Attachment

ResponseFormat = Literal["text", "json"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("text", "json")
Tool = Literal["documents", "web_search", "run_code"]
TOOLS: tuple[Tool, ...] = ("documents", "web_search", "run_code")


class AssistantDict(TypedDict):
    id: str
    name: str
    description: str
    instructions: str
    model: str
    temperature: float | None
    starters: list[str]
    response_format: ResponseFormat
    tools: list[str]
    knowledge: list[dict[str, Any]]  # Attachment.to_dict() of each file
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Assistant:
    name: str
    description: str = ""
    instructions: str = ""  # its system prompt; "" = the default assistant's instructions
    model: str = ""  # a ModelOption id such as "groq:llama-3.1-8b-instant"; "" = the chat's current model
    temperature: float | None = None  # None = the model's default
    starters: tuple[str, ...] = ()  # conversation starters, shown on an empty chat
    response_format: ResponseFormat = "text"
    tools: tuple[str, ...] = ()  # a subset of TOOLS
    knowledge: tuple[Attachment, ...] = ()  # its own files, searched in every chat with it
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        # text from outside (a file, an import, a form) holds no lone surrogates once stored
        for name in ("name", "description", "instructions", "model", "id", "created_at", "updated_at"):
            object.__setattr__(self, name, valid_text(getattr(self, name)))
        object.__setattr__(self, "starters", tuple(valid_text(text) for text in self.starters))
        object.__setattr__(self, "tools", tuple(self.tools))
        object.__setattr__(self, "knowledge", tuple(self.knowledge))

    def to_dict(self) -> AssistantDict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "instructions": self.instructions,
            "model": self.model,
            "temperature": self.temperature,
            "starters": list(self.starters),
            "response_format": self.response_format,
            "tools": list(self.tools),
            "knowledge": [file.to_dict() for file in self.knowledge],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: object) -> Assistant:
        """An Assistant from its dict form; ValueError names a field of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"an assistant must be an object, not {_kind(data)}")
        if "name" not in data:
            raise ValueError("an assistant needs a 'name'")
        response_format, tools, now = data.get("response_format", "text"), _texts(data, "tools"), utc_now()
        if not isinstance(response_format, str):
            raise ValueError(f"'response_format' must be text, not {_kind(response_format)}")
        return cls(
            name=_text(data, "name", ""),
            description=_text(data, "description", ""),
            instructions=_text(data, "instructions", ""),
            model=_text(data, "model", ""),
            temperature=_temperature(data.get("temperature")),
            starters=tuple(_texts(data, "starters")),
            # a format or a tool from a newer version is read as plain text / left out, not refused
            response_format="json" if response_format == "json" else "text",
            tools=tuple(tool for tool in TOOLS if tool in tools),
            knowledge=read_knowledge(data.get("knowledge")),
            id=_text(data, "id", "") or uuid.uuid4().hex,
            created_at=_text(data, "created_at", now),
            updated_at=_text(data, "updated_at", now),
        )


def read_knowledge(items: object) -> tuple[Attachment, ...]:
    """The well-formed knowledge files of a list read from a file or an export, each once; an entry
    that is not a file, or whose SHA-256 is not one (it would name a path), is left out."""
    if not isinstance(items, list):
        return ()
    found: dict[str, Attachment] = {}
    for item in items:
        file = Attachment.from_dict(item)
        if file is not None and _SHA256.match(file.sha256) and file.sha256 not in found:
            name = valid_text(file.name) or f"{file.sha256[:12]}…"  # a name to list it by
            found[file.sha256] = Attachment(file.sha256, name, valid_text(file.kind), max(file.size, 0))
    return tuple(found.values())


def _text(data: dict[str, object], key: str, default: str) -> str:
    value = data.get(key, default)
    if value is None and key != "name":
        return default
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be text, not {_kind(value)}")
    return value


def _texts(data: dict[str, object], key: str) -> list[str]:
    values = data.get(key) or []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{key!r} must be a list of texts")
    return values


def _temperature(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"'temperature' must be a number or null, not {_kind(value)}")
    return float(value)
