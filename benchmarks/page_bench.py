"""The chat pages in a real browser: first words, page ready, a chat turn, time to first token,
the model and assistant pickers, and the pages with many assistants and conversations.

    python benchmarks/page_bench.py [--quick] [--only first-words|many|ttft|choices|ready]

`streamlit run Home.py` (tests/browser.py) answers through FakeOpenAI, a real
OpenAI-compatible server on loopback, so the times are the app's and the browser's own.
Debian's Chromium is driven by Playwright. Medians over N repetitions (5; `--quick` 2),
with min–max. Conversations files are written directly, in the app's own format (v2: messages with
id and parent_id), so no row pays the one-time upgrade of an older file.

"First words" is timed inside the page, on the page's own clock (issue 14): a keydown listener
notes performance.now() at Enter, a MutationObserver notes when the answer's first text is in the
DOM and when the run is over (`data-test-script-state` back to notRunning). 7 turns per row.
`choices` and `ready` (issue 9) are in benchmarks/page_choices.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.store import ConversationStore
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_app
from tests.openai_server import FakeOpenAI, Recorded

if __name__ == "__main__":  # page_choices imports this module: let it find this one, not a second copy
    sys.modules.setdefault("page_bench", sys.modules[__name__])

PAGE = "/Chatbot_With_Memory"
TIMEOUT_MS = 60_000
START = datetime(2025, 1, 1, tzinfo=UTC)
FILTER_AFTER = 10  # past this many conversations, one is found through the sidebar's search box first

# Conditions checked in the page on every animation frame, so a time is not rounded up to a poll interval.
READY_JS = """() => {
  const title = [...document.querySelectorAll('h1')].some(e => e.innerText.includes('Chatbot With Memory'));
  const bar = document.querySelector('[data-testid="stSidebar"]');
  const header = bar && [...bar.querySelectorAll('h2')].some(e => e.innerText.includes('Saved Conversations'));
  const input = document.querySelector('[data-testid="stChatInputTextArea"]');
  const app = document.querySelector('[data-testid="stApp"]');
  return title && header && input && !input.disabled && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
# The run is over: the input stays enabled while an answer streams, so Streamlit's own run state tells.
IDLE_JS = """() => {
  const input = document.querySelector('[data-testid="stChatInputTextArea"]');
  const app = document.querySelector('[data-testid="stApp"]');
  return input && !input.disabled && app && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
SHOWN_JS = """(text) => [...document.querySelectorAll('[data-testid="stChatMessage"]')]
  .some(m => m.innerText.includes(text))"""
# The message after the last user message holding `question` shows `start`, the answer's first word.
FIRST_WORDS_JS = """([question, start]) => {
  const messages = [...document.querySelectorAll('[data-testid="stChatMessage"]')];
  const asked = messages.findLastIndex(
    m => m.querySelector('[data-testid="stChatMessageAvatarUser"]') && m.innerText.includes(question));
  const answer = asked >= 0 ? messages[asked + 1] : undefined;
  return !!answer && [...answer.querySelectorAll('[data-testid="stMarkdownContainer"]')]
    .some(m => m.innerText.includes(start));
}"""

# Timing inside the page (issue 14), on the page's own clock. Installed before each measured turn:
# `enter` at the Enter keydown in the chat input (capture phase, before Streamlit sees it), `words`
# when the answer's first text is in the DOM, `done` when the run the Enter started is over.
# textContent, not innerText: the observer must not force a layout while the page draws.
PROBE_JS = """([question, start]) => {
  const probe = {enter: null, words: null, done: null, left: null, origin: performance.timeOrigin};
  window.__turn = probe;
  const state = () => document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state');
  const answered = () => {
    const messages = [...document.querySelectorAll('[data-testid="stChatMessage"]')];
    const asked = messages.findLastIndex(
      m => m.querySelector('[data-testid="stChatMessageAvatarUser"]') && m.textContent.includes(question));
    const answer = asked >= 0 ? messages[asked + 1] : undefined;
    // the answer's text: not the Stop button's label, not the cursor alone; `start` "" takes any text
    return !!answer && [...answer.querySelectorAll('[data-testid="stMarkdownContainer"]')]
      .some(m => !m.closest('button') && m.textContent.replace('▍', '').trim() && m.textContent.includes(start));
  };
  const observer = new MutationObserver(() => {
    const now = performance.now();
    const running = state() !== 'notRunning';
    if (probe.left === null && running) probe.left = now;  // rerunRequested, then running
    if (probe.words === null && answered()) probe.words = now;
    if (probe.done === null && !running && probe.words !== null) {  // the run that drew the answer is over
      probe.done = now;
      observer.disconnect();
    }
  });
  const onKey = (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.target.dataset.testid !== 'stChatInputTextArea') return;
    probe.enter = performance.now();
    window.removeEventListener('keydown', onKey, true);
    observer.observe(document.body, {subtree: true, childList: true, characterData: true,
                                     attributes: true, attributeFilter: ['data-test-script-state']});
  };
  window.addEventListener('keydown', onKey, true);
}"""
PROBE_DONE_JS = "() => !!window.__turn && window.__turn.done !== null"


class TimedRequests(list[Recorded]):
    """FakeOpenAI's request log, also noting when each request arrived (on our clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []
        self.arrived_epoch: list[float] = []  # the same moments on the wall clock, which the page's clock shares

    def append(self, item: Recorded) -> None:
        self.arrived.append(time.perf_counter())
        self.arrived_epoch.append(time.time())
        super().append(item)

    def last_chat_arrival(self) -> float:
        return [t for t, r in zip(self.arrived, self, strict=True) if is_turn(r)][-1]


