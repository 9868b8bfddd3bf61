"""Where the time of one chat turn goes, server side and in the browser (issue 14).

    .venv/bin/python benchmarks/turn_split.py [--runs 7] [--counts 0,5000] [--env NAME=VALUE ...]

The same turns as page_bench.py's "first words" table (a new chat each time, FakeOpenAI answering
at once), with benchmarks/turn_hooks.py loaded into the `streamlit run` process through a
sitecustomize on PYTHONPATH: it logs, on the wall clock, when the websocket message arrives, the
script starts, chat_input is read, the controller, HTTP client, LLM, memory and agent are built,
the HTTP request goes out and its first chunk comes back, and when the first words are queued and
written to the websocket. The page notes Enter and the first words in the DOM on the same clock.
Medians in ms; the app's code is not touched.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from page_bench import (  # noqa: E402
    FakeOpenAI,
    PageTurn,
    TimedRequests,
    app,
    conversation,
    load_page,
    new_chat,
    new_page,
    open_saved,
    timed_turn,
    write_file,
)
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

HOOKS = Path(__file__).resolve().parent / "turn_hooks.py"

# (label, from, to): the first occurrence of each event after Enter; "enter", "words" and "done"
# are the page's own moments. Together the rows up to "words" add up to the first words.
BEFORE_WORDS = [
    ("Enter → message at the server (browser, websocket)", "enter", "backmsg"),
    ("message → the run begins", "backmsg", "run"),
    ("run begins → page code (widget state, callbacks)", "run", "page_code:in"),
    ("page code → chat_input read (runtime, settings)", "page_code:in", "chat_input"),
    ("chat_input → answer() (title, model line, history)", "chat_input", "answer:in"),
    ("answer() → ChatController built (Runtime.chat)", "answer:in", "controller:out"),
    ("→ stream starts (Stop button, placeholder)", "controller:out", "http_client:in"),
    ("HTTP client (httpx.Client)", "http_client:in", "http_client:out"),
    ("LLM client (OpenAILike)", "http_client:out", "llm:out"),
    ("memory: token counting + ChatMemoryBuffer", "llm:out", "memory:out"),
    ("agent (OpenAIAgent.from_tools)", "memory:out", "agent_build:out"),
    ("agent.stream_chat → HTTP request sent", "agent_build:out", "http:in"),
    ("HTTP request → response headers (endpoint)", "http:in", "http:headers"),
    ("response headers → first chunk parsed", "http:headers", "chunks:first"),
    ("first chunk → first words drawn by the script (agent thread → page)", "chunks:first", "words_out"),
    ("drawn → queued on the event loop", "words_out", "enqueue_words"),
    ("queued → written to the websocket", "enqueue_words", "ws_words"),
    ("websocket → text in the DOM (browser render)", "ws_words", "words"),
]
AFTER_WORDS = [
    ("first words drawn → answer() over (rest of the stream, autosave)", "words_out", "answer:out"),
    ("usage line (context_usage: LLM + token counting)", "usage:in", "usage:out"),
    ("sidebar (conversations list)", "sidebar:in", "sidebar:out"),
    ("sidebar → script over", "sidebar:out", "finished:in"),
    ("script over: Streamlit's full garbage collection (runner.postScriptGC)", "finished:in", "finished:out"),
    ("→ the page shows the run over", "finished:out", "done"),
]
INSIDE = [  # summed over the turn: (label, event prefix)
    ("token counting (newest_that_fit, every call)", "count_tokens"),
    ("store calls (list, load, update_messages, save)", "store_"),
    ("Runtime.provider() (every call)", "provider"),
]

SITECUSTOMIZE = """import importlib.util
spec = importlib.util.spec_from_file_location("turn_hooks", {hooks!r})
turn_hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(turn_hooks)
turn_hooks.install({trace!r})
"""


@dataclass
class Traced:
    turn: PageTurn
    events: list[dict]  # the server's events during this turn, in order
    browser: dict[str, float]  # ms of the page's main thread in the turn (Chrome's Performance.getMetrics)

    def at(self, name: str) -> float | None:
        """ms after Enter of the first `name` (page moments included)."""
        if name == "enter":
            return 0.0
        if name in ("words", "done"):
            return getattr(self.turn, name)
        for event in self.events:
            if event["e"] == name:
                return 1000 * (event["t"] - self.turn.enter_epoch)
        return None

    def span(self, start: str, end: str) -> float | None:
        a, b = self.at(start), self.at(end)
        return None if a is None or b is None else b - a

    def total(self, prefix: str) -> float:
        """ms inside calls whose event name starts with `prefix` (in/out pairs, not nested)."""
        spent, opened = 0.0, {}
        for event in self.events:
            name = event["e"]
            if not name.startswith(prefix):
                continue
            base, _, phase = name.partition(":")
            if phase == "in":
                opened[(base, event.get("th"))] = event["t"]
            elif phase == "out" and (begin := opened.pop((base, event.get("th")), None)) is not None:
                spent += 1000 * (event["t"] - begin)
        return spent

    def gc(self) -> tuple[int, float]:
        """Collections of the older generations during the turn, and their ms."""
        found = [e for e in self.events if e["e"] in ("gc1", "gc2")]
        return len(found), sum(e["ms"] for e in found)


def events_of(trace: Path, turn: PageTurn) -> list[dict]:
    start, end = turn.enter_epoch - 0.005, turn.enter_epoch + turn.done / 1000 + 0.05
    lines = (json.loads(line) for line in trace.read_text().splitlines() if line)
    return [e for e in lines if start <= e["t"] <= end]


def run(
    folder: Path, count: int, runs: int, env: dict[str, str], open_one: bool, messages: int = 20
) -> tuple[Traced, list[Traced]]:
    """A fresh traced server over `count` saved conversations: its first turn, then `runs` turns, each
    in a new chat (or, with `open_one`, all in one opened conversation, autosaved every turn)."""
    file = folder / f"conversations-{count}.json"
    convs = [conversation(i, messages, 500) for i in range(count)]
    write_file(file, convs)
    hooks_dir = folder / f"hooks-{count}"
    hooks_dir.mkdir()
    trace = folder / f"trace-{count}.jsonl"
    (hooks_dir / "sitecustomize.py").write_text(SITECUSTOMIZE.format(hooks=str(HOOKS), trace=str(trace)))
    with FakeOpenAI() as api, sync_playwright() as p:
        api.requests = TimedRequests()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            with (
                app(file, api, folder / f"streamlit-{count}.log", {**env, "PYTHONPATH": str(hooks_dir)}) as url,
                new_page(browser) as page,
            ):
                load_page(page, url)
                if open_one:
                    open_saved(page, convs[count // 2], count)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")

                def measured(question: str) -> tuple[PageTurn, dict[str, float]]:
                    before = main_thread(cdp)
                    turn = timed_turn(page, api, question, "Echo:")
                    after = main_thread(cdp)
                    return turn, {k: after[k] - before[k] for k in after}

                first = measured("hello 0.")
                turns = []
                for r in range(1, runs + 1):
                    if not open_one:
                        new_chat(page)
                    turns.append(measured(f"ping {r}."))
        finally:
            browser.close()
    if not trace.exists() or "installed" not in trace.read_text()[:200]:
        raise RuntimeError("the hooks were not loaded into the streamlit process")
    return Traced(first[0], events_of(trace, first[0]), first[1]), [Traced(t, events_of(trace, t), b) for t, b in turns]


def main_thread(cdp) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """ms the page's main thread has spent so far: running scripts, and on style and layout."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {
        "script": 1000 * metrics["ScriptDuration"],
        "style+layout": 1000 * (metrics["RecalcStyleDuration"] + metrics["LayoutDuration"]),
        "busy": 1000 * metrics["TaskDuration"],
    }


