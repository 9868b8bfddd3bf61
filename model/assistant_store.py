"""The assistant store: assistants.json, with the conversation store's guarantees (model.jsonstore).

Format (UTF-8, one assistant per line):
    {"version": 1, "default_instructions": null | "<text>", "assistants": {"<id>": Assistant.to_dict(), ...}}

`default_instructions` are the default assistant's instructions when the user edited them
(null: SYSTEM_PROMPT). Legacy-safe means a file is never lost to a version mismatch:
- a file of another shape, or one that does not decode, is moved aside as
  `<file>.corrupt-<UTC time>` and the store works as empty (`problem` says where it went);
- a file with a higher version was written by a newer bnaGPT: it is left in place, read as
  empty and saving is off (`problem` says to update), so going back to the newer version finds it;
- fields a newer bnaGPT added without raising the version (in an assistant or at the top) are
  kept as they were on every rewrite, so an older bnaGPT editing the file does not strip them.
Names are unique ignoring surrounding blanks and case (model.document.name_key); a file whose
names clash (a hand edit) is read with " (2)", " (3)"… added, as conversations are.
"""

from __future__ import annotations

import builtins  # `list` is also a method name of AssistantStore
import json
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from model.assistant import Assistant, AssistantDict
from model.document import _shown, check_version, name_key, read_json, unique_name
from model.jsonstore import JsonFileStore, NameTaken, StoreError, WrittenByNewer
from model.message import valid_text

VERSION = 1
_SHAPE = '{"version": 1, "assistants": {...}}'
_KNOWN_TOP = ("version", "default_instructions", "assistants")
_KNOWN = frozenset(AssistantDict.__annotations__)

Extras = dict[str, object]  # fields this version does not know, as the file held them


class AssistantNotFound(StoreError, KeyError):
    """No assistant has this id."""

    def __init__(self, assistant_id: str) -> None:
        self.assistant_id = assistant_id
        super().__init__(assistant_id)

    def __str__(self) -> str:
        return "this assistant no longer exists (another tab may have deleted it)"


@dataclass(frozen=True)
class _Assistants:
    """What the file held when we last looked, and what we derived from it."""

    by_id: dict[str, Assistant] = field(default_factory=dict)
    default_instructions: str | None = None
    extras: dict[str, Extras] = field(default_factory=dict)  # per assistant id
    top_extras: Extras = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # name_key -> id
    ordered: builtins.list[Assistant] = field(default_factory=builtins.list)  # by name, any case

    @classmethod
    def of(
        cls, by_id: dict[str, Assistant], default: str | None, extras: dict[str, Extras], top: Extras
    ) -> _Assistants:
        names = {name_key(a.name): a.id for a in by_id.values()}
        ordered = sorted(by_id.values(), key=lambda a: (a.name.casefold(), a.id))
        return cls(by_id, default, extras, top, names, ordered)

    def putting(self, *assistants: Assistant) -> _Assistants:
        by_id = dict(self.by_id)
        by_id.update((a.id, a) for a in assistants)
        return _Assistants.of(by_id, self.default_instructions, self.extras, self.top_extras)

    def clash(self, assistant: Assistant) -> str | None:
        """The id of another assistant with this one's name, if any."""
        other = self.names.get(name_key(assistant.name))
        return other if other is not None and other != assistant.id else None


