"""In a real browser: chatting with attached files and with the web (sources shown and kept),
and a ChatGPT export imported with its branches. The model is a loopback stand-in that records
what it was sent, so the tests can see what the model was given to cite.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import docx
import pypdf
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
from tests.test_documents import make_docx, make_pdf, zip_bomb_docx
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


def encrypted_pdf() -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(GUIDE))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def word_file(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Each file the issue names that cannot be read, and the one sentence it gets (naming the file once)
REFUSED = [
    ("locked.pdf", encrypted_pdf, "application/pdf", r"^“locked\.pdf” is password-protected; save a copy without"),
    (
        "scan.pdf",
        lambda: make_pdf([None, None]),
        "application/pdf",
        r"^“scan\.pdf” has no text layer; it may be a scan",
    ),
    ("empty.txt", lambda: b"", "text/plain", r"^“empty\.txt” is empty \(0 bytes\)"),
    (
        "report.pdf",
        lambda: word_file("A report saved as Word."),
        "application/pdf",
        r"^“report\.pdf” is really a Word document \(DOCX\), not a PDF",
    ),
    (
        "notes.pdf",
        lambda: b"just words, not a PDF",
        "application/pdf",
        r"^“notes\.pdf” is not a PDF: it holds plain text",
    ),
    ("bomb.docx", zip_bomb_docx, DOCX, r"^“bomb\.docx” .*that is how a zip bomb looks"),
]


def test_every_bad_file_gets_one_sentence_and_the_chat_goes_on(
    page: Page, app: str, api: FakeOpenAI, folder: Path, tmp_path: Path
) -> None:
    open_memory_page(page, app)
    refused = []
    for turn, (name, make, mime, sentence) in enumerate(REFUSED, 1):
        data = make()
        refused.append(hashlib.sha256(data).hexdigest())
        attach_and_send(page, f"What is in {name}?", [(name, data, mime)])
        expect(page.get_by_text(re.compile(sentence))).to_be_visible(timeout=30_000)
        expect(messages(page)).to_have_count(2 * turn, timeout=30_000)  # the question was still answered
        settle(page)
        expect(messages(page).nth(2 * turn - 1)).to_contain_text(f"Echo: What is in {name}?")

    # 500 MB: the browser refuses it before uploading a byte, on the file's chip (a sparse file: no disk used)
    huge = tmp_path / "movie.pdf"
    with huge.open("wb") as out:
        out.truncate(500 * 2**20)
    page.get_by_test_id("stChatInput").locator("input[type=file]").set_input_files(str(huge))
    expect(page.get_by_test_id("stChatInput").get_by_role("alert")).to_have_text(
        re.compile(r"File must be 25(\.0)?MB or smaller")
    )
    page.get_by_role("button", name="Remove movie.pdf").click()
    turns = len(REFUSED)

    # a CSV with a million rows is read up to the row cap, and says so
    rows = ("id,city\n" + "".join(f"{i},cidade {i}\n" for i in range(1_000_000))).encode()
    api.script.tool_calls = [("search_files", {"query": "cidade 4999"})]
    attach_and_send(page, "Which city has id 4999?", [("rows.csv", rows, "text/csv")])
    expect(
        page.get_by_text(re.compile(r"^“rows\.csv” has 1,000,000 rows; only the first 5,000 were kept\.$"))
    ).to_be_visible(timeout=60_000)
    expect(messages(page)).to_have_count(2 * turns + 2, timeout=60_000)
    settle(page)
    assert "cidade 4999" in tool_results(api)

    # Chinese and Portuguese are found, not dropped by the tokenizer
    chinese = "灯塔的屋顶是绿松石色的。渔船每天早上九点从北码头出发。".encode()
    api.script.tool_calls = [("search_files", {"query": "渔船几点出发"})]
    attach_and_send(
        page, "渔船几点出发？", [("港口.txt", chinese, "text/plain"), ("relatorio.docx", make_docx(), DOCX)]
    )
    expect(messages(page)).to_have_count(2 * turns + 4, timeout=60_000)
    settle(page)
    assert "渔船每天早上九点" in tool_results(api)
    api.script.tool_calls = [("search_files", {"query": "acao coletiva indenizacao"})]
    send(page, "O que pede a ação coletiva?")
    expect(messages(page)).to_have_count(2 * turns + 6, timeout=60_000)
    settle(page)
    assert "A ação coletiva pede indenização por danos." in tool_results(api)

    # nothing of a refused file was kept: not stored, not in any index
    stored = {p.name for p in (folder / "files").rglob("*") if p.is_file()}
    assert stored and not stored & set(refused)
    for part in (folder / "indexes").rglob("*"):
        if part.is_file():
            assert not any(sha.encode() in part.read_bytes() for sha in refused), part


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
    # the chart is fetched from the app after the <img> is drawn: wait for it to be there, then measure
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert page.evaluate("(img) => img.naturalWidth", img.element_handle()) > 100
    context.close()
