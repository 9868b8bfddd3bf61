"""A real browser (Debian's Chromium, driven by Playwright) against `streamlit run Home.py`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    context.close()


def send(page: Page, text: str) -> float:
    """Type a message and press Enter; returns the time it was sent."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    sent = time.monotonic()
    box.press("Enter")
    return sent


def settle(page: Page) -> None:
    """Wait until the script run is over: the input is enabled again and no run is shown."""
    page.wait_for_timeout(300)  # let a rerun that a click asked for begin
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=60_000)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)


def click(page: Page, locator) -> None:  # type: ignore[no-untyped-def]
    """Click a button and wait for the run it starts to finish."""
    locator.click()
    settle(page)


def messages(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stChatMessage")


def open_memory_page(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_text("Chatbot With Memory").click()
    expect(page.get_by_role("heading", name="Chatbot With Memory")).to_be_visible(timeout=30_000)


def test_chat_with_memory_on_the_embedded_model(page: Page, tmp_path: Path) -> None:
    env = {"CONVERSATIONS_FILE": str(tmp_path / "conversations.json"), "MAX_TOKENS": "64"}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        open_memory_page(page, url)
        for turn, text in enumerate(["Hello! My name is Ada.", "What is my name?"], start=1):
            sent = send(page, text)
            expect(page.get_by_test_id("stChatMessage").get_by_text(text)).to_be_visible(timeout=30_000)
            answer = messages(page).nth(2 * turn - 1).get_by_test_id("stMarkdownContainer")
            expect(answer).not_to_have_text("", timeout=60_000)  # the first streamed words
            print(f"turn {turn}: first answer text after {time.monotonic() - sent:.2f} s")
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=60_000)
        expect(page.get_by_test_id("stChatMessage")).to_have_count(4)
        assert not page.dialogs  # type: ignore[attr-defined]
        shot = os.environ.get("BNAGPT_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)


def sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stSidebar")


def test_save_load_in_a_fresh_session_continue_rename_delete(browser: Browser, tmp_path: Path) -> None:
    from tests.openai_server import FakeOpenAI

    with FakeOpenAI() as api:
        env = {
            "CONVERSATIONS_FILE": str(tmp_path / "conversations.json"),
            "LLM_PROVIDER": "openai",
            "OPENAI_API_BASE": api.base_url,
            "OPENAI_MODEL": "test-model",
        }
        with streamlit_app(env, tmp_path / "streamlit.log") as url:
            first = browser.new_context()
            page = first.new_page()
            open_memory_page(page, url)
            send(page, "My name is Ada.")
            expect(page.get_by_text("Echo: My name is Ada.")).to_be_visible(timeout=30_000)
            settle(page)
            click(page, sidebar(page).get_by_role("button", name="Save", exact=True))
            name_box = sidebar(page).get_by_label("Conversation name")
            expect(name_box).to_have_value("My name is Ada.")
            name_box.fill("Ada's chat")
            click(page, sidebar(page).get_by_role("button", name="Confirm Save", exact=True))
            expect(sidebar(page).get_by_text("Ada's chat")).to_be_visible(timeout=15_000)
            first.close()

            # A fresh browser session: nothing on screen until the conversation is loaded.
            second = browser.new_context()
            page = second.new_page()
            open_memory_page(page, url)
            expect(page.get_by_test_id("stChatMessage")).to_have_count(0)
            sidebar(page).get_by_text("Ada's chat").click()
            click(page, sidebar(page).get_by_role("button", name="Load", exact=True))
            expect(page.get_by_test_id("stChatMessage")).to_have_count(2, timeout=15_000)
            send(page, "What is my name?")
            expect(page.get_by_text("Echo: What is my name?")).to_be_visible(timeout=30_000)
            settle(page)
            carried = [m["content"] for m in api.chat_requests[-1].messages]
            assert carried[1:] == ["My name is Ada.", "Echo: My name is Ada.", "What is my name?"]

            sidebar(page).get_by_text("Ada's chat").click()
            click(page, sidebar(page).get_by_role("button", name="Rename", exact=True))
            new_name = sidebar(page).get_by_label("New name")
            new_name.fill("Ada, renamed")
            new_name.press("Enter")
            click(page, sidebar(page).get_by_role("button", name="Confirm Rename", exact=True))
            expect(sidebar(page).get_by_text("Ada, renamed")).to_be_visible(timeout=15_000)

            sidebar(page).get_by_text("Ada, renamed").click()
            click(page, sidebar(page).get_by_role("button", name="Delete", exact=True))
            expect(sidebar(page).get_by_text("cannot be undone")).to_be_visible()
            click(page, sidebar(page).get_by_role("button", name="Confirm Delete", exact=True))
            expect(sidebar(page).get_by_text("Nothing saved yet")).to_be_visible(timeout=15_000)
            second.close()
