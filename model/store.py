"""The conversation store: one JSON file, read from memory, written atomically under a lock.

File format v1 (UTF-8, one conversation per line):
    {"version": 1, "conversations": {"<id>": Conversation.to_dict(), ...}}
The tutorial's legacy file `{"<name>": [{"role", "content"}, ...]}` is read as is (ids derived
from the names, so they are stable) and upgraded to v1 on the first write, after a
byte-identical copy of it is kept beside it as `<file>.legacy-<UTC time>.bak`.

Names are unique ignoring surrounding blanks and case: "Work" and " work " clash, because
the sidebar would show them as the same conversation.
"""

from __future__ import annotations

import builtins  # `list` is also a method name of ConversationStore
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from filelock import FileLock, Timeout

from model.message import ROLES, Conversation, Message, utc_now

MAX_NAME_LENGTH = 100
LOCK_TIMEOUT = 30.0
STALE_TEMP_SECONDS = 60.0
_LEGACY_IDS = uuid.UUID("6f1d7a3e-2b4c-4f5e-9a8b-0ab5706e7401")  # ids of legacy conversations: uuid5(this, name)
_SHAPES = '{"version": 1, "conversations": {...}} or the tutorial\'s {"<name>": [messages]}'

Key = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino) of the file we parsed
T = TypeVar("T")


class StoreError(Exception):
    """Something went wrong reading or writing the conversations file."""


class StoreCorrupted(StoreError):
    """The file could not be read; it was moved to `moved_to` (None: it could not be moved)."""

    def __init__(self, path: Path, moved_to: Path | None, reason: str) -> None:
        self.path, self.moved_to, self.reason = path, moved_to, reason
        where = f"it was moved to {moved_to}" if moved_to else "it could not be moved aside, so saving is off"
        super().__init__(f"{path} could not be read ({reason}); {where}")


class NameTaken(StoreError):
    """Another conversation already has this name."""

    def __init__(self, name: str, existing_id: str) -> None:
        self.name, self.existing_id = name, existing_id
        super().__init__(f"a conversation named {name!r} already exists")


class InvalidName(StoreError, ValueError):
    """A conversation name that is blank or too long."""


class ConversationNotFound(StoreError, KeyError):
    """No conversation has this id."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        super().__init__(conversation_id)

    def __str__(self) -> str:
        return f"no conversation has the id {self.conversation_id!r}"


class StoreBusy(StoreError):
    """Another process held the file's lock for longer than LOCK_TIMEOUT."""


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    name: str
    created_at: str
    updated_at: str
    message_count: int
    model: str


