"""What a model is sent for the pictures of a chat (controller.media and the turn): a model that
sees gets the pictures in the request, the newest four, resized; one that cannot gets the text read
from them. Real pictures, the real file store, the real OCR, a loopback stand-in for the endpoint."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from controller.chat import ChatController
from controller.images import attach_image
from controller.media import PICTURES_SENT, READ, for_model, sees_pictures
from model.message import Message
from settings import Settings, from_environ
from tests.openai_server import FakeOpenAI
from tests.test_ocr import FONT
from utils.providers import build_llm


def settings_in(tmp_path: Path, api: FakeOpenAI | None = None) -> Settings:
    env = {"DATA_DIR": str(tmp_path)}
    if api is not None:
        env |= {"LLM_PROVIDER": "openai", "OPENAI_API_BASE": api.base_url, "OPENAI_MODEL": "m"}
    return from_environ(env, dotenv_path=tmp_path / "none")


def photo(colour: str, size: tuple[int, int] = (3000, 2000)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def printed(text: str) -> bytes:
    picture = Image.new("RGB", (700, 120), "white")
    ImageDraw.Draw(picture).text((20, 35), text, fill="black", font=ImageFont.truetype(str(FONT), 32))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_which_models_see_is_told_by_their_ids() -> None:
    assert sees_pictures("meta-llama/llama-4-scout-17b-16e-instruct")
    assert sees_pictures("gpt-4o-mini") and sees_pictures("llava:13b") and sees_pictures("qwen2.5vl:7b")
    assert not sees_pictures("openai/gpt-oss-120b") and not sees_pictures("llama-3.1-8b-instant")


def test_a_seeing_model_gets_the_newest_pictures_resized(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    chat = []
    for number, colour in enumerate(["red", "green", "blue", "yellow", "purple"]):
        picture, _ = attach_image(photo(colour), f"{colour}.jpg", settings)
        chat += [Message("user", f"picture {number}", attachments=(picture,)), Message("assistant", "ok")]
    chat.append(Message("user", "which colours?"))

    sent = for_model(chat, True, settings)

    assert sent.messages == chat  # nothing added to the text
    given = [m for m in chat if m.id in sent.pictures]
    assert [m.content for m in given] == ["picture 1", "picture 2", "picture 3", "picture 4"]  # the newest four
    assert sum(len(p) for p in sent.pictures.values()) == PICTURES_SENT
    data, mime = sent.pictures[given[-1].id][0]
    assert mime == "image/jpeg" and max(Image.open(io.BytesIO(data)).size) <= 1568


def test_a_model_that_cannot_see_gets_the_text_and_the_answer_says_so(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    picture, _ = attach_image(printed("Gate 14 closes at noon"), "gate.png", settings)
    question = Message("user", "When does the gate close?", attachments=(picture,))

    sent = for_model([question], False, settings)

    [given] = sent.messages
    assert given.id == question.id and given.content.startswith("When does the gate close?")
    assert "Gate 14 closes at noon" in given.content and "You cannot see it" in given.content
    assert question.content == "When does the gate close?"  # the message as saved is unchanged
    [run] = sent.runs
    assert run.tool == READ and run.input == "gate.png" and "noon" in run.output


def test_the_request_carries_the_pictures_where_they_belong(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    settings = settings_in(tmp_path, fake_api)
    controller = ChatController(
        lambda watch: build_llm(settings, None, watch), provider="openai", model="m", system_prompt="SYS"
    )
    earlier, _ = attach_image(photo("red", (64, 64)), "red.jpg", settings)
    now, _ = attach_image(photo("blue", (64, 64)), "blue.jpg", settings)
    history = [Message("user", "look", attachments=(earlier,)), Message("assistant", "a red square")]
    question = Message("user", "and this one?", attachments=(now,))
    sent = for_model([*history, question], True, settings)

    "".join(
        controller.reply(
            history, question.content, pictures=sent.pictures, question_pictures=sent.pictures[question.id]
        )
    )

    messages = fake_api.answer_requests[-1].messages
    with_pictures = [m for m in messages if isinstance(m["content"], list)]
    assert [m["role"] for m in with_pictures] == ["user", "user"]
    assert any(part.get("text") == "look" for part in with_pictures[0]["content"])  # the earlier one, in its message
    assert messages[-1] == {"role": "user", "content": "and this one?"}  # the question, right after its pictures
    assert messages[-2] is with_pictures[-1]
    urls = [p["image_url"]["url"] for m in with_pictures for p in m["content"] if p.get("type") == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
