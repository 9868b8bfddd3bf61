"""Conversation documents: the one reader of the file formats, and when two names clash.

Format v2 (UTF-8, one conversation per line):
    {"version": 2, "conversations": {"<id>": Conversation.to_dict(), ...}}
where each message has an `id` and a `parent_id` (null for a root) and a conversation names
its shown leaf in `current` (omitted when it is the last message). Version 1 is the same
without those: its messages form one line, each the reply to the one before, and get ids
derived from the conversation's id and their place, so they are stable. The tutorial's legacy format `{"<name>": [{"role", "content"}, ...]}` is read as is, with ids
derived from the names so they are stable. The store (model.store) reads its file with this
module and writes each conversation's line with `_fragment`; imports (model.transfer) read
uploads with it too, so both are checked the same way.

Names are unique ignoring surrounding blanks and case: "Work" and " work " clash, because
the sidebar would show them as the same conversation.

Both readers decode with `read_json`, which refuses what `json.loads` would silently get wrong
or raise in a surprising way: a key twice in one object (JSON keeps the last, so a conversation
or a message would vanish), nesting too deep for the parser, a number too long for Python's int.
Text in a document can hold lone surrogates (the escape "\\ud800"); Message and Conversation
replace them when they are built (model.message.valid_text).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Any, Literal

from model.message import ROLES, Conversation, Message, utc_now

MAX_NAME_LENGTH = 100
_LEGACY_IDS = uuid.UUID("6f1d7a3e-2b4c-4f5e-9a8b-0ab5706e7401")  # ids of legacy conversations: uuid5(this, name)
_TOO_DEEP = "it is nested too deeply to be a conversations file"
_SHAPES = '{"version": 2, "conversations": {...}} (or version 1) or the tutorial\'s {"<name>": [messages]}'


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


def read_json(text: str) -> object:
    """Decode JSON text; JSONDecodeError for bad syntax, ValueError in words for the traps below."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_whole_number)
    except RecursionError as exc:  # the C parser stops at Python's recursion limit (~1,000 levels)
        raise ValueError(_TOO_DEEP) from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        twice = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise ValueError(f"the key {_shown(twice)} appears twice in the same object (JSON keeps only the last one)")
    return obj


def _whole_number(digits: str) -> int:
    try:
        return int(digits)
    except ValueError as exc:  # over Python's limit of 4,300 digits
        raise ValueError(f"it holds a number {len(digits):,} digits long, which no conversations file has") from exc


VERSIONS = (1, 2)


def check_version(version: object) -> None:
    """ValueError unless `version` is the whole number 1 or 2; 1.0, true and "2" are named as near misses."""
    if type(version) is int and version in VERSIONS:
        return
    if version in VERSIONS or version in ("1", "2"):
        raise ValueError(f"version must be the whole number 1 or 2, not {_shown(version)}")
    raise ValueError(f"version {_shown(version)} is not supported (only versions 1 and 2 are)")


def document_kind(obj: object) -> Literal["v2", "v1", "legacy"] | None:
    """Which file format a decoded JSON value is in, or None for neither."""
    if not isinstance(obj, dict):
        return None
    version = obj.get("version")
    if type(version) is int and version in VERSIONS and isinstance(obj.get("conversations"), dict):
        return "v2" if version == 2 else "v1"
    return "legacy" if all(isinstance(value, list) for value in obj.values()) else None


def parse_document(obj: object, *, stamp: str | None = None) -> dict[str, Conversation]:
    """Conversations by id from a decoded v2, v1 or legacy file; ValueError says what is wrong."""
    try:
        return _parse(obj, stamp)
    except RecursionError as exc:  # e.g. str() of an "id" nested almost as deep as json.loads allows
        raise ValueError(_TOO_DEEP) from exc


def _parse(obj: object, stamp: str | None) -> dict[str, Conversation]:
    kind = document_kind(obj)
    if kind is None or not isinstance(obj, dict):
        if isinstance(obj, dict) and "version" in obj and not isinstance(obj["version"], list):
            check_version(obj["version"])
            raise ValueError(f"a version {obj['version']} file needs a 'conversations' object")
        found = "an object of another shape" if isinstance(obj, dict) else _kind(obj)
        raise ValueError(f"it holds {found}, but a conversations file is {_SHAPES}")
    taken: set[str] = set()
    found_convs = _parse_v1(obj["conversations"]) if kind != "legacy" else _parse_legacy(obj, stamp or utc_now())
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
        label = f"conversation {_shown(key)}"
        if not isinstance(data, dict):
            raise ValueError(f"{label} must be an object, not {_kind(data)}")
        _require(data, ("name", "messages"), label)
        if not isinstance(data["name"], str):
            raise ValueError(f"{label}: 'name' must be text, not {_kind(data['name'])}")
        label = f"conversation {_shown(data['name'])}"
        _check_messages(data["messages"], label)
        try:
            yield Conversation.from_dict({**data, "id": data.get("id", key)})
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from exc


def _parse_legacy(items: dict[str, list[dict[str, Any]]], stamp: str) -> Iterator[Conversation]:
    for name, messages in items.items():
        _check_messages(messages, f"conversation {_shown(name)}")
        yield Conversation(
            id=uuid.uuid5(_LEGACY_IDS, name).hex,
            name=name,
            messages=tuple(
                Message(
                    m["role"],
                    m["content"],
                    m["created_at"] if isinstance(m.get("created_at"), str) else stamp,
                    id=uuid.uuid5(_LEGACY_IDS, f"{name}/{number}").hex[:12],  # the same every time it is read
                )
                for number, m in enumerate(messages)
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
            raise ValueError(f"{where} has the unknown role {_shown(message['role'])} (expected {', '.join(ROLES)})")
        if not isinstance(message["content"], str):
            raise ValueError(f"{where}: 'content' must be text, not {_kind(message['content'])}")


def _require(data: dict[str, object], fields: tuple[str, ...], label: str) -> None:
    missing = [f"'{name}'" for name in fields if name not in data]
    if missing:
        raise ValueError(f"{label} is missing {' and '.join(missing)}")


def _shown(value: object, limit: int = 60) -> str:
    """A value as an error message shows it: text quoted and cut, true/false/null, containers by kind."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict | list):
        return _kind(value)
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _fragment(conv: Conversation) -> bytes:
    """One conversation's `"<id>": {...}` line of the file, encoded once and cached."""
    # No lone surrogates can reach here (Conversation and Message replace them), so UTF-8 always encodes.
    return (json.dumps(conv.id, ensure_ascii=False) + ": " + json.dumps(conv.to_dict(), ensure_ascii=False)).encode()
