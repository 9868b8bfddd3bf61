"""Message and Conversation: pure values with a JSON wire format.

A conversation is a tree of messages (format v2): each message has an `id` and a `parent_id`
("" for a root); editing a question or regenerating an answer adds a sibling and keeps the
old one. `Conversation.messages` holds every message, parents before children; `current` is
the leaf whose path (`path()`) is shown and sent to the model.

Identity on disk (file, lock, ids in the store) is a storage concern that lives in
`model.store`; these types only know how to turn themselves into dicts and back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from model.parts import Attachment, Source, ToolRun, read_all

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


def new_message_id() -> str:
    """A message id: 12 hex digits, unique within a conversation (imports keep their source's ids)."""
    return uuid.uuid4().hex[:12]


_V1_IDS = uuid.UUID("0b7e3c1a-5d2f-4e8b-9c6a-3f1e2d4c5b6a")  # ids of messages from files without them


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
    id: str
    parent_id: str | None  # null for a root; absent (files before v2): the message before it
    attachments: list[dict[str, Any]]  # each written only when there are any
    sources: list[dict[str, Any]]
    tool_runs: list[dict[str, Any]]


class ConversationDict(TypedDict):
    id: str
    name: str
    created_at: str
    updated_at: str
    model: str
    messages: list[MessageDict]
    current: NotRequired[str]  # the shown leaf
    assistant_id: NotRequired[str]  # written only when an assistant answered
    pinned: NotRequired[bool]
    archived: NotRequired[bool]
    source: NotRequired[str]  # where an import came from, e.g. "chatgpt:<id>"


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
    # Where it sits in its conversation's tree; not part of a message's value (==). parent_id
    # None: not placed yet (a Conversation puts it after the message before it); "": a root.
    id: str = field(default_factory=new_message_id, compare=False)
    parent_id: str | None = field(default=None, compare=False)
    attachments: tuple[Attachment, ...] = ()  # files sent with a question
    sources: tuple[Source, ...] = ()  # what an answer's [1], [2]… point at
    tool_runs: tuple[ToolRun, ...] = ()  # searches and code runs made for an answer

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
        data["id"] = self.id
        if self.parent_id is not None:
            data["parent_id"] = self.parent_id or None
        if self.attachments:
            data["attachments"] = [a.to_dict() for a in self.attachments]
        if self.sources:
            data["sources"] = [s.to_dict() for s in self.sources]
        if self.tool_runs:
            data["tool_runs"] = [t.to_dict() for t in self.tool_runs]
        return data

    @classmethod
    def from_dict(cls, data: object) -> Message:
        """Build a Message from its dict form; a missing `created_at` (legacy files) is filled in."""
        if not isinstance(data, dict):
            raise ValueError(f"a message must be an object, not {type(data).__name__}")
        if "role" not in data or "content" not in data:
            raise ValueError("a message needs both 'role' and 'content'")
        role, content = data["role"], data["content"]
        if role not in ROLES:
            _check_role(role)  # raises, naming it
        if not isinstance(content, str):
            raise ValueError(f"message content must be text, not {type(content).__name__}")
        get = data.get
        created_at, status, model = get("created_at"), get("status", "complete"), get("model", "")
        answer_format, message_id, parent = get("format", "text"), get("id"), get("parent_id", ...)
        # Built here without __init__: a conversations file holds ~100,000 messages, and this is
        # every check __post_init__ makes (each text field made valid), done once.
        message = object.__new__(cls)
        message.__dict__.update(
            role=role,
            content=content if content.isascii() else valid_text(content),
            created_at=(created_at if created_at.isascii() else valid_text(created_at))
            if isinstance(created_at, str)
            else utc_now(),
            # an unknown status from a newer version is read as a finished answer, not refused
            status=status if status in STATUSES else "complete",
            model=(model if model.isascii() else valid_text(model)) if isinstance(model, str) else "",
            format=answer_format if answer_format in FORMATS else "text",
            id=message_id if isinstance(message_id, str) and message_id else new_message_id(),
            # null: a root; absent (or not text): after the message before it
            parent_id="" if parent is None else parent if isinstance(parent, str) else None,
            attachments=read_all(data["attachments"], Attachment) if "attachments" in data else (),
            sources=read_all(data["sources"], Source) if "sources" in data else (),
            tool_runs=read_all(data["tool_runs"], ToolRun) if "tool_runs" in data else (),
        )
        return message

    def to_llamaindex(self, pictures: Sequence[tuple[bytes, str]] = ()) -> ChatMessage:
        """The one place a Message becomes a LlamaIndex ChatMessage; `pictures` (bytes, MIME) go
        with its text, for a model that sees."""
        from llama_index.core.llms import ChatMessage, ImageBlock, MessageRole, TextBlock

        if not pictures:
            return ChatMessage(role=MessageRole(self.role), content=self.content)
        blocks = [
            TextBlock(text=self.content),
            *(ImageBlock(image=data, image_mimetype=mime) for data, mime in pictures),
        ]
        return ChatMessage(role=MessageRole(self.role), blocks=blocks)

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
    current: str = ""  # the id of the shown leaf; "" (or an unknown id): the last message
    pinned: bool = False
    archived: bool = False
    source: str = ""  # where an import came from ("chatgpt:<id>", "openwebui:<id>"); "" if made here

    def __post_init__(self) -> None:
        _make_valid(self, ("name", "model", "id", "created_at", "updated_at", "assistant_id", "current", "source"))
        placed = _placed(self.messages)
        if placed is not self.messages:
            object.__setattr__(self, "messages", placed)
        last = self.messages[-1].id if self.messages else ""
        # most conversations show their last message: no index of ids is built for them here
        if self.current != last and (not self.current or self.current not in self._index):
            object.__setattr__(self, "current", last)

    @property
    def _index(self) -> dict[str, Message]:
        index = self.__dict__.get("_by_id")
        if index is None:
            index = {m.id: m for m in self.messages}
            object.__setattr__(self, "_by_id", index)
        return index

    def message(self, message_id: str) -> Message | None:
        return self._index.get(message_id)

    def path(self, leaf: str | None = None) -> tuple[Message, ...]:
        """The messages from the root to `leaf` (default: the shown one): what the chat shows."""
        index = self._index
        found = index.get(self.current if leaf is None else leaf)
        chain: list[Message] = []
        while found is not None:  # parents come before children, so this ends
            chain.append(found)
            found = index.get(found.parent_id or "")
        return tuple(reversed(chain))

    def children(self, parent_id: str) -> tuple[Message, ...]:
        """The replies to a message ("" for the roots), oldest first: the branches at that point."""
        return tuple(m for m in self.messages if m.parent_id == parent_id)

    def leaf_under(self, message_id: str) -> str:
        """The newest leaf below a message (itself if it has no replies): where its branch ends."""
        below: dict[str, str] = {}
        for m in self.messages:  # the newest reply wins
            below[m.parent_id or ""] = m.id
        leaf = message_id
        while leaf in below:
            leaf = below[leaf]
        return leaf

    def to_dict(self) -> ConversationDict:
        data: ConversationDict = {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "model": self.model,
            "messages": [m.to_dict() for m in self.messages],
        }
        if self.current and (not self.messages or self.current != self.messages[-1].id):
            data["current"] = self.current
        if self.assistant_id:
            data["assistant_id"] = self.assistant_id
        if self.pinned:
            data["pinned"] = True
        if self.archived:
            data["archived"] = True
        if self.source:
            data["source"] = self.source
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
        conversation_id = valid_text(str(data["id"]))
        messages = []
        for number, item in enumerate(data["messages"]):
            message = Message.from_dict(item)
            if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]):
                # a file from before v2: ids that stay the same every time it is read
                message = replace(message, id=uuid.uuid5(_V1_IDS, f"{conversation_id}/{number}").hex[:12])
            messages.append(message)
        text = lambda key: value if isinstance(value := data.get(key), str) else ""  # noqa: E731
        return cls(
            id=conversation_id,
            name=str(data["name"]),
            messages=tuple(messages),
            model=str(data.get("model") or ""),
            created_at=str(data.get("created_at") or now),
            updated_at=str(data.get("updated_at") or now),
            assistant_id=text("assistant_id"),
            current=text("current"),
            pinned=data.get("pinned") is True,
            archived=data.get("archived") is True,
            source=text("source"),
        )

    def with_messages(
        self,
        messages: Sequence[Message],
        model: str | None = None,
        assistant_id: str | None = None,
        current: str | None = None,
    ) -> Conversation:
        """This conversation holding `messages` (a tree, or a path) instead, `current` shown
        (default: the last of `messages`)."""
        return replace(
            self,
            messages=tuple(messages),
            model=self.model if model is None else model,
            assistant_id=self.assistant_id if assistant_id is None else assistant_id,
            current=current if current is not None else "",
            updated_at=utc_now(),
        )

    def with_branches(
        self,
        messages: Sequence[Message],
        model: str | None = None,
        assistant_id: str | None = None,
        current: str | None = None,
    ) -> Conversation:
        """This conversation with `messages` (a tree, or a path) merged into its tree, `current`
        shown (default: the last of `messages`). No message is dropped: one with the id of a
        message already there replaces it in place (an answer that grew with Continue)."""
        merged = replace(self, messages=merge(self.messages, messages))
        shown = current if current is not None else (messages[-1].id if messages else self.current)
        return merged.with_messages(merged.messages, model, assistant_id, shown)


