"""Export one conversation as Markdown or JSON, and read conversations from an uploaded file.

An import accepts a single-conversation export (`to_json`), a whole v1 conversations file
or the tutorial's legacy file; it is checked completely before anything is returned.

A JSON export also carries the stored files its messages refer to (attachments, pictures a tool
made), so they survive a move to another machine:
    {"version": 2, "conversation": {...}, "files": {"<sha256>": {"name", "kind", "data": base64}}}
Readers that predate "files" ignore it. An import keeps a carried file only once it has checked
it (`carried_files`): never are bytes kept under a SHA-256 they do not have.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeGuard

from model.document import check_version, document_kind, parse_document, read_json
from model.message import Conversation
from model.parts import Attachment

MAX_IMPORT_BYTES = 200 * 1024 * 1024  # Streamlit's own upload limit; a 5,000-conversation file is ~56 MB
# An export carries at most this much of its files' bytes, so it can be imported again: base64
# makes it 160 MiB, which leaves 40 MiB of MAX_IMPORT_BYTES for the conversation's own text.
# An import takes no more either, each file and in all.
EXPORT_FILES_BYTES = 120 * 2**20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[a-z0-9]{1,16}")  # "pdf", "docx", "markdown", "png"…
_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


class ImportFailed(ValueError):
    """A file that cannot be imported; the message is a sentence for the user."""


def to_markdown(conv: Conversation) -> str:
    """The conversation's shown path as Markdown: a title, then one bold-labelled block per message
    (an answer names the model that wrote it), content as is. Other branches are in the JSON export."""
    blocks = [f"# {conv.name}"]
    blocks += [f"**{_LABELS[m.role]}**{f' ({m.model})' if m.model else ''}:\n\n{m.content}" for m in conv.path()]
    return "\n\n".join(blocks) + "\n"


@dataclass(frozen=True)
class CarriedFile:
    """A stored file's bytes as a JSON export carries them."""

    sha256: str
    name: str
    kind: str
    data: bytes


@dataclass(frozen=True)
class ReadImport:
    """What an uploaded bnaGPT file holds."""

    conversations: list[Conversation]
    files: object = None  # a single export's "files" as read, unchecked (None if it has none): see carried_files


def files_of(conv: Conversation) -> dict[str, Attachment]:
    """The stored files the messages refer to, on every branch, each once by SHA-256: attachments,
    and pictures a tool made (unnamed here: the store knows their names)."""
    found: dict[str, Attachment] = {}
    for message in conv.messages:
        for attachment in message.attachments:
            found.setdefault(attachment.sha256, attachment)
        for run in message.tool_runs:
            for sha256 in run.images:
                found.setdefault(sha256, Attachment(sha256, "", "png", 0))
    # an imported file may hold anything there; only a real SHA-256 can name a stored file
    return {sha256: file for sha256, file in found.items() if _SHA256.fullmatch(sha256)}


def to_json(conv: Conversation, files: Iterable[CarriedFile] = ()) -> str:
    """The conversation as a single-conversation export file, carrying `files` (read one at a
    time: a generator keeps only one file's bytes in memory)."""
    document: dict[str, object] = {"version": 2, "conversation": conv.to_dict()}
    carried = {
        file.sha256: {"name": file.name, "kind": file.kind, "data": base64.b64encode(file.data).decode("ascii")}
        for file in files
    }
    if carried:
        document["files"] = carried
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def parse_import(data: bytes | str) -> list[Conversation]:
    """The conversations in an uploaded file, all checked; ImportFailed says what is wrong."""
    return read_import(data).conversations


