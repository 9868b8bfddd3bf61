"""Pictures and voice in a real browser (issue 13): a photo of text answered from, a picture sent
to a model that sees, bad pictures, a picture made through an image endpoint, an answer read
aloud, and a voice note recorded through Chromium's fake microphone, written down by the local
Whisper and sent. Each survives save and reload where it is kept.

Groq, its Whisper and the image endpoint are a loopback stand-in; the OCR, Whisper and Piper are
the real offline ones.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pytest
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import Browser, Page, expect

import settings
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    answered,
    attach_and_send,
    click,
    messages,
    open_memory_page,
    save_as,
    send,
    settle,
    sidebar,
    streamlit_app,
)
from tests.openai_server import FakeOpenAI, Recorded, Reply
from tests.test_documents import make_pdf

KEY = "gsk_media_secret"
TEXT_MODEL, SEEING_MODEL = "openai/gpt-oss-120b", "meta-llama/llama-4-scout-17b-16e-instruct"
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def rendered(lines: list[str]) -> bytes:
    """A picture of printed lines, as a phone photo of a notice would be (PNG)."""
    picture = Image.new("RGB", (900, 80 + 60 * len(lines)), "white")
    draw, font = ImageDraw.Draw(picture), ImageFont.truetype(str(FONT), 30)
    for number, line in enumerate(lines):
        draw.text((30, 30 + 60 * number), line, fill="black", font=font)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\x00" * 10)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + end


def red_square() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), "red").save(out, "PNG")
    return out.getvalue()


def user_parts(request: Recorded) -> list[object]:
    """Every content part of the user messages of a chat request."""
    parts: list[object] = []
    for message in request.messages:
        if message["role"] == "user":
            content = message["content"]
            parts.extend(content if isinstance(content, list) else [content])
    return parts


@pytest.fixture(scope="module")
def api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.script.models = {TEXT_MODEL: 131072, SEEING_MODEL: 131072}
        fake.routes["/images/generations"] = lambda request: Reply(
            200,
            "application/json",
            json.dumps(
                {"data": [{"b64_json": base64.b64encode(red_square()).decode(), "revised_prompt": "a red square"}]}
            ).encode(),
        )
        yield fake


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def app(api: FakeOpenAI, folder: Path) -> Iterator[str]:
    env = {
        "DATA_DIR": str(folder),
        "GROQ_API_KEY": KEY,
        "GROQ_API_BASE": api.base_url,
        "GROQ_MODEL": TEXT_MODEL,
        "IMAGE_API_BASE": api.base_url,
        "IMAGE_MODEL": "fake-image-1",
        "IMAGE_API_KEY": "img-secret",
    }
    with streamlit_app(env, folder / "streamlit.log") as url:
        yield url


def reopen(browser: Browser, url: str, name: str) -> Page:
    """The saved conversation `name`, opened in a fresh browser session."""
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    open_memory_page(page, url)
    click(page, sidebar(page).get_by_role("button", name=name))
    return page


def test_a_photo_of_text_is_answered_from_its_text(browser: Browser, page: Page, app: str, fresh: FakeOpenAI) -> None:
    open_memory_page(page, app)
    notice = rendered(["The last ferry leaves at 21:40", "from pier number 7"])
    attach_and_send(page, "When does the last ferry leave?", [("notice.png", notice, "image/png")])
    expect(messages(page)).to_have_count(2, timeout=90_000)
    settle(page)
    # the model cannot see: it was given the text the OCR read, and the page says so
    [question] = [p for p in user_parts(fresh.answer_requests[-1]) if isinstance(p, str)]
    assert "21:40" in question and "pier number 7" in question.lower()
    assert not any(isinstance(p, dict) and p.get("type") == "image_url" for p in user_parts(fresh.answer_requests[-1]))
    expect(messages(page).nth(0).get_by_test_id("stImage")).to_have_count(1)
    expect(messages(page).nth(1).get_by_text(re.compile("cannot see pictures"))).to_be_visible()
    save_as(page, "Ferry times")

    again = reopen(browser, app, "Ferry times")
    expect(messages(again).nth(0).get_by_test_id("stImage")).to_have_count(1)
    expect(messages(again).nth(1).get_by_text(re.compile("cannot see pictures"))).to_be_visible()
    fresh.script.reply = "It leaves at 21:40."
    send(again, "And from which pier?")
    answered(again, 4, timeout=60_000)
    remembered = " ".join(p for p in user_parts(fresh.answer_requests[-1]) if isinstance(p, str))
    assert "pier number 7" in remembered.lower()  # the picture's text is still what the model is given
    again.context.close()


def test_a_model_that_sees_is_sent_the_picture(page: Page, app: str, fresh: FakeOpenAI) -> None:
    open_memory_page(page, app)
    page.get_by_test_id("stSelectbox").filter(has_text="Model").click()
    click(page, page.get_by_role("option", name=re.compile("llama-4-scout")))
    attach_and_send(page, "What colour is this?", [("sky.jpg", photo(), "image/jpeg")])
    answered(page, 2, timeout=60_000)
    request = fresh.answer_requests[-1]
    assert request.body["model"] == SEEING_MODEL
    pictures = [p for p in user_parts(request) if isinstance(p, dict) and p.get("type") == "image_url"]
    assert len(pictures) == 1 and pictures[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    expect(messages(page).nth(1).get_by_text(re.compile("cannot see pictures"))).to_have_count(0)


def test_bad_pictures_get_one_sentence_each_and_the_chat_goes_on(page: Page, app: str, fresh: FakeOpenAI) -> None:
    open_memory_page(page, app)
    good = rendered(["Room 12"])
    attach_and_send(
        page,
        "Which room?",
        [
            ("bomb.png", png_claiming(20_000, 20_000), "image/png"),
            ("broken.jpg", photo()[:400], "image/jpeg"),
            ("empty.png", b"", "image/png"),
            ("scan.png", make_pdf([["Scanned page.", "Nothing here."]]), "image/png"),
            ("room.png", good, "image/png"),
        ],
    )
    chat = page.locator("#stMain")
    expect(chat.get_by_text(re.compile(r"bomb\.png.*megapixels"))).to_be_visible(timeout=60_000)
    expect(chat.get_by_text(re.compile(r"broken\.jpg.*damaged"))).to_be_visible()
    expect(chat.get_by_text(re.compile(r"empty\.png.*empty"))).to_be_visible()
    expect(chat.get_by_text(re.compile(r"scan\.png is not a picture: it is read as a document"))).to_be_visible()
    expect(messages(page)).to_have_count(2, timeout=90_000)
    settle(page)
    page.wait_for_timeout(1_000)
    settle(page)
    expect(chat.get_by_text(re.compile(r"bomb\.png.*megapixels"))).to_be_visible()  # still there after the answer
    question = " ".join(p for p in user_parts(fresh.answer_requests[-1]) if isinstance(p, str))
    assert "Room 12" in question  # the good picture went on
    expect(messages(page).nth(0).get_by_test_id("stImage")).to_have_count(1)


def test_a_picture_is_made_through_the_image_endpoint_and_kept(
    browser: Browser, page: Page, app: str, fresh: FakeOpenAI
) -> None:
    open_memory_page(page, app)
    page.get_by_test_id("stCheckbox").filter(has_text="Image").click()
    settle(page)
    send(page, "A red square on white")
    expect(messages(page)).to_have_count(2, timeout=60_000)
    expect(messages(page).nth(1).get_by_test_id("stImage")).to_have_count(1)
    [made] = [r for r in fresh.requests if r.path.endswith("/images/generations")]
    assert made.body["prompt"] == "A red square on white" and made.body["model"] == "fake-image-1"
    assert made.headers.get("Authorization") == "Bearer img-secret"
    assert "img-secret" not in page.content()
    save_as(page, "Red square")
    again = reopen(browser, app, "Red square")
    expect(messages(again).nth(1).get_by_test_id("stImage")).to_have_count(1)
    again.context.close()


def heard(page: Page) -> bytes:
    """Press Read aloud under the answer; the audio the page then plays."""
    click(page, messages(page).nth(1).get_by_role("button", name="Read aloud"))
    audio = messages(page).nth(1).locator("audio")
    expect(audio).to_have_count(1, timeout=60_000)
    source = audio.evaluate("element => element.src")  # resolved against the page's address
    return page.request.get(source).body()


def test_an_answer_is_read_aloud_also_after_a_reload(
    browser: Browser, page: Page, app: str, fresh: FakeOpenAI, folder: Path
) -> None:
    open_memory_page(page, app)
    fresh.script.reply = "Lisbon is the capital of Portugal, on the river Tagus."
    send(page, "What is the capital of Portugal?")
    expect(messages(page)).to_have_count(2, timeout=60_000)
    settle(page)
    sound = heard(page)
    assert sound[:4] == b"RIFF" and len(sound) > 20_000  # seconds of real audio, not an empty file
    save_as(page, "Capital")
    assert b"RIFF" not in (folder / "conversations.json").read_bytes()  # audio is never saved
    again = reopen(browser, app, "Capital")
    assert heard(again) == sound  # the same answer, read again (from the cache)
    again.context.close()


# --- the embedded stack: no Groq key, so voice notes go to the local Whisper ---


@pytest.fixture(scope="module")
def offline_app(api: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("media-offline")
    env = {
        "DATA_DIR": str(folder),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_BASE": api.base_url,
        "OPENAI_MODEL": "test-model",
    }
    with streamlit_app(env, folder / "streamlit.log") as url:
        yield url, folder


def test_a_voice_note_is_written_down_shown_and_sent(
    browser: Browser, offline_app: tuple[str, Path], fresh: FakeOpenAI, tmp_path: Path
) -> None:
    from utils.speech import speak

    url, _ = offline_app
    voice = tmp_path / "voice.wav"
    voice.write_bytes(
        speak("What is the capital of Portugal?", settings.from_environ({}, dotenv_path=tmp_path / "none")).data
    )
    microphone = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={voice}",
    ]
    # a Chromium of its own, whose microphone plays the recording
    with_microphone = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *microphone], headless=True
    )
    try:
        context = with_microphone.new_context(viewport={"width": 1280, "height": 1000})
        context.grant_permissions(["microphone"])
        page = context.new_page()
        open_memory_page(page, url)
        box = page.get_by_test_id("stChatInput")
        box.get_by_role("button", name=re.compile("record", re.I)).first.click()
        page.wait_for_timeout(3_000)
        box.get_by_test_id("stChatInputApproveButton").click()
        written = page.get_by_label(re.compile("Your voice note, written down"))
        expect(written).to_be_visible(timeout=60_000)
        assert "capital of portugal" in written.input_value().lower()
        assert not fresh.answer_requests  # nothing is sent before the user says so
        written.fill("What is the capital of Portugal? Answer in one word.")
        click(page, page.get_by_role("button", name="Send", exact=True))
        answered(page, 2, timeout=60_000)
        [question] = [p for p in user_parts(fresh.answer_requests[-1]) if isinstance(p, str)]
        assert question == "What is the capital of Portugal? Answer in one word."
        save_as(page, "Spoken question")
        page.reload()
        open_memory_page(page, url)
        click(page, sidebar(page).get_by_role("button", name="Spoken question"))
        expect(messages(page).nth(0)).to_contain_text("Answer in one word.")
    finally:
        with_microphone.close()


def test_without_an_image_endpoint_the_page_says_what_is_needed(
    page: Page, offline_app: tuple[str, Path], fresh: FakeOpenAI
) -> None:
    url, _ = offline_app
    open_memory_page(page, url)
    page.get_by_test_id("stCheckbox").filter(has_text="Image").click()
    settle(page)
    expect(page.get_by_text(re.compile("Image generation needs an endpoint: set IMAGE_API_BASE")).first).to_be_visible()
    send(page, "A red square")
    expect(messages(page)).to_have_count(2, timeout=30_000)
    expect(messages(page).nth(1).get_by_text(re.compile("needs an endpoint"))).to_be_visible()
    expect(messages(page).nth(1).get_by_test_id("stImage")).to_have_count(0)  # never a fake picture
    assert not [r for r in fresh.requests if "images" in r.path]
    expect(messages(page).nth(0)).to_contain_text("A red square")  # the question is kept
