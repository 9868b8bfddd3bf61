"""An Ollama stand-in on loopback: `GET /api/tags` lists its models, and `/v1/...` is the
OpenAI-compatible API of `FakeOpenAI` (chat completions, /v1/models), as Ollama serves both."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.openai_server import FakeOpenAI, Recorded

MODELS = {"qwen2.5:1.5b": 32768, "llama3.2:1b": 131072}


class FakeOllama(FakeOpenAI):
    """`with FakeOllama() as ollama:` → `ollama.host` is what OLLAMA_HOST would say."""

    def __init__(self, models: dict[str, int] | None = None) -> None:
        super().__init__()
        self.script.models = dict(models if models is not None else MODELS)

    def __enter__(self) -> FakeOllama:
        super().__enter__()
        return self

    @property
    def host(self) -> str:
        return self.base_url.removesuffix("/v1")

    @property
    def tag_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/api/tags"]

    def tags(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2026-01-01T00:00:00Z",
                    "size": 986_061_892,
                    "digest": "0" * 64,
                    "details": {
                        "format": "gguf",
                        "family": name.split(":")[0],
                        "parameter_size": name.split(":")[-1].upper(),
                        "quantization_level": "Q4_K_M",
                    },
                }
                for name in self.script.models
            ]
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        openai_handler: Any = super()._handler()
        fake = self

        class Handler(openai_handler):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/api/tags":
                    fake.requests.append(Recorded(self.path, dict(self.headers), {}))
                    self._json(200, fake.tags())
                elif self.path == "/":
                    body = b"Ollama is running"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    super().do_GET()

        return Handler
