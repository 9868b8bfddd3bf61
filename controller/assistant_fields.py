"""The checks of an assistant's fields, from the form or from an import file: each value becomes
what an Assistant holds, or a FieldError whose sentence names the field and says what to do.
The verbs that use them are controller.assistants'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from typing import Any, Literal, get_args

from controller.knowledge import MAX_FILES
from controller.models import Kind
from model.assistant import RESPONSE_FORMATS, TOOLS
from model.document import MAX_NAME_LENGTH, _kind
from model.message import valid_text
from model.parts import Attachment

MAX_DESCRIPTION = 500
MAX_INSTRUCTIONS = 20_000
MAX_STARTERS = 6
MAX_STARTER = 300
MAX_MODEL_ID = 1_000  # a local model's id holds the GGUF file's absolute path

Field = Literal[
    "name", "description", "instructions", "model", "temperature", "starters", "response_format", "tools", "knowledge"
]


class AssistantError(Exception):
    """Something the user asked of an assistant cannot be done; str() is one sentence for them."""


class FieldError(AssistantError):
    """A form field holds a value an assistant cannot have; `field` names it."""

    def __init__(self, field: Field, message: str) -> None:
        self.field = field
        super().__init__(message)


class Keep(Enum):
    KEEP = "keep"


KEEP = Keep.KEEP  # update(): leave this field as it is


def check_fields(given: dict[str, Any]) -> dict[str, Any]:
    """The given fields (not KEEP) as an Assistant holds them; FieldError for the first bad one."""
    return {key: CHECKS[key](value) for key, value in given.items() if key in CHECKS and value is not KEEP}


def _name(value: object) -> str:
    name = " ".join(_text("name", value).splitlines()).strip()
    if not name:
        raise FieldError("name", "Give the assistant a name.")
    _at_most("name", name, MAX_NAME_LENGTH, "A name")
    return name


def _description(value: object) -> str:
    return _at_most("description", _text("description", value).strip(), MAX_DESCRIPTION, "A description")


def check_instructions(value: object) -> str:
    """Instructions as an assistant (or the default one) keeps them: stripped, at most MAX_INSTRUCTIONS."""
    return _at_most("instructions", _text("instructions", value).strip(), MAX_INSTRUCTIONS, "Instructions")


def _model(value: object) -> str:
    model = _text("model", value).strip()
    kind, colon, rest = model.partition(":")
    if model and (not colon or kind not in get_args(Kind) or not rest.strip() or "\n" in model):
        raise FieldError("model", "Pick a model from the list, or leave it empty to use the chat's model.")
    return _at_most("model", model, MAX_MODEL_ID, "A model id")


def _temperature(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else math.nan
    except (ValueError, OverflowError):  # OverflowError: an integer too big for a float
        number = math.nan
    if not 0 <= number <= 2:  # also NaN
        raise FieldError("temperature", "Temperature must be a number between 0 and 2, like 0.7.")
    return number


def _starters(value: object) -> tuple[str, ...]:
    lines = value.splitlines() if isinstance(value, str) else value
    if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
        raise FieldError("starters", "Conversation starters must be text, one per line.")
    starters = tuple(valid_text(line).strip() for line in lines if line.strip())
    if len(starters) > MAX_STARTERS:
        raise FieldError("starters", f"Give at most {MAX_STARTERS} conversation starters; this has {len(starters)}.")
    for number, starter in enumerate(starters, 1):
        if len(starter) > MAX_STARTER:
            raise FieldError(
                "starters",
                f"Conversation starter {number} can be at most {MAX_STARTER} characters; it has {len(starter):,}.",
            )
    return starters


def _response_format(value: object) -> str:
    if value not in RESPONSE_FORMATS:
        raise FieldError("response_format", 'The response format must be "text" or "json".')
    return str(value)


def _knowledge(value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(file, Attachment) for file in value):
        raise FieldError("knowledge", "Knowledge must be a list of stored files.")
    first: dict[str, Attachment] = {}
    for file in value:
        first.setdefault(file.sha256, file)  # each file once, where it first came
    unique = tuple(first.values())
    if len(unique) > MAX_FILES:
        raise FieldError("knowledge", f"An assistant can have at most {MAX_FILES} files; this one has {len(unique)}.")
    return unique


def _tools(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(tool, str) for tool in value):
        raise FieldError("tools", f"Tools must be a list of names from: {', '.join(TOOLS)}.")
    if unknown := [tool for tool in value if tool not in TOOLS]:
        raise FieldError("tools", f"There is no tool {unknown[0]!r}; the tools are {', '.join(TOOLS)}.")
    return tuple(tool for tool in TOOLS if tool in value)


# The fields an Assistant is made of, each with its check; an import reads these keys.
CHECKS: dict[str, Callable[[Any], object]] = {
    "name": _name,
    "description": _description,
    "instructions": check_instructions,
    "model": _model,
    "temperature": _temperature,
    "starters": _starters,
    "response_format": _response_format,
    "tools": _tools,
    "knowledge": _knowledge,
}


def _text(field: Field, value: object) -> str:
    if not isinstance(value, str):
        raise FieldError(field, f"The {field.replace('_', ' ')} must be text, not {_kind(value)}.")
    return valid_text(value)


def _at_most(field: Field, text: str, limit: int, what: str) -> str:
    if len(text) > limit:
        raise FieldError(field, f"{what} can be at most {limit:,} characters; this has {len(text):,}.")
    return text
