"""The user's files, stored once by content: `<folder>/<sha256[:2]>/<sha256>` and a small JSON beside it.

The same bytes uploaded twice (or into two conversations) are one file on disk; conversations and
indexes refer to a file by its SHA-256. Each write is a temp file in the same folder, fsynced and
renamed into place, so a crash leaves either the whole file or none of it. Files and folders are
private to the user running bnaGPT (0600 / 0700): they may hold anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath

from model.message import valid_text
from utils.files import fsync_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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


class FileStore:
    """Files under `folder` (DATA_DIR/files), each kept once, found by its SHA-256."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def put(self, data: bytes, filename: str, kind: str = "") -> StoredFile:
        """Store `data` (once) and return what it is; `kind` defaults to the name's extension."""
        sha256 = hashlib.sha256(data).hexdigest()
        name = valid_text(PurePath(filename.replace("\\", "/")).name) or "file"
        stored = StoredFile(sha256, name, kind or PurePath(name).suffix.lower().lstrip(".") or "file", len(data))
        blob = self._blob(sha256)
        if not blob.exists() or blob.stat().st_size != len(data):
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
        self._write(self._note(sha256, label), json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def _note(self, sha256: str, label: str) -> Path:
        if not label.isalnum():
            raise ValueError(f"{label!r} is not a note's label (letters and digits).")
        return self._blob(sha256).with_name(f"{sha256}.{label}.json")

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
