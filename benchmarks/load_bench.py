"""The embedded model under load, and the app's memory.

Prints two tables:
1. answers per minute for 10 concurrent sessions on the embedded model (through the real
   ChatController, each session continuing its own conversation), for several slot counts;
2. RSS of `streamlit run Home.py` before and after the embedded model is loaded.

    .venv/bin/python benchmarks/load_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.chat import ChatController  # noqa: E402
from model.message import Message  # noqa: E402
from settings import from_environ  # noqa: E402
from utils.local_server import LocalModelServer  # noqa: E402
from utils.providers import build_llm  # noqa: E402

QUESTIONS = ["Tell me about the sea.", "Why is the sky blue?", "Name three fruits.", "What is a cloud?"]


def sessions_per_minute(parallel: int, sessions: int, seconds: float, max_tokens: int) -> tuple[float, float, float]:
    """(answers per minute, median s per answer, tokens per second of one lone answer)."""
    server = LocalModelServer(parallel=parallel)
    server.start()
    settings = from_environ({"LLM_PROVIDER": "local", "MAX_TOKENS": str(max_tokens)}, dotenv_path=None)
    controller = ChatController(
        lambda watch: build_llm(settings, server, watch), provider="local", model="smollm2", system_prompt="Be brief."
    )
    start = time.monotonic()
    lone = "".join(controller.stream_reply([], "Write a long story about a lighthouse."))
    lone_s = time.monotonic() - start
    lone_tps = len(lone.split()) * 1.3 / lone_s  # words → tokens, roughly; the server's own figure is in the note
    durations: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def session(n: int) -> None:
        history: list[Message] = []
        turn = 0
        while time.monotonic() < deadline:
            question = f"{QUESTIONS[(n + turn) % len(QUESTIONS)]} (visitor {n})"
            began = time.monotonic()
            answer = "".join(controller.stream_reply(history, question))
            with lock:
                durations.append(time.monotonic() - began)
            history += [Message("user", question), Message("assistant", answer)]
            turn += 1

    threads = [threading.Thread(target=session, args=(n,)) for n in range(sessions)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    return len(durations) * 60 / elapsed, statistics.median(durations), lone_tps


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def app_memory() -> tuple[float, float]:
    """RSS of the running app after Home, and after its first answer on the embedded model."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, messages, open_memory_page, send, settle, streamlit_app

    with tempfile.TemporaryDirectory() as folder:
        env = {"CONVERSATIONS_FILE": f"{folder}/c.json", "MAX_TOKENS": "32", "LOCAL_PARALLEL": "4"}
        with streamlit_app(env, Path(folder) / "log") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            import subprocess

            pid = int(subprocess.check_output(["pgrep", "-f", f"server.port {url.rsplit(':', 1)[1]}"]).split()[0])
            page.goto(url)
            page.wait_for_timeout(1500)
            before = rss_mb(pid)
            open_memory_page(page, url)
            send(page, "Hello")
            messages(page).nth(1).wait_for(timeout=60_000)
            settle(page)
            after = rss_mb(pid)
            browser.close()
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 20 if args.quick else 60
    print(f"## 10 concurrent sessions on the embedded model ({seconds} s each, answers capped at 64 tokens)\n")
    print("| slots (LOCAL_PARALLEL) | answers per minute | median s per answer | lone answer, ~tokens/s |")
    print("|---:|---:|---:|---:|")
    for parallel in (1, 4, 10) if not args.quick else (4,):
        per_min, median, tps = sessions_per_minute(parallel, 10, seconds, 64)
        print(f"| {parallel} | {per_min:.0f} | {median:.2f} | {tps:.0f} |", flush=True)
    before, after = app_memory()
    print("\n## Memory of the app (`streamlit run Home.py`, RSS)\n")
    print("| moment | RSS MB |\n|---|---:|")
    print(f"| Home shown (the model starts loading in the background) | {before:.0f} |")
    print(f"| after the first answer on the embedded model (4 slots × 8,192 tokens) | {after:.0f} |")


if __name__ == "__main__":
    main()
