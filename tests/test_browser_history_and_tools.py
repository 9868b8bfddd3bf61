"""In a real browser: chatting with attached files and with the web (sources shown and kept),
and a ChatGPT export imported with its branches. The model is a loopback stand-in that records
what it was sent, so the tests can see what the model was given to cite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from model.store import ConversationStore
from tests.browser import (
    attach_and_send,
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
from tests.test_documents import make_docx, make_pdf
from tests.test_imports import chatgpt_zip, trip
from tests.test_web_search import Web

GUIDE = [
    ["Harbour guide, part one.", "Boats leave the north pier at nine."],
    ["Part two: the lighthouse.", "The lighthouse roof is painted turquoise and was restored in 1998."],
    ["Part three: markets.", "Fish is sold on Tuesdays."],
]


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    with Web() as server:
        yield server


@pytest.fixture(scope="module")
def api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tools")


@pytest.fixture(scope="module")
def app(api: FakeOpenAI, web: Web, folder: Path) -> Iterator[str]:
    env = {
        "DATA_DIR": str(folder),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_BASE": api.base_url,
        "OPENAI_MODEL": "test-model",
        "SEARXNG_URL": web.base,
        "SEARCH_ALLOW_PRIVATE": "1",  # the stand-in pages are on loopback
    }
    with streamlit_app(env, folder / "streamlit.log") as url:
        yield url


def tool_results(api: FakeOpenAI) -> str:
    """What the tools gave the model in the last answer's requests."""
    return "\n".join(m.get("content") or "" for m in api.answer_requests[-1].messages if m.get("role") == "tool")


def test_files_are_cited_by_page_and_found_again_after_a_reload(
    browser: Browser, app: str, api: FakeOpenAI, folder: Path
) -> None:
    api.requests.clear()
    # the stand-in calls tools like Groq's models: it searches the files, then answers
    api.script.tool_calls = [("search_files", {"query": "lighthouse roof colour"})]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    pdf = ("harbour-guide.pdf", make_pdf(GUIDE), "application/pdf")
    word = ("relatorio.docx", make_docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    attach_and_send(page, "What colour is the lighthouse roof?", [pdf, word])
    expect(messages(page)).to_have_count(2, timeout=60_000)
    settle(page)
    found = tool_results(api)
    assert "turquoise" in found and "harbour-guide.pdf, page 2" in found  # the right passage, by page
    expect(messages(page).nth(0)).to_contain_text("harbour-guide.pdf")
    sources = messages(page).nth(1).get_by_text(re.compile(r"Sources \(\d\)"))
    expect(sources).to_be_visible()
    click(page, sources)
    expect(messages(page).nth(1).get_by_text("harbour-guide.pdf, page 2").first).to_be_visible()
    save_as(page, "Harbour")
    context.close()

    # a fresh session: the saved conversation finds its files again, no upload needed
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    click(page, sidebar(page).get_by_role("button", name="Harbour"))
    expect(messages(page).nth(1).get_by_text(re.compile(r"Sources \(\d\)"))).to_be_visible()
    api.script.tool_calls = [("search_files", {"query": "acao coletiva"})]
    send(page, "Which chapter talks about the ação coletiva?")
    expect(messages(page)).to_have_count(4, timeout=60_000)
    settle(page)
    assert "relatorio.docx" in tool_results(api)  # Portuguese found in the DOCX, without accents asked
    conversation = ConversationStore(folder / "conversations.json").load(
        ConversationStore(folder / "conversations.json").find("Harbour").id  # type: ignore[union-attr]
    )
    assert conversation is not None
    assert {a.name for m in conversation.messages for a in m.attachments} == {"harbour-guide.pdf", "relatorio.docx"}
    assert any(s.location.startswith("harbour-guide.pdf, page 2") for m in conversation.messages for s in m.sources)
    context.close()


def test_a_file_that_cannot_be_read_says_why_and_the_chat_goes_on(page: Page, app: str, api: FakeOpenAI) -> None:
    open_memory_page(page, app)
    attach_and_send(page, "Read this", [("empty.txt", b"", "text/plain")])
    expect(page.get_by_text(re.compile(r"empty\.txt: .*empty"))).to_be_visible(timeout=30_000)
    settle(page)
    expect(messages(page)).to_have_count(2)  # the text was still sent and answered
    attach_and_send(page, "And this?", [("notes.pdf", b"just words, not a PDF", "application/pdf")])
    expect(page.get_by_text(re.compile(r"notes\.pdf: .*"))).to_be_visible(timeout=30_000)
    settle(page)
    expect(messages(page)).to_have_count(4)


def test_an_answer_from_the_web_lists_its_sources_and_keeps_them(
    browser: Browser, page: Page, app: str, api: FakeOpenAI, folder: Path
) -> None:
    open_memory_page(page, app)
    page.get_by_test_id("stCheckbox").filter(has_text="Web").click()
    settle(page)
    api.script.tool_calls = [("search_web", {"query": "the article"})]
    send(page, "What does the article say?")
    expect(messages(page)).to_have_count(2, timeout=60_000)
    settle(page)
    found = tool_results(api)
    assert "Sources from the web" in found and "[1]" in found
    sources = messages(page).nth(1).get_by_text(re.compile(r"Sources \(\d+\)"))
    click(page, sources)
    links = messages(page).nth(1).locator("a[href^='http']")
    expect(links.first).to_be_visible()
    assert page.locator("a[href^='javascript:'], a[href^='data:']").count() == 0
    save_as(page, "From the web")
    saved = ConversationStore(folder / "conversations.json").find("From the web")
    conversation = ConversationStore(folder / "conversations.json").load(saved.id)  # type: ignore[union-attr]
    assert conversation is not None and conversation.messages[-1].sources
    assert all(s.url.startswith("http") for s in conversation.messages[-1].sources)
    # reloaded in a fresh session, the sources are there and still link to the pages
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    again = context.new_page()
    open_memory_page(again, app)
    click(again, sidebar(again).get_by_role("button", name="From the web"))
    click(again, messages(again).nth(1).get_by_text(re.compile(r"Sources \(\d+\)")))
    first = messages(again).nth(1).locator("a[href^='http']").first
    expect(first).to_be_visible()
    assert first.get_attribute("href") == conversation.messages[-1].sources[0].url
    context.close()


def test_a_chatgpt_export_imports_with_its_branches_and_twice_adds_nothing(page: Page, app: str, folder: Path) -> None:
    export = chatgpt_zip({"chatgpt-export/conversations.json": [trip()]})
    open_memory_page(page, app)
    uploader = sidebar(page).get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files({"name": "export.zip", "mimeType": "application/zip", "buffer": export})
    expect(sidebar(page).get_by_text(re.compile("Imported 1 conversation from ChatGPT"))).to_be_visible(timeout=30_000)
    settle(page)
    click(page, sidebar(page).get_by_role("button", name="Trip plans"))
    # the shown path is current_node's: the regenerated answer's branch ending in "Yes, that is Machu Picchu"
    expect(messages(page).last).to_contain_text("Yes, that is Machu Picchu")
    expect(page.get_by_text("Start in Cusco.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d / \d$")).first).to_be_visible()  # versions to switch between
    stored = ConversationStore(folder / "conversations.json")
    before = len(stored.list())
    uploader = sidebar(page).get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files({"name": "export.zip", "mimeType": "application/zip", "buffer": export})
    expect(sidebar(page).get_by_text(re.compile("already here"))).to_be_visible(timeout=30_000)
    assert len(ConversationStore(folder / "conversations.json").list()) == before
    data = json.loads((folder / "conversations.json").read_text())
    [imported] = [c for c in data["conversations"].values() if c["name"] == "Trip plans"]
    assert imported["source"] == "chatgpt:conv-trip" and len(imported["messages"]) > len(
        ConversationStore(folder / "conversations.json").load(imported["id"]).path()  # type: ignore[union-attr]
    )


