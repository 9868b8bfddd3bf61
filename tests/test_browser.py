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