def is_turn(request: Recorded) -> bool:
    """A turn's chat request: streamed (a new chat's title is asked for unstreamed, after its first answer)."""
    return request.path.endswith("/completions") and bool(request.body.get("stream"))


def ms_stats(values: list[float]) -> str:
    """`median (min–max)` in milliseconds."""
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def stats(values: list[float]) -> str:
    """`median (min–max)` in seconds."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


# --- data ---------------------------------------------------------------------------------


def text(i: int, j: int, length: int) -> str:
    """Message j of conversation i; its start is unique, so the page can be searched for it."""
    return (f"message {j} of conversation {i:05d} " + "lorem ipsum dolor sit amet " * (length // 27 + 1))[:length]


def conversation(i: int, messages: int, length: int) -> dict[str, Any]:
    """Conversation i as the app writes it: one line of messages, each the reply to the one before."""
    stamp = (START + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "id": f"c{i:05d}",
        "name": f"conversation {i:05d}",
        "created_at": stamp,
        "updated_at": stamp,
        "model": "test-model",
        "messages": [
            {
                "role": "user" if j % 2 == 0 else "assistant",
                "content": text(i, j, length),
                "created_at": stamp,
                "id": f"{i:06x}{j:06x}",
                "parent_id": f"{i:06x}{j - 1:06x}" if j else None,
            }
            for j in range(messages)
        ],
    }


def write_file(path: Path, conversations: list[dict[str, Any]]) -> None:
    document = {"version": 2, "conversations": {c["id"]: c for c in conversations}}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


# --- driving the page -----------------------------------------------------------------------


@contextmanager
def app(file: Path, api: FakeOpenAI, log: Path, extra: dict[str, str] | None = None) -> Iterator[str]:
    env = {
        "CONVERSATIONS_FILE": str(file),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_BASE": api.base_url,
        "OPENAI_MODEL": "test-model",
        # Sources are not watched: an edit in the checkout must not put a "source changed" banner on the page.
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
        **(extra or {}),
    }
    with streamlit_app(env, log) as url:
        yield url


@contextmanager
def new_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context: empty cache, its own Streamlit sessions."""
    context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def wait(page: Page, js: str, arg: object = None) -> float:
    """Wait (bounded) until `js` holds in the page; returns when it held, on our clock."""
    page.wait_for_function(js, arg=arg, polling="raf", timeout=TIMEOUT_MS)
    return time.perf_counter()


