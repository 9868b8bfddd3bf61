"""Choices made in the app that outlive a restart: the model that answers, model files added by path.

A tiny JSON file, `{"version": 1, "active_model": "<option id>", "added_models": ["/path.gguf"]}`,
written whole (temp file + fsync + os.replace). A file that cannot be read is ignored with a
sentence in `problem`, never a crash: it holds nothing that cannot be chosen again.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from utils.files import fsync_dir

VERSION = 1

# One lock per file for the threads (Streamlit sessions) of this process: a change re-reads the
# file inside it, so two tabs adding models at once both keep theirs.
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class PreferencesError(Exception):
    """The preferences could not be saved; `str(error)` is a sentence for the user."""


@dataclass(frozen=True)
class Preferences:
    active_model: str = ""  # a ModelOption id; empty: the settings decide
    added_models: tuple[str, ...] = ()  # absolute paths of GGUF files added by path

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "active_model": self.active_model, "added_models": list(self.added_models)}

    @classmethod
    def from_dict(cls, data: Any) -> Preferences:
        """ValueError naming what is wrong if `data` is not a preferences object."""
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        active = data.get("active_model", "")
        added = data.get("added_models", [])
        if not isinstance(active, str):
            raise ValueError("active_model is not a string")
        if not isinstance(added, list) or not all(isinstance(p, str) for p in added):
            raise ValueError("added_models is not a list of paths")
        return cls(active, tuple(added))


class PreferencesStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problem = ""  # set by load() when the file was there but could not be used

    def load(self) -> Preferences:
        """The saved preferences; defaults when there are none or they cannot be read."""
        self.problem = ""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Preferences()
        except OSError as error:
            self.problem = f"The preferences file {self.path} could not be read ({error.strerror}); it is ignored."
            return Preferences()
        try:
            return Preferences.from_dict(json.loads(raw))
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.problem = (
                f"The preferences file {self.path} could not be used ({error}); it is ignored "
                "and replaced at the next choice."
            )
            return Preferences()

    def save(self, preferences: Preferences) -> None:
        """Write all of it or nothing (PreferencesError with a sentence if the disk refuses)."""
        data = json.dumps(preferences.to_dict(), indent=2).encode() + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            fsync_dir(self.path.parent)
        except OSError as error:
            raise PreferencesError(f"Your choice could not be saved to {self.path} ({error.strerror}).") from None
        self.problem = ""

    def choose_model(self, option_id: str) -> Preferences:
        """Remember the model that answers."""
        with _lock(self.path):
            return self._write(replace(self.load(), active_model=option_id))

    def add_model(self, path: str) -> Preferences:
        """Remember a GGUF file added by path (once)."""
        with _lock(self.path):
            current = self.load()
            if path in current.added_models:
                return current
            return self._write(replace(current, added_models=(*current.added_models, path)))

    def _write(self, preferences: Preferences) -> Preferences:
        self.save(preferences)
        return preferences


def _lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path.resolve(), threading.Lock())
