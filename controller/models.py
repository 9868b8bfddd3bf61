"""Which models can answer, which one does, and how to get more: GGUF files, Ollama, Groq.

`options()` is what a model picker lists: the GGUF files, Ollama's models, and the chat models
Groq and the OpenAI-compatible server (OPENAI_API_BASE) serve, each endpoint's configured model
first. `active()` is what the chat turn uses: the choice saved on the Models page if that model
is still available, else what the settings say (LLM_PROVIDER / LOCAL_MODEL_PATH / bundled).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, NamedTuple, TypeVar

from model.preferences import PreferencesStore
from settings import Settings
from utils import downloads, ollama
from utils.downloads import Downloaded, DownloadFailed
from utils.gguf import ModelFileError, Recommended, check_gguf, gguf_files, is_gguf, load_recommended
from utils.local_server import BUNDLED_FILE, find_bundled_model
from utils.providers import ModelListUnavailable, chat_models, fetch_models

__all__ = ["DownloadFailed", "ModelChoiceError", "ModelFileError", "ModelOption", "ModelsController", "Recommended"]

Kind = Literal["local", "ollama", "groq", "openai"]
RemoteKind = Literal["groq", "openai"]

# How long an answer about Ollama (its models, or that nothing is there) is trusted.
OLLAMA_CACHE_SECONDS = 15.0
# How long a remote endpoint's model list (or that it could not be had) is trusted.
REMOTE_CACHE_SECONDS = 60.0
# Once connected, Groq lists its models in a fraction of a second; a stuck endpoint gets this long.
REMOTE_READ_TIMEOUT = 2.0


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


T = TypeVar("T")


class _Kept(Generic[T]):
    """Answers about an endpoint (its models, or that it cannot be asked), per endpoint and
    shared by sessions for `seconds`, so pages do not ask on every rerun."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._answers: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, ask: Callable[[], T]) -> T:
        with self._lock:
            seen = self._answers.get(key)
            if seen and time.monotonic() - seen[0] < self.seconds:
                return seen[1]
        answer = ask()  # outside the lock: others read the old answer meanwhile
        with self._lock:
            self._answers[key] = (time.monotonic(), answer)
        return answer

    def forget(self, key: str) -> None:
        with self._lock:
            self._answers.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


@dataclass(frozen=True)
class Served:
    """What a remote endpoint's /models said."""

    models: tuple[str, ...] = ()  # the chat models it serves, sorted
    failure: str = ""  # why the list could not be had, in a few words ("" when it could)


class _Endpoint(NamedTuple):
    kind: RemoteKind
    api_base: str
    api_key: str  # "" when none is needed
    model: str  # the configured one (GROQ_MODEL / OPENAI_MODEL), "" if none


ollama_cache: _Kept[list[ollama.OllamaModel] | None] = _Kept(OLLAMA_CACHE_SECONDS)
remote_cache: _Kept[Served] = _Kept(REMOTE_CACHE_SECONDS)


