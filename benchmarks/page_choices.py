"""Issue 9 in a real browser, for page_bench (`--only choices`, `--only ready`): what picking a
model and an assistant costs a turn, and how soon the chat and Assistants pages are ready with
200 assistants and 5,000 saved conversations.

Both use page_bench's machinery: `streamlit run Home.py` answering through FakeOpenAI on loopback,
which here also stands in for Groq (GROQ_API_BASE) and serves two models, so the model picker
lists a second endpoint's models as it would with a Groq key. Ollama is pointed at a closed port.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from page_bench import (
    IDLE_JS,
    READY_JS,
    PageTurn,
    TimedRequests,
    app,
    conversation,
    is_turn,
    load_page,
    ms_stats,
    new_chat,
    new_page,
    stats,
    stuck,
    timed_turn,
    wait,
    write_file,
)
from playwright.sync_api import Browser, Page

from controller.assistants import AssistantsController, shared_assistant_store
from tests.openai_server import FakeOpenAI

NO_OLLAMA = "http://127.0.0.1:9"  # nothing answers there: model lists do not wait for Ollama
DEFAULT_MODEL, OTHER_MODEL = "test-model", "bench-fast"  # the configured model, and another one Groq serves
SERVED = {DEFAULT_MODEL: 32768, OTHER_MODEL: 32768}
PICKED_MODEL_LABEL = f"{OTHER_MODEL} on Groq"
HELPER = {
    "name": "Bench pirate",
    "description": "Answers like a pirate.",
    "instructions": "Always answer like a pirate, with arr. Keep it short and name the treasure.",
    "temperature": "0.7",
}


def data_env(data: Path) -> dict[str, str]:
    """Groq configured beside the OpenAI-compatible server (which answers by default); the folder
    holds the assistants and the preferences (a picked model is saved there for new tabs)."""
    return {
        "DATA_DIR": str(data),
        "GROQ_API_KEY": "gsk_page_bench",
        "GROQ_MODEL": DEFAULT_MODEL,
        "OLLAMA_HOST": NO_OLLAMA,
    }


def assistants(data: Path) -> AssistantsController:
    return AssistantsController(shared_assistant_store(str(data / "assistants.json")), "You are bnaGPT.")


def pick(page: Page, label: str, option: str) -> None:
    """Choose `option` in the select box labelled `label`, as a user would, and wait for the run."""
    wait(page, IDLE_JS)
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)  # let the rerun the choice asks for begin
    wait(page, IDLE_JS)


# --- the pickers: a turn with an assistant and another model picked ---------------------------

CHOICES = (  # label, pick the other model, pick the assistant
    ("Default assistant, configured model", False, False),
    (f"Default assistant, {OTHER_MODEL} on Groq picked", True, False),
    ("Bench pirate picked, configured model", False, True),
    (f"**Bench pirate and {OTHER_MODEL} picked**", True, True),
)


@dataclass
class Chat:
    """One configuration of CHOICES: its own server, endpoint and browser page."""

    label: str
    model: bool
    helper: bool
    api: FakeOpenAI
    page: Page
    log: Path
    turns: list[PageTurn] = field(default_factory=list)


def open_chat(stack: ExitStack, browser: Browser, folder: Path, label: str, model: bool, helper: bool) -> Chat:
    """A fresh server whose folder holds the assistant (in every configuration: only the picks
    differ), its page loaded, the picks made and one warm-up turn answered."""
    data = folder / f"choices-{len(list(folder.glob('choices-*')))}"
    data.mkdir()
    assistants(data).create(**HELPER)
    file = data / "conversations.json"
    write_file(file, [])
    api = stack.enter_context(FakeOpenAI())
    api.requests = TimedRequests()
    api.script.models = SERVED
    log = data / "streamlit.log"
    url = stack.enter_context(app(file, api, log, {**data_env(data), "GROQ_API_BASE": api.base_url}))
    chat = Chat(label, model, helper, api, stack.enter_context(new_page(browser)), log)
    try:
        load_page(chat.page, url)
        if model:
            pick(chat.page, "Model", PICKED_MODEL_LABEL)
        if helper:
            pick(chat.page, "Assistant", HELPER["name"])
        timed_turn(chat.page, api, "hello 0.", "Echo:")  # imports LlamaIndex (and Groq's client) first
    except Exception:
        stuck(chat.page, log)
        raise
    return chat


def check(chat: Chat) -> None:
    """The picks held for every turn: the model asked, the assistant's instructions and temperature."""
    for request in filter(is_turn, chat.api.requests):
        system = request.messages[0]["content"] if request.messages else ""
        if request.body.get("model") != (OTHER_MODEL if chat.model else DEFAULT_MODEL):
            raise RuntimeError(f"{chat.label}: asked {request.body.get('model')!r}")
        followed = system.startswith(HELPER["instructions"]) and request.body.get("temperature") == 0.7
        if chat.helper != followed:
            raise RuntimeError(
                f"{chat.label}: the system message or temperature does not follow the picks: "
                f"{system[:300]!r}, temperature {request.body.get('temperature')!r}"
            )


