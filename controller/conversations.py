"""The conversation verbs of the sidebar: save, autosave, load, rename, delete, export, import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.message import Conversation, Message, suggest_name
from model.store import ConversationStore, ConversationSummary, StoreCorrupted
from model.transfer import parse_import, to_json, to_markdown

# The sidebar draws at most this many entries; the filter finds the rest.
SHOWN_AT_MOST = 20


@dataclass(frozen=True)
class Listing:
    shown: list[ConversationSummary]
    matching: int
    total: int


class ConversationController:
    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    @property
    def problem(self) -> StoreCorrupted | None:
        """Set when the conversations file could not be read and was moved aside."""
        return self.store.problem

    def listing(self, query: str = "", limit: int = SHOWN_AT_MOST) -> Listing:
        """The newest conversations whose name contains `query` (case-insensitive)."""
        everything = self.store.list()
        needle = query.strip().casefold()
        matching = [c for c in everything if needle in c.name.casefold()] if needle else everything
        return Listing(matching[:limit], len(matching), len(everything))

    def count(self) -> int:
        """How many conversations are saved."""
        return len(self.store.list())

    def suggest_name(self, messages: Sequence[Message]) -> str:
        return suggest_name(tuple(messages))

    def save(
        self, name: str, messages: Sequence[Message], model: str, *, overwrite: bool = False, assistant_id: str = ""
    ) -> Conversation:
        """Save the chat on screen as a new conversation (NameTaken unless `overwrite`)."""
        conversation = Conversation(name=name, messages=tuple(messages), model=model, assistant_id=assistant_id)
        return self.store.save(conversation, overwrite=overwrite)

    def autosave(
        self,
        conversation_id: str,
        name: str,
        messages: Sequence[Message],
        model: str,
        assistant_id: str = "",
        current: str | None = None,
    ) -> Conversation:
        """Write the open conversation's messages (its tree, or the shown path), the shown leaf
        `current` (default: the last message) and its assistant back under its id after a turn (in
        one locked step, so a rename or a branch from another tab is kept; re-created if another
        tab deleted it)."""
        return self.store.update_messages(
            conversation_id, messages, model, name, assistant_id=assistant_id, current=current
        )

    def load(self, conversation_id: str) -> Conversation | None:
        return self.store.load(conversation_id)

    def rename(self, conversation_id: str, new_name: str) -> Conversation:
        return self.store.rename(conversation_id, new_name)

    def delete(self, conversation_id: str) -> bool:
        return self.store.delete(conversation_id)

    def export(self, conversation_id: str, kind: str) -> tuple[str, str, str] | None:
        """(file name, mime type, text) of an export as "markdown" or "json"."""
        conversation = self.store.load(conversation_id)
        if conversation is None:
            return None
        stem = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in conversation.name).strip() or "conversation"
        if kind == "markdown":
            return f"{stem}.md", "text/markdown", to_markdown(conversation)
        return f"{stem}.json", "application/json", to_json(conversation)

    def import_data(self, data: bytes) -> list[Conversation]:
        """Add the conversations of an export or a whole conversations file (ImportFailed if bad)."""
        return self.store.import_conversations(parse_import(data))
