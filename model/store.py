"""The conversation store: one JSON file, read from memory, written atomically under a lock.

The file is a v2 document (see model.document): conversations whose messages form a tree. A
file still in version 1 or the tutorial's legacy format is read as is and upgraded to v2 on the
first write, after a byte-identical copy of it is kept beside it as `<file>.legacy-<UTC time>.bak`. The file machinery (lock, cache, atomic
replace, a corrupt file moved aside, errors in sentences) is model.jsonstore's, shared with
the assistant store.
"""

from __future__ import annotations

import builtins  # `list` is also a method name of ConversationStore
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

# `x as x` marks a re-export: callers may keep importing the parsing names and the errors from model.store.
from model.document import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from model.document import _fragment, read_json
from model.document import document_kind as document_kind
from model.document import name_key as name_key
from model.document import parse_document as parse_document
from model.document import unique_name as unique_name
from model.jsonstore import JOURNAL_FROM_BYTES, JsonFileStore, stamp
from model.jsonstore import LOCK_TIMEOUT as LOCK_TIMEOUT
from model.jsonstore import STALE_TEMP_SECONDS as STALE_TEMP_SECONDS
from model.jsonstore import NameTaken as NameTaken
from model.jsonstore import StoreBusy as StoreBusy
from model.jsonstore import StoreCorrupted as StoreCorrupted
from model.jsonstore import StoreError as StoreError
from model.jsonstore import StoreUnavailable as StoreUnavailable
from model.message import Conversation, Message, utc_now, valid_text

T = TypeVar("T")


class InvalidName(StoreError, ValueError):
    """A conversation name that is blank or too long."""


