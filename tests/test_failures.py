"""Model failures against a real loopback server that fails on purpose: each becomes a sentence."""

from __future__ import annotations

import socket

import pytest

from controller.chat import ChatController
from model.message import Message
from settings import from_environ
from tests.openai_server import FakeOpenAI
from utils import errors
from utils.providers import build_llm, served_models

KEY = "gsk_very_secret_key"


def groq_controller(api: FakeOpenAI, waits: list[float] | None = None, **env: str) -> ChatController:
    settings = from_environ(
        {"GROQ_API_KEY": KEY, "GROQ_API_BASE": api.base_url, "GROQ_MODEL": "test-model", **env}, dotenv_path=None
    )
    return ChatController(
        lambda watch: build_llm(settings, None, watch),
        provider="groq",
        model=settings.groq_model,
        system_prompt="SYS",
        served_models=lambda: served_models(settings),
        sleep=(waits.append if waits is not None else lambda _: None),
    )


def ask(controller: ChatController, text: str = "hi", history: list[Message] | None = None) -> str:
    return "".join(controller.stream_reply(history or [], text))


def test_wrong_key_says_it_was_refused_and_where_to_set_it(fake_api: FakeOpenAI) -> None:
    fake_api.fail_next("401")
    with pytest.raises(errors.KeyRefused) as caught:
        ask(groq_controller(fake_api))
    assert "refused the API key" in str(caught.value) and "GROQ_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)
    assert not caught.value.retryable


def test_short_rate_limit_is_retried_once_by_itself(fake_api: FakeOpenAI) -> None:
    fake_api.fail_next("429")
    waits: list[float] = []
    assert ask(groq_controller(fake_api, waits)) == "Echo: hi"
    assert waits == [1.0] and len(fake_api.chat_requests) == 2


def test_long_rate_limit_says_how_long_to_wait(fake_api: FakeOpenAI) -> None:
    fake_api.script.retry_after = "30"
    fake_api.fail_next("429")
    waits: list[float] = []
    with pytest.raises(errors.RateLimited) as caught:
        ask(groq_controller(fake_api, waits))
    assert caught.value.retry_after == 30 and "in 30 s" in str(caught.value)
    assert waits == [] and len(fake_api.chat_requests) == 1


@pytest.mark.parametrize("kind", ["404", "decommissioned"])
def test_unserved_model_lists_what_the_endpoint_serves(fake_api: FakeOpenAI, kind: str) -> None:
    fake_api.script.models = {"openai/gpt-oss-120b": 131072, "openai/gpt-oss-20b": 131072}
    fake_api.fail_next(kind)
    with pytest.raises(errors.ModelUnavailable) as caught:
        ask(groq_controller(fake_api))
    assert "does not serve the model 'test-model'" in str(caught.value)
    assert "openai/gpt-oss-120b, openai/gpt-oss-20b" in str(caught.value)


def test_server_error_asks_to_retry(fake_api: FakeOpenAI) -> None:
    fake_api.fail_next("500")
    with pytest.raises(errors.ProviderError, match=r"\(500\)\. Press Retry"):
        ask(groq_controller(fake_api))


def test_stream_cut_mid_answer_keeps_what_arrived(fake_api: FakeOpenAI) -> None:
    fake_api.fail_next("cut")
    controller = groq_controller(fake_api)
    received: list[str] = []
    turn = controller.reply([], "tell me a long story")
    with pytest.raises(errors.StreamInterrupted) as caught:
        for delta in turn:
            received.append(delta)
    assert turn.text == "".join(received) and turn.text.startswith("Echo: tell me ")
    assert turn.status is None  # neither complete nor stopped: the page shows it as interrupted
    assert "broke off" in str(caught.value)
    assert ask(controller, "again") == "Echo: again"  # the next request works


def test_endpoint_that_never_answers_times_out(fake_api: FakeOpenAI) -> None:
    fake_api.fail_next("hang")
    with pytest.raises(errors.Unreachable, match="did not answer in time"):
        ask(groq_controller(fake_api, REQUEST_TIMEOUT="1"))


def test_endpoint_that_is_not_there(fake_api: FakeOpenAI) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings = from_environ({"GROQ_API_KEY": KEY, "GROQ_API_BASE": f"http://127.0.0.1:{closed}/v1"}, dotenv_path=None)
    controller = ChatController(
        lambda watch: build_llm(settings, None, watch), provider="groq", model="m", system_prompt="S"
    )
    with pytest.raises(errors.Unreachable, match="Could not reach Groq"):
        ask(controller)
