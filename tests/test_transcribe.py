"""Speech to text: the real local Whisper (tiny.en from its package) on speech made by the real local
voice, and the endpoint played by `FakeOpenAI` on loopback, answering and failing as Groq does."""

from __future__ import annotations

import json
import socket
import threading
import time
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import httpx
import numpy as np
import pytest

import settings
from settings import Settings
from tests.openai_server import FakeOpenAI, Recorded, Reply
from tests.test_audio import at_rate, one_sentence
from tests.wording import misheard, words
from utils import speech, transcribe
from utils.audio import RATE, AudioError, check, wav_bytes
from utils.audio_endpoint import _retry_after
from utils.transcribe import ENGLISH_ONLY, LOCAL_ENGINE, NO_WORDS, TranscriptionError

SAID = "Please remind me to buy milk and bread on the way home tomorrow."
KEY = "gsk_test_0123456789abcdefTRANSCRIBE"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.from_environ({}, dotenv_path=tmp_path_factory.mktemp("env") / "none")


@pytest.fixture(scope="module")
def spoken(local: Settings) -> bytes:
    """SAID as the local voice's WAV (22.05 kHz)."""
    return speech.speak(SAID, local).data


def remote(tmp_path: Path, api: FakeOpenAI, **extra: str) -> Settings:
    env = {"TRANSCRIBE_API_BASE": api.base_url, "TRANSCRIBE_API_KEY": KEY, "TRANSCRIBE_MODEL": "whisper-test"}
    return settings.from_environ(env | extra, dotenv_path=tmp_path / "none")


