"""Shared fixtures. Everything is real: files under tmp_path, HTTP servers on loopback,
the embedded llama.cpp server. Only the remote API (Groq) is replaced, by `FakeOpenAI`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import settings  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.openai_server import FakeOpenAI  # noqa: E402
from utils.local_server import LocalModelServer  # noqa: E402

APP_VARIABLES = [
    "LLM_PROVIDER",
    "ASSISTANTS_FILE",
    "SEARCH_PROVIDER",
    "SEARXNG_URL",
    "TAVILY_API_KEY",
    "TAVILY_API_BASE",
    "SEARCH_ALLOW_PRIVATE",
    "DOCUMENT_MAX_MB",
    "DOCUMENT_MAX_PAGES",
    "DOCUMENT_MAX_ROWS",
    "EMBED_API_BASE",
    "EMBED_MODEL",
    "EMBED_API_KEY",
    "IMAGE_MAX_MB",
    "IMAGE_MAX_MEGAPIXELS",
    "IMAGE_API_BASE",
    "IMAGE_MODEL",
    "IMAGE_API_KEY",
    "TRANSCRIBE_API_BASE",
    "TRANSCRIBE_MODEL",
    "TRANSCRIBE_API_KEY",
    "SPEECH_API_BASE",
    "SPEECH_MODEL",
    "SPEECH_VOICE",
    "SPEECH_API_KEY",
    "AUDIO_MAX_SECONDS",
    "GROQ_API_KEY",
    "GROQ_MODEL",
    "GROQ_API_BASE",
    "OPENAI_API_BASE",
    "OPENAI_MODEL",
    "OPENAI_API_KEY",
    "LOCAL_MODEL_PATH",
    "LOCAL_CONTEXT_WINDOW",
    "LOCAL_PARALLEL",
    "LOCAL_THREADS",
    "LOCAL_TEMPERATURE",
    "LOCAL_TOP_P",
    "LOCAL_MIN_P",
    "LOCAL_REPEAT_PENALTY",
    "LOCAL_MAX_TOKENS",
    "MODELS_DIR",
    "OLLAMA_HOST",
    "DATA_DIR",
    "CONVERSATIONS_FILE",
    "REQUEST_TIMEOUT",
    "MAX_TOKENS",
    "SYSTEM_PROMPT",
]


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts from no settings at all: no developer .env, no key, its own store file."""
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings, "ROOT", tmp_path)
    monkeypatch.setenv("CONVERSATIONS_FILE", str(tmp_path / "conversations.json"))
    settings.get_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()


@pytest.fixture
def fake_api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as api:
        yield api


@pytest.fixture
def use_fake_openai(monkeypatch: pytest.MonkeyPatch, fake_api: FakeOpenAI) -> FakeOpenAI:
    """Point the app at the fake server as an OpenAI-compatible provider."""
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_BASE", fake_api.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "test-model")
    settings.get_settings.cache_clear()
    return fake_api


@pytest.fixture(scope="session")
def embedded_model() -> Iterator[LocalModelServer]:
    """The real embedded model server, started once for the session."""
    server = LocalModelServer(parallel=2)
    server.start()
    yield server


@pytest.fixture(scope="session")
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


# The browser modules that share one app and one stand-in per module (they define `api` and `folder`).
@pytest.fixture
def fresh(api: FakeOpenAI, folder: Path) -> Iterator[FakeOpenAI]:
    """The stand-in echoing again, with no requests recorded and no model picked before."""
    api.script.reply = ""
    api.requests.clear()
    (folder / "preferences.json").unlink(missing_ok=True)
    yield api