def read_import(data: bytes | str) -> ReadImport:
    """The conversations in an uploaded file, all checked, and the files a single export carries
    (unchecked); ImportFailed says what is wrong."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_IMPORT_BYTES:
        raise ImportFailed(
            f"The file is {size / 2**20:.1f} MB; files up to {MAX_IMPORT_BYTES // 2**20} MB can be imported."
        )
    try:
        text = data if isinstance(data, str) else data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            f"The file is not UTF-8 text (byte {exc.start} cannot be read), so it is not a bnaGPT export."
        ) from exc
    try:
        obj = read_json(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"The file is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from exc
    except ValueError as exc:
        raise ImportFailed(f"The file cannot be imported: {exc}.") from exc
    if not _is_single(obj) and document_kind(obj) is None and not _has_version(obj):
        raise ImportFailed(
            "The file is not a bnaGPT export: expected a conversation exported as JSON, "
            'a conversations file ({"version": 2, "conversations": {…}}) or the tutorial\'s {"name": [messages]}.'
        )
    try:
        conversations = _read_single(obj) if _is_single(obj) else list(parse_document(obj).values())
    except ValueError as exc:
        raise ImportFailed(f"The file cannot be imported: {exc}.") from exc
    if not conversations:
        raise ImportFailed("The file holds no conversations.")
    return ReadImport(conversations, obj.get("files") if _is_single(obj) else None)


def carried_files(files: object, wanted: Iterable[str]) -> tuple[list[CarriedFile], list[str]]:
    """The files `wanted` (SHA-256s) that an export's "files" carries, each checked: base64 of
    bytes whose SHA-256 is its key, a name and a kind, within EXPORT_FILES_BYTES each and in all.
    Also a sentence for the user about those left out. No other entry is looked at."""
    unique = list(dict.fromkeys(wanted))
    if files is None or not unique:
        return [], []
    if not isinstance(files, dict):
        return [], ["The attached files in the export could not be read, so they were not imported."]
    kept: list[CarriedFile] = []
    damaged = too_large = 0
    room = EXPORT_FILES_BYTES
    for sha256 in unique:
        entry = files.get(sha256)
        if entry is None:
            continue  # not carried: no longer stored, or too large, when it was exported
        found = _carried(sha256, entry, room)
        if found == "damaged":
            damaged += 1
        elif found == "too large":
            too_large += 1
        else:
            kept.append(found)
            room -= len(found.data)
    notes = []
    if damaged:
        notes.append(f"{_files(damaged)} in the export {_were(damaged)} damaged and {_were(damaged)} not imported.")
    if too_large:
        notes.append(
            f"{_files(too_large)} in the export {_were(too_large)} over the {EXPORT_FILES_BYTES // 2**20} MB "
            f"an export carries and {_were(too_large)} not imported."
        )
    return kept, notes


def _carried(sha256: str, entry: object, room: int) -> CarriedFile | Literal["damaged", "too large"]:
    if not isinstance(entry, dict) or not all(isinstance(entry.get(key, ""), str) for key in ("data", "name", "kind")):
        return "damaged"
    encoded, name, kind = entry.get("data", ""), entry.get("name", ""), entry.get("kind", "")
    if len(encoded) * 3 // 4 - encoded[-2:].count("=") > room:  # the bytes' size, known before decoding
        return "too large"
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):  # ValueError: a character outside ASCII
        return "damaged"
    if hashlib.sha256(data).hexdigest() != sha256:
        return "damaged"
    name = "".join(ch for ch in name if ch.isprintable())[:255] or "file"  # FileStore.put keeps only its last part
    return CarriedFile(sha256, name, kind if _KIND.fullmatch(kind) else "", data)


def _files(count: int) -> str:
    return f"{count} attached file{'' if count == 1 else 's'}"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


def _has_version(obj: object) -> bool:
    return isinstance(obj, dict) and "version" in obj and not isinstance(obj["version"], list)


def _is_single(obj: object) -> TypeGuard[dict[str, object]]:
    return _has_version(obj) and isinstance(obj, dict) and "conversation" in obj and "conversations" not in obj


def _read_single(obj: dict[str, object]) -> list[Conversation]:
    check_version(obj["version"])
    conv = obj["conversation"]
    if not isinstance(conv, dict):
        raise ValueError("'conversation' must be an object")
    key = conv["id"] if isinstance(conv.get("id"), str) and conv["id"] else "1"
    # The same parser as a whole file, so both are checked the same way.
    return list(parse_document({"version": 2, "conversations": {key: conv}}).values())