def form(request: Recorded) -> dict[str, Message]:
    """The multipart fields of a request, by name."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.raw)
    return {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}  # type: ignore[attr-defined,misc]


def answer(status: int, payload: object, headers_type: str = "application/json") -> Reply:
    return Reply(status, headers_type, json.dumps(payload).encode())


# --- the local Whisper ---


def test_the_local_whisper_writes_down_what_the_local_voice_said(spoken: bytes, local: Settings) -> None:
    heard = transcribe.transcribe(spoken, "said.wav", local)
    assert misheard(SAID, heard.text) <= 1, heard.text
    assert heard.engine == LOCAL_ENGINE
    assert heard.notes == (ENGLISH_ONLY,)
    assert heard.seconds == pytest.approx(check(spoken, "said.wav", 300).seconds)
    assert transcribe.loaded() and not transcribe.uses_endpoint(local)


def test_a_recording_longer_than_one_whisper_window_is_written_down_whole(local: Settings) -> None:
    """Whisper reads 30 s at a time: nothing may be lost where one window ends and the next begins."""
    said = (
        "Every Saturday there is a story hour for young readers near the front desk. "
        "If you lose a book, you will be asked to pay for a new copy. "
        "The garden behind the building has benches where people sit and read in summer. "
        "Volunteers help sort donated books on Tuesday and Thursday afternoons. "
        "The copier takes coins or cards, and printing costs a little per page. "
        "A small cafe beside the entrance sells tea, coffee and fresh bread. "
        "Children can join the summer reading club and collect a sticker for each book. "
        "The map room holds old charts of the coast and the river valley. "
        "Large print books and audio books are on the shelves near the lift."
    )
    heard = transcribe.transcribe(speech.speak(said, local).data, "long.wav", local)
    assert heard.seconds > 32
    # tiny.en mishears 7-9 of these 118 words; a lost window would drop 70 or more
    assert misheard(said, heard.text) <= len(words(said)) // 6, heard.text


def test_an_8_khz_recording_is_written_down_too(spoken: bytes, local: Settings) -> None:
    phone = wav_bytes(at_rate(check(spoken, "said.wav", 300).samples, 8000), 8000)
    heard = transcribe.transcribe(phone, "call.wav", local)
    assert misheard(SAID, heard.text) <= 2, heard.text
    assert heard.notes[0].startswith("The recording is telephone quality (8 kHz)")


def test_two_threads_share_the_one_model(spoken: bytes, local: Settings) -> None:
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(transcribe.transcribe(spoken, "a.wav", local).text))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and results[0] == results[1]
    assert transcribe.local_model() is transcribe.local_model()


def test_warm_loads_in_the_background() -> None:
    transcribe.warm()  # already loaded by now, or loading: either way it returns at once
    deadline = time.monotonic() + 60
    while not transcribe.loaded() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert transcribe.loaded()


def test_silence_never_reaches_an_engine(tmp_path: Path, fake_api: FakeOpenAI, local: Settings) -> None:
    quiet = wav_bytes(np.zeros(2 * RATE, np.float32), 48000)
    for where in (local, remote(tmp_path, fake_api)):
        with pytest.raises(AudioError, match="I heard nothing"):
            transcribe.transcribe(quiet, "quiet.wav", where)
    assert fake_api.requests == []


# --- the endpoint ---


def test_the_endpoint_gets_a_16_khz_wav_the_model_and_the_key_in_the_header_only(
    tmp_path: Path, fake_api: FakeOpenAI, spoken: bytes
) -> None:
    fake_api.routes["/audio/transcriptions"] = lambda request: answer(200, {"text": "  Buy milk\nand bread. "})
    heard = transcribe.transcribe(spoken, "voice.wav", remote(tmp_path, fake_api))
    assert heard.text == "Buy milk and bread."
    assert heard.engine == f"whisper-test at {fake_api.base_url.split('//')[1].removesuffix('/v1')}"
    assert heard.notes == ()
    (request,) = fake_api.requests
    assert request.path == "/v1/audio/transcriptions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY.encode() not in request.raw
    fields = form(request)
    assert fields["model"].get_content() == "whisper-test"
    assert fields["response_format"].get_content() == "json"
    sent = fields["file"].get_payload(decode=True)
    assert fields["file"].get_filename() == "voice.wav"
    assert check(sent, "voice.wav", 300).source_rate == RATE  # resampled once, here


def test_groq_is_the_default_endpoint_with_its_key(tmp_path: Path) -> None:
    groq = settings.from_environ({"GROQ_API_KEY": KEY}, dotenv_path=tmp_path / "none")
    assert transcribe.uses_endpoint(groq)
    assert (groq.transcribe_model, groq.transcribe_api_key) == ("whisper-large-v3-turbo", KEY)


@pytest.mark.parametrize(
    ("reply", "expected", "retry_after"),
    [
        (
            answer(401, {"error": {"message": "Invalid API Key", "code": "invalid_api_key"}}),
            "refused the API key (401); check TRANSCRIBE_API_KEY (or GROQ_API_KEY) in .env.",
            None,
        ),
        (answer(403, {"error": {"message": "Forbidden"}}), "refused the API key (403)", None),
        (
            Reply(429, "application/json", b'{"error": {"message": "Rate limit reached."}}'),
            "is rate-limiting requests (429); try again in a moment.",
            None,
        ),
        (
            answer(429, {"error": {"message": "Rate limit reached. Please try again in 1m2.5s."}}),
            "try again in 62 s.",
            62.5,
        ),
        (
            answer(400, {"error": {"message": f"Bad file for key {KEY}: audio too short. " + "x" * 400}}),
            "refused the recording (400: Bad file for key [key]: audio too short",
            None,
        ),
        (
            answer(404, {"error": {"message": "The model `whisper-test` does not exist"}}),
            "does not offer this (404: The model `whisper-test` does not exist); check TRANSCRIBE_API_BASE and TRANSCRIBE_MODEL.",
            None,
        ),
        (
            Reply(500, "text/html", b"<html><body>Internal Server Error</body></html>"),
            "failed on its side (500); try again in a moment.",
            None,
        ),
        (answer(200, {"transcript": "wrong shape"}), "answered with something other than a transcript", None),
        (
            Reply(200, "text/html", b"<html>a captive portal</html>"),
            "answered with something other than a transcript",
            None,
        ),
        (answer(200, {"text": "  "}), NO_WORDS, None),
    ],
    ids=["401", "403", "429", "429-groq-wait", "400", "404", "500", "wrong-json", "not-json", "no-words"],
)
def test_each_endpoint_failure_is_one_sentence_without_the_key(
    tmp_path: Path, fake_api: FakeOpenAI, spoken: bytes, reply: Reply, expected: str, retry_after: float | None
) -> None:
    fake_api.routes["/audio/transcriptions"] = lambda request: reply
    with pytest.raises(TranscriptionError) as caught:
        transcribe.transcribe(spoken, "voice.wav", remote(tmp_path, fake_api))
    message = str(caught.value)
    assert expected in message
    assert KEY not in message and one_sentence(message)
    assert len(message) < 330
    assert caught.value.retry_after == retry_after


def test_a_429_waits_as_long_as_its_retry_after_header_says() -> None:
    """FakeOpenAI's routes send no headers of their own, so the header is read off a real httpx.Response."""
    header = httpx.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow down"}})
    assert _retry_after(header, "slow down") == 7.0
    assert _retry_after(httpx.Response(429, headers={"retry-after": "soon"}), "try again in 2.5s") == 2.5
    assert _retry_after(httpx.Response(429), "no hint") is None


def test_a_slow_endpoint_times_out_with_a_sentence(tmp_path: Path, fake_api: FakeOpenAI, spoken: bytes) -> None:
    release = threading.Event()

    def slow(request: Recorded) -> Reply:
        release.wait(10)
        return answer(200, {"text": "too late"})

    fake_api.routes["/audio/transcriptions"] = slow
    started = time.monotonic()
    with pytest.raises(TranscriptionError) as caught:
        transcribe.transcribe(spoken, "voice.wav", remote(tmp_path, fake_api, REQUEST_TIMEOUT="0.5"))
    release.set()
    assert time.monotonic() - started < 5
    assert str(caught.value).endswith("did not answer within 0.5 s; try again, or raise REQUEST_TIMEOUT in .env.")


def test_an_unreachable_endpoint_gets_a_sentence(tmp_path: Path, spoken: bytes) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"TRANSCRIBE_API_BASE": f"http://user:pw@127.0.0.1:{port}/v1", "TRANSCRIBE_API_KEY": KEY}
    with pytest.raises(TranscriptionError) as caught:
        transcribe.transcribe(spoken, "voice.wav", settings.from_environ(env, dotenv_path=tmp_path / "none"))
    assert str(caught.value) == (
        f"Could not reach the speech-to-text service at 127.0.0.1:{port}; "
        "check your connection and TRANSCRIBE_API_BASE in .env."
    )
