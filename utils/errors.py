"""What can go wrong talking to a model, as exceptions the view can turn into a sentence."""

from __future__ import annotations

import re


class ProviderError(Exception):
    """A model call failed; `str(error)` is a sentence for the user that says what to do."""

    retryable = True


class KeyRefused(ProviderError):
    retryable = False


class RateLimited(ProviderError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelUnavailable(ProviderError):
    retryable = False

    def __init__(self, message: str, available: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.available = available


class Unreachable(ProviderError):
    pass


class StreamInterrupted(ProviderError):
    """The answer broke off after some of it had arrived (the turn keeps what had)."""


class LocalModelFailed(ProviderError):
    retryable = False


def _retry_after(error: Exception) -> float | None:
    """The wait a 429 asked for: the retry-after header, or Groq's "try again in 7.5s"."""
    response = getattr(error, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    if header:
        try:
            return float(header)
        except ValueError:
            pass
    match = re.search(r"try again in (?:(\d+)m)?([\d.]+)s", str(error))
    if match:
        return float(match.group(1) or 0) * 60 + float(match.group(2))
    return None


def is_provider_failure(error: BaseException) -> bool:
    """True for what a model call can fail with (the SDK, the network); False for a bug of ours."""
    import httpx  # imported on the first failure, not when a page starts
    import openai

    return isinstance(error, (ProviderError, openai.OpenAIError, httpx.HTTPError, ConnectionError, TimeoutError))


def translate(error: Exception, provider: str, model: str, started: bool = False) -> ProviderError:
    """Turn an OpenAI-SDK (or network) exception into a ProviderError that speaks to the user;
    `started`: some of the answer had arrived."""
    import httpx
    import openai

    if isinstance(error, ProviderError):
        return error
    where = {
        "groq": "Groq",
        "openai": "the OpenAI-compatible server",
        "local": "the embedded model",
        "ollama": "Ollama",
    }.get(provider, provider)
    key_hint = {"groq": "GROQ_API_KEY", "openai": "OPENAI_API_KEY"}.get(provider, "the API key")
    if started and isinstance(error, (openai.APIError, httpx.HTTPError, ConnectionError, TimeoutError)):
        return StreamInterrupted(f"The answer from {where} broke off before it was complete. Press Retry to ask again.")
    if isinstance(error, openai.AuthenticationError):
        return KeyRefused(f"{where} refused the API key (401). Check {key_hint} in .env, then reload the page.")
    if isinstance(error, openai.RateLimitError):
        wait = _retry_after(error)
        when = f"in {wait:.0f} s" if wait is not None else "in a moment"
        return RateLimited(f"{where} is rate-limiting requests (429). Try again {when}.", retry_after=wait)
    body = str(error).lower()
    if isinstance(error, openai.NotFoundError) or "model_decommissioned" in body or "model_not_found" in body:
        return ModelUnavailable(f"{where} does not serve the model {model!r}. Choose another model in .env.")
    if isinstance(error, openai.APITimeoutError):
        return Unreachable(f"{where} did not answer in time. Check your connection and press Retry.")
    if isinstance(error, (openai.APIConnectionError, httpx.HTTPError, ConnectionError)):
        return Unreachable(f"Could not reach {where}. Check your connection (and the API base URL), then press Retry.")
    if isinstance(error, openai.APIStatusError):
        return ProviderError(f"{where} failed with an error ({error.status_code}). Press Retry to ask again.")
    return ProviderError(f"{where} failed ({type(error).__name__}). Press Retry to ask again.")
