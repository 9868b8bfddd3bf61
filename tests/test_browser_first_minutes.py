"""The first ten minutes of a new user, in a real browser, on the real embedded model.

One app process serves every test here (each test is a fresh browser session in it).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import ROOT, click, messages, open_memory_page, send, settle, sidebar, streamlit_app

ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("first-minutes")
    env = {"CONVERSATIONS_FILE": str(folder / "conversations.json"), "LLM_PROVIDER": "local"}
    with streamlit_app(env, folder / "streamlit.log") as url:
        yield url


def answer_text(page: Page, index: int = -1) -> str:
    bubbles = messages(page)
    bubble = bubbles.nth(bubbles.count() + index if index < 0 else index)
    return bubble.get_by_test_id("stMarkdownContainer").first.inner_text()


def sentences_in_a_row(text: str) -> int:
    """The most times one sentence comes back to back."""
    parts = [" ".join(p.split()).casefold() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    best = run = 1 if parts else 0
    for before, now in zip(parts, parts[1:], strict=False):
        run = run + 1 if now == before else 1
        best = max(best, run)
    return best


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_home_says_when_the_model_is_ready_without_a_reload(page: Page, app: str) -> None:
    # first in this file: the app's model has not been loaded yet
    page.goto(app)
    expect(page.get_by_text(re.compile("Embedded model: (starting|loading)…"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Embedded model: ready")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("tiny demo model")).to_be_visible()
    expect(page.get_by_role("link", name="Models: choose or download a capable model")).to_be_visible()
    shoot(page, "home.png")


def test_the_first_screen_greets_and_offers_prompts(page: Page, app: str) -> None:
    open_memory_page(page, app)
    expect(page.get_by_text("Hi! I'm bnaGPT")).to_be_visible()
    expect(page.get_by_text("tiny demo model")).to_be_visible()
    starter = page.get_by_role("button", name="Write a haiku about autumn leaves")
    expect(starter).to_be_visible()
    click(page, starter)
    expect(messages(page).first).to_contain_text("Write a haiku about autumn leaves")
    settle(page)
    expect(messages(page)).to_have_count(2)
    assert answer_text(page).strip()
    expect(page.get_by_role("button", name="Write a haiku about autumn leaves")).to_have_count(0)


@pytest.mark.parametrize(
    "prompts",
    [
        ["Write a haiku about autumn leaves"],
        ["Tell me a story"],
        ["My name is Marta and I live in Lisbon", "What is my name?", "Where do I live?"],
    ],
    ids=["haiku", "story", "remember"],
)
def test_answers_end_within_the_cap_and_never_loop(page: Page, app: str, prompts: list[str]) -> None:
    open_memory_page(page, app)
    for number, prompt in enumerate(prompts, start=1):
        send(page, prompt)
        settle(page)
        expect(messages(page)).to_have_count(2 * number)
        text = answer_text(page)
        assert text.strip(), f"no answer to {prompt!r}"
        assert sentences_in_a_row(text) < 3, f"the answer to {prompt!r} repeats itself: {text!r}"
        assert len(text.split()) <= 400, f"the answer to {prompt!r} ran past the cap: {len(text.split())} words"
    assert not page.dialogs  # type: ignore[attr-defined]
    shoot(page, f"first-minutes-{'-'.join(p.split()[0].lower() for p in prompts)}.png")


def test_stop_returns_control_at_once_and_keeps_the_text(page: Page, app: str) -> None:
    open_memory_page(page, app)
    send(page, "Tell me a long story about a dragon who learns to bake bread, with many details.")
    answer = messages(page).nth(1).get_by_test_id("stMarkdownContainer").first
    expect(answer).to_have_text(re.compile(r"(\w+\W+){6}"), timeout=60_000)  # some words have arrived
    stop = page.get_by_role("button", name="Stop")
    pressed = time.monotonic()
    stop.click()
    # checked on every animation frame, so the time is not rounded up to a polling interval
    page.wait_for_function(
        """() => document.body.innerText.includes('Stopped: you ended this answer here.')
                 && document.querySelector('[data-testid="stApp"]').dataset.testScriptState === 'notRunning'""",
        polling="raf",
        timeout=5_000,
    )
    returned = time.monotonic() - pressed
    print(f"Stop → control back: {returned:.2f} s")
    assert returned < 3.0  # the target is 1 s (see the closing note); this bound only catches a hang
    kept = answer_text(page)
    assert len(kept.split()) >= 6
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled()
    shoot(page, "stop.png")
    send(page, "Thanks! Now say hello.")
    settle(page)
    expect(messages(page)).to_have_count(4)
    assert answer_text(page, 1) == kept  # the stopped answer is still on screen, as it was


def test_json_mode_on_the_embedded_model_gives_an_object(page: Page, app: str) -> None:
    """llama.cpp's JSON grammar holds the tiny model to JSON; the page shows it parsed and formatted."""
    open_memory_page(page, app)
    page.get_by_test_id("stCheckbox").filter(has_text="JSON").click()
    settle(page)
    send(page, "Describe a cat with its name and age.")
    settle(page)
    answer = messages(page).nth(1)
    # a loop inside the JSON (cut by the guard) or the token cap leave it unfinished, and the tiny
    # model sometimes closes the object at once ({}): the page says so in a sentence with Retry (the
    # text as it came may hold a code fence): Retry, three times at most
    problem = answer.get_by_text(re.compile("not valid JSON|empty JSON"))
    for _ in range(3):
        if not problem.count():
            break
        click(page, answer.get_by_role("button", name="Retry"))
    expect(problem).to_have_count(0)
    value = json.loads(answer.get_by_test_id("stCode").inner_text())
    assert isinstance(value, dict) and value
    shoot(page, "json-mode.png")


def test_new_chat_while_streaming_leaves_a_working_input(page: Page, app: str) -> None:
    open_memory_page(page, app)
    send(page, "Tell me a long story about a lighthouse keeper.")
    answer = messages(page).nth(1).get_by_test_id("stMarkdownContainer").first
    expect(answer).to_have_text(re.compile(r"\w+\W+\w+"), timeout=60_000)
    sidebar(page).get_by_role("button", name="New chat").click()
    settle(page, timeout=5_000)
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled()
    expect(page.get_by_text("Hi! I'm bnaGPT")).to_be_visible()
    expect(messages(page)).to_have_count(1)  # the greeting alone
    send(page, "Hello there")
    settle(page)
    expect(messages(page)).to_have_count(2)
    assert answer_text(page).strip()


def test_continue_extends_an_answer_cut_by_the_cap(page: Page, tmp_path: Path) -> None:
    env = {
        "CONVERSATIONS_FILE": str(tmp_path / "conversations.json"),
        "LLM_PROVIDER": "local",
        "LOCAL_MAX_TOKENS": "24",
    }
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        open_memory_page(page, url)
        send(page, "Tell me a story about a cat who travels to the moon.")
        settle(page)
        expect(page.get_by_text("The answer reached its length limit.")).to_be_visible()
        before = answer_text(page)
        click(page, page.get_by_role("button", name="Continue"))
        expect(messages(page)).to_have_count(2)  # the same answer grew; no new message
        after = answer_text(page)
        assert after.startswith(before.rstrip(" ▍")[: max(1, len(before) - 5)]) and len(after) > len(before)
        shoot(page, "continue.png")
