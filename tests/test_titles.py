"""A title for a new conversation, asked of the model after its first answer."""

from __future__ import annotations

import pytest

from controller.chat import clean_title
from model.message import Message
from tests.openai_server import FakeOpenAI
from tests.test_turns import controller_for

FIRST = [Message("user", "What should I see in Lisbon in one day?"), Message("assistant", "Start in Alfama…")]


@pytest.mark.parametrize(
    ("reply", "title"),
    [
        ('"Lisbon in One Day."', "Lisbon in One Day"),
        ("Title: **A day in Lisbon**\nHope this helps!", "A day in Lisbon"),
        ("\n\n  # Lisbon sights  ", "Lisbon sights"),
        ("word " * 40, ("word " * 40)[:60].rsplit(" ", 1)[0] + "…"),
        ("", ""),
        ('""', ""),
    ],
)
def test_the_models_reply_is_cleaned_into_a_title(reply: str, title: str) -> None:
    assert clean_title(reply) == title


def test_the_title_is_one_small_call_about_the_first_exchange(fake_api: FakeOpenAI) -> None:
    fake_api.script.title = "“Lisbon in a Day.”"
    assert controller_for(fake_api).suggest_title(FIRST) == "Lisbon in a Day"
    [request] = fake_api.title_requests
    assert request.body["max_tokens"] == 24 and not request.body.get("stream")
    assert "Lisbon in one day" in request.messages[-1]["content"] and "Alfama" in request.messages[-1]["content"]


def test_a_failing_model_gives_no_title_and_no_error(fake_api: FakeOpenAI) -> None:
    fake_api.script.fail_titles = True
    fake_api.fail_next("500")
    assert controller_for(fake_api).suggest_title(FIRST) == ""
    assert controller_for(fake_api).suggest_title([Message("user", "  ")]) == ""  # nothing to name
