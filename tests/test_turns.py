"""How a turn ends: complete, cut by the cap, stopped, repeating, or broken off — on every provider."""

from __future__ import annotations

import time

import httpx
import pytest

from controller.chat import ChatController
from controller.guards import loop_start
from model.message import Message
from settings import from_environ
from tests.openai_server import FakeOpenAI
from utils import errors
from utils.local_server import LocalModelServer
from utils.providers import build_llm

LOOP = "I'm not sure of your name either. "


def controller_for(api: FakeOpenAI, **env: str) -> ChatController:
    settings = from_environ(
        {"LLM_PROVIDER": "openai", "OPENAI_API_BASE": api.base_url, "OPENAI_MODEL": "test-model", **env},
        dotenv_path=None,
    )
    return ChatController(
        lambda watch: build_llm(settings, None, watch), provider="openai", model="test-model", system_prompt="SYS"
    )


# --- the repetition guard, alone ---


def test_a_sentence_looping_is_cut_after_its_first_copy() -> None:
    text = "Hello Marta! " + LOOP * 3
    cut = loop_start(text)
    assert cut is not None and text[:cut].rstrip() == "Hello Marta! " + LOOP.strip()


@pytest.mark.parametrize("split", [5, 17, 33, 40])
def test_a_loop_is_seen_wherever_the_stream_happens_to_end(split: int) -> None:
    text = "Intro. " + LOOP * 5
    assert loop_start(text[: len(text) - split]) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Row, row, row your boat, gently down the stream.",
        "ha ha ha ha",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
        "- eggs\n- milk\n- flour\n- sugar\n- butter",
        "def f():\n    return 1\n\n\ndef g():\n    return 2\n",
        "The cat sat. The dog sat. The bird sat. The fish swam.",
        "",
    ],
)
def test_ordinary_text_is_not_taken_for_a_loop(text: str) -> None:
    assert loop_start(text) is None


def test_the_same_sentence_coming_back_between_others_is_a_loop() -> None:
    text = "".join(f"Point {n}. I do not know your name at all. " for n in range(4))
    cut = loop_start(text)
    assert cut is not None and text[:cut].count("I do not know your name at all.") == 3


def test_a_loop_that_varies_between_its_copies_is_seen() -> None:
    # as SmolLM2 wrote it: the same phrases again and again, with other words between them
    text = " ".join(
        f"So let me tell you a little secret that can help your Job Interview: The {word} WAY! "
        f"You know, I've been doing this job long enough. {filler}."
        for word, filler in [("FIRST", "Right"), ("BEST", "Sure thing"), ("ONLY", "Of course"), ("LAST", "Well")]
    )
    cut = loop_start(text)
    assert cut is not None and text[:cut].count("So let me tell you a little secret") == 3


def test_repeated_phrases_in_code_blocks_are_not_a_loop() -> None:
    code = "".join(f"assert parse_the_value_of(item_{n}, strict=True) is not None\nx = {n}\n" for n in range(6))
    assert loop_start(f"Here is the test:\n\n```python\n{code}```\n\nIt checks every item.") is None


def test_loops_of_characters_without_spaces_are_seen() -> None:
    assert loop_start("答案是" + "我不知道。" * 20) is not None
    assert loop_start("!" * 100) is not None


# --- turns against a real HTTP server on loopback ---


def test_a_finished_answer_is_complete(fake_api: FakeOpenAI) -> None:
    turn = controller_for(fake_api).reply([], "hi")
    assert "".join(turn) == "Echo: hi" and turn.status == "complete"


def test_an_answer_cut_by_the_cap_says_so_and_continue_carries_on(fake_api: FakeOpenAI) -> None:
    fake_api.script.reply = "one two three four five six seven eight"
    controller = controller_for(fake_api, MAX_TOKENS="5")
    turn = controller.reply([], "count")
    assert "".join(turn) == "one two three four five " and turn.status == "length"
    fake_api.script.reply = "six seven eight"
    question = Message("user", "count")
    more = controller.continue_reply([question], Message("assistant", turn.text, status="length"))
    assert "".join(more) == "six seven eight" and more.status == "complete"
    assert more.text == "one two three four five six seven eight"
    sent = fake_api.chat_requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant"]  # the answer goes last, to be continued
    assert sent[-1]["content"] == "one two three four five "


def test_a_looping_answer_is_stopped_and_keeps_one_copy(fake_api: FakeOpenAI) -> None:
    fake_api.script.reply = "Hi! " + LOOP * 40
    turn = controller_for(fake_api).reply([], "What is my name?")
    shown = "".join(turn)
    assert turn.status == "repeating"
    assert turn.text == "Hi! " + LOOP.strip()
    assert shown.count(LOOP.strip()) <= 3  # the stream ended long before the 40 copies


@pytest.mark.parametrize("kind", ["unfinished", "close-delimited"])
def test_a_stream_that_ends_without_saying_it_is_finished_is_interrupted(fake_api: FakeOpenAI, kind: str) -> None:
    fake_api.fail_next(kind)
    turn = controller_for(fake_api).reply([], "tell me more")
    with pytest.raises(errors.StreamInterrupted, match="broke off"):
        list(turn)
    assert turn.text.startswith("Echo: tell me") and turn.status is None


def test_lone_surrogates_from_a_model_are_made_valid(fake_api: FakeOpenAI) -> None:
    fake_api.script.reply = "bad \ud800 text"
    turn = controller_for(fake_api).reply([], "x")
    text = "".join(turn)
    assert text == "bad \ufffd text" and turn.text.encode("utf-8")


def test_a_bug_of_ours_is_not_dressed_up_as_a_provider_failure() -> None:
    def broken(watch):  # type: ignore[no-untyped-def]
        raise TypeError("a programming error")

    controller = ChatController(broken, provider="openai", model="m", system_prompt="S")
    with pytest.raises(TypeError, match="a programming error"):
        list(controller.reply([], "hi"))


def test_stop_ends_the_stream_and_keeps_what_arrived(fake_api: FakeOpenAI) -> None:
    fake_api.script.reply = " ".join(f"word{n}" for n in range(200))
    fake_api.script.chunk_delay = 0.02
    turn = controller_for(fake_api).reply([], "long")
    received = []
    for delta in turn:
        received.append(delta)
        if len(received) == 5:
            turn.stop()
    assert turn.status == "stopped" and turn.text == "".join(received)
    assert len(received) == 5


def test_stop_on_the_embedded_model_frees_it_at_once(embedded_model: LocalModelServer) -> None:
    settings = from_environ({"LLM_PROVIDER": "local", "LOCAL_MAX_TOKENS": "2000"}, dotenv_path=None)
    controller = ChatController(
        lambda watch: build_llm(settings, embedded_model, watch), provider="local", model="m", system_prompt="S"
    )
    turn = controller.reply([], "Tell me a long story about a dragon.")
    started = time.monotonic()
    for _ in turn:
        if time.monotonic() - started > 0.5:
            turn.stop()
    assert turn.status == "stopped" and turn.text
    # the model stops generating: within a second no slot of the server is busy any more
    slots = embedded_model.base_url.removesuffix("/v1") + "/slots"
    auth = {"Authorization": f"Bearer {embedded_model.api_key}"}
    deadline = time.monotonic() + 1.0
    while any(slot["is_processing"] for slot in httpx.get(slots, headers=auth).json()):
        assert time.monotonic() < deadline, "the embedded model went on generating after Stop"
        time.sleep(0.05)
