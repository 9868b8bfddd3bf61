"""An assistant's knowledge: its own files, searched in every chat with it (issue 11).

Each file is checked and stored as a chat's attachment is (controller.tools.attach: read whole or
refused in one sentence, kept once by SHA-256) and indexed when the assistant is saved, so its
first chat does not wait. An export carries the files' bytes (base64) up to EXPORT_FILES_BYTES
in all, so an assistant taken to another machine keeps its knowledge; an import stores them
through the same checks and names each file that is neither in the export nor on this machine.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

from controller.tools import attach, index_for
from model.assistant import Assistant
from model.files import FileStore
from model.parts import Attachment
from settings import Settings
from utils.documents import DOCUMENT_TYPES, DocumentError

# ChatGPT's GPTs take 20 files too; and on two cores, building an index of 20 files at the size
# limit (DOCUMENT_MAX_MB) already takes a while at Save.
MAX_FILES = 20
# An export holds at most this much of the files' bytes (base64 adds a third): Streamlit keeps a
# download in memory, and an import reads the whole file before checking it.
EXPORT_FILES_BYTES = 25 * 2**20
FILE_TYPES = DOCUMENT_TYPES

Packed = dict[str, dict[str, str]]  # SHA-256 -> {"name": …, "data": base64}, an export's "files"


@dataclass(frozen=True)
class Added:
    """What adding uploads to an assistant's knowledge came to."""

    files: tuple[Attachment, ...]  # the files it had, then the new ones accepted
    refused: tuple[tuple[str, str], ...] = ()  # (file name, sentence) for each file left out
    notes: tuple[tuple[str, str], ...] = ()  # (file name, sentence): what was left out of a kept file


def knowledge_of(assistant: Assistant | None) -> list[Attachment]:
    """The files the chat searches for this assistant (none without one)."""
    return list(assistant.knowledge) if assistant is not None else []


def add_files(current: Sequence[Attachment], uploads: Sequence[tuple[str, bytes]], settings: Settings) -> Added:
    """Check and store each upload (name, bytes) after the `current` files; a file that cannot be
    read, or one past MAX_FILES, is left out with its sentence and the others are kept."""
    files = list(current)
    refused: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    for name, data in uploads:
        if len(files) >= MAX_FILES:
            refused.append((name, f"An assistant can have at most {MAX_FILES} files; remove one to add this one."))
            continue
        try:
            file, left_out = attach(data, name, settings)
        except DocumentError as error:
            refused.append((name, str(error)))
            continue
        except OSError as error:
            refused.append((name, f"It could not be stored ({error.strerror or error}); try again."))
            continue
        if any(known.sha256 == file.sha256 for known in files):
            notes.append((name, "The assistant already has this file."))
            continue
        files.append(file)
        notes += [(name, note) for note in left_out]
    return Added(tuple(files), tuple(refused), tuple(notes))


def knowledge_index(
    knowledge: Sequence[Attachment], settings: Settings, on_progress: Callable[[float, str], None] | None = None
) -> Any | None:
    """The index of these files (built now if it is not there yet), or None for no files.
    DocumentError, OSError, LookupError (a file no longer stored) or RuntimeError when it cannot be."""
    return index_for(list(knowledge), settings, on_progress) if knowledge else None


def pack(assistants: Sequence[Assistant], settings: Settings) -> Packed:
    """The bytes of the assistants' files for an export, each once, while they fit
    EXPORT_FILES_BYTES in all; a file that does not fit or is no longer stored is left out
    (the assistant still names it, and the import says it is missing)."""
    store, packed, total = FileStore(settings.files_dir), {}, 0
    for file in (file for assistant in assistants for file in assistant.knowledge):
        if file.sha256 in packed or total + file.size > EXPORT_FILES_BYTES:
            continue
        try:
            data = store.get(file.sha256)
        except (LookupError, OSError):  # no longer stored, or changed on disk: not worth carrying
            continue
        if total + len(data) <= EXPORT_FILES_BYTES:
            packed[file.sha256] = {"name": file.name, "data": base64.b64encode(data).decode("ascii")}
            total += len(data)
    return packed


def unpack(assistant: Assistant, packed: object, settings: Settings) -> tuple[Assistant, list[str]]:
    """`assistant` with the files this machine now has: those stored here already, and those whose
    bytes the export carries (checked and stored as an upload); a sentence for each left out."""
    store = FileStore(settings.files_dir)
    carried = packed if isinstance(packed, dict) else {}
    kept: list[Attachment] = []
    missing: list[str] = []
    for file in assistant.knowledge:
        if store.claim(file.sha256):
            kept.append(file)
            continue
        data = _bytes_of(carried.get(file.sha256))
        if data is None:
            missing.append(f"{file.name} is not in the file nor on this machine; add it again on the assistant's form.")
            continue
        try:
            stored, _ = attach(data, PurePath(file.name).name or "file", settings)
        except DocumentError as error:
            missing.append(str(error) if file.name in str(error) else f"{file.name}: {error}")
            continue
        if all(known.sha256 != stored.sha256 for known in kept):
            kept.append(stored)
    return replace(assistant, knowledge=tuple(kept)), missing


def _bytes_of(entry: object) -> bytes | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
        return None
    try:
        return base64.b64decode(entry["data"], validate=True)
    except (binascii.Error, ValueError):
        return None
