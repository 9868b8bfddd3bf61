"""Pictures made from a prompt by an OpenAI-compatible /images/generations endpoint.

There is no local image model, so without IMAGE_API_BASE there is no image generation: `generate`
says so in a sentence, and nothing ever stands in for a picture. The request is
`{"model", "prompt", "n": 1, "size", "response_format": "b64_json"}`; the key travels only in the
Authorization header of that request. An endpoint that answers with a `url` instead (or that
refuses `response_format`, as gpt-image-1 does) still works: the picture is fetched from the
link, over http(s) only, size-capped, within the timeout, and without the key (the link usually
points at another host, a storage bucket). Whatever comes back must pass `images.check()`: bytes
that are not a picture are an error, never shown.

Each failure is an `ImageGenerationError` with one sentence: not configured, a refused key, a rate
limit (with its wait), a refused request (the endpoint's own words, trimmed, secrets removed), a
server error, a timeout, an address that does not answer, or an answer that holds no picture.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from utils.images import MB, ImageError, check

if TYPE_CHECKING:
    from settings import Settings

NOT_CONFIGURED = "Image generation needs an endpoint: set IMAGE_API_BASE (and IMAGE_MODEL, IMAGE_API_KEY) in .env."
MESSAGE_CHARS = 200  # of an endpoint's own error message, shown to the user
MAX_REDIRECTS = 3
NAME = "The image endpoint"


class ImageGenerationError(RuntimeError):
    """No picture was made; `str(error)` is one sentence for the user that says what to do."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds to wait, when a 429 said


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime: str
    revised_prompt: str  # the prompt as the endpoint rewrote it (DALL·E 3 does), or ""


def available(settings: Settings) -> bool:
    """Whether an image endpoint is configured (then the chat can offer the tool)."""
    return bool(settings.image_api_base)


def generate(prompt: str, settings: Settings, size: str = "1024x1024") -> GeneratedImage:
    """One picture for `prompt`; ImageGenerationError (one sentence) when none can be had."""
    if not available(settings):
        raise ImageGenerationError(NOT_CONFIGURED)
    if not prompt.strip():
        raise ImageGenerationError("Describe the picture you want; the prompt is empty.")
    deadline = time.monotonic() + settings.request_timeout
    body: dict[str, Any] = {"prompt": prompt, "n": 1, "size": size, "response_format": "b64_json"}
    if settings.image_model:
        body = {"model": settings.image_model, **body}
    answer = _post(body, settings, deadline)
    if answer is None:  # the endpoint refused response_format: ask again without it
        body.pop("response_format")
        answer = _post(body, settings, deadline)
    items = answer.get("data") if isinstance(answer, dict) else None
    item = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
    revised = item.get("revised_prompt")
    if isinstance(item.get("b64_json"), str):
        try:
            data = base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError):
            raise _no_picture() from None
    elif isinstance(item.get("url"), str):
        data = _download(item["url"], settings, deadline)
    else:
        raise _no_picture()
    try:
        checked = check(data, "generated image", settings.image_max_mb * MB, settings.image_max_megapixels * 1_000_000)
    except ImageError:
        raise _no_picture() from None
    return GeneratedImage(data, checked.mime, revised.strip() if isinstance(revised, str) else "")


# --- the request and its failures ---