def load_page(page: Page, url: str, path: str = PAGE, ready: str = READY_JS, arg: object = None) -> float:
    """Seconds from navigation until the page is drawn and its run is over (`ready` holds)."""
    start = time.perf_counter()
    page.goto(url + path, wait_until="commit", timeout=TIMEOUT_MS)
    return wait(page, ready, arg) - start


def settle(page: Page) -> None:
    page.wait_for_timeout(300)  # let the rerun a click asked for begin
    wait(page, IDLE_JS)


def open_saved(page: Page, conv: dict[str, Any], total: int) -> float:
    """Open a saved conversation through the sidebar, as a user would (search, then one click on its
    name); seconds from the click until its last message is on the page."""
    name = conv["name"]
    sidebar = page.get_by_test_id("stSidebar")
    if total > FILTER_AFTER:
        box = sidebar.get_by_label("Search conversations")
        box.fill(name)
        box.press("Enter")
        settle(page)
    # its entry (key conv:<id>:open), not a search hit that shows the same name
    entry = sidebar.locator(f".st-key-conv-{conv['id']}-open").get_by_role("button", name=name, exact=True)
    entry.wait_for(timeout=TIMEOUT_MS)
    start = time.perf_counter()
    entry.click(timeout=TIMEOUT_MS)
    last = conv["messages"][-1]["content"]
    shown = wait(page, SHOWN_JS, last[: last.index(" lorem")])
    settle(page)
    return shown - start


@dataclass
class Turn:
    to_request: float  # Enter → the chat request reaches the endpoint
    first_words: float  # Enter → the answer's first word is on the page
    done: float  # Enter → the answer shown, the conversation autosaved, the run over


def turn(page: Page, api: FakeOpenAI, question: str, first_word: str, answer: str) -> Turn:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    start = time.perf_counter()
    box.press("Enter")
    first = wait(page, FIRST_WORDS_JS, [question, first_word])
    wait(page, SHOWN_JS, answer)
    done = wait(page, IDLE_JS)
    requests: TimedRequests = api.requests  # type: ignore[assignment]
    return Turn(requests.last_chat_arrival() - start, first - start, done - start)


