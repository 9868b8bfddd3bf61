"""Ollama on this machine (or OLLAMA_HOST): which models it has, and where its OpenAI-compatible API is.

Asking is quick when nothing listens: the connection is refused at once on loopback, and
a host that does not answer gets `connect_timeout` (0.3 s by default), never more.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

DEFAULT_PORT = 11434
# Once connected, a real Ollama lists its models in milliseconds; a stuck server gets this long.
READ_TIMEOUT = 1.0


@dataclass(frozen=True)
class OllamaModel:
    name: str  # what Ollama calls it, e.g. "qwen2.5:1.5b"; the model id for its API
    size: int = 0  # bytes on disk
    parameter_size: str = ""  # e.g. "1.5B"
    quantization: str = ""  # e.g. "Q4_K_M"


def base_url(host: str) -> str:
    """OLLAMA_HOST as Ollama itself accepts it ("0.0.0.0", "localhost:11434", "http://host:port")
    turned into a URL to connect to."""
    host = host.strip().rstrip("/") or f"127.0.0.1:{DEFAULT_PORT}"
    if "://" not in host:
        host = "http://" + host
    parts = urlsplit(host)
    name = parts.hostname or "127.0.0.1"
    if name == "0.0.0.0":  # a listening address, not one to connect to
        name = "127.0.0.1"
    if ":" in name:
        name = f"[{name}]"  # IPv6
    port = parts.port or DEFAULT_PORT
    return f"{parts.scheme}://{name}:{port}{parts.path}"


def api_base(host: str) -> str:
    """Ollama's OpenAI-compatible API (any API key works)."""
    return base_url(host) + "/v1"


def list_models(host: str, connect_timeout: float = 0.3) -> list[OllamaModel] | None:
    """The models Ollama at `host` has pulled, or None when no Ollama answers there."""
    try:
        url = base_url(host)  # ValueError for a port that is not a number
        response = httpx.get(
            url + "/api/tags",
            timeout=httpx.Timeout(READ_TIMEOUT, connect=connect_timeout),
            # loading the CA bundle costs ~30 ms, far more than asking: only https needs it
            verify=url.startswith("https://"),
        )
        if response.status_code != 200:
            return None
        entries = response.json().get("models")
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, AttributeError):
        return None  # nothing listens, or something that is not Ollama
    if not isinstance(entries, list):
        return None
    models = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name") or entry.get("model"), str):
            continue
        details = entry.get("details")
        if not isinstance(details, dict):
            details = {}
        size = entry.get("size")
        models.append(
            OllamaModel(
                name=entry.get("name") or entry["model"],
                size=size if isinstance(size, int) else 0,
                parameter_size=str(details.get("parameter_size") or ""),
                quantization=str(details.get("quantization_level") or ""),
            )
        )
    return sorted(models, key=lambda m: m.name)
