"""Choosing the model: GGUF files, Ollama (a stand-in on loopback), Groq and OpenAI-compatible servers
(`FakeOpenAI` on loopback); the Models page through AppTest."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

import settings
from controller import models
from controller.chat import ChatController
from controller.models import (
    ModelChoiceError,
    ModelFileError,
    ModelOption,
    ModelsController,
    ollama_cache,
    remote_cache,
)
from controller.runtime import Runtime
from tests.browser import free_port
from tests.ollama_server import FakeOllama
from tests.openai_server import FakeOpenAI
from tests.test_downloads import FileServer, crafted_gguf, sha256
from utils import ollama
from utils.downloads import DownloadFailed, file_name
from utils.gguf import load_recommended
from utils.local_server import find_bundled_model
from utils.providers import build_llm, describe, is_chat_model

ROOT = Path(__file__).resolve().parent.parent
MODELS_PAGE = str(ROOT / "pages" / "3_Models.py")


@pytest.fixture(autouse=True)
def no_ollama(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing listens at OLLAMA_HOST unless a test starts a stand-in; models go under tmp_path."""
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    settings.get_settings.cache_clear()
    ollama_cache.clear()
    remote_cache.clear()
    yield
    ollama_cache.clear()
    remote_cache.clear()


def controller() -> ModelsController:
    settings.get_settings.cache_clear()
    return ModelsController(settings.get_settings())


def put_model(tmp_path: Path, name: str = "tiny.gguf") -> Path:
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(crafted_gguf(64 * 1024))
    return (folder / name).resolve()


def preferences(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "preferences.json").read_text())


# what can answer ------------------------------------------------------------
def test_without_settings_the_bundled_model_answers() -> None:
    bundled = find_bundled_model()
    assert bundled is not None
    c = controller()
    [option] = c.options()
    assert (option.kind, option.model, option.path) == ("local", bundled.name, str(bundled.resolve()))
    assert option.label == "SmolLM2-135M-Instruct.Q4_1 (bundled, 0.10 GB)"
    assert option.id == f"local:{bundled.resolve()}"
    assert c.active() == option == c.default()


def test_the_models_folder_lists_gguf_files_only(tmp_path: Path) -> None:
    path = put_model(tmp_path)
    (tmp_path / "models" / "notes.gguf").write_text("not a model")
    (tmp_path / "models" / "half.gguf.part").write_bytes(crafted_gguf(1024))
    local = controller().local_options()
    assert [o.model for o in local] == ["SmolLM2-135M-Instruct.Q4_1.gguf", "tiny.gguf"]
    assert local[1].path == str(path) and local[1].label == "tiny (models folder, 0.00 GB)"