def _placed(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """`messages` with every message placed in a tree: unique ids, and a parent that comes before
    it ("" for a root). An unplaced message (parent None) or one whose parent is unknown or comes
    later (a hand edit, a cycle) follows the message before it. Returns `messages` itself when
    nothing needed placing (the common case: a file written by this app)."""
    seen: set[str] = set()
    fixed: list[Message] | None = None
    previous = ""
    for number, message in enumerate(messages):
        parent, message_id = message.parent_id, message.id
        if parent is None or (parent and parent not in seen):
            parent = previous
        if message_id in seen or not message_id:
            message_id = new_message_id()
        if parent != message.parent_id or message_id != message.id:
            if fixed is None:
                fixed = list(messages[:number])
            message = replace(message, id=message_id, parent_id=parent)
        if fixed is not None:
            fixed.append(message)
        seen.add(message_id)
        previous = message_id
    return messages if fixed is None else tuple(fixed)


def as_path(messages: Sequence[Message]) -> list[Message]:
    """`messages` as one line of a tree: each the reply to the one before (the first a root)."""
    placed, parent = [], ""
    for message in messages:
        if message.parent_id != parent:
            message = replace(message, parent_id=parent)
        placed.append(message)
        parent = message.id
    return placed


def branch_end(tree: Sequence[Message], message_id: str) -> list[Message]:
    """The messages from `message_id` down to the newest leaf below it (newest reply each time)."""
    index = {m.id: m for m in tree}
    newest: dict[str, str] = {}
    for m in tree:
        newest[m.parent_id or ""] = m.id
    chain, at = [], message_id
    while at in index:
        chain.append(index[at])
        at = newest.get(at, "")
    return chain


def merge(tree: Sequence[Message], more: Sequence[Message]) -> tuple[Message, ...]:
    """`tree` with `more` added: a message with a known id replaces the old one in its place,
    new ones go after (an unplaced one after the message before it in `more`)."""
    if not tree:
        return tuple(more)
    index = {m.id: number for number, m in enumerate(tree)}
    merged = list(tree)
    previous = ""
    for message in more:
        if message.parent_id is None:
            message = replace(message, parent_id=previous)
        if (at := index.get(message.id)) is not None:
            merged[at] = message
        else:
            index[message.id] = len(merged)
            merged.append(message)
        previous = message.id
    return tuple(merged)


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
