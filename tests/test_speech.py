"""Read aloud: Markdown made speakable, the real local voice (Piper in its own process) heard back by
the real local Whisper, the cache, and an /audio/speech endpoint played by `FakeOpenAI` on loopback."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import wave
from pathlib import Path

import pytest

import settings
from settings import Settings
from tests.openai_server import FakeOpenAI, Recorded, Reply
from tests.test_audio import one_sentence
from tests.test_transcribe import misheard
from utils import speech, transcribe
from utils.audio import pcm16_wav
from utils.speakable import cap, speakable
from utils.speech import LOCAL_ENGINE, REMOTE_MAX_CHARS, SpeechError

KEY = "sk-test-0123456789abcdefSPEECH"
ANSWER = """## Shopping

Remember to buy **milk** and _bread_ on the [way home](https://example.com/map).

```python
basket = ["milk", "bread"]
```
"""


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.from_environ({}, dotenv_path=tmp_path_factory.mktemp("env") / "none")


def remote(tmp_path: Path, api: FakeOpenAI, **extra: str) -> Settings:
    env = {"SPEECH_API_BASE": api.base_url, "SPEECH_API_KEY": KEY, "SPEECH_MODEL": "tts-test", "SPEECH_VOICE": "nova"}
    return settings.from_environ(env | extra, dotenv_path=tmp_path / "none")


def a_wav(request: Recorded) -> Reply:
    return Reply(200, "audio/wav", pcm16_wav(b"\x00\x10" * 22050, 22050))


# --- Markdown to speech ---


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        (ANSWER, "Shopping. Remember to buy milk and bread on the way home. (code)."),
        ("Use `pip install x`, then see https://pypi.org/project/x.", "Use pip install x, then see (link)."),
        ("- one\n- two\n3. three\n> quoted\n\n---\n#### Done", "one. two. three. quoted. Done."),
        (
            "| Name | Size |\n|:-----|-----:|\n| Alpha | 3 kB |\n| *Beta* | 5 kB |\n\nAfter.",
            "Name, Size. Alpha, 3 kB. Beta, 5 kB. After.",
        ),
        ("![a chart](c.png) shows <b>growth</b> in snake_case_names, $x^2$, 2 * 3 * 4.", None),
        ("~~~\nunclosed code to the end\n", "(code)."),
        ("Line one\nstill one\n\nTwo!", "Line one still one. Two!"),
    ],
    ids=[
        "answer",
        "inline-code-and-url",
        "lists-quote-heading",
        "table",
        "image-html-math",
        "unclosed-fence",
        "paragraphs",
    ],
)
def test_markdown_becomes_plain_sentences(markdown: str, spoken: str | None) -> None:
    said = speakable(markdown)
    if spoken is None:
        assert said == "a chart shows growth in snake_case_names, x^2, 2 * 3 * 4."
    else:
        assert said == spoken


def test_long_text_is_cut_after_a_whole_sentence() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(100))
    kept, was_cut = cap(text, 200)
    assert was_cut and kept.endswith("is here.") and len(kept) <= 200
    assert cap("Short.", 200) == ("Short.", False)
    kept, was_cut = cap("word " * 100, 52)  # no sentence end: the last whole word
    assert was_cut and kept == " ".join(["word"] * 10)


# --- the local voice ---


def test_the_local_voice_says_an_answer_the_local_whisper_understands(local: Settings) -> None:
    spoken = speech.speak(ANSWER, local)
    assert (spoken.mime, spoken.engine, spoken.notes) == ("audio/wav", LOCAL_ENGINE, ())
    assert spoken.text == "Shopping. Remember to buy milk and bread on the way home. (code)."
    with wave.open(io.BytesIO(spoken.data)) as read:
        assert (read.getnchannels(), read.getsampwidth(), read.getframerate()) == (1, 2, 22050)
        seconds = read.getnframes() / read.getframerate()
    count = len(spoken.text.split())
    assert count / 4.5 < seconds < count / 1.5  # people speak 2-3 words a second
    heard = transcribe.transcribe(spoken.data, "answer.wav", local)
    assert misheard("Shopping. Remember to buy milk and bread on the way home. Code.", heard.text) <= 2, heard.text
    # Piper is GPL: it ran as `python -m piper`, a process of its own, never imported into this one
    assert not [name for name in sys.modules if name == "piper" or name.startswith("piper.")]


def test_reading_the_same_answer_twice_makes_it_once(local: Settings) -> None:
    first = speech.speak(ANSWER, local)  # made by the test above, or now
    second = speech.speak(ANSWER, local)
    assert second.data is first.data and second.engine == LOCAL_ENGINE


def test_an_answer_with_nothing_to_say_gets_a_sentence(local: Settings) -> None:
    for nothing in ("```\ncode only\n```", "", "![](picture.png)"):
        with pytest.raises(SpeechError) as caught:
            speech.speak(nothing, local)
        assert str(caught.value) == "There is nothing to read aloud in this answer (only code or pictures)."


# --- the endpoint ---


def test_the_endpoint_gets_the_speakable_text_and_the_key_in_the_header_only(
    tmp_path: Path, fake_api: FakeOpenAI
) -> None:
    fake_api.routes["/audio/speech"] = a_wav
    where = remote(tmp_path, fake_api)
    spoken = speech.speak(ANSWER, where)
    again = speech.speak(ANSWER, where)
    (request,) = fake_api.requests  # the second reading came from the cache
    assert again.data is spoken.data
    assert request.body == {
        "model": "tts-test",
        "input": "Shopping. Remember to buy milk and bread on the way home. (code).",
        "voice": "nova",
        "response_format": "wav",
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY.encode() not in request.raw
    assert spoken.mime == "audio/wav" and spoken.data.startswith(b"RIFF")
    assert spoken.engine.startswith("tts-test, nova at 127.0.0.1:")
    # another voice is another reading
    speech.speak(ANSWER, remote(tmp_path, fake_api, SPEECH_VOICE="onyx"))
    assert [r.body["voice"] for r in fake_api.requests] == ["nova", "onyx"]


def test_an_endpoint_without_model_or_voice_gets_openais_defaults_and_may_send_mp3(
    tmp_path: Path, fake_api: FakeOpenAI
) -> None:
    fake_api.routes["/audio/speech"] = lambda request: Reply(200, "audio/mpeg", b"ID3\x04" + bytes(600))
    env = {"SPEECH_API_BASE": fake_api.base_url}
    spoken = speech.speak("An mp3, please.", settings.from_environ(env, dotenv_path=tmp_path / "none"))
    assert spoken.mime == "audio/mpeg"
    (request,) = fake_api.requests
    assert (request.body["model"], request.body["voice"]) == ("tts-1", "alloy")
    assert "Authorization" not in request.headers


def test_a_long_answer_is_read_in_part_with_a_note(tmp_path: Path, fake_api: FakeOpenAI) -> None:
    fake_api.routes["/audio/speech"] = a_wav
    long_answer = "\n\n".join(f"Paragraph {i} says something worth hearing twice." for i in range(200))
    spoken = speech.speak(long_answer, remote(tmp_path, fake_api))
    sent = fake_api.requests[0].body["input"]
    assert len(sent) <= REMOTE_MAX_CHARS and sent.endswith("hearing twice.")
    assert spoken.notes == (f"Read aloud stops after the first {len(sent.split())} words; the rest is on the page.",)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(401, "application/json", b'{"error": {"message": "bad key"}}'),
            "refused the API key (401); check SPEECH_API_KEY in .env.",
        ),
        (
            Reply(429, "application/json", b'{"error": {"message": "Please try again in 20s"}}'),
            "is rate-limiting requests (429); try again in 20 s.",
        ),
        (
            Reply(
                400,
                "application/json",
                json.dumps({"error": {"message": f"Voice 'nova' is unknown for {KEY}"}}).encode(),
            ),
            "refused the text (400: Voice 'nova' is unknown for [key]); check SPEECH_MODEL and SPEECH_VOICE in .env, or try again.",
        ),
        (
            Reply(500, "application/json", b'{"error": {"message": "boom"}}'),
            "failed on its side (500); try again in a moment.",
        ),
        (
            Reply(200, "application/json", b'{"audio": "not here"}'),
            "answered with something other than audio; check SPEECH_API_BASE in .env.",
        ),
        (Reply(200, "audio/wav", b""), "answered with something other than audio; check SPEECH_API_BASE in .env."),
    ],
    ids=["401", "429", "400", "500", "json-not-audio", "empty-audio"],
)
def test_each_endpoint_failure_is_one_sentence_without_the_key(
    tmp_path: Path, fake_api: FakeOpenAI, reply: Reply, expected: str
) -> None:
    fake_api.routes["/audio/speech"] = lambda request: reply
    with pytest.raises(SpeechError) as caught:
        speech.speak(f"Read this for case {reply.status}.", remote(tmp_path, fake_api))
    message = str(caught.value)
    assert message.startswith("The text-to-speech service at 127.0.0.1:") and message.endswith(expected)
    assert KEY not in message and one_sentence(message)


def test_a_slow_or_missing_endpoint_gets_a_sentence(tmp_path: Path, fake_api: FakeOpenAI) -> None:
    release = threading.Event()

    def slow(request: Recorded) -> Reply:
        release.wait(10)
        return a_wav(request)

    fake_api.routes["/audio/speech"] = slow
    with pytest.raises(SpeechError, match=r"did not answer within 0\.4 s; try again, or raise REQUEST_TIMEOUT"):
        speech.speak("Slow.", remote(tmp_path, fake_api, REQUEST_TIMEOUT="0.4"))
    release.set()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = settings.from_environ({"SPEECH_API_BASE": f"http://127.0.0.1:{port}/v1"}, dotenv_path=tmp_path / "none")
    with pytest.raises(SpeechError) as caught:
        speech.speak("Anyone?", gone)
    assert str(caught.value) == (
        f"Could not reach the text-to-speech service at 127.0.0.1:{port}; "
        "check your connection and SPEECH_API_BASE in .env."
    )
