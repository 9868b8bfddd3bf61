"""Which models can answer, which one does, and how to get more: GGUF files, Ollama, Groq.

`active()` is what the chat turn uses: the choice saved on the Models page if that model is
still available, else what the settings say (LLM_PROVIDER / LOCAL_MODEL_PATH / bundled).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from model.preferences import PreferencesStore
from settings import Settings
from utils import downloads, ollama
from utils.downloads import Downloaded, DownloadFailed
from utils.gguf import ModelFileError, Recommended, check_gguf, gguf_files, is_gguf, load_recommended
from utils.local_server import BUNDLED_FILE, find_bundled_model

__all__ = ["DownloadFailed", "ModelChoiceError", "ModelFileError", "ModelOption", "ModelsController", "Recommended"]

Kind = Literal["local", "ollama", "groq", "openai"]

# How long an answer about Ollama (its models, or that nothing is there) is trusted.
OLLAMA_CACHE_SECONDS = 15.0


class ModelChoiceError(Exception):
    """The chosen model cannot be used now; `str(error)` is a sentence for the user."""


@dataclass(frozen=True)
class ModelOption:
    kind: Kind
    model: str  # the id sent to the endpoint; for local, the GGUF file name
    label: str  # for people, e.g. "SmolLM2-135M-Instruct.Q4_1 (bundled, 0.10 GB)"
    path: str = ""  # the .gguf file, for kind "local"
    api_base: str = ""  # for ollama ("<host>/v1"), groq, openai

    @property
    def id(self) -> str:
        """Stable across restarts: what the preferences file keeps."""
        return f"{self.kind}:{self.path or self.model}"


class _OllamaCache:
    """Ollama's model list per host, shared by sessions, so pages do not ask on every rerun."""

    def __init__(self) -> None:
        self._answers: dict[str, tuple[float, list[ollama.OllamaModel] | None]] = {}
        self._lock = threading.Lock()

    def get(self, host: str, connect_timeout: float) -> list[ollama.OllamaModel] | None:
        with self._lock:
            seen = self._answers.get(host)
            if seen and time.monotonic() - seen[0] < OLLAMA_CACHE_SECONDS:
                return seen[1]
        models = ollama.list_models(host, connect_timeout)  # outside the lock: others read the old answer
        with self._lock:
            self._answers[host] = (time.monotonic(), models)
        return models

    def forget(self, host: str) -> None:
        with self._lock:
            self._answers.pop(host, None)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


ollama_cache = _OllamaCache()


