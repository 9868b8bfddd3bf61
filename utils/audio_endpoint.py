"""OpenAI-compatible audio endpoints (/audio/transcriptions, /audio/speech): one POST, and each way
it can fail as one sentence for the user.

The key goes in the Authorization header and nowhere else; what an endpoint says about a refused
request is trimmed, and any key in it (ours, or anything shaped like one) is blanked before it
reaches a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

DETAIL_CHARS = 160
_KEY_LIKE = re.compile(r"\b(?:sk|gsk|pk|key|api[-_]?key)[-_][A-Za-z0-9_\-]{8,}", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_TRY_AGAIN = re.compile(r"try again in (?:(\d+)m)?([\d.]+)s", re.IGNORECASE)


class AudioServiceError(RuntimeError):
    """Speech to text or text to speech failed; `str(error)` is one sentence for the user."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Endpoint:
    """Where to send audio work and how to name its settings in a sentence."""

    base: str
    key: str = field(repr=False)
    timeout: float
    secrets: tuple[str, ...] = field(repr=False)
    service: str  # "speech-to-text" or "text-to-speech"
    key_hint: str  # the setting that holds the key
    base_hint: str  # the setting that holds the address
    request_hint: str  # the settings a refused request should make the user check

    @property
    def where(self) -> str:
        """The host and port: never a user, password, path or query from the address."""
        parts = urlsplit(self.base)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host

    @property
    def name(self) -> str:
        return f"The {self.service} service at {self.where}"


def post(endpoint: Endpoint, path: str, error: type[AudioServiceError], what: str, **request: Any) -> httpx.Response:
    """POST to `{base}{path}`; a failure raises `error` with a sentence. `what` names what was sent."""
    headers = {"Authorization": f"Bearer {endpoint.key}"} if endpoint.key else {}
    name = endpoint.name
    try:
        response = httpx.post(f"{endpoint.base}{path}", headers=headers, timeout=endpoint.timeout, **request)
    except httpx.TimeoutException:
        raise error(
            f"{name} did not answer within {endpoint.timeout:g} s; try again, or raise REQUEST_TIMEOUT in .env."
        ) from None
    except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise error(
            f"Could not reach the {endpoint.service} service at {endpoint.where}; "
            f"check your connection and {endpoint.base_hint} in .env."
        ) from None
    except httpx.HTTPError:
        raise error(
            f"The connection to the {endpoint.service} service at {endpoint.where} broke off; try again."
        ) from None
    code = response.status_code
    if code < 400:
        return response
    detail = _detail(response, endpoint.secrets)
    said = f"{code}: {detail}" if detail else str(code)
    if code in (401, 403):
        raise error(f"{name} refused the API key ({code}); check {endpoint.key_hint} in .env.")
    if code == 429:
        wait = _retry_after(response, detail)
        when = f"in {wait:.0f} s" if wait is not None else "in a moment"
        raise error(f"{name} is rate-limiting requests (429); try again {when}.", retry_after=wait)
    if code == 404:
        raise error(f"{name} does not offer this ({said}); check {endpoint.base_hint} and {endpoint.request_hint}.")
    if code >= 500:
        raise error(f"{name} failed on its side ({code}); try again in a moment.")
    raise error(f"{name} refused the {what} ({said}); check {endpoint.request_hint} in .env, or try again.")


def _detail(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    """What the endpoint said about the failure: one line, short, with no key in it."""
    message: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            message = inner.get("message")
        elif isinstance(inner, str):
            message = inner
        else:
            message = body.get("detail") or body.get("message")
    if not message:
        message = _TAGS.sub(" ", response.text)
    text = " ".join(str(message).split())
    for secret in secrets:
        text = text.replace(secret, "[key]")
    text = _KEY_LIKE.sub("[key]", text).rstrip(".")
    return text[: DETAIL_CHARS - 1] + "…" if len(text) > DETAIL_CHARS else text


def _retry_after(response: httpx.Response, detail: str) -> float | None:
    """The wait a 429 asked for: the retry-after header, or Groq's "try again in 1m7.5s"."""
    header = response.headers.get("retry-after", "")
    try:
        return float(header)
    except ValueError:
        pass
    match = _TRY_AGAIN.search(detail)
    return float(match.group(1) or 0) * 60 + float(match.group(2)) if match else None
