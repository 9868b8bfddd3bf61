"""What the tools cost before anything is shown: Run code's sandbox start-up, and a web search's
delay to the answer's first token.

    .venv/bin/python benchmarks/tools_bench.py [--runs 20] [--chart-runs 10] [--skip-sandbox] [--skip-search]

Sandbox: `utils.sandbox.run_python` (bubblewrap, as the app calls it) against the same code run by a
plain `python` subprocess of the same interpreter, in turns, so a load spike hits both; the
overhead is the median of the per-pair differences. Cases: `print(1)`, a 1 MB attached file read
back, and matplotlib saving a PNG (plain both with a fresh MPLCONFIGDIR, as the sandbox has, and
with one kept between runs).

Search: the app's turn (`ChatController.reply`, a FakeOpenAI on loopback as the model) and its
web search (`controller.tools`) against a loopback fake SearXNG whose results link to fake
article pages: (a) a plain answer, (b) prefetch, the search done before the model is asked (what
the embedded model gets), (c) tool mode, the model calls `search_web` and then answers. Times run
from the start of the turn (asking the model's window included, as the page does) to the first
delta; "added, CPU ms" is this process's CPU time over (a), which the load hardly changes. The
fake web runs in a process of its own. Real networks and real models (the embedded one reading a
longer prompt) add their own latency on top; this is our part of it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.quiet import silence_known_warnings  # noqa: E402

silence_known_warnings()  # before LlamaIndex is imported: its notices, three per turn, would bury the tables

from controller.agent import count_tokens  # noqa: E402
from controller.chat import ChatController, Turn  # noqa: E402
from controller.tools import Findings, agent_tools, budget_chars, search_the_web  # noqa: E402
from settings import Settings, from_environ  # noqa: E402
from tests.openai_server import FakeOpenAI  # noqa: E402
from utils.providers import build_llm  # noqa: E402
from utils.sandbox import SandboxLimits, run_python  # noqa: E402

SANDBOX_TARGET_MS = 150
SEARCH_TARGET_MS = 1000
CHART = 'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.savefig("chart.png")\nprint("saved")\n'
QUESTION = "How do tides work?"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5 min {five:.1f})"


def ms(values: list[float]) -> str:
    """`median (min–max)` in milliseconds."""
    found = [v * 1000 for v in values]
    return f"{statistics.median(found):.0f} ({min(found):.0f}–{max(found):.0f})"


def cpu() -> float:
    """CPU seconds this process (all its threads) has used: a cost the load hardly changes. Not
    kept for the sandbox: its processes are killed, not waited for, so their CPU is never counted."""
    return time.process_time()


Clock = tuple[float, float]  # (wall, CPU) seconds


def clock() -> Clock:
    return time.perf_counter(), cpu()


def since(start: Clock) -> Clock:
    wall, used = clock()
    return wall - start[0], used - start[1]


def timed(run: Callable[[], object]) -> Clock:
    start = clock()
    run()
    return since(start)


def columns(box: list[Clock], bare: list[Clock]) -> tuple[str, str, list[float]]:
    """The paired differences of wall and CPU time, as table cells, and the wall ones."""
    walls = [b[0] - u[0] for b, u in zip(box, bare, strict=True)]
    cpus = [b[1] - u[1] for b, u in zip(box, bare, strict=True)]
    return ms(walls), ms(cpus), walls


# --- the sandbox --------------------------------------------------------------------------


def plain(code: str, folder: str, env: dict[str, str] | None = None) -> Callable[[], object]:
    def run() -> None:
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, check=True)
        assert done.stdout.strip(), done.stderr

    return run


def sandboxed(code: str, files: dict[str, bytes], expected: str, images: int = 0) -> Callable[[], object]:
    def run() -> None:
        result = run_python(code, files, SandboxLimits())
        assert result.stdout.strip() == expected and len(result.images) == images, result

    return run


def sandbox_table(runs: int, chart_runs: int) -> None:
    folder = tempfile.mkdtemp(prefix="tools-bench-")
    data = os.urandom(1 << 20)
    Path(folder, "data.bin").write_bytes(data)
    kept_cache = tempfile.mkdtemp(prefix="tools-bench-mpl-")
    read_back = "print(len(open('data.bin', 'rb').read()))"

    def chart_env(cache: str | None) -> dict[str, str]:
        return {**os.environ, "MPLBACKEND": "Agg", "MPLCONFIGDIR": cache or tempfile.mkdtemp(dir=folder)}

    def fresh_cache() -> None:  # a new MPLCONFIGDIR every run, as the sandbox's /tmp is new every run
        plain(CHART, folder, chart_env(None))()

    cases = [
        ("`print(1)`", runs, sandboxed("print(1)", {}, "1"), plain("print(1)", folder), None),
        (
            "read a 1 MB attached file",
            runs,
            sandboxed(read_back, {"data.bin": data}, str(len(data))),
            plain(read_back, folder),
            None,
        ),
        (
            "matplotlib → PNG",
            chart_runs,
            sandboxed(CHART, {}, "saved", 1),
            fresh_cache,
            plain(CHART, folder, chart_env(kept_cache)),  # does the sandbox's fresh /tmp cost the font cache?
        ),
    ]
    print(f"## Sandbox start-up (`run_python`, bubblewrap) — load {load()}, 2 cores\n")
    print("Milliseconds, median (min–max); each case warmed up once, then sandbox and plain in turns.\n")
    print("| case | runs | sandbox | plain `python -c` | overhead (paired) | ≤ 150 ms |")
    print("|---|---:|---:|---:|---:|:---:|")
    notes = []
    for name, n, box, bare, also in cases:
        runners = [r for r in (box, bare, also) if r is not None]
        for run in runners:
            run()  # warm-up: the first run_python also probes that bubblewrap works
        times: list[list[Clock]] = [[] for _ in runners]
        for i in range(n):
            order = list(enumerate(runners))
            for at, run in order[i % len(order) :] + order[: i % len(order)]:  # rotate who goes first
                times[at].append(timed(run))
        walls = [[wall for wall, _ in runs] for runs in times]
        extra, _, extra_walls = columns(times[0], times[1])
        met = "yes" if statistics.median(extra_walls) * 1000 <= SANDBOX_TARGET_MS else "no"
        print(f"| {name} | {n} | {ms(walls[0])} | {ms(walls[1])} | {extra} | {met} |")
        if also is not None:
            notes.append(f"{name}: plain with a fresh MPLCONFIGDIR {ms(walls[1])}, with one kept {ms(walls[2])}.")
    print("\n" + "\n".join(notes + [f"Load at the end: {load()}."]) + "\n")
    shutil.rmtree(folder)
    shutil.rmtree(kept_cache)


# --- the web search -----------------------------------------------------------------------


class Web:
    """A loopback SearXNG (`/search?format=json`) whose results link to article pages it serves.

    It runs in a process of its own (`--serve-web`), as a remote site would: in ours it would
    take the GIL from the threads that read the pages, and its serving would be timed as ours."""

    def __init__(self, results: int, page_kb: int) -> None:
        paragraphs = "".join(
            f"<p>Paragraph {i}: the moon pulls the oceans, and twice a day the water rises along the coast.</p>"
            for i in range(page_kb * 10)  # ~100 bytes each
        )
        self.page = (
            "<html><head><title>Tides</title><style>p { color: #333 }</style><script>var x = 1;</script></head>"
            "<body><nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
            f"<article><h1>How tides work</h1>{paragraphs}</article><footer>Footer</footer></body></html>"
        ).encode()
        self.results = results
        web = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if urlsplit(self.path).path == "/search":
                    rows = [
                        {"title": f"Tides {n}", "url": f"{web.base}/page/{n}", "content": "the moon pulls"}
                        for n in range(web.results)
                    ]
                    web.send(self, json.dumps({"results": rows}).encode(), "application/json")
                else:
                    web.send(self, web.page, "text/html; charset=utf-8")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def first_delta(turn: Turn, start: Clock) -> Clock:
    """Wall and CPU seconds from `start` to the turn's first text; the rest is read to the end."""
    stream = iter(turn)
    next(stream)
    first = since(start)
    for _ in stream:
        pass
    assert turn.status == "complete", turn.status
    return first