def median(values: list[float | None]) -> str:
    found = [v for v in values if v is not None]
    return f"{statistics.median(found):.1f}" if found else "—"


def table(columns: list[tuple[str, Traced, list[Traced]]]) -> list[str]:
    head = " | ".join(f"{name}: median of {len(turns)} | {name}: first message" for name, _, turns in columns)
    lines = [f"| step | {head} |", "|---" + "|---:" * (2 * len(columns)) + "|"]

    def row(label: str, values: list[tuple[list[float | None], float | None]]) -> str:
        cells = " | ".join(f"{median(many)} | {'—' if one is None else f'{one:.1f}'}" for many, one in values)
        return f"| {label} | {cells} |"

    for label, start, end in BEFORE_WORDS:
        lines.append(
            row(label, [([t.span(start, end) for t in turns], first.span(start, end)) for _, first, turns in columns])
        )
    lines.append(
        row("**Enter → first words in the DOM**", [([t.turn.words for t in ts], f.turn.words) for _, f, ts in columns])
    )
    for label, start, end in AFTER_WORDS:
        lines.append(
            row(label, [([t.span(start, end) for t in turns], first.span(start, end)) for _, first, turns in columns])
        )
    lines.append(
        row("**Enter → run over (full turn)**", [([t.turn.done for t in ts], f.turn.done) for _, f, ts in columns])
    )
    for key, label in (
        ("busy", "browser main thread busy (all tasks)"),
        ("script", "… running JavaScript"),
        ("style+layout", "… style and layout"),
    ):
        lines.append(
            row(f"in the turn: {label}", [([t.browser[key] for t in ts], f.browser[key]) for _, f, ts in columns])
        )
    for label, prefix in INSIDE:
        lines.append(
            row(f"in the turn: {label}", [([t.total(prefix) for t in ts], f.total(prefix)) for _, f, ts in columns])
        )
    lines.append(
        row(
            "in the turn: garbage collection, generations 1–2",
            [([t.gc()[1] for t in ts], f.gc()[1]) for _, f, ts in columns],
        )
    )
    lines.append(
        row("in the turn: number of those collections", [([t.gc()[0] for t in ts], f.gc()[0]) for _, f, ts in columns])
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--counts", default="0,5000", help="saved conversations, one traced server each")
    parser.add_argument("--open", action="store_true", help="turns in an opened saved conversation, not new chats")
    parser.add_argument("--messages", type=int, default=20, help="messages in each saved conversation")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the app, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false"
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    columns = []
    with tempfile.TemporaryDirectory(prefix="turn-split-") as tmp:
        for count in (int(c) for c in args.counts.split(",")):
            first, turns = run(Path(tmp), count, args.runs, env, args.open, args.messages)
            columns.append((f"{count:,} saved{', one open' if args.open else ''}", first, turns))
    where = f"in an opened conversation ({args.messages} messages, autosaved)" if args.open else "in a new chat"
    print(f"ms, one turn {where}, FakeOpenAI answering at once; median of {args.runs} turns per column,")
    print("and the process's first message (LlamaIndex imported then). Rows between steps are first occurrences.")
    print(f"App environment: {' '.join(args.env) or 'as configured'}.\n")
    for line in table(columns):
        print(line)


if __name__ == "__main__":
    main()