class ModelsController:
    def __init__(self, settings: Settings, *, fetch_timeout: float = 0.3) -> None:
        self.settings = settings
        self.fetch_timeout = fetch_timeout
        self.preferences = PreferencesStore(settings.preferences_file)
        self.last_download: Downloaded | None = None  # size and SHA-256 of the last download() here

    # what can answer --------------------------------------------------------
    def options(self) -> list[ModelOption]:
        """Everything that can answer now: GGUF files, Ollama's models, the remote endpoints' models."""
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
        host = self.settings.ollama_host
        return ollama_cache.get(host, lambda: ollama.list_models(host, self.fetch_timeout))

    def ollama_options(self) -> list[ModelOption]:
        api_base = ollama.api_base(self.settings.ollama_host)
        return [ModelOption("ollama", m.name, _ollama_label(m), api_base=api_base) for m in self.ollama_models() or []]

    def look_for_ollama_again(self) -> None:
        ollama_cache.forget(self.settings.ollama_host)

    def remote_options(self) -> list[ModelOption]:
        """Groq's chat models when GROQ_API_KEY is set, then the OpenAI-compatible server's."""
        return [*self.groq_options(), *self.openai_options()]

    def groq_options(self) -> list[ModelOption]:
        """GROQ_MODEL first, then every other chat model Groq serves (see `served`)."""
        return self._remote_options("groq")

    def openai_options(self) -> list[ModelOption]:
        """OPENAI_MODEL first, then every other chat model the server at OPENAI_API_BASE serves."""
        return self._remote_options("openai")

    def served(self, kind: RemoteKind) -> Served | None:
        """The chat models the endpoint's /models lists (None when `kind` is not configured).

        Asked with a `fetch_timeout` to connect and REMOTE_READ_TIMEOUT to answer; the answer,
        a failure too, is kept for REMOTE_CACHE_SECONDS per endpoint and key, for every session.
        Which entries can chat: `utils.providers.is_chat_model`.
        """
        endpoint = self._endpoint(kind)
        if endpoint is None:
            return None
        # another key may see other models, so it is part of the cache key: hashed, never kept as is
        key = f"{endpoint.api_base} {hashlib.sha256(endpoint.api_key.encode()).hexdigest()[:16]}"

        def ask() -> Served:
            try:
                entries = fetch_models(
                    endpoint.api_base, endpoint.api_key, REMOTE_READ_TIMEOUT, connect_timeout=self.fetch_timeout
                )
            except ModelListUnavailable as error:
                return Served(failure=str(error))
            return Served(tuple(chat_models(entries)))

        return remote_cache.get(key, ask)

    def remote_problem(self, kind: RemoteKind) -> str:
        """A sentence when the endpoint's model list could not be had ("" otherwise)."""
        endpoint, served = self._endpoint(kind), self.served(kind)
        if endpoint is None or served is None or not served.failure:
            return ""
        if kind == "groq":
            return (
                f"Groq's model list could not be fetched ({served.failure}); "
                f"only {endpoint.model} (GROQ_MODEL) is offered."
            )
        where = f"The model list of {endpoint.api_base} could not be fetched ({served.failure})"
        if endpoint.model:
            return f"{where}; only {endpoint.model} (OPENAI_MODEL) is offered."
        return f"{where}; none of its models is offered until it answers, or OPENAI_MODEL is set in .env."

    def _endpoint(self, kind: str) -> _Endpoint | None:
        """Where `kind`'s models come from, if it is a remote kind and configured."""
        s = self.settings
        if kind == "groq" and s.groq_api_key:
            return _Endpoint("groq", s.groq_api_base, s.groq_api_key, s.groq_model)
        if kind == "openai" and s.openai_api_base:
            return _Endpoint("openai", s.openai_api_base, s.openai_api_key, s.openai_model)
        return None

    def _remote_options(self, kind: RemoteKind) -> list[ModelOption]:
        endpoint, served = self._endpoint(kind), self.served(kind)
        if endpoint is None or served is None:
            return []
        # the configured model first and always, even when the list cannot be had or leaves it out
        models = dict.fromkeys(m for m in (endpoint.model, *served.models) if m)
        return [_remote(kind, model, endpoint.api_base) for model in models]

    # which one answers ------------------------------------------------------
    def default(self) -> ModelOption:
        """What the settings alone choose (what ran before the Models page existed)."""
        s = self.settings
        if s.llm_provider == "groq":
            return _remote("groq", s.groq_model, s.groq_api_base)
        if s.llm_provider == "openai":
            return _remote("openai", s.openai_model, s.openai_api_base)
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
        return (self.option(saved) if saved else None) or self.default()

    def option(self, option_id: str) -> ModelOption | None:
        """The option with this id if it can answer now, else None.

        Only the id's kind is looked at: a GGUF file never waits for Ollama or Groq, and a
        configured remote model (GROQ_MODEL, OPENAI_MODEL) is found without asking its endpoint.
        """
        kind, _, model = option_id.partition(":")
        endpoint = self._endpoint(kind)
        if endpoint is not None and model and model == endpoint.model:
            return _remote(endpoint.kind, model, endpoint.api_base)
        candidates = {
            "local": self.local_options,
            "ollama": self.ollama_options,
            "groq": self.groq_options,
            "openai": self.openai_options,
        }.get(kind, list)()
        return next((option for option in candidates if option.id == option_id), None)

    def choose(self, option_id: str) -> ModelOption:
        """Make `option_id` the model that answers, from now on and after a restart."""
        option = self.option(option_id)
        if option is None:
            raise ModelChoiceError(
                "That model is not available any more (file removed, Ollama stopped, or no longer served); "
                "choose another."
            )
        self.preferences.choose_model(option.id)
        return option

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


def _remote(kind: RemoteKind, model: str, api_base: str) -> ModelOption:
    where = "Groq" if kind == "groq" else api_base
    return ModelOption(kind, model, f"{model or 'no model'} on {where}", api_base=api_base)


def _ollama_label(model: ollama.OllamaModel) -> str:
    details = [d for d in (model.parameter_size, model.quantization) if d]
    if model.size:
        details.append(f"{model.size / 1e9:.2f} GB")
    return f"{model.name} (Ollama{', ' if details else ''}{', '.join(details)})"
