"""The chat's choices and controls in a real browser: the model picker, assistants, JSON mode,
Regenerate, Edit and Copy. Groq is a loopback stand-in that records every request.

One app and one stand-in serve the module; each test is a fresh browser session and says
which model and assistant it wants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from controller.assistants import AssistantsController, shared_assistant_store
from model.store import ConversationStore
from tests.browser import (
    answered,
    choose_from_menu,
    click,
    messages,
    open_memory_page,
    save_as,
    send,
    settle,
    sidebar,
    streamlit_app,
)
from tests.openai_server import FakeOpenAI

KEY = "gsk_controls_secret"
FAST, BIG = "llama-3.1-8b-instant", "openai/gpt-oss-120b"


@pytest.fixture(scope="module")
def api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.script.models = {BIG: 131072, FAST: 131072, "whisper-large-v3": 448}
        yield fake


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("controls")


@pytest.fixture(scope="module")
def app(api: FakeOpenAI, folder: Path) -> Iterator[str]:
    env = {
        "DATA_DIR": str(folder),
        "GROQ_API_KEY": KEY,
        "GROQ_API_BASE": api.base_url,
        "GROQ_MODEL": BIG,
    }
    with streamlit_app(env, folder / "streamlit.log") as url:
        yield url


def assistants(folder: Path) -> AssistantsController:
    return AssistantsController(shared_assistant_store(str(folder / "assistants.json")), "You are bnaGPT.")


def pick(page: Page, label: str, option: str) -> None:
    """Choose `option` in the select box labelled `label`."""
    settle(page)
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    click(page, page.get_by_role("option", name=option, exact=True))


def ask(page: Page, text: str, count: int) -> None:
    """Send `text` and wait until the chat holds `count` messages and the run has ended."""
    send(page, text)
    expect(messages(page)).to_have_count(count, timeout=30_000)
    settle(page)


def saved(folder: Path, name: str):  # type: ignore[no-untyped-def]
    store = ConversationStore(folder / "conversations.json")
    found = store.find(name)
    assert found is not None, f"{name!r} was not saved"
    return store.load(found.id)


def test_the_picker_lists_served_chat_models_and_switches_mid_chat(
    page: Page, app: str, fresh: FakeOpenAI, folder: Path
) -> None:
    open_memory_page(page, app)
    page.get_by_test_id("stSelectbox").filter(has_text="Model").click()
    listed = page.get_by_role("option")
    expect(listed.filter(has_text=FAST)).to_have_count(1)
    assert listed.filter(has_text="whisper").count() == 0  # speech-to-text cannot chat
    page.keyboard.press("Escape")
    pick(page, "Model", f"{BIG} on Groq")
    ask(page, "first question", 2)
    pick(page, "Model", f"{FAST} on Groq")
    ask(page, "second question", 4)
    used = [r.body["model"] for r in fresh.answer_requests]
    assert used == [BIG, FAST]
    expect(messages(page).nth(1)).to_contain_text(BIG)  # each answer names its model
    expect(messages(page).nth(3)).to_contain_text(FAST)
    # the second model saw the first one's answer: switching keeps the memory
    assert any("Echo: first question" in m.get("content", "") for m in fresh.answer_requests[1].messages)
    save_as(page, "Two models")
    conversation = saved(folder, "Two models")
    assert [m.model for m in conversation.messages if m.role == "assistant"] == [BIG, FAST]
    raw = json.loads((folder / "conversations.json").read_text())
    assert KEY not in json.dumps(raw)


def test_an_assistant_answers_its_way_and_its_conversation_reopens_with_it(
    browser: Browser, app: str, fresh: FakeOpenAI, folder: Path
) -> None:
    helper = assistants(folder).create(
        name="Pirate",
        description="Answers like a pirate.",
        instructions="Always answer like a pirate, with arr.",
        temperature="0.9",
        starters="Tell me about the sea\nWhat is a doubloon?",
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    pick(page, "Assistant", "Pirate")
    expect(page.get_by_text("Answers like a pirate.")).to_be_visible()
    starter = page.get_by_role("button", name="What is a doubloon?")
    expect(starter).to_be_visible()
    expect(page.get_by_role("button", name="Write a haiku about autumn leaves")).to_have_count(0)
    click(page, starter)
    answered(page, 2, timeout=30_000)
    request = fresh.answer_requests[-1]
    assert request.messages[0] == {"role": "system", "content": "Always answer like a pirate, with arr."}
    assert request.body["temperature"] == 0.9
    save_as(page, "Sea talk")
    assert saved(folder, "Sea talk").assistant_id == helper.id
    context.close()

    # a fresh session opens it with its assistant
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    expect(page.get_by_role("combobox", name="Assistant")).to_have_value("Default")
    click(page, sidebar(page).get_by_role("button", name="Sea talk"))
    expect(page.get_by_role("combobox", name="Assistant")).to_have_value("Pirate")
    ask(page, "and the wind?", 4)
    assert fresh.answer_requests[-1].messages[0]["content"] == "Always answer like a pirate, with arr."
    context.close()

    # once the assistant is deleted its conversation still opens, with the default assistant
    assistants(folder).delete(helper.id)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    click(page, sidebar(page).get_by_role("button", name="Sea talk"))
    expect(messages(page)).to_have_count(4)
    expect(page.get_by_text("assistant was deleted")).to_be_visible()
    ask(page, "still there?", 6)
    assert (
        fresh.answer_requests[-1].messages[0]["content"]
        == "You are bnaGPT, a helpful assistant. Answer clearly and concisely."
    )
    context.close()


def test_json_mode_formats_a_valid_answer_and_reports_an_invalid_one(page: Page, app: str, fresh: FakeOpenAI) -> None:
    open_memory_page(page, app)
    page.get_by_test_id("stCheckbox").filter(has_text="JSON").click()
    settle(page)
    fresh.script.reply = '{"city": "Lisbon", "sights": ["Belém", "Alfama"]}'
    ask(page, "Two sights in Lisbon", 2)
    request = fresh.answer_requests[-1]
    assert request.body["response_format"] == {"type": "json_object"}
    assert "JSON" in request.messages[0]["content"]
    code = messages(page).nth(1).get_by_test_id("stCode")
    expect(code).to_contain_text('"sights": [')  # formatted: indented over several lines
    assert json.loads(code.inner_text()) == {"city": "Lisbon", "sights": ["Belém", "Alfama"]}

    fresh.script.reply = "Sure! Here is the city: Lisbon"
    ask(page, "And Porto?", 4)
    expect(messages(page).nth(3).get_by_text("not valid JSON")).to_be_visible()
    fresh.script.reply = '{"city": "Porto"}'
    click(page, messages(page).nth(3).get_by_role("button", name="Retry"))
    expect(messages(page)).to_have_count(4)
    expect(messages(page).nth(3).get_by_test_id("stCode")).to_contain_text('"city": "Porto"')
    expect(page.get_by_text("not valid JSON")).to_have_count(0)
    # switched off, answers are text again
    page.get_by_test_id("stCheckbox").filter(has_text="JSON").click()
    settle(page)
    fresh.script.reply = ""
    ask(page, "plain now", 6)
    assert "response_format" not in fresh.answer_requests[-1].body


def test_regenerate_edit_and_copy(page: Page, app: str, fresh: FakeOpenAI) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_memory_page(page, app)
    fresh.script.reply = "first answer"
    ask(page, "What is Lisbon?", 2)
    fresh.script.reply = "second answer"
    click(page, messages(page).nth(1).get_by_role("button", name="Regenerate"))
    expect(messages(page)).to_have_count(2)
    expect(messages(page).nth(1)).to_contain_text("second answer")
    expect(page.get_by_text("first answer")).to_have_count(0)
    assert [m["content"] for m in fresh.answer_requests[-1].messages if m["role"] == "user"] == ["What is Lisbon?"]
    # the first answer is kept as another version: ‹ 2 / 2 ›, and going back to it changes what the model remembers
    expect(messages(page).nth(1).get_by_text("2 / 2")).to_be_visible()
    click(page, messages(page).nth(1).get_by_role("button", name="‹", exact=True))
    expect(messages(page).nth(1)).to_contain_text("first answer")
    expect(messages(page).nth(1).get_by_text("1 / 2")).to_be_visible()
    fresh.script.reply = "third answer"
    ask(page, "Tell me more", 4)
    remembered = [m["content"] for m in fresh.answer_requests[-1].messages if m["role"] == "assistant"]
    assert remembered == ["first answer"]
    click(page, messages(page).nth(1).get_by_role("button", name="›", exact=True))
    expect(messages(page)).to_have_count(2)  # the second version's branch has no more messages
    expect(messages(page).nth(1)).to_contain_text("second answer")

    fresh.script.reply = ""
    ask(page, "And Porto?", 4)
    # edit the first question: what came after it is replaced by the new answer
    click(page, messages(page).nth(0).get_by_role("button", name="Edit"))
    editor = page.get_by_label("Edit your message")
    expect(editor).to_have_value("What is Lisbon?")
    editor.fill("What is Coimbra?")
    click(page, page.get_by_role("button", name="Send", exact=True))
    expect(messages(page)).to_have_count(2, timeout=30_000)
    expect(messages(page).nth(1)).to_contain_text("Echo: What is Coimbra?")
    users = [m["content"] for m in fresh.answer_requests[-1].messages if m["role"] == "user"]
    assert users == ["What is Coimbra?"]
    expect(messages(page).nth(0).get_by_text("2 / 2")).to_be_visible()  # the old question is a version too

    copy = messages(page).nth(1).locator("button.copy")
    copy.click()
    expect(copy).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "Echo: What is Coimbra?"


def test_older_answers_bring_their_copy_button_on_a_click(page: Page, app: str, fresh: FakeOpenAI) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_memory_page(page, app)
    for turn in range(1, 6):
        fresh.script.reply = f"answer number {turn}"
        ask(page, f"question {turn}", 2 * turn)
    answers = messages(page).filter(has_text="answer number")
    # the newest four answers have the Copy component ready; the oldest a plain button
    expect(page.locator("button.copy")).to_have_count(4)
    expect(answers.nth(0).locator("button.copy")).to_have_count(0)
    click(page, answers.nth(0).get_by_role("button", name="Copy"))
    copy = answers.nth(0).locator("button.copy")
    expect(copy).to_contain_text("Copied")  # copied at once: the click that brought it asked for it
    assert page.evaluate("navigator.clipboard.readText()") == "answer number 1"


def test_branches_survive_save_reload_export_and_import(
    browser: Browser, app: str, fresh: FakeOpenAI, folder: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    fresh.script.reply = "answer one"
    ask(page, "Name a river", 2)
    fresh.script.reply = "answer two"
    click(page, messages(page).nth(1).get_by_role("button", name="Regenerate"))
    expect(messages(page).nth(1)).to_contain_text("answer two")
    save_as(page, "Rivers")
    click(page, messages(page).nth(1).get_by_role("button", name="‹", exact=True))  # show the first version
    expect(messages(page).nth(1)).to_contain_text("answer one")
    fresh.script.reply = "answer three"
    ask(page, "Another one", 4)  # saved on the first version's branch
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    click(page, sidebar(page).get_by_role("button", name="Rivers"))
    expect(messages(page)).to_have_count(4)  # reopened on the branch shown last
    expect(messages(page).nth(1)).to_contain_text("answer one")
    expect(messages(page).nth(1).get_by_text("1 / 2")).to_be_visible()
    click(page, messages(page).nth(1).get_by_role("button", name="›", exact=True))
    expect(messages(page)).to_have_count(2)
    expect(messages(page).nth(1)).to_contain_text("answer two")

    saved_id = ConversationStore(folder / "conversations.json").find("Rivers").id  # type: ignore[union-attr]
    menu = sidebar(page).locator(f".st-key-conv-{saved_id}-menu")
    choose_from_menu(page, menu, "Export")
    with page.expect_download() as download:
        sidebar(page).get_by_role("button", name="Download JSON").click()
    exported = json.loads(Path(download.value.path()).read_text("utf-8"))["conversation"]
    assert sorted(m["content"] for m in exported["messages"]) == sorted(
        ["Name a river", "answer one", "answer two", "Another one", "answer three"]
    )
    page.keyboard.press("Escape")  # the export panel closes
    settle(page)
    uploader = sidebar(page).get_by_test_id("stFileUploaderDropzoneInput")
    data = Path(download.value.path()).read_bytes()
    uploader.set_input_files({"name": "Rivers.json", "mimeType": "application/json", "buffer": data})
    expect(sidebar(page).get_by_role("button", name="Rivers (2)")).to_be_visible(timeout=30_000)
    copy = ConversationStore(folder / "conversations.json").find("Rivers (2)")
    imported = ConversationStore(folder / "conversations.json").load(copy.id)  # type: ignore[union-attr]
    assert imported is not None and len(imported.messages) == 5
    question = imported.path()[0]
    assert sorted(m.content for m in imported.children(question.id)) == ["answer one", "answer two"]
    context.close()
