"""One JSON file read from memory and written atomically under a lock: the machinery under the
conversation store (model.store) and the assistant store (model.assistant_store).

A subclass says what the file holds: `_empty()`, `_decode(text, modified)` (ValueError if the
text is unreadable) and `_encode(content)`; its writes are plans run by `_apply`, inside the
lock and on a fresh read of the file. The base gives every store the same guarantees:

- Reads come from memory; the file is decoded again only when its (mtime, size, inode) changed.
- A write re-reads the file inside a file lock (other processes) and an RLock (other threads),
  so an edit made elsewhere since we last looked is kept, then replaces the file with a temp file
  that was fsynced: readers see the old file or the new one, never half of it.
- A file that cannot be decoded is moved to `<file>.corrupt-<UTC time>` (never overwritten) and
  the store works as empty; `problem` says so. A file in an older format is backed up byte for
  byte as `<file>.legacy-<UTC time>.bak` before the first write upgrades it. A file written by a
  newer version (`WrittenByNewer`) is left in place and saving is off, so a downgrade loses nothing.
- A big file is not rewritten for every change (issue 14: at 5,000 conversations a rewrite costs
  ~200 ms of every turn): once it is JOURNAL_FROM_BYTES or more, a subclass that can say a change
  as a line (`_journal_entry`, `_replay`) appends it to `<file>.journal`, fsynced, and readers
  apply the journal after the file. The journal starts with the size and CRC-32 of the file it
  follows, so a journal left behind (by a crash after a merge, or a file replaced by hand) is never
  applied to the wrong file: it is set aside as `<file>.journal.stale-<UTC time>`. When the journal
  reaches a quarter of the file, the next write merges it: the whole file is written and the journal
  removed. A torn last line (a crash mid-append) is ignored.
- A symlinked file stays a symlink: saves replace its target, keeping the target's mode (a new
  file is 0600). Every OSError becomes a StoreError whose sentence says what to do; a file that
  cannot even be opened (a folder in its place, no permission) is reported through `problem`,
  left alone and retried on the next call, so a page still loads.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import stat
import tempfile
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Generic, TypeVar

from filelock import FileLock, Timeout

from utils.files import fsync_dir

LOCK_TIMEOUT = 30.0
STALE_TEMP_SECONDS = 60.0
JOURNAL_FROM_BYTES = 4 << 20  # smaller files are rewritten whole: ~10 ms, and the file stays self-contained
JOURNAL_MIN_MERGE = 1 << 20  # a journal is merged into the file once it is this big and a quarter of the file

Key = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino) of the file we parsed
S = TypeVar("S")  # what a store's file holds, as the store keeps it in memory
T = TypeVar("T")


class StoreError(Exception):
    """Something went wrong reading or writing a store's file; str() is a sentence for the user."""


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


class StoreBusy(StoreError):
    """Another process held the file's lock for longer than LOCK_TIMEOUT."""


class NameTaken(StoreError):
    """Another item in the store already has this name (`what`: "conversation", "assistant")."""

    def __init__(self, name: str, existing_id: str, what: str = "conversation") -> None:
        self.name, self.existing_id = name, existing_id
        super().__init__(f"a {what} named {name!r} already exists")


class WrittenByNewer(ValueError):
    """Raised by `_decode` for a file a newer bnaGPT wrote: it is left in place and saving is off."""

    def __init__(self, reason: str, fix: str) -> None:
        self.fix = fix
        super().__init__(reason)


def explain(exc: OSError, setting: str) -> tuple[str, str]:
    """What an OSError means for a store's file, and what the user can do (`setting` names the file's setting)."""
    elsewhere = f"or set {setting} to another place"
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied", f"Let the user running bnaGPT read and write there, {elsewhere}"
    if code == errno.EROFS:
        return "the folder is read-only", f"Make it writable, {elsewhere}"
    if code == errno.EISDIR:
        return "it is a folder, not a file", f"Move that folder away, {elsewhere}"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return "part of the path is a file, not a folder", f"Fix the path, {elsewhere}"
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the disk is full (or a file size limit was reached)", "Free some space and try again"
    return (exc.strerror or str(exc)).lower(), f"Check the file and its folder, {elsewhere}"


