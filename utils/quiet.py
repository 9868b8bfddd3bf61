"""A quiet terminal: known warnings from third-party packages are not ours to act on.

Told apart by the file that raised them, so our own warnings still show. Filters alone are
not enough: LlamaIndex's deprecation notices force themselves through with
`catch_warnings()` + `simplefilter("always")`, so the printing itself is filtered too.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import TextIO

_THIRD_PARTY = re.compile(
    r"[/\\]site-packages[/\\](llama_index|pydantic|openai|httpx|nltk|dataclasses_json|marshmallow|banks|deprecated|transformers)[/\\]"
)
_KNOWN = re.compile(r"'validate_default' attribute|FunctionAgent` is the recommended|has been deprecated")
_installed = False


def silence_known_warnings() -> None:
    """Hide deprecation and schema warnings raised inside third-party packages (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    # transformers (pulled in by LlamaIndex, unused here) advises installing PyTorch at import
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    shown = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if _THIRD_PARTY.search(filename or "") or _KNOWN.search(str(message)):
            return
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
