"""Bad days in a real browser: hostile model output, a stream cut mid-answer, secrets, loopback,
and several people chatting with the embedded model at once."""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from model.store import ConversationStore
from tests.browser import app_env, click, messages, open_memory_page, send, settle, sidebar, streamlit_app
from tests.openai_server import FakeOpenAI

KEY = "gsk_browser_secret_value"


def test_hostile_output_is_inert_and_the_key_never_shows(page: Page, tmp_path: Path) -> None:
    with FakeOpenAI() as api:
        pixel = api.base_url.removesuffix("/v1") + "/pixel.png"
        api.script.reply = (
            f"Look: <img src=x onerror=\"alert('img')\"> <script>alert('script')</script> "
            f"[click me](javascript:alert('link')) ![tracker]({pixel}) "
            "<a href=\"javascript:alert('a')\">raw link</a> **done**"
        )
        store_file = tmp_path / "conversations.json"
        env = {
            "CONVERSATIONS_FILE": str(store_file),
            "GROQ_API_KEY": KEY,
            "GROQ_API_BASE": api.base_url,
            "GROQ_MODEL": "test-model",
        }
        log = tmp_path / "streamlit.log"
        with streamlit_app(env, log) as url:
            open_memory_page(page, url)
            send(page, "Say something nasty")
            expect(messages(page).nth(1).get_by_text("done")).to_be_visible(timeout=30_000)
            settle(page)
            click(page, sidebar(page).get_by_role("button", name="Save", exact=True))
            click(page, sidebar(page).get_by_role("button", name="Confirm Save", exact=True))
            expect(sidebar(page).get_by_role("button", name="Say something nasty")).to_be_visible(timeout=15_000)
            answer = messages(page).nth(1)
            assert answer.locator("img").count() == 0
            assert answer.locator("script").count() == 0
            assert page.locator("a[href^='javascript:']").count() == 0
            # clicking the words of the neutered link (not the middle of its paragraph, where the
            # harmless http link to the pixel may sit) runs nothing
            box = page.evaluate(
                """() => {
                  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                  while (walker.nextNode()) {
                    const at = walker.currentNode.data.indexOf('click me');
                    if (at >= 0) {
                      const range = document.createRange();
                      range.setStart(walker.currentNode, at);
                      range.setEnd(walker.currentNode, at + 8);
                      const r = range.getBoundingClientRect();
                      return {x: r.x + r.width / 2, y: r.y + r.height / 2};
                    }
                  }
                }"""
            )
            page.mouse.click(box["x"], box["y"])
            page.wait_for_timeout(500)  # a dialog, if any, would open within this (nothing to wait *for*)
            assert not page.dialogs  # type: ignore[attr-defined]
            assert not [r for r in api.requests if r.path.endswith("pixel.png")]  # nothing fetched
            assert KEY not in page.content()
        assert KEY not in log.read_text()
        assert KEY not in store_file.read_text()
        assert "Say something nasty" in store_file.read_text()


def test_stream_cut_mid_answer_keeps_it_marked_and_retry_asks_again(page: Page, tmp_path: Path) -> None:
    with FakeOpenAI() as api:
        api.script.chunk_delay = 0.05
        env = app_env(api, tmp_path / "c.json")
        with streamlit_app(env, tmp_path / "streamlit.log") as url:
            open_memory_page(page, url)
            api.fail_next("cut")
            send(page, "a long story please")
            expect(page.get_by_text("Interrupted")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("broke off")).to_be_visible()
            expect(messages(page).nth(0)).to_contain_text("a long story please")
            settle(page)
            click(page, page.get_by_role("button", name="Retry"))
            expect(page.get_by_text("Echo: a long story please")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Interrupted")).to_have_count(0)
            assert not page.get_by_text("Traceback").count()


def listening_addresses(port: int) -> set[str]:
    """Local addresses listening on `port`, from the kernel's own table (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_app_listens_on_loopback_only_with_xsrf_protection(tmp_path: Path) -> None:
    import tomllib

    config = tomllib.loads(Path(".streamlit/config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"].get("enableXsrfProtection", True) is True
    with streamlit_app({"CONVERSATIONS_FILE": str(tmp_path / "c.json")}, tmp_path / "log", address=None) as url:
        port = int(url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else


def test_ten_sessions_chat_with_the_embedded_model_at_once(browser: Browser, tmp_path: Path) -> None:
    sessions = 10
    store_file = tmp_path / "conversations.json"
    env = {"CONVERSATIONS_FILE": str(store_file), "LOCAL_MAX_TOKENS": "24", "LOCAL_PARALLEL": "4"}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        contexts = [browser.new_context() for _ in range(sessions)]
        pages = [c.new_page() for c in contexts]
        for page in pages:
            open_memory_page(page, url)
        for i, page in enumerate(pages):  # all asking at (nearly) the same time
            send(page, f"I am visitor number {i}.")
        for i, page in enumerate(pages):
            expect(messages(page)).to_have_count(2, timeout=90_000)
            settle(page)
            expect(messages(page).nth(1).get_by_test_id("stMarkdownContainer").first).not_to_have_text("")
            body = page.locator("body").inner_text()
            others = [j for j in range(sessions) if j != i and f"visitor number {j}." in body]
            assert not others, f"session {i} sees sessions {others}"
        for page in pages:  # everyone saves at once
            sidebar(page).get_by_role("button", name="Save", exact=True).click()
        for i, page in enumerate(pages):
            settle(page)
            sidebar(page).get_by_label("Conversation name").fill(f"Visitor {i}")
            sidebar(page).get_by_label("Conversation name").press("Enter")  # Enter saves
        for page in pages:
            settle(page)
        names = {c.name for c in ConversationStore(store_file).list()}
        assert names == {f"Visitor {i}" for i in range(sessions)}
        for c in contexts:
            c.close()
    assert json.loads(store_file.read_text())["version"] == 2
    assert os.stat(store_file).st_mode & 0o777 == 0o600