def serve_web(results: int, page_kb: int) -> None:
    web = Web(results, page_kb)
    print(web.base, len(web.page), flush=True)
    web.server.serve_forever()


def search_table(runs: int, results: int, page_kb: int) -> None:
    command = [sys.executable, __file__, "--serve-web", "--results", str(results), "--page-kb", str(page_kb)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base, page_bytes = server.stdout.readline().split()
        search_rounds(runs, results, base, int(page_bytes))
    finally:
        server.kill()
        server.wait()


def search_rounds(runs: int, results: int, base: str, page_bytes: int) -> None:
    with FakeOpenAI() as api:
        env = {"LLM_PROVIDER": "openai", "OPENAI_API_BASE": api.base_url, "OPENAI_MODEL": "test-model"}
        settings: Settings = from_environ({**env, "SEARXNG_URL": base, "SEARCH_ALLOW_PRIVATE": "1"}, dotenv_path=None)
        controller = ChatController(
            lambda watch: build_llm(settings, None, watch),
            provider="openai",
            model="test-model",
            system_prompt="SYS",
            calls_tools=True,
        )

        searching: list[float] = []

        def plain_answer() -> Clock:
            start = clock()
            return first_delta(controller.reply([], QUESTION), start)

        def prefetch() -> Clock:
            start = clock()
            budget = budget_chars(controller.context_window())
            findings = search_the_web(QUESTION, settings, budget)
            searching.append(time.perf_counter() - start[0])
            assert len(findings.sources) == results and not findings.problems, findings.problems
            return first_delta(controller.reply([], QUESTION, findings), start)

        def tool_mode() -> Clock:
            api.script.tool_calls = [("search_web", {"query": QUESTION})]
            start = clock()
            findings = Findings()
            budget = budget_chars(controller.context_window())
            tools = agent_tools(
                findings,
                settings=settings,
                budget=budget,
                web=True,
                code=False,
                attachments=[],
                index=None,
                count_tokens=count_tokens,
            )
            first = first_delta(controller.reply([], QUESTION, findings, tools), start)
            assert len(findings.sources) == results, findings.runs
            return first

        modes = {"(a) plain answer": plain_answer, "(b) prefetch: search, then answer": prefetch}
        modes["(c) tool mode: model calls search_web, then answers"] = tool_mode
        for mode in modes.values():
            mode()  # warm-up: imports (bs4, LlamaIndex tools) and the model's window, asked once
        searching.clear()
        times: dict[str, list[Clock]] = {name: [] for name in modes}
        print(f"## Search to first token (loopback fakes) — load {load()}, 2 cores\n")
        print(
            f"SearXNG fake: {results} results, each page ~{page_bytes // 1024} KB of HTML; FakeOpenAI as the "
            f"model. Milliseconds to the first delta, median (min–max) of {runs} rounds (a, b, c in turns).\n"
        )
        for _ in range(runs):
            for name, mode in modes.items():
                times[name].append(mode())
        plain_times = times["(a) plain answer"]
        print("| turn | to first delta | added over (a) (paired) | added, CPU ms | ≤ 1 s added |")
        print("|---|---:|---:|---:|:---:|")
        for name, values in times.items():
            first = ms([wall for wall, _ in values])
            if values is plain_times:
                print(f"| {name} | {first} | — | {ms([used for _, used in values])} (its own) | — |")
                continue
            added, added_cpu, added_walls = columns(values, plain_times)
            met = "yes" if statistics.median(added_walls) * 1000 <= SEARCH_TARGET_MS else "no"
            print(f"| {name} | {first} | {added} | {added_cpu} | {met} |")
        print(f"\nOf (b), the search itself (results, then reading the pages): {ms(searching)}.")
        print(f"Load at the end: {load()}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each quick case (default 20)")
    parser.add_argument("--chart-runs", type=int, default=10, help="runs of the matplotlib case (default 10)")
    parser.add_argument("--results", type=int, default=5, help="pages the search reads (the app reads 5)")
    parser.add_argument("--page-kb", type=int, default=30, help="HTML size of each fake page in KB (default 30)")
    parser.add_argument("--skip-sandbox", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--serve-web", action="store_true", help=argparse.SUPPRESS)  # the fake web's process
    args = parser.parse_args()
    if args.serve_web:
        serve_web(args.results, args.page_kb)
        return
    if not args.skip_sandbox:
        sandbox_table(args.runs, args.chart_runs)
    if not args.skip_search:
        search_table(args.runs, args.results, args.page_kb)


if __name__ == "__main__":
    main()
