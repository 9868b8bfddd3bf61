"""The chat controller against real HTTP servers on loopback and the real embedded model."""

from __future__ import annotations

import pytest

from controller.chat import ChatController
from model.message import Message
from settings import from_environ
from tests.openai_server import FakeOpenAI
from utils.local_server import LocalModelServer
from utils.providers import build_llm, fetch_context_window


def controller_for(env: dict[str, str], local: LocalModelServer | None = None) -> ChatController:
    settings = from_environ(env, dotenv_path=None)
    return ChatController(
        lambda watch: build_llm(settings, local, watch), provider=settings.llm_provider, model="m", system_prompt="SYS"
    )


def converse(controller: ChatController, *turns: str) -> list[Message]:
    history: list[Message] = []
    for text in turns:
        answer = "".join(controller.stream_reply(history, text))
        history += [Message("user", text), Message("assistant", answer)]
    return history


def test_groq_path_streams_with_bearer_key_and_memory(fake_api: FakeOpenAI) -> None:
    fake_api.script.models = {"openai/gpt-oss-120b": 131072}
    controller = controller_for({"GROQ_API_KEY": "gsk_test_secret", "GROQ_API_BASE": fake_api.base_url})
    history = converse(controller, "My name is Ada.", "What is my name?")
    assert history[1].content == "Echo: My name is Ada."
    first, second = fake_api.chat_requests
    assert first.headers["Authorization"] == "Bearer gsk_test_secret"
    assert first.body["stream"] is True and first.body["model"] == "openai/gpt-oss-120b"
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[1]["content"] == "My name is Ada."
    assert second.messages[2]["content"] == "Echo: My name is Ada."
    assert second.messages[0]["content"] == "SYS"


def test_simple_chat_sends_only_the_current_message(fake_api: FakeOpenAI) -> None:
    controller = controller_for(
        {"LLM_PROVIDER": "openai", "OPENAI_API_BASE": fake_api.base_url, "OPENAI_MODEL": "test-model"}
    )
    assert "".join(controller.simple_reply("one")) == "Echo: one"
    assert "".join(controller.simple_reply("two")) == "Echo: two"
    last = fake_api.chat_requests[-1]
    assert [m["content"] for m in last.messages] == ["SYS", "two"]
    assert last.headers["Authorization"] == "Bearer not-needed"


def test_real_context_window_is_read_from_the_endpoint(fake_api: FakeOpenAI) -> None:
    fake_api.script.models = {"big-model": 131072}
    assert fetch_context_window(fake_api.base_url, "big-model", "k") == 131072
    settings = from_environ(
        {"GROQ_API_KEY": "k", "GROQ_API_BASE": fake_api.base_url, "GROQ_MODEL": "big-model"}, dotenv_path=None
    )
    llm = build_llm(settings)
    assert llm.metadata.context_window == 131072  # not LlamaIndex's default of 3,900


def test_memory_keeps_the_newest_turns_that_fit(fake_api: FakeOpenAI) -> None:
    fake_api.script.models = {"tiny": 2048}
    controller = controller_for(
        {"LLM_PROVIDER": "openai", "OPENAI_API_BASE": fake_api.base_url, "OPENAI_MODEL": "tiny", "MAX_TOKENS": "256"}
    )
    history = [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * 100) for i in range(40)]
    usage = controller.context_usage(history)
    assert 0 < usage.messages_in_view < len(history) and usage.messages_out_of_view > 0
    assert usage.context_window == 2048 and usage.tokens_in_view <= 2048 - 256 - 256
    "".join(controller.stream_reply(history, "latest"))
    sent = fake_api.chat_requests[-1].messages
    assert sent[-1]["content"] == "latest"
    assert sent[-2]["content"] == history[-1].content  # the newest turn is always kept
    assert all(m["content"] != history[0].content for m in sent)  # the oldest fell out of view


def test_embedded_model_two_turns_second_request_carries_the_first(embedded_model: LocalModelServer) -> None:
    settings = from_environ({"LLM_PROVIDER": "local", "MAX_TOKENS": "48"}, dotenv_path=None)
    with FakeOpenAI(upstream=embedded_model.base_url, upstream_key=embedded_model.api_key) as proxy:

        def llm_through_proxy(watch):  # type: ignore[no-untyped-def]
            llm = build_llm(settings, embedded_model, watch)
            llm.api_base = proxy.base_url  # record what reaches the real model on its way
            return llm

        controller = ChatController(
            llm_through_proxy, provider="local", model=embedded_model.model_name, system_prompt="SYS"
        )
        history = converse(controller, "My name is Ada.", "What is my name?")
        first_answer = history[1].content
        assert first_answer.strip(), "the embedded model answered nothing"
        second = proxy.chat_requests[1].messages
        assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
        assert second[1]["content"] == "My name is Ada."
        assert second[2]["content"] == first_answer
        assert proxy.chat_requests[1].body["stream"] is True


def test_embedded_server_is_loopback_only_and_wants_its_key(embedded_model: LocalModelServer) -> None:
    import httpx

    assert embedded_model.base_url.startswith("http://127.0.0.1:")
    assert embedded_model.context_window == 8192  # SmolLM2's trained window, per slot
    assert httpx.get(embedded_model.base_url + "/models").status_code == 401
    ok = httpx.get(embedded_model.base_url + "/models", headers={"Authorization": f"Bearer {embedded_model.api_key}"})
    assert ok.status_code == 200


def test_bad_model_path_fails_with_a_sentence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from utils.errors import LocalModelFailed

    server = LocalModelServer(model_path=str(tmp_path / "missing.gguf"))
    with pytest.raises(LocalModelFailed, match="LOCAL_MODEL_PATH"):
        server.start()
    assert server.state == "failed"
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    server = LocalModelServer(model_path=str(junk))
    with pytest.raises(LocalModelFailed, match="could not be loaded"):
        server.start()


def words(text: str) -> int:
    return len(text.split())


def test_newest_that_fit_keeps_the_newest_within_the_limit_and_never_starts_with_an_answer() -> None:
    from controller.agent import newest_that_fit

    history = [Message("user" if i % 2 == 0 else "assistant", "w " * 10) for i in range(10)]
    kept = newest_that_fit(history, limit=35, count=words)  # 11 "tokens" a message (10 words + 1)
    assert kept == history[-3:][1:]  # three fit, but the oldest of them is an answer: dropped
    assert newest_that_fit(history, limit=10_000, count=words) == history
    assert newest_that_fit(history, limit=5, count=words) == []


def test_newest_that_fit_counts_each_message_once() -> None:
    from controller.agent import newest_that_fit

    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return 1

    history = [Message("user", f"m{i}") for i in range(500)]
    newest_that_fit(history, limit=100, count=count)
    assert len(counted) == 51  # 2 tokens a message: 50 fit, and it stops at the first that does not
