"""Image generation against a real HTTP server on loopback (`FakeOpenAI` with an /images/generations
route per test): the picture comes back as base64 or behind a link, every failure is one sentence,
and the key goes in the Authorization header of that one request and nowhere else."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

import settings as app_settings
from controller.images import create_image, image_tool
from model.files import FileStore
from model.parts import ToolRun
from tests.openai_server import FakeOpenAI, Recorded, Reply
from utils.image_generation import NOT_CONFIGURED, GeneratedImage, ImageGenerationError, available, generate

KEY = "sk-test-9f8e7d6c5b4a"
PROMPT = "A red fox asleep in fresh snow, watercolour"


def picture(fmt: str = "PNG", colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, fmt)
    return buffer.getvalue()


def answer(status: int, payload: object, content_type: str = "application/json") -> Reply:
    return Reply(status, content_type, json.dumps(payload).encode())


def b64_answer(data: bytes, revised: str = "") -> Reply:
    item = {"b64_json": base64.b64encode(data).decode()} | ({"revised_prompt": revised} if revised else {})
    return answer(200, {"created": 1, "data": [item]})


def settings_for(tmp_path: Path, base: str, **env: str) -> app_settings.Settings:
    values = {"DATA_DIR": str(tmp_path), "IMAGE_API_BASE": base, "IMAGE_MODEL": "test-image", "IMAGE_API_KEY": KEY}
    return app_settings.from_environ(values | env, dotenv_path=tmp_path / "none")


def image_requests(api: FakeOpenAI) -> list[Recorded]:
    return [r for r in api.requests if r.path.endswith("/images/generations")]


@dataclass
class PictureHost:
    """Another server on loopback, as a storage bucket a `url` answer points at."""

    body: bytes
    status: int = 200
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def picture_host() -> Iterator[PictureHost]:
    host = PictureHost(picture())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            host.headers_seen.append(dict(self.headers))
            self.send_response(host.status)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(host.body)))
            self.end_headers()
            self.wfile.write(host.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host.url = f"http://127.0.0.1:{server.server_address[1]}/bucket/fox.png?signature=abc"
    yield host
    server.shutdown()
    server.server_close()


def refusal(fake_api: FakeOpenAI, tmp_path: Path, route: Callable[[Recorded], Reply], **env: str) -> str:
    """The sentence `generate` fails with when the endpoint answers with `route`."""
    fake_api.routes["/images/generations"] = route
    with pytest.raises(ImageGenerationError) as error:
        generate(PROMPT, settings_for(tmp_path, fake_api.base_url, **env))
    message = str(error.value)
    assert KEY not in message
    assert message.endswith(".") and "\n" not in message
    return message


# --- a picture comes back ---


def test_a_base64_picture_and_what_was_asked(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    png = picture()
    fake_api.routes["/images/generations"] = lambda request: b64_answer(png, "A sleeping red fox, in watercolour.")
    made = generate(PROMPT, settings_for(tmp_path, fake_api.base_url))
    assert made == GeneratedImage(png, "image/png", "A sleeping red fox, in watercolour.")
    [request] = image_requests(fake_api)
    assert request.body == {
        "model": "test-image",
        "prompt": PROMPT,
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in request.raw.decode()  # in the header only, never in the body


def test_a_picture_behind_a_link_is_fetched_without_the_key(
    fake_api: FakeOpenAI, tmp_path: Path, picture_host: PictureHost
) -> None:
    fake_api.routes["/images/generations"] = lambda request: answer(200, {"data": [{"url": picture_host.url}]})
    made = generate(PROMPT, settings_for(tmp_path, fake_api.base_url))
    assert (made.data, made.mime, made.revised_prompt) == (picture_host.body, "image/png", "")
    [seen] = picture_host.headers_seen
    assert "Authorization" not in seen and KEY not in json.dumps(seen)


def test_an_endpoint_that_refuses_response_format_is_asked_again_without_it(
    fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    png = picture()

    def route(request: Recorded) -> Reply:  # as gpt-image-1 answers: base64 always, the parameter refused
        if "response_format" in request.body:
            return answer(400, {"error": {"message": "Unknown parameter: 'response_format'.", "type": "invalid"}})
        return b64_answer(png)

    fake_api.routes["/images/generations"] = route
    assert generate(PROMPT, settings_for(tmp_path, fake_api.base_url)).data == png
    first, second = image_requests(fake_api)
    assert "response_format" in first.body and "response_format" not in second.body


def test_without_a_model_name_none_is_sent(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    fake_api.routes["/images/generations"] = lambda request: b64_answer(picture())
    generate(PROMPT, settings_for(tmp_path, fake_api.base_url, IMAGE_MODEL="", IMAGE_API_KEY=""))
    [request] = image_requests(fake_api)
    assert "model" not in request.body and "Authorization" not in request.headers


# --- failures, one sentence each ---


def test_not_configured_says_what_to_set(tmp_path: Path) -> None:
    settings = app_settings.from_environ({"DATA_DIR": str(tmp_path)}, dotenv_path=tmp_path / "none")
    assert not available(settings)
    with pytest.raises(ImageGenerationError) as error:
        generate(PROMPT, settings)
    assert str(error.value) == NOT_CONFIGURED
    assert NOT_CONFIGURED == (
        "Image generation needs an endpoint: set IMAGE_API_BASE (and IMAGE_MODEL, IMAGE_API_KEY) in .env."
    )


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key(fake_api: FakeOpenAI, tmp_path: Path, status: int) -> None:
    route = lambda request: answer(status, {"error": {"message": f"Incorrect API key provided: {KEY}."}})  # noqa: E731
    assert refusal(fake_api, tmp_path, route) == (
        f"The image endpoint refused the API key ({status}); check IMAGE_API_KEY in .env."
    )


def test_a_rate_limit_says_how_long_to_wait(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    def route(request: Recorded) -> Reply:
        return Reply(429, "application/json", b'{"error": {"message": "Rate limit"}}')

    fake_api.routes["/images/generations"] = route
    message = refusal(fake_api, tmp_path, route)
    assert message == "The image endpoint is rate-limiting requests (429); try again in a minute."


def test_a_rate_limit_with_retry_after(tmp_path: Path) -> None:
    class Handler(BaseHTTPRequestHandler):  # FakeOpenAI's routes set no headers: this one sends Retry-After
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(429)
            self.send_header("Retry-After", "20")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ImageGenerationError) as error:
            generate(PROMPT, settings_for(tmp_path, f"http://127.0.0.1:{server.server_address[1]}/v1"))
    finally:
        server.shutdown()
        server.server_close()
    assert str(error.value) == "The image endpoint is rate-limiting requests (429); try again in 20 s."
    assert error.value.retry_after == 20.0


def test_a_refused_prompt_gives_the_endpoints_first_sentence_without_secrets(
    fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    said = (
        f"Your request was rejected by the safety system (key {KEY}). "
        "It may contain text that is not allowed. Request id req_123."
    )
    route = lambda request: answer(400, {"error": {"message": said, "code": "content_policy_violation"}})  # noqa: E731
    assert refusal(fake_api, tmp_path, route) == (
        "The image endpoint refused the request: Your request was rejected by the safety system (key •••); "
        "change the prompt and try again."
    )


def test_an_unknown_model(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    route = lambda request: answer(404, {"error": {"message": "model not found"}})  # noqa: E731
    assert refusal(fake_api, tmp_path, route) == (
        "The image endpoint has no model 'test-image' or no /images/generations (404); "
        "check IMAGE_MODEL and IMAGE_API_BASE in .env."
    )


def test_a_server_error(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    route = lambda request: Reply(502, "text/html", b"<html>Bad Gateway</html>")  # noqa: E731
    assert refusal(fake_api, tmp_path, route) == (
        "The image endpoint failed with an error (502); try again in a moment."
    )


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\x13garbage" * 50),  # not JSON at all
        answer(200, {"data": [{"b64_json": base64.b64encode(b"hello, not a picture").decode()}]}),
        answer(200, {"data": [{"b64_json": "%%% not base64 %%%"}]}),
        answer(200, {"data": [{"b64_json": base64.b64encode(picture("PNG")[:60]).decode()}]}),  # cut short
        answer(200, {"data": []}),
        answer(200, ["a list"]),
        answer(200, {"data": [{"url": "file:///etc/passwd"}]}),
    ],
    ids=["not-json", "not-a-picture", "not-base64", "truncated", "no-data", "not-an-object", "file-url"],
)
def test_an_answer_without_a_usable_picture_is_never_shown(fake_api: FakeOpenAI, tmp_path: Path, reply: Reply) -> None:
    assert refusal(fake_api, tmp_path, lambda request: reply) == (
        "The image endpoint answered, but not with a usable picture; try again, or check IMAGE_API_BASE."
    )


def test_a_link_that_fails(fake_api: FakeOpenAI, tmp_path: Path, picture_host: PictureHost) -> None:
    picture_host.status = 403
    route = lambda request: answer(200, {"data": [{"url": picture_host.url}]})  # noqa: E731
    assert (
        refusal(fake_api, tmp_path, route) == "The image endpoint made a picture but its link failed (403); try again."
    )


def test_a_slow_endpoint_times_out(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    def slow(request: Recorded) -> Reply:
        time.sleep(3)
        return b64_answer(picture())

    started = time.monotonic()
    message = refusal(fake_api, tmp_path, slow, REQUEST_TIMEOUT="0.5")
    assert time.monotonic() - started < 2.5
    assert message == "The image endpoint did not answer within 0.5 s; try again, or raise REQUEST_TIMEOUT in .env."


def test_an_address_where_nothing_answers(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://user:{KEY}@127.0.0.1:{port}/v1"
    with pytest.raises(ImageGenerationError) as error:
        generate(PROMPT, settings_for(tmp_path, base))
    assert str(error.value) == (
        f"Could not reach the image endpoint at http://127.0.0.1:{port}; "
        "check IMAGE_API_BASE in .env and that the server is running."
    )


# --- the controller: a made picture is stored and said as a ToolRun ---


def test_create_image_stores_the_picture(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    png = picture()
    fake_api.routes["/images/generations"] = lambda request: b64_answer(png, "A fox, asleep.")
    settings = settings_for(tmp_path, fake_api.base_url)
    run = create_image(PROMPT, settings)
    assert (run.tool, run.input, run.output, run.ok) == ("generate_image", PROMPT, "A fox, asleep.", True)
    [sha256] = run.images
    store = FileStore(tmp_path / "files")
    assert store.get(sha256) == png
    info = store.info(sha256)
    assert info is not None and (info.name, info.kind) == ("a-red-fox-asleep-in-fresh-snow-watercolour.png", "png")


def test_a_webp_answer_is_kept_as_png(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    fake_api.routes["/images/generations"] = lambda request: b64_answer(picture("WEBP", "purple"))
    run = create_image(PROMPT, settings_for(tmp_path, fake_api.base_url))
    stored = FileStore(tmp_path / "files").get(run.images[0])
    assert stored.startswith(b"\x89PNG")


def test_the_agents_tool_records_each_run(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    runs: list[ToolRun] = []
    replies = [b64_answer(picture()), answer(400, {"error": {"message": "Prompt rejected by the safety system."}})]
    fake_api.routes["/images/generations"] = lambda request: replies.pop(0)
    tool = image_tool(settings_for(tmp_path, fake_api.base_url), runs.append)
    assert tool.metadata.name == "generate_image"  # type: ignore[attr-defined]

    said = str(tool.call(prompt=PROMPT))  # type: ignore[attr-defined]
    assert said.startswith("The picture was made and is shown to the user")
    assert runs[0].ok and len(runs[0].images) == 1

    said = str(tool.call(prompt="something refused"))  # type: ignore[attr-defined]
    expected = (
        "The image endpoint refused the request: Prompt rejected by the safety system; change the prompt and try again."
    )
    assert said == expected
    assert runs[1] == ToolRun("generate_image", "something refused", expected, ok=False)
    blobs = [p for p in (tmp_path / "files").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert len(blobs) == 1  # the refused one stored nothing


def test_without_an_endpoint_the_tool_says_what_to_set(tmp_path: Path) -> None:
    runs: list[ToolRun] = []
    settings = app_settings.from_environ({"DATA_DIR": str(tmp_path)}, dotenv_path=tmp_path / "none")
    tool = image_tool(settings, runs.append)
    assert str(tool.call(prompt=PROMPT)) == NOT_CONFIGURED  # type: ignore[attr-defined]
    assert runs == [ToolRun("generate_image", PROMPT, NOT_CONFIGURED, ok=False)]
    assert not (tmp_path / "files").exists()