def choices_table(chats: list[Chat]) -> Iterator[str]:
    base_words = statistics.median(t.words for t in chats[0].turns)
    base_done = statistics.median(t.done for t in chats[0].turns)
    yield "| chat | **first words** | Δ first words | Enter → request | **full turn** | Δ full turn |"
    yield "|---|---:|---:|---:|---:|---:|"
    for chat in chats:
        words = statistics.median(t.words for t in chat.turns) - base_words
        done = statistics.median(t.done for t in chat.turns) - base_done
        first = chat is chats[0]
        yield (
            f"| {chat.label} | {ms_stats([t.words for t in chat.turns])} | {'—' if first else f'{words:+.0f}'} "
            f"| {ms_stats([t.request for t in chat.turns])} | {ms_stats([t.done for t in chat.turns])} "
            f"| {'—' if first else f'{done:+.0f}'} |"
        )


def choices_section(browser: Browser, folder: Path, runs: int) -> None:
    print("## Picking a model and an assistant (issue 9)\n")
    print(
        f"ms from the Enter keydown, median (min–max) of {runs} turns on the page's clock, each in a new chat; "
        "Δ: difference of medians with the first row.\nTarget: picking a model or an assistant adds ≤ 50 ms to a "
        f"turn. One endpoint stands for both the OpenAI-compatible server ({DEFAULT_MODEL}, the default) and Groq "
        f"({DEFAULT_MODEL}, {OTHER_MODEL});\nthe assistant has instructions and temperature 0.7.\n",
        flush=True,
    )
    with ExitStack() as stack:
        chats = [open_chat(stack, browser, folder, *choice) for choice in CHOICES]
        # Turn by turn across the configurations, so a change in the machine's load falls on all of them.
        for r in range(1, runs + 1):
            for chat in chats:
                try:
                    new_chat(chat.page)
                    chat.turns.append(timed_turn(chat.page, chat.api, f"ping {r}.", "Echo:"))
                except Exception:
                    stuck(chat.page, chat.log)
                    raise
        for chat in chats:
            check(chat)
    for line in choices_table(chats):
        print(line)
    print(
        "\n- each configuration has its own fresh server; the picks are made in the page's select boxes after it "
        "loads,\n  then one warm-up turn (not in the medians); the turns alternate between the configurations.\n"
        "- every request was checked: the picked model asked, the assistant's instructions as the system message, "
        "its temperature.\n",
        flush=True,
    )


# --- the pages ready with 200 assistants and 5,000 conversations -------------------------------

