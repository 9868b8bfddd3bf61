"""Reading a JSON-mode answer back: the value when there is one worth showing, else a sentence."""

from __future__ import annotations

import pytest

from controller.json_mode import read_json_answer


def test_an_object_is_read_even_inside_one_code_fence() -> None:
    assert read_json_answer('{"name": "Tom", "age": 3}').value == {"name": "Tom", "age": 3}
    assert read_json_answer('```json\n{"name": "Tom"}\n```').value == {"name": "Tom"}
    assert read_json_answer('{"name": "Tom"}').problem == ""


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "The answer is empty, not JSON."),
        ('{"name": "Tom", ', "The answer is not valid JSON ("),
        ("{}", "The answer is an empty JSON object: the model filled nothing in."),
        ("```json\n[]\n```", "The answer is an empty JSON list: the model filled nothing in."),
    ],
)
def test_what_cannot_be_shown_as_an_answer_is_said(text: str, said: str) -> None:
    problem = read_json_answer(text).problem
    assert problem.startswith(said)
    assert "Retry" not in problem  # the page offers Retry where there is one, and says so once
