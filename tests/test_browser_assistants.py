"""The Assistants page in a real browser: create through the form (after a field error), edit,
duplicate, export, delete, import back, Use in chat; 200 assistants; the README's screenshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from controller.assistants import AssistantsController
from controller.knowledge import knowledge_index
from model.assistant_store import AssistantStore
from settings import DEFAULT_SYSTEM_PROMPT, get_settings
from tests.browser import app_env, click, settle, streamlit_app
from tests.openai_server import FakeOpenAI
from tests.test_documents import make_docx, make_pdf
from utils.local_server import find_bundled_model

NO_OLLAMA = "http://127.0.0.1:9"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"  # nothing answers there: the model list does not wait for Ollama


def open_assistants_page(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_text("Assistants").click()
    expect(page.get_by_role("heading", name="Assistants", exact=True)).to_be_visible(timeout=30_000)
    settle(page)


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    """An assistant's row in the list (its name is the bold first line)."""
    return page.get_by_test_id("stHorizontalBlock").filter(has=page.locator("strong").get_by_text(name, exact=True))


def open_menu(page: Page, name: str, item: str):  # type: ignore[no-untyped-def]
    """Open the ⋯ menu of the assistant `name`; returns its `item`, now visible. The items are drawn
    by the run that opening starts, and a click landing while the page re-draws can be swallowed."""
    entry = page.get_by_role("button", name=item, exact=True)
    for _ in range(3):
        settle(page)
        row(page, name).get_by_test_id("stPopover").get_by_role("button").first.click()
        try:
            expect(entry).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            continue
    return entry


def menu_item(page: Page, name: str, item: str) -> None:
    """Choose `item` in the ⋯ menu of the assistant `name`."""
    click(page, open_menu(page, name, item))


def controller(data: Path) -> AssistantsController:
    return AssistantsController(AssistantStore(data / "assistants.json"), DEFAULT_SYSTEM_PROMPT)


def test_create_edit_duplicate_export_delete_import_and_use(page: Page, tmp_path: Path) -> None:
    with FakeOpenAI() as api:
        env = app_env(api, tmp_path / "conversations.json") | {"OLLAMA_HOST": NO_OLLAMA}
        with streamlit_app(env, tmp_path / "streamlit.log") as url:
            open_assistants_page(page, url)
            expect(page.get_by_text("No assistants yet.")).to_be_visible()

            # create, after a field error that keeps what was typed
            click(page, page.get_by_role("button", name="New assistant"))
            page.get_by_label("Name", exact=True).fill("Trip planner")
            page.get_by_label("Description", exact=True).fill("Plans weekends away")
            page.get_by_label("Instructions", exact=True).fill("You plan trips. Ask for the budget first.")
            page.get_by_label("Temperature", exact=True).fill("abc")
            page.get_by_label("Conversation starters", exact=True).fill("Plan a weekend in Lisbon\nWhat to pack?")
            page.get_by_role("combobox", name="Model").click()
            page.get_by_role("option", name="test-model on").click()
            click(page, page.get_by_role("button", name="Create"))
            expect(page.get_by_test_id("stAlertContentError")).to_have_text(
                "Temperature must be a number between 0 and 2, like 0.7."
            )
            expect(page.get_by_label("Name", exact=True)).to_have_value("Trip planner")
            expect(page.get_by_label("Temperature", exact=True)).to_have_value("abc")
            assert controller(tmp_path).list() == []
            page.get_by_label("Temperature", exact=True).fill("0.3")
            click(page, page.get_by_role("button", name="Create"))
            expect(row(page, "Trip planner")).to_contain_text("Plans weekends away")
            expect(row(page, "Trip planner")).to_contain_text("test-model on")
            [made] = controller(tmp_path).list()
            assert made.temperature == 0.3 and made.model == "openai:test-model"
            assert made.starters == ("Plan a weekend in Lisbon", "What to pack?")

            # edit
            menu_item(page, "Trip planner", "Edit")
            expect(page.get_by_label("Name", exact=True)).to_have_value("Trip planner")
            page.get_by_label("Description", exact=True).fill("Plans weekends away by train")
            click(page, page.get_by_role("button", name="Save changes"))
            expect(row(page, "Trip planner")).to_contain_text("Plans weekends away by train")
            assert controller(tmp_path).get(made.id).description == "Plans weekends away by train"  # type: ignore[union-attr]

            # duplicate
            menu_item(page, "Trip planner", "Duplicate")
            expect(row(page, "Trip planner (copy)")).to_be_visible()

            # export, delete, import back
            export = open_menu(page, "Trip planner", "Export")
            with page.expect_download() as download:
                export.click()
            assert download.value.suggested_filename == "trip-planner.json"
            exported = Path(download.value.path()).read_bytes()
            document = json.loads(exported)
            assert [a["name"] for a in document["assistants"]] == ["Trip planner"]
            page.keyboard.press("Escape")

            menu_item(page, "Trip planner", "Delete")
            expect(page.get_by_test_id("stAlertContentWarning")).to_contain_text(
                "Conversations that used it stay readable"
            )
            click(page, page.get_by_role("button", name="Confirm Delete"))
            expect(row(page, "Trip planner")).to_have_count(0)
            assert [a.name for a in controller(tmp_path).list()] == ["Trip planner (copy)"]

            (tmp_path / "trip-planner.json").write_bytes(exported)
            page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(tmp_path / "trip-planner.json")
            expect(page.get_by_test_id("stAlertContentSuccess")).to_have_text(
                "Imported 1 assistant: “Trip planner”.", timeout=30_000
            )
            expect(row(page, "Trip planner")).to_contain_text("Plans weekends away by train")

            # use in chat
            click(page, row(page, "Trip planner").get_by_role("button", name="Use in chat"))
            expect(page.get_by_role("heading", name="Chatbot With Memory")).to_be_visible(timeout=30_000)
            assert not page.dialogs  # type: ignore[attr-defined]


