"""A quiet terminal: known warnings from third-party packages are not ours to act on.

Filtered by the package that issues them, so our own warnings still show.
"""

from __future__ import annotations

import warnings

_THIRD_PARTY = r"(llama_index|pydantic|openai|httpx|nltk|dataclasses_json|marshmallow|banks|deprecated)(\.|$)"


def silence_known_warnings() -> None:
    """Hide deprecation and schema warnings raised inside third-party packages."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=_THIRD_PARTY)
    # pydantic warns from its own module about LlamaIndex's field definitions
    warnings.filterwarnings("ignore", message=r".*'validate_default' attribute.*")
