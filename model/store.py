"""The conversation store: one JSON file, read from memory, written atomically under a lock.

The file is a v1 document (see model.document). A file still in the tutorial's legacy format
is read as is and upgraded to v1 on the first write, after a byte-identical copy of it is
kept beside it as `<file>.legacy-<UTC time>.bak`.

A symlinked file stays a symlink: saves replace its target, keeping the target's mode (a new
file is 0600). Every OSError becomes a StoreError whose message says what to do; a file that
cannot even be opened (a folder in its place, no permission) is reported through `problem`,
left alone and retried on the next call, so a page still loads.
"""

from __future__ import annotations

import builtins  # `list` is also a method name of ConversationStore
import errno
import gc
import os
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from filelock import FileLock, Timeout

# `x as x` marks a re-export: callers may keep importing the parsing names from model.store.
from model.document import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from model.document import _fragment, read_json
from model.document import document_kind as document_kind
from model.document import name_key as name_key
from model.document import parse_document as parse_document
from model.document import unique_name as unique_name
from model.message import Conversation, Message, utc_now, valid_text
from utils.files import fsync_dir

LOCK_TIMEOUT = 30.0
STALE_TEMP_SECONDS = 60.0

Key = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino) of the file we parsed
T = TypeVar("T")


class StoreError(Exception):
    """Something went wrong reading or writing the conversations file."""


class StoreCorrupted(StoreError):
    """The file could not be read; it was moved to `moved_to` (None: it was left in place and saving is off)."""

    def __init__(self, path: Path, moved_to: Path | None, reason: str, fix: str = "") -> None:
        self.path, self.moved_to, self.reason = path, moved_to, reason
        where = f"it was moved to {moved_to}" if moved_to else "it was left where it is, so saving is off"
        super().__init__(f"{path} could not be read ({reason}); {where}" + (f". {fix}." if fix else ""))


