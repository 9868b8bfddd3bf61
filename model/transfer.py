"""Export one conversation as Markdown or JSON, and read conversations from an uploaded file.

An import accepts a single-conversation export (`to_json`), a whole v1 conversations file
or the tutorial's legacy file; it is checked completely before anything is returned.
"""

from __future__ import annotations

import json
from typing import TypeGuard

from model.document import check_version, document_kind, parse_document, read_json
from model.message import Conversation

MAX_IMPORT_BYTES = 200 * 1024 * 1024  # Streamlit's own upload limit; a 5,000-conversation file is ~56 MB
_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


class ImportFailed(ValueError):
    """A file that cannot be imported; the message is a sentence for the user."""


def to_markdown(conv: Conversation) -> str:
    """The conversation's shown path as Markdown: a title, then one bold-labelled block per message
    (an answer names the model that wrote it), content as is. Other branches are in the JSON export."""
    blocks = [f"# {conv.name}"]
    blocks += [f"**{_LABELS[m.role]}**{f' ({m.model})' if m.model else ''}:\n\n{m.content}" for m in conv.path()]
    return "\n\n".join(blocks) + "\n"


def to_json(conv: Conversation) -> str:
    """The conversation as a single-conversation export file."""
    return json.dumps({"version": 2, "conversation": conv.to_dict()}, ensure_ascii=False, indent=2) + "\n"


def parse_import(data: bytes | str) -> list[Conversation]:
    """The conversations in an uploaded file, all checked; ImportFailed says what is wrong."""
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
    return conversations


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
