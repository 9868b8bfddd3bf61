"""The assistant verbs of the Assistants page and the chat: create, edit, duplicate, delete,
export, import, and the default assistant's instructions. Its files (knowledge) are
controller.knowledge's: this module checks the list, and carries it through export and import.

Every value from a form or a file is checked once, by controller.assistant_fields; a bad one is
a FieldError whose sentence names the field and says what to do. Errors of the file itself (StoreError) pass
through as they are: their sentences already say what happened and what to do.
"""

from __future__ import annotations

import builtins  # `list` is also a method name of AssistantsController
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from controller.assistant_fields import (
    CHECKS,
    KEEP,
    AssistantError,
    FieldError,
    Keep,
    check_fields,
    check_instructions,
)
from controller.knowledge import pack, unpack
from model.assistant import TOOLS, Assistant, read_knowledge
from model.assistant_store import AssistantNotFound, AssistantStore
from model.document import MAX_NAME_LENGTH, _kind, name_key, read_json
from model.jsonstore import NameTaken
from model.message import utc_now
from model.parts import Attachment
from settings import Settings

MAX_IMPORT_BYTES = (
    40 * 2**20
)  # the assistants' text, and files carried base64 (up to controller.knowledge.EXPORT_FILES_BYTES)
EXPORT_TYPE = "bnagpt-assistants"
EXPORT_VERSION = 1


@lru_cache(maxsize=8)
def shared_assistant_store(path: str) -> AssistantStore:
    """One store per file and process, shared by sessions: its cache spares re-reading the file."""
    return AssistantStore(path)


@dataclass(frozen=True)
class Imported:
    """What an import added, and a sentence for each file an assistant came without."""

    assistants: builtins.list[Assistant]
    missing: builtins.list[str]  # "“Name”: report.pdf is not in the file nor on this machine; …"