class ModelsController:
    def __init__(self, settings: Settings, *, fetch_timeout: float = 0.3) -> None:
        self.settings = settings
        self.fetch_timeout = fetch_timeout
        self.preferences = PreferencesStore(settings.preferences_file)
        self.last_download: Downloaded | None = None  # size and SHA-256 of the last download() here

    # what can answer --------------------------------------------------------
    def options(self) -> list[ModelOption]:
        """Everything that can answer now: GGUF files, Ollama's models, the configured remote API."""
        return [*self.local_options(), *self.ollama_options(), *self.remote_options()]

    def local_options(self) -> list[ModelOption]:
        """The GGUF files the embedded server can run: bundled, LOCAL_MODEL_PATH, models folder, added."""
        found: dict[Path, ModelOption] = {}
        bundled = find_bundled_model()
        if bundled is not None:
            found[bundled.resolve()] = _local(bundled.resolve(), "bundled")
        if self.settings.local_model_path and is_gguf(Path(self.settings.local_model_path).expanduser()):
            path = Path(self.settings.local_model_path).expanduser().resolve()
            found.setdefault(path, _local(path, "LOCAL_MODEL_PATH"))
        for path in gguf_files(self.settings.models_dir):
            found.setdefault(path, _local(path, "models folder"))
        for added in self.preferences.load().added_models:
            if is_gguf(Path(added)):
                found.setdefault(Path(added), _local(Path(added), "added"))
        return list(found.values())

    def ollama_models(self) -> list[ollama.OllamaModel] | None:
        """Ollama's models, or None when no Ollama answers at OLLAMA_HOST (cached for a few seconds)."""
        return ollama_cache.get(self.settings.ollama_host, self.fetch_timeout)

    def ollama_options(self) -> list[ModelOption]:
        api_base = ollama.api_base(self.settings.ollama_host)
        return [ModelOption("ollama", m.name, _ollama_label(m), api_base=api_base) for m in self.ollama_models() or []]

    def look_for_ollama_again(self) -> None:
        ollama_cache.forget(self.settings.ollama_host)

    def remote_options(self) -> list[ModelOption]:
        """The Groq model when a key is set; the OpenAI-compatible server when one is configured."""
        s = self.settings
        found = []
        if s.groq_api_key:
            found.append(ModelOption("groq", s.groq_model, f"{s.groq_model} on Groq", api_base=s.groq_api_base))
        if s.openai_api_base and s.openai_model:
            found.append(
                ModelOption(
                    "openai", s.openai_model, f"{s.openai_model} on {s.openai_api_base}", api_base=s.openai_api_base
                )
            )
        return found

    # which one answers ------------------------------------------------------
    def default(self) -> ModelOption:
        """What the settings alone choose (what ran before the Models page existed)."""
        s = self.settings
        if s.llm_provider == "groq":
            return ModelOption("groq", s.groq_model, f"{s.groq_model} on Groq", api_base=s.groq_api_base)
        if s.llm_provider == "openai":
            return ModelOption(
                "openai",
                s.openai_model,
                f"{s.openai_model or 'no model'} on {s.openai_api_base}",
                api_base=s.openai_api_base,
            )
        if s.local_model_path:
            path = Path(s.local_model_path).expanduser()
            return _local(path.resolve() if path.is_file() else path, "LOCAL_MODEL_PATH")
        bundled = find_bundled_model()
        if bundled is None:  # not installed: the embedded server says so when it is asked to start
            return ModelOption("local", BUNDLED_FILE, "SmolLM2-135M-Instruct (bundled, not installed)")
        return _local(bundled.resolve(), "bundled")

    def saved_choice(self) -> str:
        """The id chosen on the Models page, available or not ("" if none)."""
        return self.preferences.load().active_model

    def active(self) -> ModelOption:
        """The saved choice if it can answer now, else the settings' default."""
        saved = self.saved_choice()
        if saved:
            kind = saved.partition(":")[0]
            # only the saved option's kind is looked at: choosing a GGUF file never waits for Ollama
            candidates = {
                "local": self.local_options,
                "ollama": self.ollama_options,
                "groq": self.remote_options,
                "openai": self.remote_options,
            }.get(kind, list)()
            for option in candidates:
                if option.id == saved:
                    return option
        return self.default()

    def choose(self, option_id: str) -> ModelOption:
        """Make `option_id` the model that answers, from now on and after a restart."""
        for option in self.options():
            if option.id == option_id:
                self.preferences.choose_model(option.id)
                return option
        raise ModelChoiceError(
            "That model is not available any more (file removed, or Ollama stopped); choose another."
        )

    # getting more -----------------------------------------------------------
    def add_path(self, path: str) -> ModelOption:
        """Add a GGUF file already on this machine (ModelFileError with a sentence if it cannot be used)."""
        resolved = check_gguf(path)
        for option in self.local_options():
            if option.path == str(resolved):
                return option
        self.preferences.add_model(str(resolved))
        return _local(resolved, "added")

    def download(self, url: str, on_progress: Callable[[int, int | None], None]) -> ModelOption:
        """Download a GGUF file into the models folder, resuming an earlier cut (DownloadFailed if not)."""
        done = downloads.download(url, self.settings.models_dir, on_progress, timeout=self.settings.request_timeout)
        self.last_download = done
        return _local(done.path.resolve(), "models folder")

    def recommended(self) -> list[Recommended]:
        return load_recommended()

    def downloaded(self, model: Recommended) -> bool:
        """True when the recommended model's file is in the models folder."""
        return is_gguf(self.settings.models_dir / model.file)

    def unfinished(self) -> list[tuple[str, int]]:
        """(file name, bytes so far) of downloads that were cut; downloading the same link resumes them."""
        return downloads.partial_downloads(self.settings.models_dir)

    def discard(self, name: str) -> None:
        downloads.discard_partial(self.settings.models_dir, name)


def _local(path: Path, where: str) -> ModelOption:
    try:
        size = f", {path.stat().st_size / 1e9:.2f} GB"
    except OSError:
        size = ""
    return ModelOption("local", path.name, f"{path.name.removesuffix('.gguf')} ({where}{size})", path=str(path))


def _ollama_label(model: ollama.OllamaModel) -> str:
    details = [d for d in (model.parameter_size, model.quantization) if d]
    if model.size:
        details.append(f"{model.size / 1e9:.2f} GB")
    return f"{model.name} (Ollama{', ' if details else ''}{', '.join(details)})"
