"""Bad days on the chat page (AppTest): failures become sentences, nothing typed or saved is lost."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from model.message import Conversation, Message
from model.store import ConversationStore
from tests.openai_server import FakeOpenAI
from tests.test_sidebar import click, memory_page, save_as, send, texts

KEY = "gsk_page_secret"


@pytest.fixture
def groq(monkeypatch: pytest.MonkeyPatch, fake_api: FakeOpenAI) -> FakeOpenAI:
    import settings

    monkeypatch.setenv("GROQ_API_KEY", KEY)
    monkeypatch.setenv("GROQ_API_BASE", fake_api.base_url)
    monkeypatch.setenv("GROQ_MODEL", "test-model")
    settings.get_settings.cache_clear()
    return fake_api


def page_text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.error] + [e.value for e in at.caption]
    parts += [e.value for e in at.warning] + [e.value for e in at.info] + [e.value for e in at.success]
    return "\n".join(str(p) for p in parts)


def test_wrong_key_is_a_sentence_and_the_question_stays(groq: FakeOpenAI) -> None:
    groq.fail_next("401")
    at = memory_page()
    send(at, "Hello?")
    assert texts(at) == ["Hello?"]
    assert any("refused the API key" in e.value and "GROQ_API_KEY" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Retry"]  # retrying cannot fix a key
    assert KEY not in page_text(at)


def test_interrupted_answer_is_marked_not_saved_and_retry_completes_it(groq: FakeOpenAI) -> None:
    at = memory_page()
    send(at, "first")
    save_as(at, "Kept")
    groq.fail_next("cut")
    send(at, "tell me more")
    assert any("Interrupted" in c.value for c in at.caption)
    assert texts(at)[-1].startswith("Echo: tell")  # what arrived stays on screen
    [saved] = ConversationStore(os.environ["CONVERSATIONS_FILE"]).list()
    stored = ConversationStore(os.environ["CONVERSATIONS_FILE"]).load(saved.id)
    assert stored is not None and [m.content for m in stored.messages][-1] == "tell me more"  # no half answer
    [retry] = [b for b in at.button if b.label == "Retry"]
    retry.click().run()
    assert not at.exception
    assert texts(at)[-2:] == ["tell me more", "Echo: tell me more"]
    assert not any("Interrupted" in c.value for c in at.caption)
    stored = ConversationStore(os.environ["CONVERSATIONS_FILE"]).load(saved.id)
    assert stored is not None and stored.messages[-1].content == "Echo: tell me more"


def test_long_rate_limit_tells_the_wait(groq: FakeOpenAI) -> None:
    groq.script.retry_after = "42"
    groq.fail_next("429")
    at = memory_page()
    send(at, "hi")
    assert any("rate-limiting" in e.value and "42 s" in e.value for e in at.error)


def test_500_turn_conversation_opens_shows_the_newest_and_says_what_left_the_view(groq: FakeOpenAI) -> None:
    groq.script.models = {"test-model": 8192}
    turns = []
    for i in range(500):
        turns += [
            Message("user", f"question {i} " + "lorem ipsum " * 15),
            Message("assistant", f"answer {i} " + "dolor sit " * 15),
        ]
    kept = ConversationStore(os.environ["CONVERSATIONS_FILE"]).save(Conversation("Long one", tuple(turns)))
    at = memory_page()
    click(at, f"conv:{kept.id}:open")
    assert len(at.chat_message) == 30
    assert any(b.label == "Show 30 earlier messages (970 not shown)" for b in at.button)
    assert any("no longer fit" in w.value for w in at.warning)
    assert any("context window:" in c.value and "of 8,192 tokens" in c.value for c in at.caption)
    send(at, "and now?")
    sent = groq.chat_requests[-1].messages
    assert sent[-1]["content"] == "and now?" and sent[-2]["content"] == turns[-1].content
    assert 2 < len(sent) < 200  # the newest turns that fit, not all 1,000 messages
    assert any(c.value.startswith("Last answer:") for c in at.caption)
    click(at, "memory:earlier")
    assert len(at.chat_message) == 60


def test_broken_embedded_model_leaves_saved_conversations_usable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import settings

    monkeypatch.setenv("LOCAL_MODEL_PATH", str(tmp_path / "broken.gguf"))
    settings.get_settings.cache_clear()
    kept = ConversationStore(os.environ["CONVERSATIONS_FILE"]).save(
        Conversation("Older", (Message("user", "hi"), Message("assistant", "hello")))
    )
    at = memory_page()
    click(at, f"conv:{kept.id}:open")
    assert texts(at) == ["hi", "hello"]
    send(at, "are you there?")
    assert any("LOCAL_MODEL_PATH" in e.value for e in at.error)
    stored = ConversationStore(os.environ["CONVERSATIONS_FILE"]).load(kept.id)
    assert stored is not None and [m.content for m in stored.messages] == ["hi", "hello", "are you there?"]


def test_a_huge_message_costs_the_page_little_and_stays_whole(groq: FakeOpenAI) -> None:
    import time

    from view.chat_view import SHOWN_CHARS

    huge = "word " * 4_000_000  # 20 MB
    kept = ConversationStore(os.environ["CONVERSATIONS_FILE"]).save(
        Conversation("Huge", (Message("user", huge), Message("assistant", "ok")))
    )
    at = memory_page()
    began = time.monotonic()
    click(at, f"conv:{kept.id}:open")
    print(f"loading a 20 MB message: {time.monotonic() - began:.2f} s")
    shown = at.chat_message[0].markdown[0].value
    assert len(shown) <= SHOWN_CHARS + 100
    assert any("Showing the first 20,000 of 20,000,000 characters" in c.value for c in at.caption)
    stored = ConversationStore(os.environ["CONVERSATIONS_FILE"]).load(kept.id)
    assert stored is not None and stored.messages[0].content == huge


def test_a_save_that_fails_says_so_and_no_rerun_asks_again(groq: FakeOpenAI) -> None:
    at = memory_page()
    send(at, "first")
    save_as(at, "Kept")
    lock = os.environ["CONVERSATIONS_FILE"] + ".lock"
    os.unlink(lock)
    os.mkdir(lock)  # the store can no longer lock its file: every save fails (root or not)
    send(at, "second")
    assert not at.exception
    assert texts(at)[-2:] == ["second", "Echo: second"]  # the answer is on screen
    assert any("could not be saved" in e.value for e in at.error)
    asked = len(groq.chat_requests)
    at.run()
    at.run()
    assert not at.exception
    assert len(groq.chat_requests) == asked  # reruns ask nothing again
    sent = [m["content"] for m in groq.chat_requests[-1].messages]
    assert sent[-1] == "second" and "Echo: second" not in sent  # never an answer sent as a question


def test_a_lone_surrogate_in_a_streamed_answer_is_shown_and_asked_once(groq: FakeOpenAI) -> None:
    groq.script.reply = "half \ud800 a character"
    at = memory_page()
    send(at, "hi")
    assert not at.exception
    assert texts(at) == ["hi", "half \ufffd a character"]
    at.run()
    assert len(groq.chat_requests) == 1
