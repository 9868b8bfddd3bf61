"""JSON mode: what the model is told, and reading its answer back. Light: no LlamaIndex, so a
page can check a saved JSON answer without loading the chat machinery."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# Added to the instructions in JSON mode: OpenAI and Groq refuse JSON mode unless the request
# mentions JSON, and a small model needs telling what shape to give.
JSON_INSTRUCTION = "Reply with one valid JSON object and nothing else: no prose, no code fences."
_FENCED = re.compile(r"```[a-zA-Z]*[ \t]*\n(.*?)\n?[ \t]*```", re.DOTALL)


@dataclass(frozen=True)
class JsonAnswer:
    """An answer asked for in JSON mode: its value when it parses, else `problem`, a sentence."""

    value: object = None
    problem: str = ""


def read_json_answer(text: str) -> JsonAnswer:
    """Parse a JSON-mode answer (one code fence around it is tolerated); say why it does not parse."""
    body = text.strip()
    if (fenced := _FENCED.fullmatch(body)) is not None:
        body = fenced.group(1).strip()
    if not body:
        return JsonAnswer(problem="The answer is empty, not JSON.")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        return JsonAnswer(problem=f"The answer is not valid JSON ({error.msg} at {where}).")
    except (ValueError, RecursionError):  # a number over Python's digit limit, nesting too deep
        return JsonAnswer(problem="The answer is JSON this app cannot read (too deeply nested or a huge number).")
    if value == {} or value == []:  # what a small model gives when it closes the object at once
        kind = "object" if value == {} else "list"
        return JsonAnswer(value, f"The answer is an empty JSON {kind}: the model filled nothing in.")
    return JsonAnswer(value)