def _post(body: dict[str, Any], settings: Settings, deadline: float) -> dict[str, Any] | None:
    """The endpoint's JSON answer; None when it refused `response_format` (ask again without it)."""
    headers = {"Authorization": f"Bearer {settings.image_api_key}"} if settings.image_api_key else {}
    url = f"{settings.image_api_base}/images/generations"
    limit = settings.image_max_mb * MB * 4 // 3 + MB  # the picture in base64, and room for the JSON around it
    try:
        timeout = _left(deadline, settings)
        with (
            httpx.Client() as client,
            client.stream("POST", url, json=body, headers=headers, timeout=timeout) as response,
        ):
            raw = _read(response, limit, deadline, settings)
    except httpx.TimeoutException:
        raise _timeout(settings) from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):  # refused, no such host, a bad URL
        raise ImageGenerationError(
            f"Could not reach the image endpoint at {_where(settings.image_api_base)}; "
            "check IMAGE_API_BASE in .env and that the server is running."
        ) from None
    code = response.status_code
    if code in (401, 403):
        raise ImageGenerationError(f"{NAME} refused the API key ({code}); check IMAGE_API_KEY in .env.")
    if code == 429:
        wait = _retry_after(response.headers.get("retry-after", ""))
        when = f"in {wait:.0f} s" if wait is not None else "in a minute"
        raise ImageGenerationError(f"{NAME} is rate-limiting requests (429); try again {when}.", retry_after=wait)
    if code == 404:
        raise ImageGenerationError(
            f"{NAME} has no model {settings.image_model!r} or no /images/generations (404); "
            "check IMAGE_MODEL and IMAGE_API_BASE in .env."
        )
    if 400 <= code < 500:
        message = _their_message(raw, settings)
        if "response_format" in body and "response_format" in message:
            return None
        said = f": {message}" if message else f" ({code})"
        raise ImageGenerationError(f"{NAME} refused the request{said}; change the prompt and try again.")
    if code >= 500:
        raise ImageGenerationError(f"{NAME} failed with an error ({code}); try again in a moment.")
    try:
        answer = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise _no_picture() from None
    if not isinstance(answer, dict):
        raise _no_picture()
    return answer


def _read(response: httpx.Response, limit: int, deadline: float, settings: Settings) -> bytes:
    """The body, up to `limit` bytes (more is no picture of ours), by the deadline."""
    body = bytearray()
    for chunk in response.iter_bytes():  # an answer that never ends stops at the cap
        body += chunk
        if len(body) > limit:
            raise _no_picture()
        if time.monotonic() > deadline:
            raise _timeout(settings)
    return bytes(body)


def _download(url: str, settings: Settings, deadline: float) -> bytes:
    """The picture behind the link the endpoint gave (no key sent), at most IMAGE_MAX_MB."""
    limit = settings.image_max_mb * MB
    try:
        with httpx.Client(follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).hostname:
                    raise _no_picture()
                with client.stream("GET", url, timeout=_left(deadline, settings)) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code >= 400:
                        raise ImageGenerationError(
                            f"{NAME} made a picture but its link failed ({response.status_code}); try again."
                        )
                    return _read(response, limit, deadline, settings)
    except httpx.TimeoutException:
        raise _timeout(settings) from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
        raise ImageGenerationError(f"{NAME} made a picture, but its link could not be read; try again.") from None
    raise _no_picture()  # more redirects than a storage link needs


def _left(deadline: float, settings: Settings) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout(settings)
    return httpx.Timeout(left)


def _timeout(settings: Settings) -> ImageGenerationError:
    return ImageGenerationError(
        f"{NAME} did not answer within {settings.request_timeout:g} s; try again, or raise REQUEST_TIMEOUT in .env."
    )


def _no_picture() -> ImageGenerationError:
    return ImageGenerationError(f"{NAME} answered, but not with a usable picture; try again, or check IMAGE_API_BASE.")


def _where(url: str) -> str:
    """An address for a message: scheme, host and port, never a user, password, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


def _retry_after(header: str) -> float | None:
    try:
        wait = float(header)
    except ValueError:
        return None
    return wait if wait >= 0 else None


def _their_message(raw: bytes, settings: Settings) -> str:
    """The endpoint's own error message: its first sentence, at most MESSAGE_CHARS, without secrets."""
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = re.sub(r"<[^>]*>", " ", raw[:10_000].decode("utf-8", "replace"))  # an HTML error page
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message", payload.get("detail", "")))
        payload = error.get("message", "") if isinstance(error, dict) else error
    text = " ".join(str(payload or "").split())
    for secret in settings.secrets:
        text = text.replace(secret, "•••")
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(first) > MESSAGE_CHARS:
        first = first[: MESSAGE_CHARS - 1].rstrip() + "…"
    return first.rstrip(".")