class ConversationNotFound(StoreError, KeyError):
    """No conversation has this id."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        super().__init__(conversation_id)

    def __str__(self) -> str:
        return f"the conversation {self.conversation_id!r} no longer exists (another tab may have deleted it)"


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    name: str
    created_at: str
    updated_at: str
    message_count: int
    model: str
    pinned: bool = False
    archived: bool = False


def clean_name(name: str) -> str:
    """The name as stored: trimmed. Any characters are allowed; blank or too long is InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"A conversation name must be text, not {type(name).__name__}.")
    cleaned = valid_text(name).strip()  # as Conversation would store it, so clashes compare like with like
    if not cleaned:
        raise InvalidName("A conversation name cannot be empty or blank.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"A conversation name can have at most {MAX_NAME_LENGTH} characters, not {len(cleaned)}.")
    return cleaned


def _summary(conv: Conversation) -> ConversationSummary:
    return ConversationSummary(
        conv.id, conv.name, conv.created_at, conv.updated_at, len(conv.messages), conv.model, conv.pinned, conv.archived
    )


# --- the store ---


@dataclass
class _Snapshot:
    """The conversations the file held when we last looked, and what we derived from them."""

    conversations: dict[str, Conversation] = field(default_factory=dict)
    fragments: dict[str, bytes] = field(default_factory=dict)  # filled lazily, on the first write
    names: dict[str, str] = field(default_factory=dict)  # name_key -> id
    summaries: dict[str, ConversationSummary] = field(default_factory=dict)
    _ordered: list[ConversationSummary] | None = None
    change: _Change | None = None  # what made this snapshot from the one before (for the journal)

    @classmethod
    def of(cls, conversations: dict[str, Conversation]) -> _Snapshot:
        names = {name_key(c.name): c.id for c in conversations.values()}
        summaries = {c.id: _summary(c) for c in conversations.values()}
        return cls(conversations, {}, names, summaries)

    def ordered(self) -> list[ConversationSummary]:
        if self._ordered is None:
            self._ordered = sorted(self.summaries.values(), key=lambda s: (s.updated_at, s.created_at), reverse=True)
        return self._ordered

    def changed(self, *changes: _Change) -> _Snapshot:
        """A copy with `changes` made in order; the copy's fragments are the ones still valid."""
        new = _Snapshot(dict(self.conversations), dict(self.fragments), dict(self.names), dict(self.summaries))
        for change in changes:
            new._make(change)
        new.change = changes[0] if len(changes) == 1 else None
        return new

    def _make(self, change: _Change) -> None:
        for gone in (*change.removes, *(c.id for c in change.puts)):
            if (conv := self.conversations.pop(gone, None)) is not None:
                self.names.pop(name_key(conv.name), None)
                self.summaries.pop(gone)
                self.fragments.pop(gone, None)
        for conv in change.puts:
            self.conversations[conv.id] = conv
            self.names[name_key(conv.name)] = conv.id
            self.summaries[conv.id] = _summary(conv)


@dataclass(frozen=True)
class _Change:
    puts: tuple[Conversation, ...] = ()
    removes: tuple[str, ...] = ()


class ConversationStore(JsonFileStore[_Snapshot]):
    """Conversations in one JSON file, safe to share between threads, tabs and processes."""

    journal_from = JOURNAL_FROM_BYTES  # a turn in a big file appends one line, not the whole file

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, setting="CONVERSATIONS_FILE")

    def list(self) -> list[ConversationSummary]:
        """Every conversation, most recently updated first."""
        with self._mutex:
            return list(self._current().ordered())

    def load(self, conversation_id: str) -> Conversation | None:
        """The conversation with this id, or None."""
        with self._mutex:
            return self._current().conversations.get(conversation_id)

    def find(self, name: str) -> ConversationSummary | None:
        """The conversation with this name (trimmed, any case), or None."""
        with self._mutex:
            snapshot = self._current()
            found = snapshot.names.get(name_key(name))
            return snapshot.summaries[found] if found else None

    def save(self, conversation: Conversation, *, overwrite: bool = False) -> Conversation:
        """Insert or replace by id; NameTaken if another has the name, unless `overwrite` removes that one."""
        stored = replace(conversation, name=clean_name(conversation.name))

        def plan(snapshot: _Snapshot) -> tuple[_Change, Conversation]:
            other = snapshot.names.get(name_key(stored.name))
            if other is not None and other != stored.id:
                if not overwrite:
                    raise NameTaken(stored.name, other)
                return _Change((stored,), (other,)), stored
            return _Change((stored,)), stored

        return self._change(plan)

    def update_messages(
        self,
        conversation_id: str,
        messages: Sequence[Message],
        model: str,
        name: str,
        *,
        assistant_id: str | None = None,
        current: str | None = None,
    ) -> Conversation:
        """Add `messages` (the chat's tree, or its shown path) to a conversation's tree and show
        `current` (default: the last of `messages`); set its assistant unless None. Nothing stored
        is dropped, so branches another tab added meanwhile stay. Its (possibly just renamed) name
        is kept; it is re-created under a free version of `name` if it was deleted meanwhile, so
        the chat is never lost."""

        def plan(snapshot: _Snapshot) -> tuple[_Change, Conversation]:
            conv = snapshot.conversations.get(conversation_id)
            if conv is None:
                conv = Conversation(name=unique_name(name, set(snapshot.names)), id=conversation_id)
            updated = conv.with_branches(tuple(messages), model=model, assistant_id=assistant_id, current=current)
            return _Change((updated,)), updated

        return self._change(plan)

    def rename(self, conversation_id: str, new_name: str) -> Conversation:
        """Give a conversation a new name; NameTaken if another has it, ConversationNotFound if the id is gone."""
        name = clean_name(new_name)

        def plan(snapshot: _Snapshot) -> tuple[_Change, Conversation]:
            conv = snapshot.conversations.get(conversation_id)
            if conv is None:
                raise ConversationNotFound(conversation_id)
            other = snapshot.names.get(name_key(name))
            if other is not None and other != conversation_id:
                raise NameTaken(name, other)
            if conv.name == name:
                return _Change(), conv
            renamed = replace(conv, name=name, updated_at=utc_now())
            return _Change((renamed,)), renamed

        return self._change(plan)

    def set_flags(
        self, conversation_id: str, *, pinned: bool | None = None, archived: bool | None = None
    ) -> Conversation:
        """Pin or unpin, archive or unarchive a conversation (None: leave as is); ConversationNotFound if gone."""

        def plan(snapshot: _Snapshot) -> tuple[_Change, Conversation]:
            conv = snapshot.conversations.get(conversation_id)
            if conv is None:
                raise ConversationNotFound(conversation_id)
            flagged = replace(
                conv,
                pinned=conv.pinned if pinned is None else pinned,
                archived=conv.archived if archived is None else archived,
            )
            return (_Change() if flagged == conv else _Change((flagged,))), flagged

        return self._change(plan)

    def contents(self) -> tuple[object, Mapping[str, Conversation]]:
        """(a token that changes whenever the file's content does, every conversation by id): for
        indexes built from the conversations, to know when to rebuild."""
        with self._mutex:
            snapshot = self._current()
            # a counter, not id(snapshot): a freed snapshot's id can be given to a new one
            return self.generation, MappingProxyType(snapshot.conversations)

    def delete(self, conversation_id: str) -> bool:
        """Remove a conversation; False if it was not there."""

        def plan(snapshot: _Snapshot) -> tuple[_Change, bool]:
            found = conversation_id in snapshot.conversations
            return _Change(removes=(conversation_id,) if found else ()), found

        return self._change(plan)

    def import_conversations(self, conversations: builtins.list[Conversation]) -> builtins.list[Conversation]:
        """Add copies with new ids in one write; a clashing name gets " (2)", " (3)"… A conversation
        whose `source` (an id in another app) is already stored, or comes twice, is left out:
        importing the same export again adds nothing."""

        def plan(snapshot: _Snapshot) -> tuple[_Change, builtins.list[Conversation]]:
            taken = set(snapshot.names)
            sources = {c.source for c in snapshot.conversations.values() if c.source}
            stored = []
            for conv in conversations:
                if conv.source:
                    if conv.source in sources:
                        continue
                    sources.add(conv.source)
                name = unique_name(conv.name, taken)
                taken.add(name_key(name))
                stored.append(replace(conv, id=uuid.uuid4().hex, name=name))
            return _Change(tuple(stored)), stored

        return self._change(plan)

    def _change(self, plan: Callable[[_Snapshot], tuple[_Change, T]]) -> T:
        def apply(snapshot: _Snapshot) -> tuple[_Snapshot | None, T]:
            change, result = plan(snapshot)
            return (snapshot.changed(change) if change.puts or change.removes else None), result

        return self._apply(apply)

    # --- the file ---

    def _empty(self) -> _Snapshot:
        return _Snapshot()

    def _decode(self, text: str, modified: datetime) -> tuple[_Snapshot, bool]:
        obj = read_json(text)
        conversations = parse_document(obj, stamp=stamp(modified))
        return _Snapshot.of(conversations), document_kind(obj) in ("legacy", "v1")

    def _encode(self, content: _Snapshot) -> bytes:
        # Only conversations changed since the last write are encoded again (`content` is a fresh copy).
        for conv in content.conversations.values():
            if conv.id not in content.fragments:
                content.fragments[conv.id] = _fragment(conv)
        return b'{"version": 2, "conversations": {\n' + b",\n".join(content.fragments.values()) + b"\n}}\n"

    def _journal_entry(self, old: _Snapshot, new: _Snapshot) -> bytes | None:
        # One line: {"put": {"<id>": {...}, …}, "delete": ["<id>", …]}; the fragments are kept for the merge.
        change = new.change
        if change is None:
            return None
        for conv in change.puts:
            if conv.id not in new.fragments:
                new.fragments[conv.id] = _fragment(conv)
        puts = b", ".join(new.fragments[conv.id] for conv in change.puts)
        return b'{"put": {' + puts + b'}, "delete": ' + json.dumps(list(change.removes)).encode() + b"}\n"

    def _replay(self, content: _Snapshot, entries: builtins.list[object]) -> _Snapshot:
        changes = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            removes = entry.get("delete")
            try:
                puts = parse_document({"version": 2, "conversations": entry.get("put") or {}})
            except ValueError:
                continue  # a line this version cannot read is left out, as a malformed entry of the file is
            gone = tuple(r for r in removes if isinstance(r, str)) if isinstance(removes, builtins.list) else ()
            changes.append(_Change(tuple(puts.values()), gone))
        return content.changed(*changes) if changes else content