def clean_name(name: str) -> str:
    """The name as stored: trimmed. Any characters are allowed; blank or too long is InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"A conversation name must be text, not {type(name).__name__}.")
    cleaned = name.strip()
    if not cleaned:
        raise InvalidName("A conversation name cannot be empty or blank.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"A conversation name can have at most {MAX_NAME_LENGTH} characters, not {len(cleaned)}.")
    return cleaned


def name_key(name: str) -> str:
    """What two names must share to clash: trimmed and case-folded."""
    return name.strip().casefold()


def unique_name(name: str, taken: Collection[str]) -> str:
    """`name` made valid and free: blank becomes "Untitled", long is cut, a clash gets " (2)", " (3)"…"""
    base = name.strip()[:MAX_NAME_LENGTH].rstrip() or "Untitled"
    candidate, number = base, 2
    while name_key(candidate) in taken:
        suffix = f" ({number})"
        candidate, number = base[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix, number + 1
    return candidate


# --- parsing: the one reader of v1 and legacy documents (model.transfer uses it too) ---


def document_kind(obj: object) -> Literal["v1", "legacy"] | None:
    """Which file format a decoded JSON value is in, or None for neither."""
    if not isinstance(obj, dict):
        return None
    version = obj.get("version")
    if type(version) is int and version == 1 and isinstance(obj.get("conversations"), dict):
        return "v1"
    return "legacy" if all(isinstance(value, list) for value in obj.values()) else None


def parse_document(obj: object, *, stamp: str | None = None) -> dict[str, Conversation]:
    """Conversations by id from a decoded v1 or legacy file; ValueError says what is wrong."""
    kind = document_kind(obj)
    if kind is None or not isinstance(obj, dict):
        if isinstance(obj, dict) and "version" in obj and not isinstance(obj["version"], list):
            if obj["version"] != 1:
                raise ValueError(f"version {obj['version']!r} is not supported (only version 1 is)")
            raise ValueError("a version 1 file needs a 'conversations' object")
        found = "an object of another shape" if isinstance(obj, dict) else _kind(obj)
        raise ValueError(f"it holds {found}, but a conversations file is {_SHAPES}")
    taken: set[str] = set()
    found_convs = _parse_v1(obj["conversations"]) if kind == "v1" else _parse_legacy(obj, stamp or utc_now())
    conversations: dict[str, Conversation] = {}
    for conv in found_convs:
        if conv.id in conversations:
            raise ValueError(f"two conversations share the id {conv.id!r}")
        name = unique_name(conv.name, taken)  # repair hand edits rather than refuse the file
        taken.add(name_key(name))
        conversations[conv.id] = conv if name == conv.name else replace(conv, name=name)
    return conversations


def _parse_v1(items: dict[str, object]) -> Iterator[Conversation]:
    for key, data in items.items():
        label = f"conversation {key!r}"
        if not isinstance(data, dict):
            raise ValueError(f"{label} must be an object, not {_kind(data)}")
        _require(data, ("name", "messages"), label)
        if not isinstance(data["name"], str):
            raise ValueError(f"{label}: 'name' must be text, not {_kind(data['name'])}")
        label = f"conversation {data['name']!r}"
        _check_messages(data["messages"], label)
        try:
            yield Conversation.from_dict({**data, "id": data.get("id", key)})
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from exc


def _parse_legacy(items: dict[str, list[dict[str, Any]]], stamp: str) -> Iterator[Conversation]:
    for name, messages in items.items():
        _check_messages(messages, f"conversation {name!r}")
        yield Conversation(
            id=uuid.uuid5(_LEGACY_IDS, name).hex,
            name=name,
            messages=tuple(
                Message(m["role"], m["content"], m["created_at"] if isinstance(m.get("created_at"), str) else stamp)
                for m in messages
            ),
            created_at=stamp,
            updated_at=stamp,
        )


def _check_messages(messages: object, label: str) -> None:
    if not isinstance(messages, list):
        raise ValueError(f"{label}: 'messages' must be a list, not {_kind(messages)}")
    for number, message in enumerate(messages, 1):
        where = f"{label}, message {number}"
        if not isinstance(message, dict):
            raise ValueError(f"{where} must be an object, not {_kind(message)}")
        _require(message, ("role", "content"), where)
        if message["role"] not in ROLES:
            raise ValueError(f"{where} has the unknown role {message['role']!r} (expected {', '.join(ROLES)})")
        if not isinstance(message["content"], str):
            raise ValueError(f"{where}: 'content' must be text, not {_kind(message['content'])}")


def _require(data: dict[str, object], fields: tuple[str, ...], label: str) -> None:
    missing = [f"'{name}'" for name in fields if name not in data]
    if missing:
        raise ValueError(f"{label} is missing {' and '.join(missing)}")


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _fragment(conv: Conversation) -> bytes:
    """One conversation's `"<id>": {...}` line of the file, encoded once and cached."""
    for ascii_only in (False, True):  # True only for lone surrogates, which UTF-8 cannot hold
        with suppress(UnicodeEncodeError):
            text = (
                json.dumps(conv.id, ensure_ascii=ascii_only)
                + ": "
                + json.dumps(conv.to_dict(), ensure_ascii=ascii_only)
            )
            return text.encode("utf-8")
    raise AssertionError("unreachable: ASCII JSON always encodes")


def _summary(conv: Conversation) -> ConversationSummary:
    return ConversationSummary(conv.id, conv.name, conv.created_at, conv.updated_at, len(conv.messages), conv.model)


def _stamp(moment: datetime, *, for_filename: bool = False) -> str:
    if for_filename:
        return moment.strftime("%Y%m%dT%H%M%S.%fZ")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the store ---


@dataclass
class _Snapshot:
    """What the file held when we last looked, and what we derived from it."""

    key: Key | None  # None: no file
    conversations: dict[str, Conversation] = field(default_factory=dict)
    fragments: dict[str, bytes] = field(default_factory=dict)  # filled lazily, on the first write
    names: dict[str, str] = field(default_factory=dict)  # name_key -> id
    summaries: dict[str, ConversationSummary] = field(default_factory=dict)
    legacy: bytes | None = None  # the file's bytes while it is still in the tutorial's format
    unreadable: bool = False  # corrupt and could not be moved aside: never write over it
    _ordered: list[ConversationSummary] | None = None

    @classmethod
    def of(cls, key: Key | None, conversations: dict[str, Conversation], legacy: bytes | None = None) -> _Snapshot:
        names = {name_key(c.name): c.id for c in conversations.values()}
        summaries = {c.id: _summary(c) for c in conversations.values()}
        return cls(key, conversations, {}, names, summaries, legacy)

    def ordered(self) -> list[ConversationSummary]:
        if self._ordered is None:
            self._ordered = sorted(self.summaries.values(), key=lambda s: (s.updated_at, s.created_at), reverse=True)
        return self._ordered


