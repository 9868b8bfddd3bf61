"""First impressions on the embedded model: cold start to the first page, time to first token in
the browser, and the model's own tokens per second.

    .venv/bin/python benchmarks/startup_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port, messages, send, settle  # noqa: E402
from utils.local_server import LocalModelServer  # noqa: E402


def one_run() -> tuple[float, float, float]:
    """(launch → Home drawn, first message → first words (model loads), later message → first words)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        env = {"CONVERSATIONS_FILE": f"{folder}/c.json", "MAX_TOKENS": "48", "PATH": "/usr/bin:/bin"}
        launched = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    if httpx.get(url + "/_stcore/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            page.goto(url)
            expect(page.get_by_role("heading", name="bnaGPT")).to_be_visible(timeout=60_000)
            cold = time.monotonic() - launched
            page.goto(url + "/Chatbot_With_Memory")
            settle(page)
            firsts = []
            for turn, text in enumerate(["Hello!", "Tell me a fun fact."], start=1):
                sent = send(page, text)
                answer = messages(page).nth(2 * turn - 1).get_by_test_id("stMarkdownContainer")
                expect(answer).not_to_have_text("", timeout=60_000)
                firsts.append(time.monotonic() - sent)
                settle(page)
        finally:
            process.terminate()
            process.wait(10)
            browser.close()
    return cold, firsts[0], firsts[1]


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = [one_run() for _ in range(parser.parse_args().runs)]
    print("Seconds, median (min–max) of", len(runs), "runs, embedded SmolLM2-135M on this machine.\n")
    print("| what | seconds |\n|---|---:|")
    for i, label in enumerate(
        [
            "cold start: `streamlit run` launched → Home drawn in the browser",
            "first message → first words (includes loading the model if Home had not)",
            "a later short message → first words",
        ]
    ):
        values = [r[i] for r in runs]
        print(f"| {label} | {statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f}) |")
    print(
        f"\nEmbedded model, generation: {tokens_per_second():.0f} tokens/s (llama.cpp's own timing, 128 tokens, median of 3)."
    )


if __name__ == "__main__":
    main()