class AssistantsController:
    def __init__(self, store: AssistantStore, default_instructions: str) -> None:
        self.store = store
        self.default_instructions = default_instructions  # SYSTEM_PROMPT

    @property
    def problem(self) -> str | None:
        """A sentence when the assistants file could not be read (moved aside, or left in place)."""
        problem = self.store.problem
        if problem is None:
            return None
        told = str(problem).rstrip(".") + "."
        if problem.moved_to is not None:
            return f"{told} Assistants start again from none; your conversations are not affected."
        return f"{told} Your conversations are not affected."

    def list(self) -> builtins.list[Assistant]:
        """Every assistant, by name."""
        return self.store.list()

    def get(self, assistant_id: str) -> Assistant | None:
        return self.store.get(assistant_id)

    def create(
        self,
        *,
        name: str,
        description: str = "",
        instructions: str = "",
        model: str = "",
        temperature: str | float | None = None,
        starters: str | Sequence[str] = (),
        response_format: str = "text",
        tools: Sequence[str] = (),
        knowledge: Sequence[Attachment] = (),
    ) -> Assistant:
        """A new assistant from the form's values; FieldError names a bad one (a name taken, too).
        `knowledge` are files already stored (controller.knowledge.add_files)."""
        fields = check_fields(locals())  # the keyword arguments above, checked
        return self._saving(lambda: self.store.save(Assistant(**fields)))

    def update(
        self,
        assistant_id: str,
        *,
        name: str | Keep = KEEP,
        description: str | Keep = KEEP,
        instructions: str | Keep = KEEP,
        model: str | Keep = KEEP,
        temperature: str | float | None | Keep = KEEP,
        starters: str | Sequence[str] | Keep = KEEP,
        response_format: str | Keep = KEEP,
        tools: Sequence[str] | Keep = KEEP,
        knowledge: Sequence[Attachment] | Keep = KEEP,
    ) -> Assistant:
        """Change the fields given (the others stay as they are now in the file, even if another tab
        just edited them); FieldError names a bad value, AssistantError if it was deleted meanwhile."""
        fields = check_fields(locals())  # the keyword arguments above that are not KEEP, checked

        def change(old: Assistant) -> Assistant:
            new = replace(old, **fields)
            return old if new == old else replace(new, updated_at=utc_now())

        return self._saving(lambda: self.store.update(assistant_id, change))

    def duplicate(self, assistant_id: str) -> Assistant:
        """A copy named "<name> (copy)" ("(copy 2)"… if taken), with a new id and the same files."""
        original = self._existing(assistant_id)
        now = utc_now()
        return self.store.add(replace(original, created_at=now, updated_at=now), _copy_name)

    def delete(self, assistant_id: str) -> bool:
        """Remove an assistant; False if it was already gone. Its files stay stored (a conversation
        or another assistant may hold them too)."""
        return self.store.delete(assistant_id)

    def export(self, ids: Sequence[str] | None = None, *, settings: Settings) -> bytes:
        """The assistants `ids` (None: all) as an export file that import_file reads back, with
        their files' bytes as far as they fit (controller.knowledge.pack)."""
        chosen = self.store.list() if ids is None else [a for i in ids if (a := self.store.get(i)) is not None]
        document: dict[str, object] = {
            "type": EXPORT_TYPE,
            "version": EXPORT_VERSION,
            "assistants": [a.to_dict() for a in chosen],
        }
        if packed := pack(chosen, settings):
            document["files"] = packed  # a bnaGPT without knowledge ignores it
        return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()

    def import_file(self, data: bytes, *, settings: Settings) -> Imported:
        """Add the assistants of an export (or of one assistant object, or of an assistants file)
        with new ids, in one write; a name already taken gets " (2)"…; AssistantError if the file is bad.
        Their files come along when stored here already or carried by the export (checked as an
        upload); `missing` names the others, which are left out."""
        if len(data) > MAX_IMPORT_BYTES:
            raise AssistantError(
                f"This file is {len(data) / 2**20:.1f} MB; an assistants file can be at most "
                f"{MAX_IMPORT_BYTES // 2**20} MB. Choose a file exported from the Assistants page."
            )
        try:
            found = read_json(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise AssistantError("This file is not text (UTF-8); choose a .json file exported from bnaGPT.") from exc
        except ValueError as exc:  # also JSONDecodeError
            raise AssistantError(f"This file is not valid JSON ({exc}); choose a file exported from bnaGPT.") from exc
        items = _exported(found)
        if not items:
            raise AssistantError("This file holds no assistants.")
        checked = [_imported(number, item) for number, item in enumerate(items, 1)]  # all, before any file is stored
        carried = found.get("files") if isinstance(found, dict) else None
        ready, missing = [], []
        for assistant in checked:
            kept, left_out = unpack(assistant, carried, settings)
            ready.append(kept)
            missing += [f"“{assistant.name}”: {sentence}" for sentence in left_out]
        return Imported(self.store.import_assistants(ready), missing)

    def instructions(self) -> str:
        """The default assistant's instructions: the custom ones if set, else SYSTEM_PROMPT."""
        custom = self.store.default_instructions()
        return self.default_instructions if custom is None else custom

    def set_instructions(self, text: str) -> None:
        """Keep custom instructions for the default assistant; "" or SYSTEM_PROMPT's text goes back to the setting."""
        cleaned = check_instructions(text)
        custom = None if not cleaned or cleaned == self.default_instructions.strip() else cleaned
        self.store.set_default_instructions(custom)

    def is_custom_instructions(self) -> bool:
        return self.store.default_instructions() is not None

    def _existing(self, assistant_id: str) -> Assistant:
        found = self.store.get(assistant_id)
        if found is None:
            raise AssistantError(_sentence(AssistantNotFound(assistant_id)))
        return found

    @staticmethod
    def _saving(save: Callable[[], Assistant]) -> Assistant:
        try:
            return save()
        except NameTaken as exc:
            raise FieldError("name", f"An assistant named “{exc.name}” already exists; choose another name.") from exc
        except AssistantNotFound as exc:
            raise AssistantError(_sentence(exc)) from exc


# --- helpers of the verbs ---


def _sentence(error: Exception) -> str:
    text = str(error)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _copy_name(name: str, taken: Collection[str]) -> str:
    """ "<name> (copy)", or "(copy 2)", "(copy 3)"… if taken, cut to fit MAX_NAME_LENGTH."""
    number = 1
    while True:
        suffix = " (copy)" if number == 1 else f" (copy {number})"
        candidate = name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
        if name_key(candidate) not in taken:
            return candidate
        number += 1


# --- import files ---


def _exported(found: object) -> builtins.list[object]:
    """The assistant objects in an export, a single assistant object or an assistants file."""
    wrong = (
        "This file is not an assistants export; choose a file from the Assistants page's Export "
        f'(it starts with {{"type": "{EXPORT_TYPE}"}}).'
    )
    if not isinstance(found, dict):
        raise AssistantError(wrong)
    if "type" not in found and "name" in found:  # one assistant object
        return [found]
    if "type" not in found and "assistants" in found and "version" in found:  # an assistants.json file
        _check_version(found["version"])
        if not isinstance(by_id := found["assistants"], dict):
            raise AssistantError(wrong)
        return [{**item, "id": key} if isinstance(item, dict) else item for key, item in by_id.items()]
    if found.get("type") != EXPORT_TYPE:
        raise AssistantError(wrong)
    _check_version(found.get("version"))
    if not isinstance(found.get("assistants"), list):
        raise AssistantError("This export is damaged: its 'assistants' is not a list.")
    items: builtins.list[object] = found["assistants"]
    return items


def _check_version(version: object) -> None:
    if type(version) is int and version > EXPORT_VERSION:
        raise AssistantError(f"This file is from a newer bnaGPT (version {version}); update bnaGPT to import it.")
    if type(version) is not int or version != EXPORT_VERSION:
        raise AssistantError(f"This file's version is not one bnaGPT knows ({version!r}); it cannot be imported.")


def _imported(number: int, item: object) -> Assistant:
    """One assistant of an import file, checked like the form's values; the sentence says which."""
    if not isinstance(item, dict):
        raise AssistantError(f"Assistant {number} in this file is {_kind(item)}, not an object; nothing was imported.")
    name = item.get("name")
    label = f"Assistant {number} (“{name[:60]}”)" if isinstance(name, str) and name.strip() else f"Assistant {number}"
    fields = {key: item.get(key, getattr(Assistant, key, "")) for key in CHECKS}
    fields["name"] = item.get("name", "")
    if isinstance(tools := fields["tools"], list):  # a tool of a newer bnaGPT is left out, as in the file
        fields["tools"] = [tool for tool in tools if tool in TOOLS or not isinstance(tool, str)]
    fields["knowledge"] = read_knowledge(item.get("knowledge"))  # a malformed entry is left out, as in the file
    try:
        checked = check_fields(fields)
    except FieldError as exc:
        raise AssistantError(f"{label}: {exc} Nothing was imported.") from exc
    times = {key: item[key] for key in ("created_at", "updated_at") if isinstance(item.get(key), str)}
    return Assistant(**checked, **times)
