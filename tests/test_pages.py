"""Every page through Streamlit's AppTest: real script runs, the model behind a loopback server."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.openai_server import FakeOpenAI
from view.chat_view import GREETING, STARTERS

ROOT = Path(__file__).resolve().parent.parent
MEMORY_PAGE = "pages/2_Chatbot_With_Memory.py"
SIMPLE_PAGE = "pages/1_Simple_Chatbot.py"


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)


def texts(at: AppTest) -> list[str]:
    """The chat's messages (an empty chat's greeting is not one)."""
    return [m.markdown[0].value for m in at.chat_message if len(m.markdown) and m.markdown[0].value != GREETING]


def send(at: AppTest, text: str) -> None:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception


def test_home_names_the_provider_and_links_both_chat_pages(use_fake_openai: FakeOpenAI) -> None:
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "bnaGPT"
    page = " ".join(m.value for m in at.markdown)
    assert "OpenAI-compatible server" in page and "test-model" in page
    assert not use_fake_openai.chat_requests  # Home never calls the model


def test_home_on_the_embedded_model_does_not_wait_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import settings
    from controller.runtime import Runtime

    monkeypatch.setenv("LOCAL_CONTEXT_WINDOW", "2048")  # a server of its own, not yet loaded by another test
    settings.get_settings.cache_clear()
    server = Runtime(settings.get_settings()).local
    assert server is not None and server.state == "idle"
    at = app().run()
    assert not at.exception
    assert server.state == "loading"  # Home started it and returned without waiting
    assert any("Embedded model: starting" in s.value for s in at.success)
    server.start()  # waits for the loading to end
    assert server.state == "ready"


def test_memory_page_streams_answers_that_see_earlier_turns(use_fake_openai: FakeOpenAI) -> None:
    at = app().run()
    at.switch_page(MEMORY_PAGE).run()
    assert not at.exception
    assert at.title[0].value == "Chatbot With Memory"
    send(at, "My name is Ada.")
    send(at, "What is my name?")
    assert texts(at) == ["My name is Ada.", "Echo: My name is Ada.", "What is my name?", "Echo: What is my name?"]
    second = use_fake_openai.chat_requests[-1].messages
    assert [m["content"] for m in second[1:]] == texts(at)[:3]
    at.button(key="memory:new").click().run()
    assert texts(at) == []


def test_an_empty_chat_greets_and_a_starter_asks_its_question(use_fake_openai: FakeOpenAI) -> None:
    at = app()
    at.switch_page(MEMORY_PAGE).run()
    assert at.chat_message[0].markdown[0].value == GREETING
    assert sorted(b.label for b in at.button if b.key and ":starter:" in b.key) == sorted(STARTERS)
    at.button(key="memory:starter:0").click().run()
    assert not at.exception
    assert texts(at) == [STARTERS[0], f"Echo: {STARTERS[0]}"]
    assert not [b for b in at.button if b.key and ":starter:" in b.key]


def test_an_answer_cut_by_the_cap_offers_continue(monkeypatch: pytest.MonkeyPatch, use_fake_openai: FakeOpenAI) -> None:
    import settings

    monkeypatch.setenv("MAX_TOKENS", "3")
    settings.get_settings.cache_clear()
    use_fake_openai.script.reply = "one two three four five"
    at = app()
    at.switch_page(MEMORY_PAGE).run()
    send(at, "count")
    assert texts(at) == ["count", "one two three"]
    assert any("length limit" in c.value for c in at.caption)
    use_fake_openai.script.reply = "four five"
    at.button(key="memory:continue").click().run()
    assert not at.exception
    assert texts(at) == ["count", "one two three four five"]
    assert not any("length limit" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "memory:continue"]


def test_a_looping_answer_is_stopped_and_says_so(use_fake_openai: FakeOpenAI) -> None:
    use_fake_openai.script.reply = "Hello. " + "I'm not sure of your name either. " * 30
    at = app()
    at.switch_page(MEMORY_PAGE).run()
    send(at, "What is my name?")
    assert texts(at) == ["What is my name?", "Hello. I'm not sure of your name either."]
    assert any("stopped: the answer was repeating itself" in c.value for c in at.caption)


def test_simple_page_has_no_memory(use_fake_openai: FakeOpenAI) -> None:
    at = app().run()
    at.switch_page(SIMPLE_PAGE).run()
    send(at, "first")
    send(at, "second")
    assert texts(at)[-1] == "Echo: second"
    assert [m["role"] for m in use_fake_openai.chat_requests[-1].messages] == ["system", "user"]


def test_blank_message_is_not_sent(use_fake_openai: FakeOpenAI) -> None:
    at = app().run()
    at.switch_page(MEMORY_PAGE).run()
    send(at, "   ")
    assert texts(at) == [] and not use_fake_openai.chat_requests


def test_memory_page_on_the_real_embedded_model() -> None:
    at = app()
    at.switch_page(MEMORY_PAGE).run()
    send(at, "Say hello.")
    messages = texts(at)
    said = [e.value for e in (*at.error, *at.warning, *at.info)]
    assert messages[:1] == ["Say hello."] and len(messages) == 2 and messages[1].strip(), (messages, said)


def test_home_says_at_once_when_the_embedded_model_cannot_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCAL_MODEL_PATH", str(tmp_path / "missing.gguf"))
    at = app().run()
    assert not at.exception
    assert any("LOCAL_MODEL_PATH" in e.value and "missing.gguf" in e.value for e in at.error)


@pytest.mark.parametrize("page", [SIMPLE_PAGE, MEMORY_PAGE])
def test_broken_model_path_is_a_sentence_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str
) -> None:
    monkeypatch.setenv("LOCAL_MODEL_PATH", str(tmp_path / "nope.gguf"))
    at = app()
    at.switch_page(page).run()
    send(at, "hello")
    assert any("LOCAL_MODEL_PATH" in e.value for e in at.error)
    assert texts(at) == ["hello"]  # the question is kept
