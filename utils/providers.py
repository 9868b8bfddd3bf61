"""One OpenAI-compatible path to every model, so LlamaIndex's OpenAIAgent works with each.

`describe()` says which provider and model are active without touching the network;
`build_llm()` makes the LlamaIndex LLM for a chat turn.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from settings import Settings
from utils.local_server import LocalModelServer

if TYPE_CHECKING:  # LlamaIndex is heavy: imported when the first answer is asked for, not by Home
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse
    from llama_index.llms.openai_like import OpenAILike

# Used only when the endpoint's /models answer does not carry a context window.
KNOWN_CONTEXT_WINDOWS = {
    "openai/gpt-oss-120b": 131_072,
    "openai/gpt-oss-20b": 131_072,
    "llama-3.1-8b-instant": 131_072,
}
FALLBACK_CONTEXT_WINDOW = 8192


@dataclass(frozen=True)
class ProviderInfo:
    provider: str  # "local" | "groq" | "openai"
    label: str  # for people: "Embedded model", "Groq", "OpenAI-compatible server"
    model: str
    api_base: str
    problem: str = ""  # a sentence if the configuration cannot work as it is


def describe(settings: Settings, local: LocalModelServer | None = None) -> ProviderInfo:
    """Which provider and model this configuration uses; no network calls."""
    if settings.llm_provider == "groq":
        problem = "" if settings.groq_api_key else "LLM_PROVIDER is groq but GROQ_API_KEY is not set: add it to .env."
        return ProviderInfo("groq", "Groq", settings.groq_model, settings.groq_api_base, problem)
    if settings.llm_provider == "openai":
        problem = ""
        if not settings.openai_api_base or not settings.openai_model:
            problem = "Set OPENAI_API_BASE and OPENAI_MODEL in .env to use an OpenAI-compatible server."
        return ProviderInfo(
            "openai", "OpenAI-compatible server", settings.openai_model, settings.openai_api_base, problem
        )
    model = local.model_name if local else "SmolLM2-135M-Instruct"
    return ProviderInfo("local", "Embedded model (llama.cpp, on this machine)", model, "127.0.0.1")


class ModelListUnavailable(Exception):
    """The endpoint's /models answer could not be had; `str(error)` says why in a few words
    (never the key, never the endpoint's own text)."""


def fetch_models(
    api_base: str, api_key: str, timeout: float = 5.0, connect_timeout: float | None = None
) -> dict[str, dict]:
    """The endpoint's /models answer by model id (ModelListUnavailable if it cannot be had).
    Without `api_key` no Authorization header is sent (a local server may need none)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    connect = timeout if connect_timeout is None else connect_timeout
    # the reasons are our own words: an exception's text could carry the URL or the server's reply
    try:
        response = httpx.get(f"{api_base}/models", headers=headers, timeout=httpx.Timeout(timeout, connect=connect))
    except httpx.ConnectTimeout:
        raise ModelListUnavailable(f"no connection within {connect:g} s") from None
    except httpx.TimeoutException:
        raise ModelListUnavailable(f"no answer within {timeout:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL):
        raise ModelListUnavailable("no connection") from None
    if response.status_code in (401, 403):
        raise ModelListUnavailable(f"HTTP {response.status_code}: the API key was refused")
    if response.status_code != 200:
        raise ModelListUnavailable(f"HTTP {response.status_code}")
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        data = None
    if not isinstance(data, list):
        raise ModelListUnavailable("the answer is not a model list")
    return {str(m["id"]): m for m in data if isinstance(m, dict) and "id" in m}


def list_models(api_base: str, api_key: str, timeout: float = 5.0) -> dict[str, dict]:
    """The endpoint's /models answer by model id; empty if it cannot be had."""
    try:
        return fetch_models(api_base, api_key, timeout)
    except ModelListUnavailable:
        return {}  # the chat call itself will report a real connection problem


# What /models lists but cannot chat. Groq's entries carry only id, object, created, owned_by,
# active, context_window, public_apps (its API reference, "List models"; newer answers add
# max_completion_tokens): no field says "chat", so the id decides, as with vLLM or llama.cpp. Speech-to-text (whisper-*), text-to-speech (playai-tts*, canopylabs/orpheus-*,
# OpenAI's tts-1 / *-tts), guard classifiers (llama-guard-*, llama-prompt-guard-*,
# gpt-oss-safeguard-*), embeddings, rerankers, moderation and image models.
NOT_CHAT = re.compile(r"whisper|transcribe|(^|[/_.-])tts([/_.-]|$)|orpheus|guard|embed|rerank|moderation|dall-e")


def is_chat_model(entry: dict) -> bool:
    """Whether a /models entry is a model to chat with: not marked `"active": false` (Groq's
    flag) and, by its id, not a speech, guard, embedding, moderation or image model."""
    return entry.get("active") is not False and not NOT_CHAT.search(str(entry.get("id", "")).lower())


def chat_models(entries: dict[str, dict]) -> list[str]:
    """The ids of `fetch_models`' answer that can chat, sorted."""
    return sorted(model for model, entry in entries.items() if is_chat_model(entry))


# Facts about (endpoint, model), shared by sessions: an answer is kept for good, a failure
# for a minute (so an unreachable endpoint does not slow every rerun by the timeout).
_context_windows: dict[tuple[str, str], int] = {}
_unanswered: dict[tuple[str, str], float] = {}
RETRY_UNANSWERED_AFTER = 60.0


def fetch_context_window(api_base: str, model: str, api_key: str) -> int:
    """The model's real context window from the endpoint's /models answer (Groq sends
    `context_window`, vLLM `max_model_len`), else a known value, else a safe default."""
    known = KNOWN_CONTEXT_WINDOWS.get(model, FALLBACK_CONTEXT_WINDOW)
    if (api_base, model) in _context_windows:
        return _context_windows[(api_base, model)]
    if time.monotonic() - _unanswered.get((api_base, model), -RETRY_UNANSWERED_AFTER) < RETRY_UNANSWERED_AFTER:
        return known
    entry = list_models(api_base, api_key).get(model, {})
    for key in ("context_window", "max_model_len", "context_length"):
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            _context_windows[(api_base, model)] = value
            return value
    _unanswered[(api_base, model)] = time.monotonic()
    return known


def served_models(settings: Settings) -> list[str]:
    """The model ids the configured remote endpoint serves (empty for the embedded model)."""
    if settings.llm_provider == "groq":
        return list(list_models(settings.groq_api_base, settings.groq_api_key))
    if settings.llm_provider == "openai":
        return list(list_models(settings.openai_api_base, settings.openai_api_key or "not-needed"))
    return []


class _KeptOpen(httpx.BaseTransport):
    """The process's connection pool, lent to each answer's client: closing the client leaves
    the pool open, so turns reuse connections (no new TLS handshake with Groq each turn)."""

    def __init__(self) -> None:
        self._pool = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pool.handle_request(request)

    def close(self) -> None:
        pass  # shared by every answer of the process


_shared_pool = _KeptOpen()


class StreamWatch:
    """What one streamed answer needs beside its text: how the stream ended (`finish_reason`:
    "stop", "length"…, None while open or when it was cut) and a way to end it early.

    Its HTTP client remembers the answer's response: ending the stream early closes that
    connection, which is how llama.cpp's server (and any other) learns to stop generating.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self._responses: list[httpx.Response] = []
        self.http = httpx.Client(
            timeout=timeout, transport=_shared_pool, event_hooks={"response": [self._responses.append]}
        )
        self.finish_reason: str | None = None
        self.error: Exception | None = None  # what broke the stream, for the turn to raise
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """End the stream at its next chunk (called from the page's thread)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wrap(self, chunks: Iterator[ChatResponse]) -> Iterator[ChatResponse]:
        """Pass `chunks` through, noting the finish reason; stop at once when cancelled.

        A failure ends the stream quietly and is kept in `error`: the agent reads the stream in
        a thread of its own, which would otherwise print the traceback to the terminal too.
        """
        read_to_the_end = False
        try:
            for chunk in chunks:
                if self._cancelled.is_set():
                    break
                for choice in getattr(chunk.raw, "choices", None) or ():
                    if getattr(choice, "finish_reason", None):
                        self.finish_reason = str(choice.finish_reason)
                yield chunk
            else:
                read_to_the_end = True
        except Exception as error:  # noqa: BLE001 - handed to the turn, which raises it
            self.error = error
        finally:
            if not read_to_the_end:  # stopped, cut, or its reader gave up: never reuse that connection
                for response in self._responses:
                    response.close()
                self.http.close()
            # read to the end: an agent that called a tool asks again on the same client (see close)

    def close(self) -> None:
        """Let the answer's client go (its connections stay in the shared pool); once the turn is over."""
        self.http.close()


def _watched(base: type[OpenAILike]) -> type[OpenAILike]:
    """`base` whose streamed chats go through a StreamWatch (LlamaIndex hides the raw stream)."""
    from pydantic import PrivateAttr

    class Watched(base):  # type: ignore[valid-type, misc]
        _watch: StreamWatch | None = PrivateAttr(default=None)

        def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[ChatResponse]:
            chunks = super().stream_chat(messages, **kwargs)
            return self._watch.wrap(chunks) if self._watch is not None else chunks

    Watched.__name__ = f"Watched{base.__name__}"
    return Watched


_WATCHED: dict[str, type[OpenAILike]] = {}


def _llm_class(name: str) -> type[OpenAILike]:
    if name not in _WATCHED:
        if name == "groq":
            from llama_index.llms.groq import Groq

            _WATCHED[name] = _watched(Groq)
        else:
            from llama_index.llms.openai_like import OpenAILike

            _WATCHED[name] = _watched(OpenAILike)
    return _WATCHED[name]


def local_sampling(settings: Settings) -> dict[str, Any]:
    """Sampling for the embedded model, measured to keep a 135M model from looping (README)."""
    return {
        "temperature": settings.local_temperature,
        "max_tokens": settings.local_max_tokens,
        "additional_kwargs": {
            "top_p": settings.local_top_p,
            # llama.cpp's own sampling fields, outside the OpenAI schema
            "extra_body": {"min_p": settings.local_min_p, "repeat_penalty": settings.local_repeat_penalty},
        },
    }


JSON_MODE = {"type": "json_object"}  # OpenAI's JSON mode; llama.cpp's server and Groq accept it too


def build_llm(
    settings: Settings,
    local: LocalModelServer | None = None,
    watch: StreamWatch | None = None,
    *,
    temperature: float | None = None,
    json_mode: bool = False,
) -> OpenAILike:
    """The LLM for this configuration. For the embedded model, `local` must be started.
    With a `watch`, streamed answers report how they ended and can be stopped. `temperature`
    (an assistant's) replaces the default; `json_mode` asks the endpoint for one JSON object."""
    common: dict[str, Any] = dict(
        is_chat_model=True,
        is_function_calling_model=True,
        timeout=settings.request_timeout,
        max_retries=0,  # retries are decided by the controller, which knows the wait asked for
        max_tokens=settings.max_tokens,
    )
    if watch is not None:
        common["http_client"] = watch.http
    llm = _build(settings, local, common)
    if temperature is not None:
        llm.temperature = temperature
    if json_mode:
        llm.additional_kwargs = {**llm.additional_kwargs, "response_format": JSON_MODE}
    llm._watch = watch
    return llm


def _build(settings: Settings, local: LocalModelServer | None, common: dict[str, Any]) -> OpenAILike:
    if settings.llm_provider == "groq":
        window = fetch_context_window(settings.groq_api_base, settings.groq_model, settings.groq_api_key)
        return _llm_class("groq")(
            model=settings.groq_model,
            api_key=settings.groq_api_key,
            api_base=settings.groq_api_base,
            context_window=window,
            **common,
        )
    if settings.llm_provider == "openai":
        key = settings.openai_api_key or "not-needed"
        window = fetch_context_window(settings.openai_api_base, settings.openai_model, key)
        return _llm_class("openai")(
            model=settings.openai_model,
            api_base=settings.openai_api_base,
            api_key=key,
            context_window=window,
            **common,
        )
    if local is None or local.state != "ready":
        raise RuntimeError("build_llm needs a started LocalModelServer for the embedded model")
    return _llm_class("openai")(
        model=local.model_name,
        api_base=local.base_url,
        api_key=local.api_key,
        context_window=local.context_window,
        **{**common, **local_sampling(settings)},
    )