def stamp(moment: datetime, *, for_filename: bool = False) -> str:
    """A UTC time as the files store it, or as a file name can hold it."""
    if for_filename:
        return moment.strftime("%Y%m%dT%H%M%S.%fZ")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Loaded(Generic[S]):
    """What the file held when we last looked."""

    key: Key | None  # None: no file
    content: S
    legacy: bytes | None = None  # the file's bytes while it is still in an older format
    unreadable: bool = False  # corrupt and could not be moved aside (or newer): never write over it
    base: tuple[int, int] | None = None  # (size, CRC-32) of the file, when a journal may follow it
    journal: tuple[int, int] | None = None  # (inode, bytes applied) of the journal read after the file


_NOT_READ: Key = (-1, -1, -1)


class JsonFileStore(ABC, Generic[S]):
    """One JSON file of content `S`, safe to share between threads, tabs and processes."""

    journal_from = 0  # bytes of file from which changes are journaled (0: never; see _journal_entry)

    def __init__(self, path: str | Path, *, setting: str) -> None:
        self.path = Path(path)
        self.setting = setting  # the setting that names the file, for the fix in error sentences
        self.parse_count = 0  # how often the file was decoded; tests use it to see the cache work
        self._lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT)
        self._mutex = threading.RLock()
        self._loaded: _Loaded[S] = _Loaded(_NOT_READ, self._empty())
        self._problem: StoreCorrupted | None = None
        self._pin: IO[bytes] | None = None
        self.journal_path = Path(f"{self.path}.journal")
        self._ignored_journal: tuple[int, int] | None = None  # a journal that follows another file
        self.generation = 0  # grows by one each time the content held changes (a token for indexes)

    # --- what a subclass says about its file ---

    @abstractmethod
    def _empty(self) -> S:
        """The content of a missing or blank file."""

    @abstractmethod
    def _decode(self, text: str, modified: datetime) -> tuple[S, bool]:
        """The content of the file's (non-blank) text, and whether it is in an older format to back
        up before the first write; ValueError (WrittenByNewer for a newer format) if unreadable."""

    @abstractmethod
    def _encode(self, content: S) -> bytes:
        """The whole file for `content`."""

    def _journal_entry(self, old: S, new: S) -> bytes | None:
        """The change from `old` to `new` as one line of JSON ending in a newline (None: write the whole file)."""
        return None

    def _replay(self, content: S, entries: list[object]) -> S:
        """`content` with the journal's decoded lines applied in order."""
        raise NotImplementedError

    # --- reading ---

    @property
    def problem(self) -> StoreCorrupted | None:
        """Why the file could not be read, if so: moved aside (the store works as empty) or left in place
        (a folder in its way, no permission, a newer format: saving is off until it is fixed)."""
        with self._mutex:
            self._current()
            return self._problem

    def _current(self) -> S:
        """The file's content, decoded again only when its (mtime, size, inode) changed."""
        try:
            if self._stat() != self._loaded.key:
                self._reload()
            elif self._loaded.base is not None and self._journal_key() not in (
                self._loaded.journal,
                self._ignored_journal,
            ):
                self._catch_up()
        except OSError as exc:
            self._cannot_read(exc)
        return self._loaded.content

    def _journal_key(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.journal_path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size)

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
            self._hold(None, _Loaded(None, self._empty()))
            return
        try:
            st = os.fstat(file.fileno())  # the key of exactly the bytes we read, even if the file is replaced now
            data = file.read()
        except OSError:
            file.close()
            raise
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        try:
            loaded = self._decoded(data, key, datetime.fromtimestamp(st.st_mtime, UTC))
        except WrittenByNewer as exc:
            file.close()
            self._problem = StoreCorrupted(self.path, None, str(exc), exc.fix)
            self._hold(None, _Loaded(key, self._empty(), unreadable=True))
            return
        except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
            file.close()
            self._set_aside(key, str(exc))
            return
        self._hold(file, loaded)
        # Millions of long-lived objects at 5,000 conversations: move them out of the cyclic
        # collector's sight, or every full collection walks them all (~200 ms, stalling the app).
        gc.freeze()

    def _decoded(self, data: bytes, key: Key, modified: datetime) -> _Loaded[S]:
        text = data.decode("utf-8-sig")
        if not text.strip():
            return _Loaded(key, self._empty())
        self.parse_count += 1
        content, older = self._decode(text, modified)
        if older:
            return _Loaded(key, content, legacy=data)
        return self._with_journal(_Loaded(key, content, base=self._base_of(data)))

    def _base_of(self, data: bytes) -> tuple[int, int] | None:
        """What a journal records of the file it follows; None when changes are not journaled."""
        return (len(data), zlib.crc32(data)) if self.journal_from else None

    # --- the journal: changes appended after a big file ---

    def _with_journal(self, loaded: _Loaded[S]) -> _Loaded[S]:
        """`loaded` with the journal that follows its file applied (a journal of another file is ignored)."""
        if loaded.base is None:
            return loaded
        try:
            with open(self.journal_path, "rb") as file:
                st = os.fstat(file.fileno())
                data = file.read()
        except FileNotFoundError:
            return loaded
        header, newline, rest = data.partition(b"\n")
        if not newline:
            return loaded  # empty, or a header torn by a crash: nothing was appended after it
        if self._journal_header(loaded.base) != header + newline:
            self._ignored_journal = (st.st_ino, len(data))  # it follows another file: set aside by the next write
            return loaded
        return self._applied(loaded, rest, st.st_ino, len(header) + 1)

    def _catch_up(self) -> None:
        """Apply what other writers appended to the journal since we last looked."""
        loaded, key = self._loaded, self._journal_key()
        if loaded.journal is None and key is not None:
            self._hold_content(self._with_journal(loaded))  # another writer started one
            return
        if key is None or loaded.journal is None or key[0] != loaded.journal[0] or key[1] < loaded.journal[1]:
            self._reload()  # the journal was removed or replaced under the same file: read both afresh
            return
        with open(self.journal_path, "rb") as file:
            file.seek(loaded.journal[1])
            tail = file.read()
        self._hold_content(self._applied(loaded, tail, key[0], loaded.journal[1]))

    def _applied(self, loaded: _Loaded[S], data: bytes, inode: int, start: int) -> _Loaded[S]:
        """`loaded` with the whole lines of `data` (journal bytes from `start`) applied; a torn
        last line (a writer stopped mid-append) is left for the next look."""
        end = data.rfind(b"\n") + 1
        entries = []
        for line in data[:end].splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # the torn line of a crashed append, closed by the next writer's newline
        content = self._replay(loaded.content, entries) if entries else loaded.content
        return _Loaded(loaded.key, content, base=loaded.base, journal=(inode, start + end))

    @staticmethod
    def _journal_header(base: tuple[int, int]) -> bytes:
        return json.dumps({"journal": 1, "file_size": base[0], "file_crc32": base[1]}).encode() + b"\n"

    def _journal_limit(self, loaded: _Loaded[S]) -> int:
        """How big the journal may grow before the next write merges it into the file (0: no journal)."""
        if loaded.base is None or loaded.key is None or loaded.legacy is not None or loaded.base[0] < self.journal_from:
            return 0
        return max(JOURNAL_MIN_MERGE, loaded.base[0] // 4)

    def _append(self, old: _Loaded[S], entry: bytes, content: S) -> bool:
        """Append `entry` to the journal after `old`'s file, fsynced; False if the journal is full."""
        assert old.base is not None
        header = self._journal_header(old.base)
        applied = old.journal[1] if old.journal else 0
        if max(applied, len(header)) + len(entry) > self._journal_limit(old):
            return False
        path = self.journal_path
        try:
            if old.journal is None and path.exists():
                # a journal we did not apply: it follows another file (merged, or the file was replaced)
                os.replace(path, self._beside(path, "stale"))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                st = os.fstat(fd)
                lead = b""
                if st.st_size == 0:
                    lead = header
                elif st.st_size > applied:
                    lead = b"\n"  # close a torn line left by a crashed writer
                os.write(fd, lead + entry)
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if lead.startswith(b"{"):
                fsync_dir(path.parent)
        except OSError as exc:
            raise self._unavailable(exc, "save to", path) from exc
        self._hold_content(_Loaded(old.key, content, base=old.base, journal=(st.st_ino, size)))
        return True

    def _end_journal(self) -> None:
        """After the whole file was written: its journal is merged into it."""
        try:
            os.unlink(self.journal_path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._unavailable(exc, "remove the merged journal", self.journal_path) from exc
        fsync_dir(self.journal_path.parent)

    def _cannot_read(self, exc: OSError) -> None:
        """Report a file that cannot be opened or read (a folder in its place, no permission) and save
        nothing; the key matches no file, so the next call tries again and sees a fix at once."""
        what, fix = explain(exc, self.setting)
        self._problem = StoreCorrupted(self.path, None, what, fix)
        self._hold(None, _Loaded(_NOT_READ, self._empty(), unreadable=True))

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
            why, fix = (exc.reason, exc.fix) if isinstance(exc, StoreUnavailable) else explain(exc, self.setting)
            self._problem = StoreCorrupted(self.path, None, f"{reason}; moving it aside failed: {why}", fix)
            self._hold(None, _Loaded(key, self._empty(), unreadable=True))
            return
        if target is None:
            self._reload()
            return
        self._problem = StoreCorrupted(self.path, target, reason)
        self._hold(None, _Loaded(None, self._empty()))

    def _hold(self, file: IO[bytes] | None, loaded: _Loaded[S]) -> None:
        # Keep the parsed inode open so its number cannot be reused by a later file while it is
        # our cache key (POSIX only: Windows could then not replace the file).
        if self._pin is not None:
            self._pin.close()
        if file is not None and os.name != "posix":
            file.close()
            file = None
        self._pin = file
        self._hold_content(loaded)

    def _hold_content(self, loaded: _Loaded[S]) -> None:
        self._loaded = loaded
        self.generation += 1

    # --- writing ---

    def _apply(self, plan: Callable[[S], tuple[S | None, T]]) -> T:
        """Run `plan` on the file's current content and write the content it returns (None: no change)."""
        with self._mutex, self._locked():
            # Re-read inside the lock: another tab or process may have saved since we last looked.
            content = self._current()
            loaded = self._loaded
            if loaded.unreadable and self._problem is not None:
                raise self._problem
            new, result = plan(content)
            if new is not None:
                self._write(loaded, new)
            return result

    def _write(self, old: _Loaded[S], content: S) -> None:
        if self._journal_limit(old):
            entry = self._journal_entry(old.content, content)
            if entry is not None and self._append(old, entry, content):
                return
        data = self._encode(content)
        if old.legacy is not None:
            self._write_new(self._beside(self._real(), "legacy", ".bak"), old.legacy)
        file = self._replace_file(data)
        st = os.fstat(file.fileno())
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        self._hold(file, _Loaded(key, content, base=self._base_of(data)))  # no re-read of our own write
        if self.journal_from:
            self._end_journal()

    def _unavailable(self, exc: OSError, doing: str, path: Path) -> StoreUnavailable:
        """An OSError as a StoreUnavailable sentence: what bnaGPT could not do, why, and the fix."""
        return StoreUnavailable(doing, path, *explain(exc, self.setting))

    def _real(self) -> Path:
        """The file saves replace: the target of a symlinked file, so the link stays."""
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
            raise self._unavailable(exc, "save to", real) from exc
        try:
            fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        except OSError as exc:
            raise self._unavailable(exc, "write to the folder", real.parent) from exc
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
            raise self._unavailable(exc, "save to", real) from exc
        fsync_dir(real.parent)
        return file

    def _write_new(self, path: Path, data: bytes) -> None:
        """Write a file that must not exist yet, whole or not at all."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise self._unavailable(exc, "back up the old file to", path) from exc
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(fd)
        except OSError as exc:
            with suppress(OSError):  # a cut backup would look like a whole one beside the file it copies
                os.unlink(path)
            raise self._unavailable(exc, "back up the old file to", path) from exc

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
        base = f"{path.name}.{label}-{stamp(datetime.now(UTC), for_filename=True)}"
        candidate, number = path.with_name(base + suffix), 2
        while candidate.exists():
            candidate, number = path.with_name(f"{base}-{number}{suffix}"), number + 1
        return candidate

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unavailable(exc, "create the folder", self.path.parent) from exc
        try:
            self._lock.acquire()
        except Timeout as exc:
            raise StoreBusy(f"{self.path} is locked by another process; try again in a moment") from exc
        except OSError as exc:  # the lock file cannot be created or opened for writing
            raise self._unavailable(exc, "lock", Path(self._lock.lock_file)) from exc
        try:
            yield
        finally:
            self._lock.release()
