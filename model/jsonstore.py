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
- A symlinked file stays a symlink: saves replace its target, keeping the target's mode (a new
  file is 0600). Every OSError becomes a StoreError whose sentence says what to do; a file that
  cannot even be opened (a folder in its place, no permission) is reported through `problem`,
  left alone and retried on the next call, so a page still loads.
"""

from __future__ import annotations

import errno
import gc
import os
import stat
import tempfile
import threading
import time
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


_NOT_READ: Key = (-1, -1, -1)


class JsonFileStore(ABC, Generic[S]):
    """One JSON file of content `S`, safe to share between threads, tabs and processes."""

    def __init__(self, path: str | Path, *, setting: str) -> None:
        self.path = Path(path)
        self.setting = setting  # the setting that names the file, for the fix in error sentences
        self.parse_count = 0  # how often the file was decoded; tests use it to see the cache work
        self._lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT)
        self._mutex = threading.RLock()
        self._loaded: _Loaded[S] = _Loaded(_NOT_READ, self._empty())
        self._problem: StoreCorrupted | None = None
        self._pin: IO[bytes] | None = None
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
        except OSError as exc:
            self._cannot_read(exc)
        return self._loaded.content

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
        return _Loaded(key, content, legacy=data if older else None)

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
        self._pin, self._loaded = file, loaded
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
        data = self._encode(content)
        if old.legacy is not None:
            self._write_new(self._beside(self._real(), "legacy", ".bak"), old.legacy)
        file = self._replace_file(data)
        st = os.fstat(file.fileno())
        self._hold(file, _Loaded((st.st_mtime_ns, st.st_size, st.st_ino), content))  # no re-read of our own write

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