CHART = """
import csv
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open("sales.csv")))
total = sum(int(r["units"]) for r in rows)
print("total units:", total)
plt.bar([r["month"] for r in rows], [int(r["units"]) for r in rows])
plt.savefig("chart.png")
"""


def test_a_csv_is_analysed_by_code_with_a_chart_and_both_come_back_on_reload(
    browser: Browser, app: str, api: FakeOpenAI, folder: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    page.get_by_test_id("stCheckbox").filter(has_text="Code").click()
    settle(page)
    api.script.tool_calls = [("run_code", {"code": CHART})]
    api.script.reply = "You sold 60 units in all; the chart shows each month."
    sales = ("sales.csv", b"month,units\nJan,10\nFeb,20\nMar,30\n", "text/csv")
    attach_and_send(page, "How many units did we sell? Draw a chart.", [sales])
    expect(messages(page)).to_have_count(2, timeout=90_000)
    settle(page)
    api.script.reply = ""
    assert "total units: 60" in tool_results(api)  # the code ran, on the attached file
    answer = messages(page).nth(1)
    expect(answer.get_by_text("Ran code")).to_be_visible()
    expect(answer.get_by_text("total units: 60")).to_be_visible()
    expect(answer.get_by_test_id("stImage")).to_have_count(1)
    save_as(page, "Sales")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_memory_page(page, app)
    click(page, sidebar(page).get_by_role("button", name="Sales"))
    answer = messages(page).nth(1)
    expect(answer.get_by_text("total units: 60")).to_be_visible()
    expect(answer.get_by_test_id("stImage")).to_have_count(1)
    img = answer.get_by_test_id("stImage").locator("img")
    assert page.evaluate("(img) => img.naturalWidth", img.element_handle()) > 100
    context.close()
