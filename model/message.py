"""Message and Conversation: pure values with a JSON wire format.

Identity on disk (file, lock, ids in the store) is a storage concern that lives in
`model.store`; these types only know how to turn themselves into dicts and back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

if TYPE_CHECKING:  # LlamaIndex loads only when a message is sent to a model
    from llama_index.core.llms import ChatMessage

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")
# How an answer ended: in full, by the user's Stop, cut by the token cap, or stopped by the
# repetition guard. Interrupted answers (a broken stream) are never saved.
Status = Literal["complete", "stopped", "length", "repeating"]
STATUSES: tuple[Status, ...] = ("complete", "stopped", "length", "repeating")
# What an answer was asked to be: text, or one JSON object (JSON mode).
Format = Literal["text", "json"]
FORMATS: tuple[Format, ...] = ("text", "json")


def valid_text(text: str) -> str:
    """`text` with lone surrogates (which UTF-8 cannot hold) replaced by U+FFFD, and a
    surrogate pair joined into the character it stands for.

    The one cleaner for text from outside: files, imports and models' answers. Message and
    Conversation apply it to each text field they are built with, so no stored value holds one.
    """
    if text.isascii():  # O(1), and most text: skip the trial encode below
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _make_valid(value: object, names: tuple[str, ...]) -> None:
    """Apply valid_text to the text fields `names` of a frozen dataclass, in place (only from __post_init__)."""
    for name in names:
        text = getattr(value, name)
        if isinstance(text, str) and (cleaned := valid_text(text)) is not text:
            object.__setattr__(value, name, cleaned)


def utc_now() -> str:
    """The current time as ISO-8601 UTC, the only time format we store."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MessageDict(TypedDict, total=False):
    role: Role
    content: str
    created_at: str
    status: Status  # written only when not "complete"
    model: str  # the model that wrote an answer; written only when known
    format: Format  # written only when "json"


class ConversationDict(TypedDict):
    id: str
    name: str
    created_at: str
    updated_at: str
    model: str
    messages: list[MessageDict]
    assistant_id: NotRequired[str]  # written only when an assistant answered


def _check_role(role: object) -> Role:
    if role not in ROLES:
        raise ValueError(f"unknown message role {role!r}: expected one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    created_at: str = field(default_factory=utc_now)
    status: Status = "complete"
    model: str = ""  # the model that wrote this answer ("" for questions and older files)
    format: Format = "text"

    def __post_init__(self) -> None:
        _check_role(self.role)
        if not isinstance(self.content, str):
            raise ValueError(f"message content must be text, not {type(self.content).__name__}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown message status {self.status!r}: expected one of {', '.join(STATUSES)}")
        if not isinstance(self.model, str):
            raise ValueError(f"message model must be text, not {type(self.model).__name__}")
        if self.format not in FORMATS:
            raise ValueError(f"unknown message format {self.format!r}: expected one of {', '.join(FORMATS)}")
        _make_valid(self, ("content", "created_at", "model"))

    def to_dict(self) -> MessageDict:
        data: MessageDict = {"role": self.role, "content": self.content, "created_at": self.created_at}
        if self.status != "complete":
            data["status"] = self.status
        if self.model:
            data["model"] = self.model
        if self.format != "text":
            data["format"] = self.format
        return data

    @classmethod
    def from_dict(cls, data: object) -> Message:
        """Build a Message from its dict form; a missing `created_at` (legacy files) is filled in."""
        if not isinstance(data, dict):
            raise ValueError(f"a message must be an object, not {type(data).__name__}")
        if "role" not in data or "content" not in data:
            raise ValueError("a message needs both 'role' and 'content'")
        created_at = data.get("created_at")
        status = data.get("status", "complete")
        model, answer_format = data.get("model", ""), data.get("format", "text")
        return cls(
            role=_check_role(data["role"]),
            content=data["content"],
            created_at=created_at if isinstance(created_at, str) else utc_now(),
            # an unknown status from a newer version is read as a finished answer, not refused
            status=status if status in STATUSES else "complete",
            model=model if isinstance(model, str) else "",
            format=answer_format if answer_format in FORMATS else "text",
        )

    def to_llamaindex(self) -> ChatMessage:
        """The one place a Message becomes a LlamaIndex ChatMessage."""
        from llama_index.core.llms import ChatMessage, MessageRole

        return ChatMessage(role=MessageRole(self.role), content=self.content)

    @classmethod
    def from_llamaindex(cls, message: ChatMessage) -> Message:
        role = getattr(message.role, "value", message.role)
        return cls(role=_check_role(role), content=message.content or "")


@dataclass(frozen=True)
class Conversation:
    name: str
    messages: tuple[Message, ...] = ()
    model: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    assistant_id: str = ""  # the assistant this conversation talks to ("" = the default one)

    def __post_init__(self) -> None:
        _make_valid(self, ("name", "model", "id", "created_at", "updated_at", "assistant_id"))

    def to_dict(self) -> ConversationDict:
        data: ConversationDict = {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "model": self.model,
            "messages": [m.to_dict() for m in self.messages],
        }
        if self.assistant_id:
            data["assistant_id"] = self.assistant_id
        return data

    @classmethod
    def from_dict(cls, data: object) -> Conversation:
        if not isinstance(data, dict):
            raise ValueError(f"a conversation must be an object, not {type(data).__name__}")
        for key in ("id", "name", "messages"):
            if key not in data:
                raise ValueError(f"a conversation needs {key!r}")
        if not isinstance(data["messages"], list):
            raise ValueError("a conversation's 'messages' must be a list")
        now = utc_now()
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            messages=tuple(Message.from_dict(m) for m in data["messages"]),
            model=str(data.get("model") or ""),
            created_at=str(data.get("created_at") or now),
            updated_at=str(data.get("updated_at") or now),
            assistant_id=assistant if isinstance(assistant := data.get("assistant_id"), str) else "",
        )

    def with_messages(
        self, messages: list[Message] | tuple[Message, ...], model: str | None = None, assistant_id: str | None = None
    ) -> Conversation:
        return replace(
            self,
            messages=tuple(messages),
            model=self.model if model is None else model,
            assistant_id=self.assistant_id if assistant_id is None else assistant_id,
            updated_at=utc_now(),
        )


def suggest_name(messages: list[Message] | tuple[Message, ...], limit: int = 40) -> str:
    """A conversation name taken from the first user message, cut at a word boundary."""
    first = next((m.content for m in messages if m.role == "user" and m.content.strip()), "")
    text = " ".join(first.split())
    if not text:
        return "New conversation"
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + "…"
