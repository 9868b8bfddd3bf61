"""First impressions: cold start to the first page and where it goes, Home's memory, time to first
token in the browser, and the embedded model's own tokens per second.

    .venv/bin/python benchmarks/startup_bench.py [--runs N] [--skip-model]

Each run launches `streamlit run Home.py` in a fresh browser. Cold start is measured twice per run:
once plain, and once with benchmarks/turn_hooks.py loaded through a sitecustomize on PYTHONPATH
(nothing in the app changes), which notes on the wall clock when Python is up, when `streamlit` is
imported, when the first script run begins and ends and how long our modules take to import; the
page notes when the HTML and scripts are loaded and when Home's title is in the DOM, on the same
clock. `python -X importtime` then names the heavy imports on Home's path.

Two configurations: the embedded model (the default without keys: Home starts loading it in the
background), and an OpenAI-compatible server (FakeOpenAI on loopback: no model in the process).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from page_bench import timed_turn  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port, settle  # noqa: E402
from tests.openai_server import FakeOpenAI  # noqa: E402
from utils.local_server import LocalModelServer  # noqa: E402

HOOKS = Path(__file__).resolve().parent / "turn_hooks.py"
SITECUSTOMIZE = """import importlib.util
spec = importlib.util.spec_from_file_location("turn_hooks", {hooks!r})
turn_hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(turn_hooks)
turn_hooks.install({trace!r})
"""
# Installed before any page script: when Home's title is first in the DOM, on the page's clock.
TITLE_PROBE_JS = """(() => {
  const title = () => [...document.querySelectorAll('h1')].some(h => h.textContent.includes('bnaGPT'));
  const links = () => [...document.querySelectorAll('[data-testid^="stPageLink"]')]
    .some(l => l.textContent.includes('Chatbot With Memory'));
  new MutationObserver((_, observer) => {
    if (window.__title === undefined && title()) window.__title = performance.now();
    if (window.__complete === undefined && links()) window.__complete = performance.now();
    if (window.__title !== undefined && window.__complete !== undefined) observer.disconnect();
  }).observe(document, {subtree: true, childList: true, characterData: true});
})();"""
NAVIGATION_JS = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {origin: performance.timeOrigin, html: n.responseEnd, scripts: n.loadEventEnd, title: window.__title,
          complete: window.__complete};
}"""
OUR_PACKAGES = ("view", "controller", "model", "utils", "settings")
BEFORE = {"cold": 4.48, "first": 0.89, "later": 0.37, "rss": 150}  # README before issue 14


@dataclass
class Cold:
    """One launch: seconds after `streamlit run` was launched, and Home's RSS."""

    python: float | None = None  # sitecustomize ran (interpreter and site up)
    streamlit: float | None = None  # `import streamlit` done
    server: float = 0.0  # /_stcore/health answers
    html: float = 0.0  # the page's HTML received
    scripts: float = 0.0  # the page's scripts loaded (load event)
    run_start: float | None = None  # the first script run begins (websocket connected)
    title: float = 0.0  # Home's title in the DOM: "Home drawn"
    complete: float | None = None  # Home's last part (the links to the chat pages) in the DOM
    run_end: float | None = None  # the first script run is over
    ours: float | None = None  # importing view.home_view (our modules on Home's path)
    gc: float = 0.0  # ms of full collections in the first run
    rss_drawn: float = 0.0  # MB when Home is drawn
    rss_idle: float | None = None  # MB 10 s later, idle (runs without `chat`)
    later: dict[str, float] = field(default_factory=dict)  # first words, for the embedded model


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def trace_events(trace: Path) -> list[dict]:
    return [json.loads(line) for line in trace.read_text().splitlines() if line] if trace.exists() else []


def first(events: list[dict], name: str) -> float | None:
    return next((e["t"] for e in events if e["e"] == name), None)


