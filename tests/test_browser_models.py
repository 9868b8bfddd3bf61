"""The Models page in a real browser: a model downloaded from a loopback server (cut, then resumed)
answers on the Memory page; an Ollama stand-in is detected, chosen and answers."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser import messages, open_memory_page, send, settle, streamlit_app
from tests.ollama_server import FakeOllama
from tests.test_downloads import FileServer
from utils.local_server import find_bundled_model

DOWNLOADED = "smollm2-from-loopback.gguf"


def open_models_page(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_text("Models").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible(timeout=30_000)


def choose(page: Page, label: str | re.Pattern[str]) -> None:
    """Pick `label` in the "Model that answers" box and wait for the page to confirm it."""
    settle(page)
    box = page.get_by_role("combobox", name="Model that answers")
    option = page.get_by_role("option", name=label)
    for _ in range(3):  # a click landing while the page redraws only focuses the box
        box.click()
        try:
            expect(option).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    option.click()
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="answers from now on")).to_be_visible(
        timeout=30_000
    )


def test_a_downloaded_model_cut_and_resumed_answers_on_the_memory_page(page: Page, tmp_path: Path) -> None:
    source = find_bundled_model()
    assert source is not None
    size = source.stat().st_size
    with FakeOllama(models={}) as no_models, FileServer({f"/org/repo/resolve/main/{DOWNLOADED}": source}) as server:
        server.behaviour.cuts = [size // 2]
        env = {
            "CONVERSATIONS_FILE": str(tmp_path / "conversations.json"),
            "MODELS_DIR": str(tmp_path / "models"),
            "OLLAMA_HOST": no_models.host,
            "MAX_TOKENS": "48",
            "LOCAL_MAX_TOKENS": "48",
            "LOCAL_PARALLEL": "1",
        }
        with streamlit_app(env, tmp_path / "streamlit.log") as url:
            open_models_page(page, url)
            page.get_by_label("Link to a .gguf file").fill(server.url(f"/org/repo/resolve/main/{DOWNLOADED}"))
            page.get_by_role("button", name="Download", exact=True).first.click()
            expect(page.get_by_test_id("stAlertContentError")).to_contain_text(
                "Press Download again to resume it", timeout=60_000
            )
            part = tmp_path / "models" / f"{DOWNLOADED}.part"
            kept = part.stat().st_size
            assert 0 < kept < size and not (tmp_path / "models" / DOWNLOADED).exists()

            page.get_by_role("button", name="Download", exact=True).first.click()
            done = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Downloaded")
            expect(done).to_be_visible(timeout=60_000)
            assert server.ranges == [None, f"bytes={kept}-"]
            expected = hashlib.sha256(source.read_bytes()).hexdigest()
            expect(done).to_contain_text(f"{size:,} bytes")
            expect(done).to_contain_text(f"SHA-256: {expected}")
            assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [DOWNLOADED]

            label = re.compile(r"^smollm2-from-loopback \(models folder")
            choose(page, label)
            chosen = json.loads((tmp_path / "preferences.json").read_text())["active_model"]
            assert chosen == f"local:{(tmp_path / 'models' / DOWNLOADED).resolve()}"

            open_memory_page(page, url)
            expect(page.get_by_text(DOWNLOADED).first).to_be_visible(timeout=30_000)  # the page names the model
            send(page, "Say hello.")
            expect(messages(page)).to_have_count(2, timeout=30_000)
            settle(page, timeout=120_000)  # the embedded server loads the downloaded file, then answers
            answer = messages(page).nth(1).get_by_test_id("stMarkdownContainer").first
            expect(answer).to_have_text(re.compile(r"\w"))


def test_an_ollama_stand_in_is_detected_chosen_and_answers(page: Page, tmp_path: Path) -> None:
    with FakeOllama() as stand_in:
        env = {
            "CONVERSATIONS_FILE": str(tmp_path / "conversations.json"),
            "MODELS_DIR": str(tmp_path / "models"),
            "OLLAMA_HOST": stand_in.host,
        }
        with streamlit_app(env, tmp_path / "streamlit.log") as url:
            open_models_page(page, url)
            expect(page.get_by_text(f"Ollama at {stand_in.host} has 2 models.")).to_be_visible()
            choose(page, "qwen2.5:1.5b (Ollama, 1.5B, Q4_K_M, 0.99 GB)")
            open_memory_page(page, url)
            send(page, "Hello Ollama")
            expect(messages(page).nth(1)).to_contain_text("Echo: Hello Ollama", timeout=30_000)
            assert stand_in.chat_requests[-1].body["model"] == "qwen2.5:1.5b"
            assert stand_in.tag_requests  # detected through GET /api/tags
