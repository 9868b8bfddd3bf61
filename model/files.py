"""The user's files, stored once by content: `<folder>/<sha256[:2]>/<sha256>` and a small JSON beside it.

The same bytes uploaded twice (or into two conversations) are one file on disk; conversations and
indexes refer to a file by its SHA-256. Each write is a temp file in the same folder, fsynced and
renamed into place, so a crash leaves either the whole file or none of it. Files and folders are
private to the user running bnaGPT (0600 / 0700): they may hold anything.

Files nothing refers to any more are deleted by `sweep` (controller.cleanup says when). Storing and
sweeping take one lock, `<folder>.lock`, so they never interleave: the same bytes stored again while
a sweep runs either count as just stored before it looks (`put` sets the file's time to now, and a
sweep keeps young files) or are stored anew after it. A sweep looks only in real folders inside
`<folder>` and deletes only regular files: a symlink is never followed out of the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Container
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import NamedTuple

from filelock import FileLock

from model.message import valid_text
from utils.files import fsync_dir

LOCK_TIMEOUT = 30.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_PART = re.compile(r"^([0-9a-f]{64})(?:\.[^./]+\.json|\.json)?$")  # the file, its meta, its notes
_TEMP = re.compile(r"^\.([0-9a-f]{64})\..*\.tmp$")  # what _write leaves when killed mid-write


class FileMissing(LookupError):
    """No stored file has this SHA-256; `str(error)` says so in a sentence."""


class FileCorrupted(OSError):
    """A stored file's bytes no longer match its SHA-256 (the disk changed them)."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    name: str
    kind: str
    size: int

    def to_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "name": self.name, "kind": self.kind, "size": self.size}


class Freed(NamedTuple):
    """What a sweep deleted: stored files (each with its meta and notes) and bytes in all."""

    files: int = 0
    bytes: int = 0