@dataclass(frozen=True)
class _Change:
    puts: tuple[Conversation, ...] = ()
    removes: tuple[str, ...] = ()


_NOT_READ: Key = (-1, -1, -1)


class ConversationStore:
    """Conversations in one JSON file, safe to share between threads, tabs and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.parse_count = 0  # how often the file was decoded; tests use it to see the cache work
        self._lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT)
        self._mutex = threading.RLock()
        self._snapshot = _Snapshot(key=_NOT_READ)
        self._problem: StoreCorrupted | None = None
        self._pin: IO[bytes] | None = None

    @property
    def problem(self) -> StoreCorrupted | None:
        """Why the file could not be read (it was moved aside and the store works as empty), if so."""
        with self._mutex:
            self._current()
            return self._problem

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

        return self._apply(plan)

    def update_messages(self, conversation_id: str, messages: Sequence[Message], model: str, name: str) -> Conversation:
        """Replace a conversation's messages, keeping its (possibly just renamed) name; re-create it
        under a free version of `name` if it was deleted meanwhile, so the chat is never lost."""

        def plan(snapshot: _Snapshot) -> tuple[_Change, Conversation]:
            conv = snapshot.conversations.get(conversation_id)
            if conv is None:
                conv = Conversation(name=unique_name(name, set(snapshot.names)), id=conversation_id)
            updated = conv.with_messages(tuple(messages), model=model)
            return _Change((updated,)), updated

        return self._apply(plan)

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

        return self._apply(plan)

    def delete(self, conversation_id: str) -> bool:
        """Remove a conversation; False if it was not there."""

        def plan(snapshot: _Snapshot) -> tuple[_Change, bool]:
            found = conversation_id in snapshot.conversations
            return _Change(removes=(conversation_id,) if found else ()), found

        return self._apply(plan)

    def import_conversations(self, conversations: builtins.list[Conversation]) -> builtins.list[Conversation]:
        """Add copies with new ids in one write; a clashing name gets " (2)", " (3)"…"""

        def plan(snapshot: _Snapshot) -> tuple[_Change, builtins.list[Conversation]]:
            taken = set(snapshot.names)
            stored = []
            for conv in conversations:
                name = unique_name(conv.name, taken)
                taken.add(name_key(name))
                stored.append(replace(conv, id=uuid.uuid4().hex, name=name))
            return _Change(tuple(stored)), stored

        return self._apply(plan)

    # --- reading ---

    def _current(self) -> _Snapshot:
        """The file's content, decoded again only when its (mtime, size, inode) changed."""
        if self._stat() != self._snapshot.key:
            self._reload()
        return self._snapshot

    def _stat(self) -> Key | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload(self) -> None:
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - kept open as the pin, see _hold
        except FileNotFoundError:
            self._hold(None, _Snapshot(key=None))
            return
        except OSError as exc:
            raise StoreError(f"could not read {self.path}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(file.fileno())  # the key of exactly the bytes we read, even if the file is replaced now
            data = file.read()
        except OSError as exc:
            file.close()
            raise StoreError(f"could not read {self.path}: {exc.strerror or exc}") from exc
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        try:
            snapshot = self._decode(data, key, datetime.fromtimestamp(st.st_mtime, UTC))
        except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
            file.close()
            self._set_aside(key, str(exc))
            return
        if self._problem is not None and self._problem.moved_to is None:
            self._problem = None  # the unreadable file was fixed in place
        self._hold(file, snapshot)

    def _decode(self, data: bytes, key: Key, mtime: datetime) -> _Snapshot:
        text = data.decode("utf-8-sig")
        if not text.strip():
            return _Snapshot(key=key)
        self.parse_count += 1
        obj = json.loads(text)
        conversations = parse_document(obj, stamp=_stamp(mtime))
        return _Snapshot.of(key, conversations, legacy=data if document_kind(obj) == "legacy" else None)

    def _set_aside(self, key: Key, reason: str) -> None:
        """Move an unreadable file out of the way, never overwriting it, and work as empty."""
        with self._locked():
            if self._stat() != key:  # replaced while we were reading: read the new one instead
                self._reload()
                return
            target = self._beside("corrupt")
            try:
                os.replace(self.path, target)
            except OSError as exc:
                self._problem = StoreCorrupted(self.path, None, f"{reason}; moving it failed: {exc.strerror}")
                self._hold(None, _Snapshot(key=key, unreadable=True))
                return
            _fsync_dir(self.path.parent)
        self._problem = StoreCorrupted(self.path, target, reason)
        self._hold(None, _Snapshot(key=None))

    def _hold(self, file: IO[bytes] | None, snapshot: _Snapshot) -> None:
        # Keep the parsed inode open so its number cannot be reused by a later file while it is
        # our cache key (POSIX only: Windows could then not replace the file).
        if self._pin is not None:
            self._pin.close()
        if file is not None and os.name != "posix":
            file.close()
            file = None
        self._pin, self._snapshot = file, snapshot

    # --- writing ---

    def _apply(self, plan: Callable[[_Snapshot], tuple[_Change, T]]) -> T:
        with self._mutex, self._locked():
            # Re-read inside the lock: another tab or process may have saved since we last looked.
            snapshot = self._current()
            if snapshot.unreadable and self._problem is not None:
                raise self._problem
            change, result = plan(snapshot)
            if change.puts or change.removes:
                self._commit(snapshot, change)
            return result

    def _commit(self, old: _Snapshot, change: _Change) -> None:
        new = _Snapshot(old.key, dict(old.conversations), dict(old.fragments), dict(old.names), dict(old.summaries))
        for gone in (*change.removes, *(c.id for c in change.puts)):
            if (conv := new.conversations.pop(gone, None)) is not None:
                new.names.pop(name_key(conv.name), None)
                new.summaries.pop(gone)
                new.fragments.pop(gone, None)
        for conv in change.puts:
            new.conversations[conv.id] = conv
            new.names[name_key(conv.name)] = conv.id
            new.summaries[conv.id] = _summary(conv)
        for conv in new.conversations.values():
            if conv.id not in new.fragments:
                new.fragments[conv.id] = _fragment(conv)
        data = b'{"version": 1, "conversations": {\n' + b",\n".join(new.fragments.values()) + b"\n}}\n"
        if old.legacy is not None:
            self._write_new(self._beside("legacy", ".bak"), old.legacy)
        file = self._replace_file(data)
        st = os.fstat(file.fileno())
        new.key = (st.st_mtime_ns, st.st_size, st.st_ino)  # our own write needs no re-read
        self._hold(file, new)

    def _replace_file(self, data: bytes) -> IO[bytes]:
        """Write a temp file beside the store, fsync it and swap it in: readers see old or new, never half."""
        self._remove_stale_temps()
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        file = os.fdopen(fd, "wb")
        try:
            if os.name == "posix":
                os.fchmod(fd, 0o600)
            file.write(data)
            file.flush()
            os.fsync(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            file.close()
            with suppress(FileNotFoundError):
                os.unlink(temp)
            raise StoreError(f"could not save {self.path}: {exc.strerror or exc}") from exc
        _fsync_dir(self.path.parent)
        return file

    def _write_new(self, path: Path, data: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"could not back up {self.path} to {path}: {exc.strerror or exc}") from exc

    def _remove_stale_temps(self) -> None:
        # Temp files of writers killed mid-save; a live writer's temp is younger (and we hold the lock).
        prefix, cutoff = f".{self.path.name}.", time.time() - STALE_TEMP_SECONDS
        with suppress(OSError), os.scandir(self.path.parent) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with suppress(OSError):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)

    def _beside(self, label: str, suffix: str = "") -> Path:
        """A free name next to the file, like `conversations.json.corrupt-20250101T120000.000000Z`."""
        base = f"{self.path.name}.{label}-{_stamp(datetime.now(UTC), for_filename=True)}"
        candidate, number = self.path.with_name(base + suffix), 2
        while candidate.exists():
            candidate, number = self.path.with_name(f"{base}-{number}{suffix}"), number + 1
        return candidate

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout as exc:
            raise StoreBusy(f"{self.path} is locked by another process; try again in a moment") from exc
        try:
            yield
        finally:
            self._lock.release()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable. Best effort: some systems cannot open or sync a directory."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