@pytest.mark.parametrize(
    ("what", "sentence"),
    [
        ("missing", "There is no file at"),
        ("folder", "is a folder or a device, not a file"),
        ("text", "is not a GGUF model file"),
        ("empty", "is not a GGUF model file"),
        ("nothing typed", "Type the path of a .gguf file first."),
    ],
)
def test_add_path_refuses_what_is_not_a_gguf_file(tmp_path: Path, what: str, sentence: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.gguf").write_bytes(b"")
    path = {"missing": tmp_path / "missing.gguf", "folder": tmp_path, "text": tmp_path / "notes.txt"}.get(what)
    typed = {"empty": str(tmp_path / "empty.gguf"), "nothing typed": "  "}.get(what, str(path))
    with pytest.raises(ModelFileError, match=sentence):
        controller().add_path(typed)
    assert not (tmp_path / "preferences.json").exists()


def test_add_path_refuses_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.gguf"
    path.write_bytes(crafted_gguf(1024))
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(ModelFileError, match="permission denied"):
            controller().add_path(str(path))
        return
    # root reads every file: ask as an ordinary user instead, in a forked child of this process
    folder = tmp_path
    while folder != folder.parent:  # let that user reach the file, not read it
        folder.chmod(folder.stat().st_mode | 0o011)
        folder = folder.parent
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(reader)
        os.setgid(65534)
        os.setuid(65534)
        try:
            controller().add_path(str(path))
            said = "no error"
        except ModelFileError as error:
            said = str(error)
        except BaseException as error:  # noqa: BLE001
            said = repr(error)
        os.write(writer, said.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as answer:
        said = answer.read()
    os.waitpid(child, 0)
    assert "permission denied" in said, said


def test_an_added_file_is_remembered(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.gguf").write_bytes(crafted_gguf(1024))
    option = controller().add_path(str(elsewhere / "mine.gguf"))
    assert (option.kind, option.model, option.label) == ("local", "mine.gguf", "mine (added, 0.00 GB)")
    assert controller().add_path(str(elsewhere / "mine.gguf")) == option  # once
    assert preferences(tmp_path)["added_models"] == [str((elsewhere / "mine.gguf").resolve())]
    assert option in controller().options()  # after a restart too
    (elsewhere / "mine.gguf").unlink()
    assert option not in controller().options()


# which one answers -----------------------------------------------------------
def test_a_choice_is_saved_and_survives_a_restart_while_the_model_is_there(tmp_path: Path) -> None:
    path = put_model(tmp_path)
    chosen = controller().choose(f"local:{path}")
    assert preferences(tmp_path) == {"version": 1, "active_model": chosen.id, "added_models": []}
    assert controller().active() == chosen
    path.unlink()
    c = controller()
    assert c.active() == c.default() and c.saved_choice() == chosen.id


def test_choosing_what_is_not_available_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelChoiceError, match="not available any more"):
        controller().choose("ollama:qwen2.5:1.5b")
    assert not (tmp_path / "preferences.json").exists()


def test_an_unreadable_preferences_file_is_ignored_then_replaced(tmp_path: Path) -> None:
    (tmp_path / "preferences.json").write_text("{not json")
    c = controller()
    assert c.active() == c.default()
    assert "could not be used" in c.preferences.problem and "ignored" in c.preferences.problem
    (tmp_path / "preferences.json").write_text(json.dumps({"active_model": 42}))
    assert c.active() == c.default() and "active_model is not a string" in c.preferences.problem
    path = put_model(tmp_path)
    c.choose(f"local:{path}")
    assert preferences(tmp_path)["active_model"] == f"local:{path}" and c.preferences.problem == ""
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("preferences")] == ["preferences.json"]


def test_an_explicit_provider_is_the_default_and_an_available_choice_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "groq")
    monkeypatch.setenv("GROQ_API_KEY", "gsk_test")
    c = controller()
    groq = c.default()
    assert (groq.kind, groq.model, groq.api_base, groq.id) == (
        "groq",
        "openai/gpt-oss-120b",
        "https://api.groq.com/openai/v1",
        "groq:openai/gpt-oss-120b",
    )
    assert c.active() == groq == c.option(groq.id)  # the configured model: found without asking Groq
    path = put_model(tmp_path)
    assert controller().choose(f"local:{path}") == controller().active()
    path.unlink()
    assert controller().active() == groq


def test_an_openai_compatible_server_is_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "served-model")
    c = controller()
    assert c.default() == c.active() == c.remote_options()[0]
    assert (c.active().kind, c.active().api_base) == ("openai", "http://127.0.0.1:9/v1")


# Groq and OpenAI-compatible servers ---------------------------------------------
KEY = "gsk_never_shown_7f3a9c"

# What Groq's /models lists (ids and context windows as Groq gives them), chat models or not.
GROQ_SERVED = {
    "openai/gpt-oss-120b": 131072,
    "llama-3.3-70b-versatile": 131072,
    "llama-3.1-8b-instant": 131072,
    "moonshotai/kimi-k2-instruct-0905": 262144,
    "groq/compound": 131072,
    "whisper-large-v3": 448,
    "whisper-large-v3-turbo": 448,
    "playai-tts": 8192,
    "playai-tts-arabic": 8192,
    "canopylabs/orpheus-v1-english": 4000,
    "meta-llama/llama-guard-4-12b": 131072,
    "meta-llama/llama-prompt-guard-2-86m": 512,
    "openai/gpt-oss-safeguard-20b": 131072,
    "gemma2-9b-it": 8192,  # marked "active": false below
}
GROQ_CHAT = [  # what of GROQ_SERVED can chat, by name
    "groq/compound",
    "llama-3.1-8b-instant",
    "llama-3.3-70b-versatile",
    "moonshotai/kimi-k2-instruct-0905",
    "openai/gpt-oss-120b",
]