ASSISTANTS_PAGE = "/Assistants"
CHAT_PAGE = "/Chatbot_With_Memory"
# The Assistants page at rest with its list drawn: its rows' "Use in chat" buttons, or with `helpers`
# 0 the empty list's caption. At rest (notRunning), the run that drew the list is over: all of it is there.
ASSISTANTS_READY_JS = """(helpers) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const title = [...document.querySelectorAll('h1')].some(e => e.textContent.trim() === 'Assistants');
  const main = document.querySelector('[data-testid="stMain"]') || document;
  const listed = helpers > 0
    ? [...main.querySelectorAll('button')].some(b => b.textContent.includes('Use in chat'))
    : [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(c => c.textContent.includes('No assistants yet'));
  return title && listed && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
DATASETS = ((0, 0), (200, 5000))  # assistants, conversations


def make_data(data: Path, helpers: int, conversations: int) -> None:
    made = assistants(data)
    for i in range(helpers):
        made.create(
            name=f"Assistant {i:03d}",
            description=f"Helps with task {i}: plans, drafts and checks it.",
            instructions=f"You help with task {i}. Ask one question first, then answer in short steps.",
            temperature="0.5",
            starters=[f"Start task {i}", "What do you need from me?"],
        )
    write_file(data / "conversations.json", [conversation(i, 20, 500) for i in range(conversations)])


def switch(page: Page, link: str, ready: str, arg: object = None) -> float:
    """Seconds from a click on the sidebar's link to `link` until `ready` holds."""
    entry = page.get_by_test_id("stSidebarNav").get_by_text(link, exact=True)
    start = time.perf_counter()
    entry.click(timeout=60_000)
    return wait(page, ready, arg) - start


def ready_row(browser: Browser, folder: Path, helpers: int, count: int, repeat: int, processes: int) -> Iterator[str]:
    """Rows for the chat page and the Assistants page over one data folder: the first load of a
    fresh server (`processes` of them), then `repeat` reloads and switches in the first."""
    data = folder / f"ready-{helpers}-{count}"
    data.mkdir()
    make_data(data, helpers, count)
    size = (data / "conversations.json").stat().st_size / 2**20
    pages = (
        (
            "Chatbot With Memory",
            CHAT_PAGE,
            READY_JS,
            None,
            ("Assistants", ASSISTANTS_PAGE, ASSISTANTS_READY_JS, helpers),
        ),
        (
            "Assistants",
            ASSISTANTS_PAGE,
            ASSISTANTS_READY_JS,
            helpers,
            ("Chatbot With Memory", CHAT_PAGE, READY_JS, None),
        ),
    )
    with FakeOpenAI() as api:
        api.script.models = SERVED
        env = {**data_env(data), "GROQ_API_BASE": api.base_url}
        for name, path, ready, arg, (_, other_path, other_ready, other_arg) in pages:
            cold: list[float] = []
            reloads: list[float] = []
            switches: list[float] = []
            for process in range(processes):
                log = folder / f"streamlit-ready-{helpers}-{count}-{path.strip('/')}-{process}.log"
                with app(data / "conversations.json", api, log, env) as url, new_page(browser) as page:
                    try:
                        cold.append(load_page(page, url, path, ready, arg))
                        if process:
                            continue
                        reloads = [load_page(page, url, path, ready, arg) for _ in range(repeat)]
                        for _ in range(repeat):
                            load_page(page, url, other_path, other_ready, other_arg)
                            switches.append(switch(page, name, ready, arg))
                    except Exception:
                        stuck(page, log)
                        raise
            yield (
                f"| {name} | {helpers} | {count:,} ({size:.0f} MB) | {stats(cold)} | **{stats(reloads)}** "
                f"| **{stats(switches)}** |"
            )


def ready_section(browser: Browser, folder: Path, repeat: int, processes: int) -> None:
    print("## Pages ready with many assistants and conversations (issue 9)\n")
    print(
        "Seconds until the page is at rest (script state notRunning) with the chat input enabled, or with the "
        "Assistants list drawn;\nmedian (min–max). Target: ≤ 1 s with 200 assistants and 5,000 conversations "
        "(20 messages × 500 characters each).\n"
    )
    print("| page | assistants | conversations | first load of a fresh server | reload | switch from the other page |")
    print("|---|---:|---:|---:|---:|---:|", flush=True)
    for helpers, count in DATASETS:
        for line in ready_row(browser, folder, helpers, count, repeat, processes):
            print(line, flush=True)
    print(
        f"\n- first load: navigation → ready on a fresh `streamlit run` ({processes} processes): it imports the "
        "page and reads the files;\n  reload: navigation → ready again, same process and browser context "
        f"({repeat}); switch: a click on the page's sidebar link\n  from the other page → ready ({repeat}). "
        "Both pages list the models of both endpoints; the chat page's Assistant picker lists them all.\n"
    )