class FileStore:
    """Files under `folder` (DATA_DIR/files), each kept once, found by its SHA-256."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = FileLock(f"{self.folder}.lock", timeout=LOCK_TIMEOUT, mode=0o600)

    def put(self, data: bytes, filename: str, kind: str = "") -> StoredFile:
        """Store `data` (once) and return what it is; `kind` defaults to the name's extension."""
        sha256 = hashlib.sha256(data).hexdigest()
        name = valid_text(PurePath(filename.replace("\\", "/")).name) or "file"
        stored = StoredFile(sha256, name, kind or PurePath(name).suffix.lower().lstrip(".") or "file", len(data))
        blob = self._blob(sha256)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            if not _refreshed(blob, len(data)):
                self._write(blob, data)
            meta = blob.with_name(f"{sha256}.json")
            if not meta.exists():  # the first name a file was stored under is kept for listings
                self._write(meta, json.dumps(stored.to_dict(), ensure_ascii=False).encode("utf-8"))
        return stored

    def get(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`; FileMissing if none, FileCorrupted if they changed on disk."""
        try:
            data = self._blob(sha256).read_bytes()
        except FileNotFoundError:
            raise FileMissing(f"The file {sha256[:12]}… is no longer stored; upload it again.") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FileCorrupted(f"The stored file {sha256[:12]}… was changed on disk; upload it again.")
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a file with this SHA-256 is stored."""
        return self._blob(sha256).is_file()

    def claim(self, sha256: str) -> bool:
        """Whether a file with this SHA-256 is stored, for something about to refer to it (an
        import): if so its time is set to now, as `put` does, so a sweep running now keeps it."""
        blob = self._blob(sha256)
        if not blob.is_file():
            return False
        with self._lock:  # a sweep holds it while it looks: the file is either gone or young after it
            try:
                size = blob.stat().st_size
            except FileNotFoundError:
                return False
            return _refreshed(blob, size)

    def info(self, sha256: str) -> StoredFile | None:
        """Name, kind and size of a stored file, or None when it is not stored."""
        blob = self._blob(sha256)
        try:
            meta = json.loads(blob.with_name(f"{sha256}.json").read_text("utf-8"))
            return StoredFile(sha256, str(meta["name"]), str(meta["kind"]), blob.stat().st_size)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # a damaged sidecar: the bytes are still good
            return StoredFile(sha256, sha256[:12], "file", blob.stat().st_size) if blob.is_file() else None

    def note(self, sha256: str, label: str) -> object:
        """What was noted about a stored file under `label` (`<sha256>.<label>.json`, e.g. the text
        read from a picture), or None when nothing (readable) was."""
        try:
            return json.loads(self._note(sha256, label).read_text("utf-8"))
        except (OSError, ValueError):  # not noted yet, or damaged: the caller works it out again
            return None

    def put_note(self, sha256: str, label: str, value: object) -> None:
        """Keep `value` (JSON) beside a stored file under `label`, all or nothing."""
        note = self._note(sha256, label)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            self._write(note, json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def remove(self, sha256: str) -> int:
        """Delete a stored file, its meta and its notes (and its folder once empty); the bytes freed,
        0 when it was already gone or is a symlink (left where it is)."""
        shard = self._blob(sha256).parent
        if not _real_folder(shard):
            return 0
        with self._lock:
            if not _real_folder(shard):  # again: a sweep may have emptied and dropped it meanwhile
                return 0
            parts, _ = _listing(shard)
            freed = _delete(parts.get(sha256, []), changed_before=float("inf"))
            _drop_if_empty(shard)
        return freed or 0

    def sweep(self, keep: Container[str], keep_newer_than: float) -> Freed:
        """Delete every stored file whose SHA-256 is not in `keep` (with its meta and notes), and
        the temp files of interrupted writes; any of them changed in the last `keep_newer_than`
        seconds stays. The lock is taken one folder at a time: an upload waits for one folder at most."""
        cutoff = time.time() - keep_newer_than
        files = size = 0
        for shard in self._shards():
            with self._lock:
                if not _real_folder(shard):
                    continue
                parts, temps = _listing(shard)
                for sha256, paths in parts.items():
                    freed = None if sha256 in keep else _delete(paths, changed_before=cutoff)
                    if freed is not None:
                        files, size = files + 1, size + freed
                for temp in temps:  # each on its own: a temp is no part of a stored file
                    size += _delete([temp], changed_before=cutoff) or 0
                _drop_if_empty(shard)
        return Freed(files, size)

    def _note(self, sha256: str, label: str) -> Path:
        if not label.isalnum():
            raise ValueError(f"{label!r} is not a note's label (letters and digits).")
        return self._blob(sha256).with_name(f"{sha256}.{label}.json")

    def _shards(self) -> list[Path]:
        """The `<sha256[:2]>` folders, real ones only (a symlink to elsewhere is not the store's)."""
        try:
            with os.scandir(self.folder) as entries:
                return [Path(e.path) for e in entries if _SHARD.match(e.name) and e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []

    def _blob(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):  # it becomes a path: nothing but 64 hex digits
            raise ValueError(f"{sha256!r} is not a SHA-256 (64 lowercase hex digits).")
        return self.folder / sha256[:2] / sha256

    def _write(self, path: Path, data: bytes) -> None:
        """All-or-nothing: a private temp file beside `path`, fsynced, then renamed over it."""
        for folder in (self.folder, path.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)


def _refreshed(blob: Path, size: int) -> bool:
    """Whether `blob` holds `size` bytes already. If so its time is set to now: a file nothing used
    any more, stored again for a question not saved yet, is then young, and a sweep keeps it."""
    try:
        if blob.stat().st_size != size:
            return False
        os.utime(blob)
    except FileNotFoundError:
        return False
    return True


def _real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)  # lstat: a symlink is not a folder of ours
    except FileNotFoundError:
        return False


def _listing(shard: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """The parts (file, meta, notes) of each stored file in `shard` by SHA-256, and the temp files of
    writes. Names the store would not have written there are not listed, so never deleted."""
    parts: dict[str, list[Path]] = {}
    temps: list[Path] = []
    with os.scandir(shard) as entries:
        for entry in entries:
            if (found := _PART.match(entry.name)) and found[1].startswith(shard.name):
                parts.setdefault(found[1], []).append(Path(entry.path))
            elif (found := _TEMP.match(entry.name)) and found[1].startswith(shard.name):
                temps.append(Path(entry.path))
    return parts, temps


def _delete(paths: list[Path], changed_before: float) -> int | None:
    """Delete `paths` if none changed after `changed_before` (a time) and all are regular files;
    the bytes freed, or None when they were all kept. One already gone is simply not counted."""
    found: list[tuple[Path, int]] = []
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_mtime > changed_before:  # S_ISREG is False for a symlink
            return None
        found.append((path, st.st_size))
    freed = 0
    for path, size in sorted(found, key=lambda item: len(item[0].name)):  # the file itself first
        with suppress(FileNotFoundError):
            os.unlink(path)
            freed += size
    return freed


def _drop_if_empty(shard: Path) -> None:
    with suppress(OSError):  # not empty (the usual case), or gone already
        os.rmdir(shard)