@pytest.fixture
def groq(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A stand-in for Groq serving GROQ_SERVED; GROQ_MODEL is llama-3.3-70b-versatile (not first by name)."""
    with FakeOpenAI() as api:
        api.script.models = dict(GROQ_SERVED)
        api.script.model_fields = {"gemma2-9b-it": {"active": False}}
        monkeypatch.setenv("GROQ_API_KEY", KEY)
        monkeypatch.setenv("GROQ_API_BASE", api.base_url)
        monkeypatch.setenv("GROQ_MODEL", "llama-3.3-70b-versatile")
        yield api


def shown(c: ModelsController) -> str:
    """Everything a page could show about the options and their problems."""
    return " ".join([*(o.label for o in c.options()), c.remote_problem("groq"), c.remote_problem("openai")])


def test_groq_lists_every_chat_model_it_serves_the_configured_one_first(groq: FakeOpenAI) -> None:
    c = controller()
    found = c.groq_options()
    assert [o.model for o in found] == [
        "llama-3.3-70b-versatile",  # GROQ_MODEL
        "groq/compound",
        "llama-3.1-8b-instant",
        "moonshotai/kimi-k2-instruct-0905",
        "openai/gpt-oss-120b",
    ]
    assert {(o.kind, o.api_base) for o in found} == {("groq", groq.base_url)}
    assert found[2].label == "llama-3.1-8b-instant on Groq" and found[2].id == "groq:llama-3.1-8b-instant"
    assert c.options() == [*c.local_options(), *found] and c.remote_problem("groq") == ""
    assert groq.models_requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in shown(c) and KEY not in repr(found)


@pytest.mark.parametrize(
    ("model", "chat"),
    [
        ("llama-3.1-8b-instant", True),
        ("qwen/qwen3-32b", True),
        ("groq/compound-mini", True),
        ("deepseek-r1-distill-llama-70b", True),
        ("gpt-4o-mini", True),
        ("whisper-large-v3-turbo", False),
        ("distil-whisper-large-v3-en", False),
        ("playai-tts-arabic", False),
        ("canopylabs/orpheus-arabic-saudi", False),
        ("gpt-4o-mini-tts", False),
        ("tts-1-hd", False),
        ("gpt-4o-transcribe", False),
        ("llama-guard-3-8b", False),
        ("meta-llama/llama-prompt-guard-2-22m", False),
        ("openai/gpt-oss-safeguard-20b", False),
        ("text-embedding-3-small", False),
        ("nomic-embed-text", False),
        ("omni-moderation-latest", False),
    ],
)
def test_which_served_models_can_chat(model: str, chat: bool) -> None:
    assert is_chat_model({"id": model, "active": True}) is chat
    assert is_chat_model({"id": model}) is chat  # an OpenAI-compatible server sends no "active"
    assert is_chat_model({"id": model, "active": False}) is False


def test_the_configured_groq_model_comes_first_even_when_not_served(
    groq: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_MODEL", "retired-model")
    assert [o.model for o in controller().groq_options()] == ["retired-model", *GROQ_CHAT]


def test_each_endpoint_is_asked_once_a_minute_for_every_session(
    groq: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):  # three sessions, each drawing a picker
        c = controller()
        c.options(), c.remote_problem("groq"), c.option("groq:groq/compound")
    assert len(groq.models_requests) == 1
    monkeypatch.setenv("GROQ_API_KEY", "gsk_another_key")  # another key may see other models: asked again
    controller().groq_options()
    assert len(groq.models_requests) == 2
    assert KEY not in repr(remote_cache._answers)  # the cache is keyed by a hash of the key
    monkeypatch.setattr(remote_cache, "seconds", 0.0)  # a minute later
    controller().groq_options()
    assert len(groq.models_requests) == 3
    assert models.REMOTE_CACHE_SECONDS == 60.0


@pytest.mark.parametrize(
    ("failure", "why"),
    [("401", "HTTP 401: the API key was refused"), ("500", "HTTP 500"), ("not-json", "the answer is not a model list")],
)
def test_a_failing_groq_list_offers_groq_model_and_says_why(groq: FakeOpenAI, failure: str, why: str) -> None:
    groq.script.models_failure = failure
    c = controller()
    assert [o.id for o in c.groq_options()] == ["groq:llama-3.3-70b-versatile"]
    assert c.remote_problem("groq") == (
        f"Groq's model list could not be fetched ({why}); only llama-3.3-70b-versatile (GROQ_MODEL) is offered."
    )
    assert c.remote_problem("openai") == ""  # not configured
    assert KEY not in shown(c)
    groq.script.models_failure = ""  # back, but the failure is kept for a minute too
    assert len(controller().groq_options()) == 1 and len(groq.models_requests) == 1


def test_a_slow_groq_list_costs_the_read_timeout_once(groq: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "REMOTE_READ_TIMEOUT", 0.4)
    groq.script.models_delay = 30
    started = time.monotonic()
    c = controller()
    assert [o.model for o in c.groq_options()] == ["llama-3.3-70b-versatile"]
    assert 0.35 < time.monotonic() - started < 1.0
    assert "(no answer within 0.4 s)" in c.remote_problem("groq")
    started = time.monotonic()
    assert len(controller().options()) == 2 and time.monotonic() - started < 0.1  # bundled + GROQ_MODEL


def test_nothing_listening_at_groq_is_quick_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    monkeypatch.setenv("GROQ_API_BASE", f"http://127.0.0.1:{free_port()}/v1")
    started = time.monotonic()
    c = controller()
    assert [o.model for o in c.groq_options()] == ["openai/gpt-oss-120b"]
    assert c.remote_problem("groq") == (
        "Groq's model list could not be fetched (no connection); only openai/gpt-oss-120b (GROQ_MODEL) is offered."
    )
    assert time.monotonic() - started < 0.3


def test_an_openai_compatible_server_lists_its_chat_models(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI() as server:
        server.script.models = {"qwen2.5-7b-instruct": 32768, "bge-m3-embedding": 8192, "served-model": 8192}
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        c = controller()
        found = c.remote_options()  # no Groq key: the OpenAI-compatible server only
        assert [o.id for o in found] == ["openai:qwen2.5-7b-instruct", "openai:served-model"]
        assert found[0].label == f"qwen2.5-7b-instruct on {server.base_url}" and found[0].api_base == server.base_url
        assert "Authorization" not in server.models_requests[0].headers  # no OPENAI_API_KEY: none sent
        monkeypatch.setenv("OPENAI_MODEL", "served-model")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        assert [o.model for o in controller().openai_options()] == ["served-model", "qwen2.5-7b-instruct"]
        assert server.models_requests[-1].headers["Authorization"] == f"Bearer {KEY}"
        server.script.models_failure = "500"
        remote_cache.clear()
        c = controller()
        assert [o.model for o in c.openai_options()] == ["served-model"]
        assert c.remote_problem("openai") == (
            f"The model list of {server.base_url} could not be fetched (HTTP 500); "
            "only served-model (OPENAI_MODEL) is offered."
        )
        assert KEY not in shown(c)
        monkeypatch.delenv("OPENAI_MODEL")
        c = controller()
        assert c.openai_options() == [] and "none of its models is offered" in c.remote_problem("openai")


def test_option_finds_an_id_asking_only_what_its_kind_needs(groq: FakeOpenAI, tmp_path: Path) -> None:
    path = put_model(tmp_path)
    c = controller()
    assert c.option(f"local:{path}") == next(o for o in c.local_options() if o.path == str(path))
    assert c.option("groq:llama-3.3-70b-versatile") == ModelOption(
        "groq", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile on Groq", api_base=groq.base_url
    )
    assert groq.models_requests == []  # a GGUF file, or GROQ_MODEL itself, never waits on Groq
    assert c.option("groq:llama-3.1-8b-instant") == c.groq_options()[2]
    for missing in ("groq:whisper-large-v3", "groq:gemma2-9b-it", "groq:unknown", "openai:llama-3.1-8b-instant"):
        assert c.option(missing) is None, missing
    assert c.option("ollama:qwen2.5:1.5b") is None and c.option("local:/nowhere.gguf") is None
    assert c.option("") is None and c.option("nonsense") is None
    assert len(groq.models_requests) == 1


def test_a_saved_groq_model_other_than_groq_model_answers(groq: FakeOpenAI, tmp_path: Path) -> None:
    chosen = controller().choose("groq:llama-3.1-8b-instant")
    assert preferences(tmp_path)["active_model"] == "groq:llama-3.1-8b-instant"
    c = controller()  # another session, or after a restart
    assert c.active() == chosen and c.active() != c.default()
    # what the chat pages do with it: Runtime.settings, then the provider path a turn takes
    answering = Runtime(settings.get_settings()).settings
    assert (answering.llm_provider, answering.groq_model) == ("groq", "llama-3.1-8b-instant")
    assert describe(answering).model == "llama-3.1-8b-instant"
    chat = ChatController(
        lambda watch: build_llm(answering, None, watch), provider="groq", model="m", system_prompt="SYS"
    )
    assert "".join(chat.stream_reply([], "hi")) == "Echo: hi"
    assert groq.chat_requests[-1].body["model"] == "llama-3.1-8b-instant"
    assert groq.chat_requests[-1].headers["Authorization"] == f"Bearer {KEY}"
    with pytest.raises(ModelChoiceError, match="not available any more"):
        controller().choose("groq:whisper-large-v3")
    groq.script.models_failure = "500"  # Groq's list cannot be had: whether it is still served is unknown
    remote_cache.clear()
    assert controller().active() == controller().default()
    assert controller().saved_choice() == "groq:llama-3.1-8b-instant"  # kept for when the list is back


# Ollama --------------------------------------------------------------------------
def test_ollama_is_detected_listed_and_answers_through_its_openai_api(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama() as stand_in:
        monkeypatch.setenv("OLLAMA_HOST", stand_in.host)
        c = controller()
        found = c.ollama_options()
        assert [(o.kind, o.model, o.api_base) for o in found] == [
            ("ollama", "llama3.2:1b", stand_in.base_url),
            ("ollama", "qwen2.5:1.5b", stand_in.base_url),
        ]
        assert found[1].label == "qwen2.5:1.5b (Ollama, 1.5B, Q4_K_M, 0.99 GB)"
        chosen = c.choose("ollama:qwen2.5:1.5b")
        assert controller().active() == chosen
        reply = httpx.post(
            f"{chosen.api_base}/chat/completions",
            headers={"Authorization": "Bearer ollama"},
            json={"model": chosen.model, "messages": [{"role": "user", "content": "hi"}]},
        ).json()
        assert reply["choices"][0]["message"]["content"] == "Echo: hi"
        assert stand_in.chat_requests[-1].body["model"] == "qwen2.5:1.5b"
        assert len(stand_in.tag_requests) == 1  # cached: asked once for all of the above
        c.look_for_ollama_again()
        c.ollama_options()
        assert len(stand_in.tag_requests) == 2
    ollama_cache.clear()
    assert controller().active() == controller().default()  # Ollama stopped: back to the default


def test_ollama_without_models_is_running_but_offers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama(models={}) as stand_in:
        monkeypatch.setenv("OLLAMA_HOST", stand_in.host)
        assert controller().ollama_models() == [] and controller().ollama_options() == []


def test_nothing_listening_means_no_ollama_at_once() -> None:
    started = time.monotonic()
    c = controller()
    assert c.ollama_models() is None and c.options() == c.local_options()
    assert time.monotonic() - started < 0.3


def test_a_server_that_never_answers_costs_one_second_then_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the kernel; nobody ever answers
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert controller().ollama_models() is None
        assert time.monotonic() - started < ollama.READ_TIMEOUT + 0.5
        started = time.monotonic()
        assert controller().ollama_models() is None  # the answer is kept for a while
        assert time.monotonic() - started < 0.05


def test_ollama_host_as_ollama_accepts_it() -> None:
    assert ollama.base_url("0.0.0.0") == "http://127.0.0.1:11434"
    assert ollama.base_url("localhost:8080") == "http://localhost:8080"
    assert ollama.base_url("https://ollama.example.com/") == "https://ollama.example.com:11434"
    assert ollama.api_base("http://[::1]:11434") == "http://[::1]:11434/v1"
    assert ollama.list_models("localhost:not-a-port") is None


# getting more -------------------------------------------------------------------
def test_the_recommended_models_are_plain_data() -> None:
    models = load_recommended()
    assert len(models) >= 5 and len({m.name for m in models}) == len(models)
    assert [m.size_mb for m in models] == sorted(m.size_mb for m in models)
    for m in models:
        assert m.url.startswith("https://huggingface.co/") and "/resolve/main/" in m.url
        assert file_name(m.url) == m.file and m.licence and m.licence_url.startswith("https://")


def test_a_download_becomes_an_option(tmp_path: Path) -> None:
    data = crafted_gguf()
    with FileServer({"/org/repo/resolve/main/downloaded.gguf": data}) as server:
        c = controller()
        seen: list[int] = []
        option = c.download(server.url("/org/repo/resolve/main/downloaded.gguf"), lambda done, total: seen.append(done))
        with pytest.raises(DownloadFailed, match="already in"):
            c.download(server.url("/org/repo/resolve/main/downloaded.gguf"), lambda done, total: None)
    assert option.path == str((tmp_path / "models" / "downloaded.gguf").resolve())
    assert c.last_download is not None and c.last_download.sha256 == sha256(data) and seen[-1] == len(data)
    assert option in controller().options()


# the page ------------------------------------------------------------------------
def page() -> AppTest:
    return AppTest.from_file(MODELS_PAGE, default_timeout=30).run()


def plain(markdown: str) -> str:
    """What an escaped sentence shows on the page."""
    return re.sub(r"\\(.)", r"\1", markdown)


def text_of(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


def test_page_lists_the_bundled_model_and_the_recommended_ones() -> None:
    at = page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Models"
    bundled = find_bundled_model()
    assert bundled is not None
    choice = at.selectbox(key="models:choice")
    assert choice.value == f"local:{bundled.resolve()}"
    assert choice.options == ["SmolLM2-135M-Instruct.Q4_1 (bundled, 0.10 GB)"]
    assert "tiny demo" in text_of(at) and "No Ollama answers at" in text_of(at)
    assert "SmolLM2-135M-Instruct.Q4_1 (bundled, 0.10 GB)" in plain(text_of(at))
    recommended = [b for b in at.button if b.key and b.key.startswith("models:get:")]
    assert len(recommended) == len(load_recommended()) and all(b.label == "Download" for b in recommended)


def test_page_add_by_path_says_what_is_wrong_in_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    at = page()
    at.text_input(key="models:path").input(str(tmp_path / "notes.txt")).run()
    at.button(key="models:add").click().run()
    assert not at.exception
    assert [plain(e.value) for e in at.error] == [
        f"{tmp_path / 'notes.txt'} is not a GGUF model file (it does not start with “GGUF”). The embedded model "
        "needs a .gguf file, such as one from the recommended list."
    ]
    at.text_input(key="models:path").input(str(tmp_path / "nothing.gguf")).run()
    at.button(key="models:add").click().run()
    assert plain(at.error[0].value).startswith(f"There is no file at {tmp_path / 'nothing.gguf'} (paths are read")


def test_page_add_by_path_then_choose_persists_to_preferences(tmp_path: Path) -> None:
    elsewhere = tmp_path / "mine.gguf"
    elsewhere.write_bytes(crafted_gguf(4096))
    at = page()
    at.text_input(key="models:path").input(str(elsewhere)).run()
    at.button(key="models:add").click().run()
    assert not at.exception and "Added mine (added, 0.00 GB)" in plain(at.success[0].value)
    option_id = f"local:{elsewhere.resolve()}"
    at.selectbox(key="models:choice").select(option_id).run()
    assert not at.exception
    assert preferences(tmp_path)["active_model"] == option_id
    assert plain(at.success[0].value) == "mine (added, 0.00 GB) answers from now on."
    again = page()  # a new session, as after a restart
    assert again.selectbox(key="models:choice").value == option_id


def test_page_downloads_with_progress_and_shows_size_and_sha256(tmp_path: Path) -> None:
    data = crafted_gguf()
    with FileServer({"/org/repo/resolve/main/paged.gguf": data}) as server:
        at = page()
        at.text_input(key="models:url").input(server.url("/org/repo/resolve/main/paged.gguf")).run()
        at.button(key="models:download").click().run()
        assert not at.exception, at.exception
        done = plain(at.success[0].value)
        assert f"Downloaded paged.gguf: {len(data):,} bytes" in done and f"SHA-256: {sha256(data)}." in done
        assert "paged (models folder" in " ".join(at.selectbox(key="models:choice").options)
        at.text_input(key="models:url").input(server.url("/org/repo/resolve/main/missing.gguf")).run()
        at.button(key="models:download").click().run()
        assert not at.exception and "no file at that link (404)" in plain(at.error[0].value)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["paged.gguf"]


def test_page_lists_ollama_models_when_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOllama() as stand_in:
        monkeypatch.setenv("OLLAMA_HOST", stand_in.host)
        at = page()
        assert not at.exception
        assert "qwen2.5:1.5b (Ollama, 1.5B, Q4_K_M, 0.99 GB)" in at.selectbox(key="models:choice").options
        assert f"Ollama at {stand_in.host} has 2 models." in text_of(at)