def test_two_hundred_assistants_draw_a_bounded_page(page: Page, tmp_path: Path) -> None:
    """200 assistants: 20 rows and a filter. Timed as people get there: a click on "Assistants" in
    the sidebar until the page is at rest (printed; the machine's load decides too much to assert)."""
    made = controller(tmp_path)
    for i in range(200):
        made.create(name=f"Assistant {i:03d}", description=f"Helps with task {i}.", starters=["Start here"])
    env = {"CONVERSATIONS_FILE": str(tmp_path / "conversations.json"), "OLLAMA_HOST": NO_OLLAMA}
    nav = page.get_by_test_id("stSidebarNav")
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        open_assistants_page(page, url)  # the first visit imports the page's modules
        times = []
        for _ in range(5):
            click(page, nav.get_by_text("Home"))
            started = time.monotonic()
            nav.get_by_text("Assistants").click()
            expect(page.get_by_role("button", name="Export all")).to_be_visible(timeout=30_000)
            expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(1)
            times.append(time.monotonic() - started)
        print(f"200 assistants: sidebar click to the page at rest, median {statistics.median(times):.2f} s of {times}")
        expect(page.get_by_role("button", name="Use in chat")).to_have_count(20)
        expect(page.get_by_text("Showing 20 of 200.")).to_be_visible()
        page.get_by_label("Filter assistants").fill("Assistant 150")
        page.get_by_label("Filter assistants").press("Enter")
        expect(page.get_by_role("button", name="Use in chat")).to_have_count(1, timeout=30_000)
        expect(row(page, "Assistant 150")).to_be_visible()


def test_screenshot_with_three_assistants(page: Page, tmp_path: Path) -> None:
    """The README's picture; BNAGPT_ASSISTANTS_SCREENSHOT=docs/assistants.png keeps a copy."""
    bundled = find_bundled_model()
    assert bundled is not None
    made = controller(tmp_path)
    made.create(
        name="Trip planner",
        description="Weekend trips by train: routes, budgets and what to pack.",
        instructions="You plan trips by train. Ask for the budget and the dates first.",
        temperature=0.7,
        starters=["Plan a weekend in Lisbon", "What should I pack for the Alps?"],
    )
    made.create(
        name="Code reviewer",
        description="Reads a diff and says what could break, most important first.",
        instructions="You review code. Point at bugs before style.",
        model=f"local:{bundled}",
        temperature=0.2,
    )
    made.create(
        name="Invoice extractor",
        description="Turns a pasted invoice into JSON: vendor, date, lines and total.",
        instructions="Answer with one JSON object: vendor, date, lines, total.",
        response_format="json",
    )
    made.set_instructions("You are bnaGPT. Answer clearly and briefly; say so when you are not sure.")
    page.set_viewport_size({"width": 1280, "height": 1000})
    env = {"CONVERSATIONS_FILE": str(tmp_path / "conversations.json"), "OLLAMA_HOST": NO_OLLAMA}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        open_assistants_page(page, url)
        expect(page.get_by_role("button", name="Use in chat")).to_have_count(3)
        page.mouse.move(1270, 990)  # no hover effect anywhere
        shot = tmp_path / "assistants.png"
        page.screenshot(path=shot)
        assert shot.stat().st_size > 10_000
        if keep := os.environ.get("BNAGPT_ASSISTANTS_SCREENSHOT"):
            shutil.copyfile(shot, keep)