def launch(env: dict[str, str], folder: Path, hooked: bool, chat: bool, browser_type) -> Cold:  # type: ignore[no-untyped-def]
    """`streamlit run Home.py` in a fresh browser: the cold start and Home's RSS; then with `chat` the
    first words at once (as a user would go on), else Home's RSS after 10 s idle."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    trace = folder / f"trace-{time.monotonic_ns()}.jsonl"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GROQ_", "OPENAI_", "LLM_", "LOCAL_"))}
    full_env.update(env)
    if hooked:
        hooks_dir = folder / f"hooks-{time.monotonic_ns()}"
        hooks_dir.mkdir()
        (hooks_dir / "sitecustomize.py").write_text(SITECUSTOMIZE.format(hooks=str(HOOKS), trace=str(trace)))
        full_env["PYTHONPATH"] = str(hooks_dir)
    browser = browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page()
    page.add_init_script(TITLE_PROBE_JS)
    result = Cold()
    launched = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(url + "/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        result.server = time.time() - launched
        page.goto(url)
        expect(page.get_by_role("heading", name="bnaGPT")).to_be_visible(timeout=60_000)
        result.rss_drawn = rss_mb(process.pid)
        page.wait_for_function("() => window.__complete !== undefined", polling=100, timeout=60_000)
        settle(page)
        nav = page.evaluate(NAVIGATION_JS)
        origin = nav["origin"] / 1000 - launched
        result.html, result.scripts = origin + nav["html"] / 1000, origin + nav["scripts"] / 1000
        result.title = origin + nav["title"] / 1000
        result.complete = None if nav["complete"] is None else origin + nav["complete"] / 1000
        if chat:
            result.later = first_words(page, url)
        else:
            time.sleep(10)
            result.rss_idle = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)
        browser.close()
    events = trace_events(trace)
    if hooked and not events:
        raise RuntimeError("the hooks were not loaded into the streamlit process")
    if events:
        at = lambda name: None if (t := first(events, name)) is None else t - launched  # noqa: E731
        result.python, result.streamlit = at("installed"), at("import:streamlit:out")
        result.run_start, result.run_end = at("run"), at("finished:out")
        begin, end = at("import:view.home_view:in"), at("import:view.home_view:out")
        result.ours = None if begin is None or end is None else end - begin
        if result.run_start is not None and result.run_end is not None:
            run = (launched + result.run_start, launched + result.run_end)
            result.gc = sum(e["ms"] for e in events if e["e"] == "gc2" and run[0] <= e["t"] <= run[1])
    return result


def first_words(page: Page, url: str) -> dict[str, float]:
    """Seconds from Enter to the first words, timed in the page (page_bench.timed_turn): the first
    message (it may wait for the model) and a later one."""
    page.goto(url + "/Chatbot_With_Memory")
    settle(page)
    found = {}
    for key, text in (("first", "Hello!"), ("later", "Tell me a fun fact.")):
        found[key] = timed_turn(page, None, text, "").words / 1000
    return found


def heavy_imports(limit: int = 12) -> tuple[float, list[tuple[float, float, str]]]:
    """`python -X importtime`: ms to import Home's view after streamlit, and the slowest modules it brings
    (cumulative ms, self ms, name), ours and third-party."""
    code = "import streamlit, streamlit.web.bootstrap; import view.home_view"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    rows, collecting = [], False
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        self_us, cumulative_us, depth, name = int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)
        if name == "streamlit.web.bootstrap" and depth == 0:
            collecting = True  # what follows is imported for Home's view alone
            continue
        if collecting:
            rows.append((cumulative_us / 1000, self_us / 1000, name, depth))
    total = sum(c for c, _, _, d in rows if d == 0)
    return total, [(c, s, n) for c, s, n, _ in sorted(rows, reverse=True)[:limit]]


def tokens_per_second() -> float:
    server = LocalModelServer(parallel=1)
    server.start()
    rates = []
    for _ in range(3):
        answer = httpx.post(
            server.base_url + "/chat/completions",
            json={"messages": [{"role": "user", "content": "Write a story about a lighthouse."}], "max_tokens": 128},
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=120,
        ).json()
        rates.append(answer["timings"]["predicted_per_second"])
    return statistics.median(rates)


def stats(values: list[float | None], scale: float = 1.0, digits: int = 2) -> str:
    found = [v * scale for v in values if v is not None]
    if not found:
        return "—"
    if len(found) == 1:
        return f"{found[0]:.{digits}f}"
    return f"{statistics.median(found):.{digits}f} ({min(found):.{digits}f}–{max(found):.{digits}f})"


def split_rows(runs: list[Cold]) -> list[tuple[str, list[float | None]]]:
    """The cold start as consecutive steps, seconds."""

    def step(a: str | None, b: str) -> list[float | None]:
        out: list[float | None] = []
        for r in runs:
            start = 0.0 if a is None else getattr(r, a)
            end = getattr(r, b)
            out.append(None if start is None or end is None else end - start)
        return out

    return [
        ("Python up (interpreter, site)", step(None, "python")),
        ("`import streamlit`", step("python", "streamlit")),
        ("server start (config, runtime, uvicorn) → /_stcore/health answers", step("streamlit", "server")),
        ("browser: HTML received", step("server", "html")),
        ("browser: Streamlit's scripts loaded (load event)", step("html", "scripts")),
        ("→ first script run begins (websocket connected)", step("scripts", "run_start")),
        ("first script run → Home's title in the DOM", step("run_start", "title")),
        ("**launch → Home drawn**", step(None, "title")),
        ("Home's title → the rest of Home (links to the chat pages)", step("title", "complete")),
        ("in the first run: importing our modules (view.home_view and what it brings)", [r.ours for r in runs]),
        ("after it is drawn: the rest of the first run (incl. full GC)", step("title", "run_end")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--skip-model", action="store_true", help="no embedded-model rows (no first words, no tokens/s)"
    )
    args = parser.parse_args()
    configurations = [] if args.skip_model else [("embedded model", {"PATH": "/usr/bin:/bin", "MAX_TOKENS": "48"})]
    configurations.append(("OpenAI-compatible server", {"LLM_PROVIDER": "openai", "OPENAI_MODEL": "test-model"}))
    results: dict[str, tuple[list[Cold], list[Cold]]] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p, FakeOpenAI() as api:
        folder = Path(tmp)
        for name, env in configurations:
            env = {**env, "CONVERSATIONS_FILE": f"{tmp}/c.json", "DATA_DIR": tmp}
            if name != "embedded model":
                env["OPENAI_API_BASE"] = api.base_url
            plain, hooked = [], []
            for _ in range(args.runs):
                plain.append(launch(env, folder, False, chat=name == "embedded model", browser_type=p.chromium))
                hooked.append(launch(env, folder, True, chat=False, browser_type=p.chromium))
            results[name] = (plain, hooked)

    load = os.getloadavg()
    print(f"Seconds, median (min–max) of {args.runs} runs; load average at the end {load[0]:.1f} (2 cores).\n")
    names = list(results)
    print("| what | before | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    print(
        f"| **cold start: `streamlit run` launched → Home drawn** | {BEFORE['cold']:.2f} | "
        + " | ".join(stats([r.title for r in results[n][0]]) for n in names)
        + " |"
    )
    print(
        "| `streamlit run` launched → all of Home drawn (its links to the chat pages) | — | "
        + " | ".join(stats([r.complete for r in results[n][0]]) for n in names)
        + " |"
    )
    print(
        f"| Home's RSS when drawn, MB | {BEFORE['rss']} | "
        + " | ".join(stats([r.rss_drawn for r in results[n][0]], digits=0) for n in names)
        + " |"
    )
    print(
        "| Home's RSS 10 s later, idle, MB | — | "
        + " | ".join(stats([r.rss_idle for r in results[n][0] + results[n][1]], digits=0) for n in names)
        + " |"
    )
    if "embedded model" in results:
        plain = results["embedded model"][0]
        print(
            f"| first message → first words (includes loading the model if Home had not) | {BEFORE['first']:.2f} | "
            + stats([r.later.get("first") for r in plain])
            + " |" * (len(names) - 1)
            + " |"
        )
        print(
            f"| a later short message → first words | {BEFORE['later']:.2f} | "
            + stats([r.later.get("later") for r in plain])
            + " |" * (len(names) - 1)
            + " |"
        )

    print("\n#### Where the cold start goes (a second launch per run, with timing hooks)\n")
    print("| step | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    splits = {n: split_rows(results[n][1]) for n in names}
    for i, (label, _) in enumerate(splits[names[0]]):
        print(f"| {label} | " + " | ".join(stats(splits[n][i][1]) for n in names) + " |")
    print(
        "| full garbage collections in the first run, ms | "
        + " | ".join(stats([r.gc for r in results[n][1]], digits=0) for n in names)
        + " |"
    )

    total, heavy = heavy_imports()
    print(f"\n`python -X importtime`: Home's view imports in {total:.0f} ms once streamlit is loaded; the slowest:\n")
    print("| module | cumulative ms | self ms |\n|---|---:|---:|")
    for cumulative, self_ms, module in heavy:
        print(f"| {module} | {cumulative:.1f} | {self_ms:.1f} |")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("\n(PYTHONDONTWRITEBYTECODE is set here: our modules are compiled from source at every start.)")

    if not args.skip_model:
        print(
            f"\nEmbedded model, generation: {tokens_per_second():.0f} tokens/s "
            "(llama.cpp's own timing, 128 tokens, median of 3)."
        )


if __name__ == "__main__":
    main()