class StoreUnavailable(StoreError):
    """The file or its folder cannot be used: no permission, read-only, a folder or file in the way, a full disk."""

    def __init__(self, doing: str, path: Path, reason: str, fix: str) -> None:
        self.path, self.reason, self.fix = path, reason, fix
        super().__init__(f"bnaGPT cannot {doing} {path}: {reason}. {fix}.")


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
        return f"the conversation {self.conversation_id!r} no longer exists (another tab may have deleted it)"


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
    cleaned = valid_text(name).strip()  # as Conversation would store it, so clashes compare like with like
    if not cleaned:
        raise InvalidName("A conversation name cannot be empty or blank.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"A conversation name can have at most {MAX_NAME_LENGTH} characters, not {len(cleaned)}.")
    return cleaned


def _summary(conv: Conversation) -> ConversationSummary:
    return ConversationSummary(conv.id, conv.name, conv.created_at, conv.updated_at, len(conv.messages), conv.model)


_ELSEWHERE = "or set CONVERSATIONS_FILE to another place"


def _explain(exc: OSError) -> tuple[str, str]:
    """What an OSError means for the conversations file, and what the user can do about it."""
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied", f"Let the user running bnaGPT read and write there, {_ELSEWHERE}"
    if code == errno.EROFS:
        return "the folder is read-only", f"Make it writable, {_ELSEWHERE}"
    if code == errno.EISDIR:
        return "it is a folder, not a file", f"Move that folder away, {_ELSEWHERE}"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return "part of the path is a file, not a folder", f"Fix the path, {_ELSEWHERE}"
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the disk is full (or a file size limit was reached)", "Free some space and try again"
    return (exc.strerror or str(exc)).lower(), f"Check the file and its folder, {_ELSEWHERE}"


def _unavailable(exc: OSError, doing: str, path: Path) -> StoreUnavailable:
    """An OSError as a StoreUnavailable sentence: what bnaGPT could not do, why, and the fix."""
    return StoreUnavailable(doing, path, *_explain(exc))


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
        """Why the file could not be read, if so: moved aside (the store works as empty) or left in place
        (a folder in its way, no permission: saving is off until it is fixed; retried on every call)."""
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
        try:
            if self._stat() != self._snapshot.key:
                self._reload()
        except OSError as exc:
            self._cannot_read(exc)
        return self._snapshot

    def _stat(self) -> Key | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload(self) -> None:
        """Read and decode the file; OSError if it cannot be opened or read (see _cannot_read)."""
        if self._problem is not None and self._problem.moved_to is None:
            self._problem = None  # a file left in place is looked at afresh: it may have been fixed
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - kept open as the pin, see _hold
        except FileNotFoundError:
            self._hold(None, _Snapshot(key=None))
            return
        try:
            st = os.fstat(file.fileno())  # the key of exactly the bytes we read, even if the file is replaced now
            data = file.read()
        except OSError:
            file.close()
            raise
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        try:
            snapshot = self._decode(data, key, datetime.fromtimestamp(st.st_mtime, UTC))
        except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
            file.close()
            self._set_aside(key, str(exc))
            return
        self._hold(file, snapshot)
        # Millions of long-lived objects at 5,000 conversations: move them out of the cyclic
        # collector's sight, or every full collection walks them all (~200 ms, stalling the app).
        gc.freeze()

    def _decode(self, data: bytes, key: Key, mtime: datetime) -> _Snapshot:
        text = data.decode("utf-8-sig")
        if not text.strip():
            return _Snapshot(key=key)
        self.parse_count += 1
        obj = read_json(text)
        conversations = parse_document(obj, stamp=_stamp(mtime))
        return _Snapshot.of(key, conversations, legacy=data if document_kind(obj) == "legacy" else None)

    def _cannot_read(self, exc: OSError) -> None:
        """Report a file that cannot be opened or read (a folder in its place, no permission) and save
        nothing; the key matches no file, so the next call tries again and sees a fix at once."""
        what, fix = _explain(exc)
        self._problem = StoreCorrupted(self.path, None, what, fix)
        self._hold(None, _Snapshot(key=_NOT_READ, unreadable=True))

    def _set_aside(self, key: Key, reason: str) -> None:
        """Move an unreadable file out of the way, never overwriting it, and work as empty."""
        real = self._real()  # move the file a symlink points to; the link then points at nothing
        target: Path | None = None
        try:
            with self._locked():
                if self._stat() == key:  # else it was replaced while we were reading: read the new one
                    target = self._beside(real, "corrupt")
                    os.replace(real, target)
                    fsync_dir(real.parent)
        except (OSError, StoreUnavailable) as exc:  # e.g. a read-only folder: keep the file, save nothing
            why, fix = (exc.reason, exc.fix) if isinstance(exc, StoreUnavailable) else _explain(exc)
            self._problem = StoreCorrupted(self.path, None, f"{reason}; moving it aside failed: {why}", fix)
            self._hold(None, _Snapshot(key=key, unreadable=True))
            return
        if target is None:
            self._reload()
            return
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
            self._write_new(self._beside(self._real(), "legacy", ".bak"), old.legacy)
        file = self._replace_file(data)
        st = os.fstat(file.fileno())
        new.key = (st.st_mtime_ns, st.st_size, st.st_ino)  # our own write needs no re-read
        self._hold(file, new)

    def _real(self) -> Path:
        """The file saves replace: the target of a symlinked conversations file, so the link stays."""
        return Path(os.path.realpath(self.path))

    def _replace_file(self, data: bytes) -> IO[bytes]:
        """Write a temp file beside the store, fsync it and swap it in: readers see old or new, never half."""
        real = self._real()
        self._remove_stale_temps(real)
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)  # keep a mode the user chose (0644, 0400…)
        except FileNotFoundError:
            mode = 0o600  # a new file is private
        except OSError as exc:
            raise _unavailable(exc, "save to", real) from exc
        try:
            fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        except OSError as exc:
            raise _unavailable(exc, "write to the folder", real.parent) from exc
        file = os.fdopen(fd, "wb")
        try:
            if os.name == "posix":
                os.fchmod(fd, mode)
            file.write(data)
            file.flush()
            os.fsync(fd)
            os.replace(temp, real)
        except OSError as exc:
            with suppress(OSError):  # closing flushes what is left, which fails again on a full disk
                file.close()
            with suppress(OSError):
                os.unlink(temp)
            raise _unavailable(exc, "save to", real) from exc
        fsync_dir(real.parent)
        return file

    def _write_new(self, path: Path, data: bytes) -> None:
        """Write a file that must not exist yet, whole or not at all."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _unavailable(exc, "back up the old file to", path) from exc
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(fd)
        except OSError as exc:
            with suppress(OSError):  # a cut backup would look like a whole one beside the file it copies
                os.unlink(path)
            raise _unavailable(exc, "back up the old file to", path) from exc

    def _remove_stale_temps(self, real: Path) -> None:
        # Temp files of writers killed mid-save; a live writer's temp is younger (and we hold the lock).
        prefix, cutoff = f".{real.name}.", time.time() - STALE_TEMP_SECONDS
        with suppress(OSError), os.scandir(real.parent) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with suppress(OSError):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)

    @staticmethod
    def _beside(path: Path, label: str, suffix: str = "") -> Path:
        """A free name next to `path`, like `conversations.json.corrupt-20250101T120000.000000Z`."""
        base = f"{path.name}.{label}-{_stamp(datetime.now(UTC), for_filename=True)}"
        candidate, number = path.with_name(base + suffix), 2
        while candidate.exists():
            candidate, number = path.with_name(f"{base}-{number}{suffix}"), number + 1
        return candidate

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unavailable(exc, "create the folder", self.path.parent) from exc
        try:
            self._lock.acquire()
        except Timeout as exc:
            raise StoreBusy(f"{self.path} is locked by another process; try again in a moment") from exc
        except OSError as exc:  # the lock file cannot be created or opened for writing
            raise _unavailable(exc, "lock", Path(self._lock.lock_file)) from exc
        try:
            yield
        finally:
            self._lock.release()
