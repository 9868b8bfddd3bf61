"""One OpenAI-compatible path to every model, so LlamaIndex's OpenAIAgent works with each.

`describe()` says which provider and model are active without touching the network;
`build_llm()` makes the LlamaIndex LLM for a chat turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from llama_index.llms.groq import Groq
from llama_index.llms.openai_like import OpenAILike

from settings import Settings
from utils.local_server import LocalModelServer

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


def list_models(api_base: str, api_key: str, timeout: float = 5.0) -> dict[str, dict]:
    """The endpoint's /models answer by model id; empty if it cannot be had."""
    try:
        response = httpx.get(f"{api_base}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)
        if response.status_code != 200:
            return {}
        data = response.json().get("data", [])
    except (httpx.HTTPError, ValueError, AttributeError):
        return {}  # the chat call itself will report a real connection problem
    return {str(m["id"]): m for m in data if isinstance(m, dict) and "id" in m}


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


def build_llm(settings: Settings, local: LocalModelServer | None = None) -> OpenAILike:
    """The LLM for this configuration. For the embedded model, `local` must be started."""
    common = dict(
        is_chat_model=True,
        is_function_calling_model=True,
        timeout=settings.request_timeout,
        max_retries=0,  # retries are decided by the controller, which knows the wait asked for
        max_tokens=settings.max_tokens,
    )
    if settings.llm_provider == "groq":
        window = fetch_context_window(settings.groq_api_base, settings.groq_model, settings.groq_api_key)
        return Groq(
            model=settings.groq_model,
            api_key=settings.groq_api_key,
            api_base=settings.groq_api_base,
            context_window=window,
            **common,
        )
    if settings.llm_provider == "openai":
        key = settings.openai_api_key or "not-needed"
        window = fetch_context_window(settings.openai_api_base, settings.openai_model, key)
        return OpenAILike(
            model=settings.openai_model,
            api_base=settings.openai_api_base,
            api_key=key,
            context_window=window,
            **common,
        )
    if local is None or local.state != "ready":
        raise RuntimeError("build_llm needs a started LocalModelServer for the embedded model")
    return OpenAILike(
        model=local.model_name,
        api_base=local.base_url,
        api_key=local.api_key,
        context_window=local.context_window,
        **common,
    )