class AssistantStore(JsonFileStore[_Assistants]):
    """Assistants in one JSON file, safe to share between threads, tabs and processes."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, setting="ASSISTANTS_FILE")

    def list(self) -> builtins.list[Assistant]:
        """Every assistant, by name (any case)."""
        with self._mutex:
            return builtins.list(self._current().ordered)

    def get(self, assistant_id: str) -> Assistant | None:
        """The assistant with this id, or None."""
        with self._mutex:
            return self._current().by_id.get(assistant_id)

    def save(self, assistant: Assistant) -> Assistant:
        """Insert or replace by id; NameTaken if another assistant has the name (trimmed, any case)."""

        def plan(content: _Assistants) -> tuple[_Assistants, Assistant]:
            if (other := content.clash(assistant)) is not None:
                raise NameTaken(assistant.name, other, "assistant")
            return content.putting(assistant), assistant

        return self._apply(plan)

    def update(self, assistant_id: str, change: Callable[[Assistant], Assistant]) -> Assistant:
        """Replace an assistant by `change(the stored one)`, in one locked step so an edit made
        elsewhere meanwhile is its input; AssistantNotFound if it is gone, NameTaken on a clash."""

        def plan(content: _Assistants) -> tuple[_Assistants | None, Assistant]:
            old = content.by_id.get(assistant_id)
            if old is None:
                raise AssistantNotFound(assistant_id)
            new = replace(change(old), id=assistant_id)
            if (other := content.clash(new)) is not None:
                raise NameTaken(new.name, other, "assistant")
            return (None if new == old else content.putting(new)), new

        return self._apply(plan)

    def delete(self, assistant_id: str) -> bool:
        """Remove an assistant; False if it was not there."""

        def plan(content: _Assistants) -> tuple[_Assistants | None, bool]:
            if assistant_id not in content.by_id:
                return None, False
            by_id = {key: a for key, a in content.by_id.items() if key != assistant_id}
            extras = {key: x for key, x in content.extras.items() if key != assistant_id}
            return _Assistants.of(by_id, content.default_instructions, extras, content.top_extras), True

        return self._apply(plan)

    def add(self, assistant: Assistant, free_name: Callable[[str, Collection[str]], str]) -> Assistant:
        """Add a copy with a new id, named `free_name(its name, the name_keys taken)` inside the lock."""
        return self._add([assistant], free_name)[0]

    def import_assistants(self, assistants: builtins.list[Assistant]) -> builtins.list[Assistant]:
        """Add copies with new ids in one write; a clashing name gets " (2)", " (3)"…"""
        return self._add(assistants, unique_name)

    def _add(
        self, assistants: builtins.list[Assistant], free_name: Callable[[str, Collection[str]], str]
    ) -> builtins.list[Assistant]:
        def plan(content: _Assistants) -> tuple[_Assistants | None, builtins.list[Assistant]]:
            taken, stored = set(content.names), []
            for assistant in assistants:
                name = free_name(assistant.name, taken)
                taken.add(name_key(name))
                stored.append(replace(assistant, id=uuid.uuid4().hex, name=name))
            return (content.putting(*stored) if stored else None), stored

        return self._apply(plan)

    def default_instructions(self) -> str | None:
        """The default assistant's instructions as the user edited them, or None (the setting's)."""
        with self._mutex:
            return self._current().default_instructions

    def set_default_instructions(self, text: str | None) -> None:
        """Keep `text` as the default assistant's instructions; None goes back to the setting's."""
        text = None if text is None else valid_text(text)

        def plan(content: _Assistants) -> tuple[_Assistants | None, None]:
            if content.default_instructions == text:
                return None, None
            return replace(content, default_instructions=text), None

        self._apply(plan)

    # --- the file ---

    def _empty(self) -> _Assistants:
        return _Assistants()

    def _decode(self, text: str, modified: datetime) -> tuple[_Assistants, bool]:
        obj = read_json(text)
        if not isinstance(obj, dict) or "version" not in obj:
            found = "an object of another shape" if isinstance(obj, dict) else f"{_shown(obj)}"
            raise ValueError(f"it holds {found}, but an assistants file is {_SHAPE}")
        version = obj["version"]
        if type(version) is int and version > VERSION:
            raise WrittenByNewer(
                f"a newer bnaGPT wrote it in format version {version}; this one reads version {VERSION}",
                "Update bnaGPT to use these assistants, or set ASSISTANTS_FILE to another file",
            )
        check_version(version)
        items, default = obj.get("assistants"), obj.get("default_instructions")
        if not isinstance(items, dict):
            raise ValueError(f"'assistants' must be an object, not {_shown(items)}: an assistants file is {_SHAPE}")
        if default is not None and not isinstance(default, str):
            raise ValueError(f"'default_instructions' must be text or null, not {_shown(default)}")
        by_id: dict[str, Assistant] = {}
        extras: dict[str, Extras] = {}
        taken: set[str] = set()
        for key, data in items.items():
            try:
                assistant = Assistant.from_dict({**data, "id": key} if isinstance(data, dict) else data)
            except ValueError as exc:
                raise ValueError(f"assistant {_shown(key)}: {exc}") from exc
            name = unique_name(assistant.name, taken)  # repair hand edits rather than refuse the file
            taken.add(name_key(name))
            by_id[assistant.id] = assistant if name == assistant.name else replace(assistant, name=name)
            if unknown := {k: v for k, v in data.items() if k not in _KNOWN}:
                extras[assistant.id] = unknown
        top = {k: v for k, v in obj.items() if k not in _KNOWN_TOP}
        return _Assistants.of(by_id, default, extras, top), False

    def _encode(self, content: _Assistants) -> bytes:
        top = {"version": VERSION, **content.top_extras, "default_instructions": content.default_instructions}
        head = json.dumps(top, ensure_ascii=False)
        lines = (
            json.dumps(a.id) + ": " + json.dumps({**content.extras.get(a.id, {}), **a.to_dict()}, ensure_ascii=False)
            for a in content.by_id.values()
        )
        text = head[:-1] + ', "assistants": {\n' + ",\n".join(lines) + "\n}}\n"
        # Our fields hold no lone surrogates (Assistant cleans them); a field kept from a newer
        # version may, and "backslashreplace" writes one back as the same JSON escape, \ud800.
        return text.encode("utf-8", "backslashreplace")
