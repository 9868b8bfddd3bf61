"""Search and organise in a real browser (Debian's Chromium) against `streamlit run Home.py`,
with a store file of 5,000 conversations."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from model.store import ConversationStore
from tests.browser import (
    app_env,
    click,
    conversation_menu,
    mark,
    messages,
    open_memory_page,
    settle,
    sidebar,
    streamlit_app,
)
from tests.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
COUNT = 5000
TARGET, AT = 3999, 7  # the 4,000th conversation, its 8th message: the only place of WORD
WORD = "quetzalcoatlus"
FIRST_SEARCH_MS = 180_000  # the first search of the process indexes 100,000 messages


def conversation(i: int) -> dict[str, Any]:
    stamp = f"2025-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"  # newer as i grows
    texts = [
        f"message {j} of conversation {i:05d}: " + "the quick brown fox jumps over the lazy dog " * 11
        for j in range(20)
    ]
    if i == TARGET:
        texts[AT] = f"message {AT} of conversation {i:05d}: a {WORD} had wings wider than a small plane. " + texts[AT]
    return {
        "id": f"c{i:05d}",
        "name": f"conversation {i:05d}",
        "created_at": stamp,
        "updated_at": stamp,
        "model": "test-model",
        "messages": [
            {"role": "user" if j % 2 == 0 else "assistant", "content": t[:500], "created_at": stamp}
            for j, t in enumerate(texts)
        ],
    }


def entry(page: Page, name: str):  # type: ignore[no-untyped-def]
    return sidebar(page).get_by_role("button", name=name, exact=True)


def test_search_5000_conversations_then_pin_and_archive(page: Page, tmp_path: Path) -> None:
    file = tmp_path / "conversations.json"
    document = {"version": 1, "conversations": {c["id"]: c for c in map(conversation, range(COUNT))}}
    file.write_text(json.dumps(document), encoding="utf-8")
    # sources are not watched: an edit in the checkout must not rerun the page under the test
    with (
        FakeOpenAI() as api,
        streamlit_app(
            {**app_env(api, file), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}, tmp_path / "streamlit.log"
        ) as url,
    ):
        open_memory_page(page, url)
        box = sidebar(page).get_by_label("Search conversations")
        box.fill(WORD)
        mark(page)
        started = time.monotonic()
        box.press("Enter")
        settle(page, timeout=FIRST_SEARCH_MS)
        target = ConversationStore(file).load(f"c{TARGET:05d}")
        assert target is not None
        hit = sidebar(page).locator(f".st-key-conv-hit-{target.id}-{target.messages[AT].id}").get_by_role("button")
        expect(hit).to_have_accessible_name(f"conversation {TARGET:05d}", timeout=30_000)
        print(f"first search (indexes {COUNT * 20:,} messages): {time.monotonic() - started:.1f} s")
        snippet = sidebar(page).get_by_test_id("stCaptionContainer").filter(has_text=WORD)
        expect(snippet).to_contain_text(f"Assistant: message {AT} of conversation {TARGET:05d}: a {WORD} had wings")
        expect(snippet.locator("strong", has_text=WORD)).to_be_visible()  # the highlighted word
        ARTIFACTS.mkdir(exist_ok=True)
        sidebar(page).screenshot(path=str(ARTIFACTS / "search.png"))

        click(page, hit)
        expect(messages(page).filter(has_text=WORD)).to_have_count(1, timeout=30_000)
        expect(messages(page).first).to_contain_text("message 0 of conversation 03999")

        box.fill("lazy dog conversation 04990")  # a second search: the index is built
        started = time.monotonic()
        box.press("Enter")
        settle(page)
        print(f"second search: {time.monotonic() - started:.1f} s")
        other = sidebar(page).locator("[class*='st-key-conv-hit-c04990-']").get_by_role("button")
        expect(other).to_have_accessible_name("conversation 04990")

        box.fill("")
        box.press("Enter")
        settle(page)
        expect(entry(page, "conversation 04999")).to_be_visible()
        pinned = ConversationStore(file).find("conversation 04985")
        assert pinned is not None
        conversation_menu(page, pinned.id, "Pin")
        expect(page.get_by_text("Pinned “conversation 04985”.")).to_be_visible(timeout=15_000)
        open_buttons = sidebar(page).locator("[data-testid='stButton'] button").filter(has_text="conversation 0")
        expect(open_buttons.first).to_have_accessible_name("conversation 04985")
        assert ConversationStore(file).find("conversation 04985").pinned  # type: ignore[union-attr]

        archived = ConversationStore(file).find("conversation 04999")
        assert archived is not None
        conversation_menu(page, archived.id, "Archive")
        expect(entry(page, "conversation 04999")).to_have_count(0, timeout=15_000)
        section = sidebar(page).get_by_test_id("stExpander").filter(has_text="Archived (1)")
        expect(section).to_be_visible()
        section.get_by_text("Archived (1)").click()
        expect(entry(page, "conversation 04999")).to_be_visible()
        conversation_menu(page, archived.id, "Unarchive")
        expect(section).to_have_count(0, timeout=15_000)
        expect(open_buttons.nth(1)).to_have_accessible_name("conversation 04999")  # after the pinned one
        assert not ConversationStore(file).find("conversation 04999").archived  # type: ignore[union-attr]
