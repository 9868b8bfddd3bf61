"""A real OpenAI-compatible HTTP server on loopback, standing in for Groq or any remote API.

It records every request (headers and JSON body), answers chat completions streamed or
not, can fail on purpose (`fail_next`), and can forward to a real upstream server (the
embedded llama.cpp server) so tests can see exactly what reached the model. Its /models
lists `script.models`, with any `script.model_fields`, unless `script.models_failure` or
`script.models_delay` says otherwise. A request that offers tools gets the next of
`script.tool_calls` as a streamed tool call instead of text.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""  # the request's bytes, for routes whose body is not JSON (multipart uploads)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])


@dataclass
class Reply:
    """What a registered route answers."""

    status: int
    content_type: str
    body: bytes


Route = Callable[[Recorded], Reply]


@dataclass
class Script:
    models: dict[str, int] = field(default_factory=lambda: {"test-model": 32768})
    reply: str = ""  # empty: echo the last user message
    chunk_delay: float = 0.0
    failures: list[str] = field(default_factory=list)  # consumed one per chat request
    retry_after: str = "1"
    # /models: extra fields per model id (e.g. {"whisper-large-v3": {"active": False}}),
    # how every /models request fails ("401", "500", "not-json"; "" answers), and a wait first
    model_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    models_failure: str = ""
    models_delay: float = 0.0
    # tool calls to make, one per request that offers tools, before answering: (name, arguments)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_titles: bool = False  # let the title request take queued failures too
    title: str | None = None  # the title to suggest (None: the first question, as a model might)


class FakeOpenAI:
    """`with FakeOpenAI() as api:` → api.base_url ends in /v1; api.requests records calls."""

    def __init__(self, upstream: str = "", upstream_key: str = "") -> None:
        self.script = Script()
        self.requests: list[Recorded] = []
        # Other endpoints (embeddings, images, audio) answer through functions a test registers,
        # keyed by the path after /v1: api.routes["/audio/speech"] = lambda request: Reply(...)
        self.routes: dict[str, Route] = {}
        self.upstream = upstream.rstrip("/")
        self.upstream_key = upstream_key
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        """Requests for answers; a new chat's title, asked for in the background after its first
        answer, is in `title_requests` (so a test never races it)."""
        return [r for r in self.requests if r.path.endswith("/chat/completions") and not _is_title_request(r.body)]

    @property
    def answer_requests(self) -> list[Recorded]:
        """Streamed requests for answers (each leg of an answer that called a tool included)."""
        return [r for r in self.chat_requests if r.body.get("stream")]

    @property
    def title_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions") and _is_title_request(r.body)]

    @property
    def models_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/models")]

    def fail_next(self, *kinds: str) -> None:
        """Queue failures: 401, 429, 404, 500, 'decommissioned', 'cut', 'hang', 'unfinished', 'close-delimited'."""
        self.script.failures.extend(kinds)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def reply_for(self, body: dict[str, Any]) -> str:
        users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        if self.script.title is not None and _is_title_request(body):
            return self.script.title
        if self.script.reply and not _is_title_request(body):
            return self.script.reply
        if _is_title_request(body) and users:
            # asked for a title: the stand-in names a conversation by its first question
            return users[-1].removeprefix("User: ").split("\n", 1)[0]
        return f"Echo: {users[-1] if users else ''}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(Recorded(self.path, dict(self.headers), {}))
                if self.path.rstrip("/").endswith("/models"):
                    self._models()
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def _models(self) -> None:
                if fake.script.models_delay:
                    fake._stop.wait(fake.script.models_delay)  # ends at once when the server stops
                failure = fake.script.models_failure
                if failure == "401":
                    self._json(401, {"error": {"message": "Invalid API Key", "code": "invalid_api_key"}})
                elif failure == "500":
                    self._json(500, {"error": {"message": "internal error"}})
                elif failure == "not-json":
                    page = b"<html>a captive portal</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                elif failure:
                    raise ValueError(failure)
                else:
                    data = [
                        {"id": m, "object": "model", "owned_by": "test", "context_window": w}
                        | fake.script.model_fields.get(m, {})
                        for m, w in fake.script.models.items()
                    ]
                    self._json(200, {"object": "list", "data": data})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                route = fake.routes.get(urlsplit(self.path).path.removeprefix("/v1"))
                if route is not None:
                    self._routed(route, raw)
                    return
                body = json.loads(raw or b"{}")
                fake.requests.append(Recorded(self.path, dict(self.headers), body))
                if not self.path.endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                # a new chat's title is asked for in the background: it takes a queued failure only
                # when a test says so, so a failure meant for an answer is not spent on it
                titling = _is_title_request(body) and not fake.script.fail_titles
                failure = fake.script.failures.pop(0) if fake.script.failures and not titling else ""
                if failure:
                    self._fail(failure, body)
                elif fake.upstream:
                    self._forward(raw)
                elif body.get("stream") and body.get("tools") and fake.script.tool_calls:
                    self._stream_tool_call(*fake.script.tool_calls.pop(0), body.get("model", ""))
                elif body.get("stream"):
                    self._stream(fake.reply_for(body), body.get("model", ""), max_words=body.get("max_tokens"))
                else:
                    self._json(200, _completion(fake.reply_for(body), body.get("model", "")))

            def _routed(self, route: Route, raw: bytes) -> None:
                try:
                    body = (
                        json.loads(raw) if self.headers.get("Content-Type", "").startswith("application/json") else {}
                    )
                except ValueError:
                    body = {}
                request = Recorded(self.path, dict(self.headers), body, raw)
                fake.requests.append(request)
                reply = route(request)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _fail(self, kind: str, body: dict[str, Any]) -> None:
                model = body.get("model", "")
                if kind == "401":
                    self._json(
                        401,
                        {
                            "error": {
                                "message": "Invalid API Key",
                                "type": "invalid_request_error",
                                "code": "invalid_api_key",
                            }
                        },
                    )
                elif kind == "429":
                    self._json(
                        429,
                        {
                            "error": {
                                "message": f"Rate limit reached. Please try again in {fake.script.retry_after}s.",
                                "type": "tokens",
                                "code": "rate_limit_exceeded",
                            }
                        },
                        {"retry-after": fake.script.retry_after},
                    )
                elif kind == "404":
                    self._json(
                        404,
                        {
                            "error": {
                                "message": f"The model `{model}` does not exist",
                                "type": "invalid_request_error",
                                "code": "model_not_found",
                            }
                        },
                    )
                elif kind == "decommissioned":
                    self._json(
                        400,
                        {
                            "error": {
                                "message": f"The model `{model}` has been decommissioned",
                                "type": "invalid_request_error",
                                "code": "model_decommissioned",
                            }
                        },
                    )
                elif kind == "500":
                    self._json(500, {"error": {"message": "internal error"}})
                elif kind == "cut":
                    self._stream(fake.reply_for(body) * 3, model, cut_after=3)
                elif kind == "unfinished":  # a clean end of the body, but no finish_reason and no [DONE]
                    self._stream(fake.reply_for(body), model, unfinished=True)
                elif kind == "close-delimited":  # HTTP/1.1 with neither length nor chunks: the close ends it
                    self._close_delimited(fake.reply_for(body), model)
                elif kind == "hang":
                    fake._stop.wait(120)
                else:
                    raise ValueError(kind)

            def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _stream(
                self,
                text: str,
                model: str,
                cut_after: int | None = None,
                max_words: int | None = None,
                unfinished: bool = False,
            ) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")  # as Groq sends it: a cut is detectable
                self.send_header("Connection", "close")
                self.end_headers()
                words = [w + " " for w in text.split(" ")]
                words[-1] = words[-1].rstrip(" ")
                reason = "stop"
                if max_words is not None and len(words) > max_words:  # one word stands for one token
                    words, reason = words[:max_words], "length"
                for i, word in enumerate(words):
                    if cut_after is not None and i == cut_after:
                        self.wfile.flush()
                        time.sleep(0.2)  # let what was sent arrive, then the network drops mid-answer
                        self.connection.shutdown(2)
                        return
                    self._event(
                        {
                            "choices": [
                                {"index": 0, "delta": {"role": "assistant", "content": word}, "finish_reason": None}
                            ]
                        },
                        model,
                    )
                    if fake.script.chunk_delay:
                        time.sleep(fake.script.chunk_delay)
                if not unfinished:
                    self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}, model)
                    self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

            def _stream_tool_call(self, name: str, arguments: dict[str, Any], model: str) -> None:
                """A streamed answer that calls a tool, as OpenAI and Groq send one (the arguments in pieces)."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                text = json.dumps(arguments)
                call = {"index": 0, "id": f"call_{len(fake.requests)}", "type": "function"}
                first = {**call, "function": {"name": name, "arguments": ""}}
                self._event({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}}]}, model)
                for start in range(0, len(text), 16):
                    piece = {"index": 0, "function": {"arguments": text[start : start + 16]}}
                    self._event({"choices": [{"index": 0, "delta": {"tool_calls": [piece]}}]}, model)
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, model)
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

            def _close_delimited(self, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for word in text.split(" "):
                    payload = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
                    }
                    self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                    self.wfile.flush()
                self.close_connection = True

            def _event(self, payload: dict[str, Any], model: str) -> None:
                payload.update(
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                    }
                )
                self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _forward(self, raw: bytes) -> None:
                target = urlsplit(fake.upstream)
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                path = target.path.removesuffix("/v1") + self.path
                conn.request(
                    "POST",
                    path,
                    raw,
                    {"Content-Type": "application/json", "Authorization": f"Bearer {fake.upstream_key}"},
                )
                response = conn.getresponse()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Connection", "close")
                self.end_headers()
                while chunk := response.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                self.close_connection = True
                conn.close()

        return Handler


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _is_title_request(body: dict[str, Any]) -> bool:
    """The small call that asks for a new chat's title (controller.chat.TITLE_INSTRUCTIONS)."""
    system = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"), "")
    return isinstance(system, str) and system.startswith("You name conversations")
