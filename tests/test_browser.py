"""A real browser (Debian's Chromium, driven by Playwright) against `streamlit run Home.py`."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from model.store import ConversationStore
from tests.browser import (
    app_env,
    choose_from_menu,
    click,
    conversation_menu,
    messages,
    open_memory_page,
    send,
    settle,
    sidebar,
    streamlit_app,
)

ROOT = Path(__file__).resolve().parent.parent


def test_chat_with_memory_on_the_embedded_model(page: Page, tmp_path: Path) -> None:
    env = {"CONVERSATIONS_FILE": str(tmp_path / "conversations.json"), "MAX_TOKENS": "64"}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        open_memory_page(page, url)
        for turn, text in enumerate(["Hello! My name is Ada.", "What is my name?"], start=1):
            sent = send(page, text)
            expect(page.get_by_test_id("stChatMessage").get_by_text(text)).to_be_visible(timeout=30_000)
            answer = messages(page).nth(2 * turn - 1).get_by_test_id("stMarkdownContainer").first
            expect(answer).to_have_text(re.compile(r"\w"), timeout=60_000)  # the first streamed words
            print(f"turn {turn}: first answer text after {time.monotonic() - sent:.2f} s")
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=60_000)
        expect(page.get_by_test_id("stChatMessage")).to_have_count(4)
        assert not page.dialogs  # type: ignore[attr-defined]
        shot = os.environ.get("BNAGPT_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)


def test_save_load_in_a_fresh_session_continue_rename_delete(browser: Browser, tmp_path: Path) -> None:
    from tests.openai_server import FakeOpenAI

    with FakeOpenAI() as api:
        env = app_env(api, tmp_path / "conversations.json")
        with streamlit_app(env, tmp_path / "streamlit.log") as url:
            first = browser.new_context()
            page = first.new_page()
            open_memory_page(page, url)
            send(page, "My name is Ada.")
            expect(page.get_by_text("Echo: My name is Ada.")).to_be_visible(timeout=30_000)
            settle(page)
            click(page, sidebar(page).get_by_role("button", name="Save", exact=True))
            name_box = sidebar(page).get_by_label("Conversation name")
            # the model's title (the stand-in's: the question, without its full stop) or, until it
            # has come, the first message
            expect(name_box).to_have_value(re.compile(r"^My name is Ada\.?$"))
            name_box.fill("Ada's chat")
            click(page, sidebar(page).get_by_role("button", name="Confirm Save", exact=True))
            expect(sidebar(page).get_by_role("button", name="Ada's chat")).to_be_visible(timeout=15_000)
            first.close()

            # A fresh browser session: nothing on screen until the conversation is opened.
            [saved] = ConversationStore(tmp_path / "conversations.json").list()
            second = browser.new_context()
            page = second.new_page()
            open_memory_page(page, url)
            expect(page.get_by_text("Hi! I'm bnaGPT")).to_be_visible()  # the greeting of an empty chat
            click(page, sidebar(page).get_by_role("button", name="Ada's chat"))  # one click opens it
            expect(page.get_by_test_id("stChatMessage")).to_have_count(2, timeout=15_000)
            send(page, "What is my name?")
            expect(page.get_by_text("Echo: What is my name?")).to_be_visible(timeout=30_000)
            settle(page)
            carried = [m["content"] for m in api.chat_requests[-1].messages]
            assert carried[1:] == ["My name is Ada.", "Echo: My name is Ada.", "What is my name?"]

            menu = sidebar(page).locator(f".st-key-conv-{saved.id}-menu")
            choose_from_menu(page, menu, "Rename")
            new_name = sidebar(page).get_by_label("New name")
            new_name.fill("Ada, renamed")
            new_name.press("Enter")  # Enter confirms
            settle(page)
            expect(sidebar(page).get_by_role("button", name="Ada, renamed")).to_be_visible(timeout=15_000)
            expect(sidebar(page).get_by_text("Conversation: Ada, renamed")).to_be_visible()

            choose_from_menu(page, menu, "Export")
            with page.expect_download() as download:
                sidebar(page).get_by_role("button", name="Download JSON").click()
            exported = json.loads(Path(download.value.path()).read_text("utf-8"))
            assert exported["conversation"]["name"] == "Ada, renamed"
            assert [m["content"] for m in exported["conversation"]["messages"]] == [
                *carried[1:],
                "Echo: What is my name?",
            ]
            with page.expect_download() as download:
                choose_from_menu(page, menu, "Export")
                sidebar(page).get_by_role("button", name="Download Markdown").click()
            markdown = Path(download.value.path()).read_text("utf-8")
            assert markdown.startswith("# Ada, renamed") and "Echo: What is my name?" in markdown

            choose_from_menu(page, menu, "Delete")
            expect(sidebar(page).get_by_text("cannot be undone")).to_be_visible()
            click(page, sidebar(page).get_by_role("button", name="Confirm Delete", exact=True))
            expect(sidebar(page).get_by_text("Nothing saved yet")).to_be_visible(timeout=15_000)
            expect(page.get_by_text("no longer saved")).to_be_visible()  # the chat on screen stays, unsaved
            expect(page.get_by_test_id("stChatMessage")).to_have_count(4)
            second.close()


def test_import_a_tutorial_file_and_refuse_a_bad_one(page: Page, tmp_path: Path) -> None:
    import json

    from model.store import ConversationStore

    legacy = tmp_path / "old.json"
    legacy.write_text(
        json.dumps({"From the tutorial": [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}]})
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Robots": [{"role": "robot", "content": "beep"}]}))
    store_file = tmp_path / "conversations.json"
    with streamlit_app({"CONVERSATIONS_FILE": str(store_file)}, tmp_path / "streamlit.log") as url:
        open_memory_page(page, url)
        uploader = sidebar(page).get_by_test_id("stFileUploaderDropzoneInput")
        uploader.set_input_files(str(bad))
        expect(sidebar(page).get_by_text("Nothing was imported")).to_be_visible(timeout=15_000)
        expect(sidebar(page).get_by_text("robot")).to_be_visible()
        assert not store_file.exists() or not ConversationStore(store_file).list()
        sidebar(page).get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(legacy))
        expect(sidebar(page).get_by_text("From the tutorial")).to_be_visible(timeout=15_000)
        [imported] = ConversationStore(store_file).list()
        conversation = ConversationStore(store_file).load(imported.id)
        assert conversation is not None and [m.role for m in conversation.messages] == ["system", "user"]


def test_an_exported_conversation_brings_its_files_into_a_fresh_app(page: Page, tmp_path: Path) -> None:
    """The JSON export carries the attached PDF and picture; imported by an app with another data
    folder, the same bytes are stored there and the picture is shown, not "no longer stored"."""
    from model.files import FileStore
    from model.message import Conversation, Message
    from model.parts import Attachment
    from tests.test_documents import make_pdf
    from tests.test_transfer import picture

    pdf, png = make_pdf([["Quarterly report"]]), picture("orange")
    here, there = tmp_path / "here", tmp_path / "there"
    stored = [FileStore(here / "files").put(data, name) for name, data in (("report.pdf", pdf), ("chart.png", png))]
    question = Message("user", "What is in these?", attachments=tuple(Attachment(**f.to_dict()) for f in stored))
    saved = ConversationStore(here / "conversations.json").save(
        Conversation("Report", (question, Message("assistant", "A report and a chart.")))
    )
    env = {"DATA_DIR": str(here), "CONVERSATIONS_FILE": str(here / "conversations.json")}
    with streamlit_app(env, tmp_path / "here.log") as url:
        open_memory_page(page, url)
        conversation_menu(page, saved.id, "Export")
        with page.expect_download() as download:
            sidebar(page).get_by_role("button", name="Download JSON").click()
        data = Path(download.value.path()).read_bytes()
        click(page, sidebar(page).get_by_role("button", name="Close", exact=True))
        expect(sidebar(page).get_by_role("button", name="Download JSON")).to_have_count(0)  # the panel closed
    carried = json.loads(data)["files"]
    assert [base64.b64decode(carried[f.sha256]["data"]) for f in stored] == [pdf, png]

    env = {"DATA_DIR": str(there), "CONVERSATIONS_FILE": str(there / "conversations.json")}
    with streamlit_app(env, tmp_path / "there.log") as url:
        open_memory_page(page, url)
        uploader = sidebar(page).get_by_test_id("stFileUploaderDropzoneInput")
        uploader.set_input_files({"name": "Report.json", "mimeType": "application/json", "buffer": data})
        expect(sidebar(page).get_by_text("Imported 1 conversation.")).to_be_visible(timeout=15_000)
        click(page, sidebar(page).get_by_role("button", name="Report"))
        expect(messages(page)).to_have_count(2, timeout=15_000)
        expect(messages(page).first.get_by_test_id("stImage")).to_have_count(1)  # the picture, from this app's store
        expect(page.get_by_text("no longer stored")).to_have_count(0)
    assert [FileStore(there / "files").get(f.sha256) for f in stored] == [pdf, png]