def test_knowledge_files_through_the_form_survive_a_reload(page: Page, tmp_path: Path) -> None:
    """A DOCX and a PDF chosen in the form with a file that is not a PDF: that one is named under
    the field, the assistant is saved with the other two (indexed), and after a reload its form
    lists them. BNAGPT_KNOWLEDGE_SCREENSHOT=<path> keeps a picture of that form."""
    guide = make_docx()
    manual = make_pdf([["Pump manual.", "The pressure valve opens at 4 bar."]])
    env = {"CONVERSATIONS_FILE": str(tmp_path / "conversations.json"), "OLLAMA_HOST": NO_OLLAMA}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        open_assistants_page(page, url)
        click(page, page.get_by_role("button", name="New assistant"))
        page.get_by_label("Name", exact=True).fill("Pump helper")
        page.get_by_label("Description", exact=True).fill("Answers from the pump's manual and guide")
        field = page.get_by_test_id("stFileUploader").filter(has_text="Knowledge files")
        uploads: list[object] = []
        page.on("response", lambda r: uploads.append(r) if "/_stcore/upload_file" in r.url else None)
        field.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            [
                {"name": "guide.docx", "mimeType": DOCX, "buffer": guide},
                {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00 a program"},
                {"name": "manual.pdf", "mimeType": "application/pdf", "buffer": manual},
            ]
        )
        expect(field.get_by_text("manual.pdf")).to_be_visible(timeout=15_000)
        deadline = time.monotonic() + 30
        while len(uploads) < 3 and time.monotonic() < deadline:  # each file is on the server
            page.wait_for_timeout(50)
        click(page, page.get_by_role("button", name="Create"))
        expect(page.get_by_test_id("stAlertContentError").locator("p")).to_have_text(
            "“broken.pdf” is really a Windows program, not a PDF; "
            "bnaGPT reads PDF, Word (DOCX), Markdown, plain text, HTML or CSV."
        )
        [made] = controller(tmp_path).list()
        assert [(f.name, f.kind) for f in made.knowledge] == [("guide.docx", "docx"), ("manual.pdf", "pdf")]
        expect(row(page, "Pump helper")).to_contain_text("knows 2 files")
        reported: list[str] = []
        knowledge_index(made.knowledge, get_settings(), lambda _, text: reported.append(text))
        assert not reported  # indexed at save: nothing left for the first chat to do

        page.set_viewport_size({"width": 1280, "height": 1500})  # the whole form, for the picture
        page.reload()
        expect(page.get_by_role("heading", name="Assistants", exact=True)).to_be_visible(timeout=30_000)
        settle(page)
        menu_item(page, "Pump helper", "Edit")
        form = page.get_by_test_id("stForm").first
        listed = form.get_by_test_id("stMarkdownContainer").filter(has_text=re.compile(r"· [\d.,]+ (bytes|KB)$"))
        expect(listed).to_have_text([re.compile(r"guide\.docx docx · [\d.]+ KB"), re.compile(r"manual\.pdf pdf · ")])
        expect(form.get_by_role("button", name="Remove")).to_have_count(2)
        expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)  # a fresh look at the form
        form.scroll_into_view_if_needed()
        page.mouse.move(0, 0)
        shot = tmp_path / "assistant-knowledge.png"
        form.screenshot(path=shot)
        assert shot.stat().st_size > 10_000
        if keep := os.environ.get("BNAGPT_KNOWLEDGE_SCREENSHOT"):
            shutil.copyfile(shot, keep)