def endpoint_first_token(api: FakeOpenAI, body: dict[str, Any]) -> float:
    """Seconds until the first content delta when the app's request is sent straight to the endpoint."""
    first = None
    with httpx.Client(timeout=TIMEOUT_MS / 1000) as client:
        start = time.perf_counter()
        with client.stream("POST", api.base_url + "/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():  # read to the end, so the server is not cut off mid-answer
                is_content = line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content")
                if first is None and is_content:
                    first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the endpoint sent no content")
    return first


# --- first words, timed inside the page ----------------------------------------------------

FIRST_WORDS_RUNS = 7
THINK_MS = 1000  # between the end of the last run and Enter
# The figures this table replaces (issue 14 and the README before it), in ms; None: not measured then.
BEFORE_FIRST_WORDS = {"new chat, 0": 317, "new chat, 5,000": 480}
BEFORE_TURN = {"open, 1": 760, "open, 5,000": 1050}  # README's "turn" at 10 and 5,000 conversations
OPEN_WEBUI_FIRST_WORDS = 144


@dataclass
class PageTurn:
    """One turn on the page's clock, in ms from the Enter keydown."""

    words: float  # → the answer's first text in the DOM
    done: float  # → the run is over (data-test-script-state back to notRunning)
    request: float  # → the chat request reached the endpoint (wall clock, shared with the page)
    enter_epoch: float  # the Enter keydown, seconds since the epoch (for server-side traces)


def timed_turn(page: Page, api: FakeOpenAI | None, question: str, start: str) -> PageTurn:
    """Ask `question` and time it inside the page; `start` is how the answer begins ("": any text).
    Without `api` (another model answers) the request's arrival is not known: NaN."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    page.evaluate(PROBE_JS, [question, start])
    # A person takes a moment to type: what the server does after a run (Streamlit's full garbage
    # collection) is over by then, as it would be for them.
    page.wait_for_timeout(THINK_MS)
    box.press("Enter")
    page.wait_for_function(PROBE_DONE_JS, polling=50, timeout=TIMEOUT_MS)
    probe = page.evaluate("() => window.__turn")
    settle(page)
    enter_epoch = (probe["origin"] + probe["enter"]) / 1000
    arrived = float("nan")
    if api is not None:
        requests: TimedRequests = api.requests  # type: ignore[assignment]
        chats = zip(requests.arrived_epoch, requests, strict=True)
        arrived = [t for t, r in chats if is_turn(r)][-1]
    return PageTurn(
        probe["words"] - probe["enter"], probe["done"] - probe["enter"], 1000 * (arrived - enter_epoch), enter_epoch
    )


def new_chat(page: Page) -> None:
    page.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
    settle(page)


@dataclass
class FirstWordsRow:
    label: str
    first: PageTurn  # the process's first message (LlamaIndex is imported then)
    turns: list[PageTurn]


def first_words_row(
    browser: Browser, folder: Path, count: int, open_one: bool, runs: int, env: dict[str, str] | None = None
) -> FirstWordsRow:
    """A fresh server over `count` saved conversations; one warm-up message, then `runs` timed turns,
    each in a new chat (or, with `open_one`, all in one opened conversation, autosaved every turn)."""
    file = folder / f"first-words-{count}.json"
    convs = [conversation(i, 20, 500) for i in range(count)]
    write_file(file, convs)
    label = f"{'open' if open_one else 'new chat'}, {count:,}"
    with FakeOpenAI() as api:
        api.requests = TimedRequests()
        log = folder / f"streamlit-first-words-{count}-{int(open_one)}.log"
        with app(file, api, log, env) as url, new_page(browser) as page:
            try:
                load_page(page, url)
                if open_one:
                    open_saved(page, convs[count // 2], count)
                first = timed_turn(page, api, "hello 0.", "Echo:")
                turns = []
                for r in range(1, runs + 1):
                    if not open_one:
                        new_chat(page)
                    turns.append(timed_turn(page, api, f"ping {r}.", "Echo:"))
            except Exception:
                stuck(page, log)
                raise
    return FirstWordsRow(label, first, turns)


def stuck(page: Page, log: Path) -> None:
    """Say where a run got stuck: a screenshot of the page and the end of the app's log."""
    shot = Path(tempfile.gettempdir()) / "page-bench-failure.png"
    page.screenshot(path=shot, full_page=True)
    print(f"(stuck: see {shot}; the app's log ends with)\n{log.read_text()[-1500:]}", file=sys.stderr)


def first_words_table(rows: list[FirstWordsRow]) -> Iterator[str]:
    """The table, with the figures it replaces beside, and the cost of 5,000 conversations."""
    yield (
        "| saved conversations | first words, before | **first words** | first message of the process "
        "| Enter → request | full turn, before | **full turn** |"
    )
    yield "|---|---:|---:|---:|---:|---:|---:|"
    for row in rows:
        before_words = BEFORE_FIRST_WORDS.get(row.label)
        before_turn = BEFORE_TURN.get(row.label)
        yield (
            f"| {row.label} | {before_words if before_words else '—'} "
            f"| **{ms_stats([t.words for t in row.turns])}** | {row.first.words:.0f} "
            f"| {ms_stats([t.request for t in row.turns])} | {before_turn if before_turn else '—'} "
            f"| **{ms_stats([t.done for t in row.turns])}** |"
        )
    by_label = {row.label: row for row in rows}
    for kind, few in (("new chat", 0), ("open", 1)):
        small, large = by_label.get(f"{kind}, {few:,}"), by_label.get(f"{kind}, 5,000")
        if small and large:
            words = statistics.median(t.words for t in large.turns) - statistics.median(t.words for t in small.turns)
            done = statistics.median(t.done for t in large.turns) - statistics.median(t.done for t in small.turns)
            yield f"\n5,000 conversations instead of {few} ({kind}): first words {words:+.0f} ms, full turn {done:+.0f} ms."


def first_words_section(browser: Browser, folder: Path, runs: int) -> None:
    print("## First words, timed inside the page\n")
    print(
        f"ms from the Enter keydown, median (min–max) of {runs} turns, on the page's clock. FakeOpenAI answers at once; "
        "each saved conversation: 20 messages × 500 characters.\nTargets (issue 14): first words ≤ 120 ms with no "
        f"saved conversations and ≤ 150 ms with 5,000; 5,000 conversations cost the full turn ≤ 50 ms. Open WebUI: "
        f"{OPEN_WEBUI_FIRST_WORDS} ms.\n",
        flush=True,
    )
    rows = []
    for count, open_one in ((0, False), (5000, False), (1, True), (5000, True)):
        rows.append(first_words_row(browser, folder, count, open_one, runs))
        print(f"({rows[-1].label}: {ms_stats([t.words for t in rows[-1].turns])} ms)", file=sys.stderr, flush=True)
    for line in first_words_table(rows):
        print(line)
    print(
        "\n- new chat: each turn in an empty chat (New chat before it); open: every turn in one loaded conversation, "
        "autosaved into the file.\n- first words: Enter → the answer's first text in the DOM (MutationObserver); "
        "full turn: Enter → the run is over\n  (`data-test-script-state` notRunning: answer, autosave, sidebar drawn); "
        "Enter → request: to the chat request at the endpoint (wall clock).\n- first message of the process: the "
        "warm-up turn of a fresh server (it imports LlamaIndex; in the open rows the usage line under the opened "
        "conversation\n  had imported it already); not in the medians. A 1 s pause before each Enter stands for typing.\n",
        flush=True,
    )


# --- the two tables ---------------------------------------------------------------------------


def many_conversations(browser: Browser, folder: Path, count: int, repeat: int) -> str:
    """One row of table 1: `repeat` fresh server processes for the cold load, the first also for the rest."""
    file = folder / f"conversations-{count}.json"
    write_file(file, [conversation(i, 20, 500) for i in range(count)])
    size = file.stat().st_size / 2**20
    target = conversation(count // 2, 20, 500)
    cold: list[float] = []
    with FakeOpenAI() as api:
        api.requests = TimedRequests()
        for process in range(repeat):
            with app(file, api, folder / f"streamlit-{count}-{process}.log") as url, new_page(browser) as page:
                cold.append(load_page(page, url))  # this process reads the file here, once
                if process:
                    continue
                warm = [load_page(page, url) for _ in range(repeat)]
                open_saved(page, target, count)
                # The first autosave of a process also encodes every conversation once.
                first = turn(page, api, "ping 0.", "Echo:", "Echo: ping 0.")
                turns = [turn(page, api, f"ping {r}.", "Echo:", f"Echo: ping {r}.") for r in range(1, repeat + 1)]
    saved = ConversationStore(file).load(target["id"])
    if saved is None or len(saved.messages) != 20 + 2 * (repeat + 1):
        raise RuntimeError(f"the turns were not autosaved into {file.name}")
    return (
        f"| {count:,} | {size:.0f} MB | {stats(cold)} | {stats(warm)} | {first.done:.2f} "
        f"| {stats([t.to_request for t in turns])} | {stats([t.first_words for t in turns])} "
        f"| {stats([t.done for t in turns])} |"
    )


def first_token(browser: Browser, folder: Path, histories: list[int], repeat: int) -> Iterator[str]:
    """Rows of table 2, one per history length (in turns: a question and its answer)."""
    file = folder / "conversations-ttft.json"
    convs = [conversation(i, 2 * turns, 200) for i, turns in enumerate(histories)]
    write_file(file, convs)
    with FakeOpenAI() as api:
        api.requests = TimedRequests()
        api.script.chunk_delay = 0.02
        with app(file, api, folder / "streamlit-ttft.log") as url, new_page(browser) as page:
            load_page(page, url)
            for conv, turns in zip(convs, histories, strict=True):
                loads = []
                for _ in range(repeat):  # from an empty page each time, so the load is visible
                    page.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
                    settle(page)
                    loads.append(open_saved(page, conv, len(convs)))
                runs = []
                for r in range(repeat + 1):  # the first turn on each history is a warm-up
                    tag = f"Reply {turns}-{r}:"
                    # 40 different words: a repeated word would trip the app's repetition guard, which ends the stream
                    api.script.reply = tag + "".join(f" word{w}" for w in range(39))
                    runs.append(turn(page, api, f"question {turns}-{r}.", "Reply", tag))
                body = api.chat_requests[-1].body
                direct = [endpoint_first_token(api, body) for _ in range(repeat)]
                runs = runs[1:]
                yield (
                    f"| {turns} | {stats(loads)} | {len(body['messages'])} | {stats(direct)} "
                    f"| {stats([t.to_request for t in runs])} | {stats([t.first_words for t in runs])} "
                    f"| {stats([t.done for t in runs])} |"
                )


def many_section(browser: Browser, folder: Path, repeat: int) -> None:
    print("## Page with many saved conversations\n")
    print(f"Seconds, median (min–max) of {repeat}. Each conversation: 20 messages × 500 characters.")
    print("Target: page ready and a turn each under 1.5 s at 5,000 conversations.\n")
    print(
        "| conversations | file | cold load | page ready | first turn | Enter → request | Enter → answer shown | turn |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for count in (10, 1000, 5000):
        print(many_conversations(browser, folder, count, repeat), flush=True)
    print(
        "\n- cold load: the first page of a fresh server process (it imports the app and reads the "
        "file) in a fresh browser context;\n  page ready: later loads of the page, same process and "
        "browser context."
    )
    print(
        "- turn: Enter until the answer is shown, the loaded conversation autosaved into the file "
        "and the input enabled again;\n  first turn: the process's first autosave, which also encodes "
        "every conversation once.\n"
    )


def ttft_section(browser: Browser, folder: Path, repeat: int) -> None:
    print("## Time to first token through the app\n")
    print(
        f"Seconds, median (min–max) of {repeat}. The endpoint streams 40 words, one every 0.02 s; "
        "saved messages have 200 characters.\n"
    )
    print(
        "| turns of history | Load → on screen | messages sent | endpoint first token | Enter → request "
        "| Enter → first words on page | turn |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for line in first_token(browser, folder, [10, 500], repeat):
        print(line, flush=True)
    print(
        "\n- endpoint first token: the app's last request sent again straight to the endpoint "
        "(httpx, streaming).\n- messages sent: system prompt, the history that fits the model's "
        "32,768-token window, the question.\n- Each history first gets one unmeasured turn; "
        "every turn adds two messages to it."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="The memory page in a real browser, against a loopback LLM.")
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 5 (first words: 3 instead of 7)")
    parser.add_argument("--only", choices=["first-words", "many", "ttft", "choices", "ready"], help="one table only")
    args = parser.parse_args()
    repeat = 2 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="page-bench-") as tmp, sync_playwright() as p:
        folder = Path(tmp)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            if args.only in (None, "first-words"):
                first_words_section(browser, folder, 3 if args.quick else FIRST_WORDS_RUNS)
            if args.only in (None, "many"):
                many_section(browser, folder, repeat)
            if args.only in (None, "ttft"):
                ttft_section(browser, folder, repeat)
            if args.only in (None, "choices", "ready"):
                from page_choices import choices_section, ready_section  # it builds on this module

                if args.only in (None, "choices"):
                    choices_section(browser, folder, 3 if args.quick else FIRST_WORDS_RUNS)
                if args.only in (None, "ready"):
                    ready_section(browser, folder, repeat, processes=1 if args.quick else 3)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
