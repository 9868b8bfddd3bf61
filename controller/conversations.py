"""The conversation verbs of the sidebar: save, autosave, load, rename, delete, export, import,
pin, archive and search."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from model.files import FileStore
from model.message import Conversation, Message, suggest_name
from model.parts import Attachment
from model.search import SearchHit, SearchIndex, fold, index_path, name_needles
from model.store import ConversationStore, ConversationSummary, StoreCorrupted
from model.transfer import EXPORT_FILES_BYTES, CarriedFile, files_of, read_import, to_json, to_markdown

if TYPE_CHECKING:
    from controller.imports import ImportReport

# The sidebar draws at most this many entries; the filter finds the rest.
SHOWN_AT_MOST = 20


@dataclass(frozen=True)
class Listing:
    shown: list[ConversationSummary]
    matching: int
    total: int
    archived: int = 0  # how many are archived (listed apart, unless a query found them)


@dataclass(frozen=True)
class Export:
    """A conversation as a download, and a sentence for each file it could not carry."""

    file_name: str
    mime: str
    # A JSON export that carries files is made when it is downloaded: reading and encoding them
    # on every rerun of an open menu would be slow.
    data: str | Callable[[], str]
    left_out: tuple[str, ...] = ()

    def text(self) -> str:
        return self.data() if callable(self.data) else self.data


@lru_cache(maxsize=8)
def shared_index(conversations_file: str) -> SearchIndex:
    """One search index per conversations file and process, shared by sessions: it remembers what it
    has indexed, so a search after a turn indexes only that conversation again."""
    return SearchIndex(index_path(conversations_file))


def _pinned_first(summaries: list[ConversationSummary]) -> list[ConversationSummary]:
    return sorted(summaries, key=lambda s: not s.pinned)  # stable: newest first within each


class ConversationController:
    def __init__(
        self, store: ConversationStore, index: SearchIndex | None = None, files: FileStore | None = None
    ) -> None:
        self.store = store
        self.index = index if index is not None else shared_index(str(store.path))
        self.files = files  # the attached files; None: exports and imports carry none

    @property
    def problem(self) -> StoreCorrupted | None:
        """Set when the conversations file could not be read and was moved aside."""
        return self.store.problem

    def listing(self, query: str = "", limit: int = SHOWN_AT_MOST) -> Listing:
        """Pinned conversations, then the others, each newest first; archived ones only when `query`
        finds them. With a query: those whose name holds each of its words (any case, any accents)."""
        everything = self.store.list()
        archived = sum(1 for c in everything if c.archived)
        needles = name_needles(query)
        if needles:
            matching = [c for c in everything if all(n in fold(c.name) for n in needles)]
        else:
            matching = [c for c in everything if not c.archived]
        matching = _pinned_first(matching)
        return Listing(matching[:limit], len(matching), len(everything), archived)

    def archived(self, limit: int = SHOWN_AT_MOST) -> tuple[list[ConversationSummary], int]:
        """The newest archived conversations, and how many there are."""
        archived = [c for c in self.store.list() if c.archived]
        return archived[:limit], len(archived)

    def search(self, query: str, limit: int = 20, *, names: bool = True) -> list[SearchHit]:
        """Conversations whose name (if `names`; first) or messages hold every word of `query`, best first,
        one hit each, with a snippet around the match. The first search of a process may index every
        message (seconds, for thousands of conversations); later ones index only what changed."""
        token, conversations = self.store.contents()
        return self.index.search(query, token, conversations, limit, names=names)

    def pin(self, conversation_id: str, pinned: bool = True) -> Conversation:
        """Pin a conversation to the top of the list (or unpin it); ConversationNotFound if gone."""
        return self.store.set_flags(conversation_id, pinned=pinned)

    def archive(self, conversation_id: str, archived: bool = True) -> Conversation:
        """Move a conversation out of the list into the archived ones (or back); ConversationNotFound if gone."""
        return self.store.set_flags(conversation_id, archived=archived)

    def count(self) -> int:
        """How many conversations are saved."""
        return len(self.store.list())

    def suggest_name(self, messages: Sequence[Message]) -> str:
        return suggest_name(tuple(messages))

    def save(
        self,
        name: str,
        messages: Sequence[Message],
        model: str,
        *,
        overwrite: bool = False,
        assistant_id: str = "",
        current: str = "",
    ) -> Conversation:
        """Save the chat on screen (its tree, or a path) as a new conversation, showing `current`
        (default: the last message); NameTaken unless `overwrite`."""
        conversation = Conversation(
            name=name, messages=tuple(messages), model=model, assistant_id=assistant_id, current=current
        )
        return self.store.save(conversation, overwrite=overwrite)

    def import_file(self, data: bytes, filename: str) -> ImportReport:
        """Add the conversations of a ChatGPT or Open WebUI export, a bnaGPT export or a whole
        conversations file, in one write; ImportFailed (a sentence) if it cannot be imported."""
        from controller.imports import import_export

        return import_export(self.store, data, filename, self.files)  # the search index catches up by itself

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

    def export(self, conversation_id: str, kind: str) -> Export | None:
        """The conversation as "markdown" or "json"; the JSON carries the stored files its messages
        refer to, as far as they fit EXPORT_FILES_BYTES (`left_out` names the others). None if gone."""
        conversation = self.store.load(conversation_id)
        if conversation is None:
            return None
        stem = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in conversation.name).strip() or "conversation"
        if kind == "markdown":
            return Export(f"{stem}.md", "text/markdown", to_markdown(conversation))
        carried, left_out = self._fitting(files_of(conversation))
        if not carried or self.files is None:
            return Export(f"{stem}.json", "application/json", to_json(conversation), left_out)
        files = self.files
        return Export(
            f"{stem}.json", "application/json", lambda: to_json(conversation, _read(files, carried)), left_out
        )

    def _fitting(self, wanted: dict[str, Attachment]) -> tuple[list[Attachment], tuple[str, ...]]:
        """The stored files among `wanted`, smallest first while they fit EXPORT_FILES_BYTES, in
        their order; and a sentence for each larger one left out. A file no longer stored is left out."""
        if self.files is None:
            return [], ()
        stored = []
        for sha256, file in wanted.items():
            try:
                info = self.files.info(sha256)
            except OSError:  # unreadable: as good as gone
                info = None
            if info is not None:
                stored.append(Attachment(sha256, file.name or info.name, file.kind or info.kind, info.size))
        carried, left_out, total = set(), [], 0
        for file in sorted(stored, key=lambda f: f.size):
            if total + file.size <= EXPORT_FILES_BYTES:
                carried.add(file.sha256)
                total += file.size
            else:
                left_out.append(
                    f"“{file.name}” ({file.size / 2**20:.1f} MB) was too large to include; copy it over separately."
                )
        return [file for file in stored if file.sha256 in carried], tuple(left_out)

    def import_data(self, data: bytes) -> list[Conversation]:
        """Add the conversations of an export or a whole conversations file (ImportFailed if bad),
        after the files the export carries; import_file also says which were left out."""
        from controller.imports import store_carried

        found = read_import(data)
        if self.files is not None:
            store_carried(found, self.files)
        return self.store.import_conversations(found.conversations)


def _read(files: FileStore, carried: list[Attachment]) -> Iterator[CarriedFile]:
    """The bytes of each file, read as the export is written; one gone or changed since is left out."""
    for file in carried:
        try:
            data = files.get(file.sha256)
        except (LookupError, OSError):  # FileMissing, FileCorrupted, or unreadable
            continue
        yield CarriedFile(file.sha256, file.name, file.kind, data)
