"""Helpers for real-browser tests: a `streamlit run` on a free port, and Debian's Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(api: FakeOpenAI, conversations: Path) -> dict[str, str]:
    """Settings for an app whose model is the loopback `api`, as an OpenAI-compatible server."""
    return {
        "CONVERSATIONS_FILE": str(conversations),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_BASE": api.base_url,
        "OPENAI_MODEL": "test-model",
    }


@contextmanager
def streamlit_app(
    env: dict[str, str], log: Path, address: str | None = "127.0.0.1", script: str = "Home.py"
) -> Iterator[str]:
    """`streamlit run Home.py` (or another `script`) as a user would start it; yields its URL.
    With `address=None` the app listens where .streamlit/config.toml says."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GROQ_", "OPENAI_", "LLM_", "LOCAL_"))}
    full_env.update(env)
    with log.open("w") as out:
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ]
        if address:
            command += ["--server.address", address]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/_stcore/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


# Streamlit marks its root with the run's state only once the server says a run began, which on a
# busy machine can be long after a click or Enter. So the page counts the runs that began: each
# change of the mark is a mutation record keeping the value before it, so the value after it is the
# next record's old value, or the mark now for the last one. A run that began and ended before the
# observer was called is still counted. A wait after an action then waits for a run begun after it,
# not for the "notRunning" left by the run before.
_RUNS_BEGUN = """() => {
    if (window.__bnaRuns === undefined) {
        window.__bnaRuns = 0;
        new MutationObserver((records) => {
            records.forEach((record, i) => {
                const after = i + 1 < records.length
                    ? records[i + 1].oldValue
                    : record.target.getAttribute("data-test-script-state");
                if (after === "running" && record.oldValue !== "running") window.__bnaRuns += 1;
            });
        }).observe(document.documentElement, {
            subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ["data-test-script-state"],
        });
    }
    return window.__bnaRuns;
}"""
RUN_START_GRACE_MS = 3_000  # an action that starts no run (an expander, a menu) costs this much
_runs_before: dict[int, int] = {}  # page → the runs it had begun just before the last action


def mark(page: Page) -> None:
    """Note that an action is about to be taken, so the next `settle` waits for the run it starts."""
    _runs_before[id(page)] = int(page.evaluate(_RUNS_BEGUN))


def send(page: Page, text: str) -> float:
    """Type a message and press Enter; returns the time it was sent."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    mark(page)
    sent = time.monotonic()
    box.press("Enter")
    return sent


def settle(page: Page, timeout: float = 60_000) -> None:
    """Wait until no script run is going on. After `send`, `click` or `mark`, first wait (up to
    RUN_START_GRACE_MS) for the run that action starts to show on the page."""
    before = _runs_before.pop(id(page), None)
    page.wait_for_timeout(150)  # let a rerun that a click or Enter asked for begin
    if before is not None:
        # no run within the grace: the action needed none (an expander), or the page was reloaded
        with suppress(PlaywrightTimeout):
            page.wait_for_function(f"() => ({_RUNS_BEGUN})() > {before}", timeout=RUN_START_GRACE_MS)
    idle = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    expect(idle).to_have_count(1, timeout=timeout)


def click(page: Page, locator) -> None:  # type: ignore[no-untyped-def]
    """Click a button and wait for the run it starts to finish."""
    mark(page)
    locator.click()
    settle(page)


def messages(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stChatMessage")


def answered(page: Page, count: int, timeout: float = 60_000) -> None:
    """Wait until the page shows `count` messages and the run answering has ended. The answer's
    bubble is drawn before its request reaches the model, so a test reading what the model was
    sent must wait for the run, not for the bubble."""
    expect(messages(page)).to_have_count(count, timeout=timeout)
    settle(page, timeout)


def open_memory_page(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_text("Chatbot With Memory").click()
    expect(page.get_by_role("heading", name="Chatbot With Memory")).to_be_visible(timeout=30_000)


def sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stSidebar")


def choose_from_menu(page: Page, menu, item: str) -> None:  # type: ignore[no-untyped-def]
    """Open a popover menu and click `item` in it. A click that lands while Streamlit is still
    re-drawing the page after a run can be swallowed, so the menu is opened again if needed."""
    entry = page.get_by_role("button", name=item, exact=True)
    for _ in range(3):
        settle(page)
        menu.get_by_role("button").first.click()
        try:
            expect(entry).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            continue
    click(page, entry)


def conversation_menu(page: Page, conversation_id: str, item: str) -> None:
    """Choose `item` in a saved conversation's ⋯ menu; only the open conversation has one, so it is
    opened first if it is not."""
    menu = sidebar(page).locator(f".st-key-conv-{conversation_id}-menu")
    if menu.count() == 0:
        click(page, sidebar(page).locator(f".st-key-conv-{conversation_id}-open button"))
        expect(menu).to_be_visible(timeout=15_000)
    choose_from_menu(page, menu, item)


def save_as(page: Page, name: str) -> None:
    """Save the chat on screen under `name` from the sidebar, and wait until it is listed."""
    click(page, sidebar(page).get_by_role("button", name="Save", exact=True))
    sidebar(page).get_by_label("Conversation name").fill(name)
    click(page, sidebar(page).get_by_role("button", name="Confirm Save", exact=True))
    expect(sidebar(page).get_by_role("button", name=name)).to_be_visible(timeout=15_000)


def attach_and_send(page: Page, text: str, files: list[tuple[str, bytes, str]]) -> None:
    chooser = page.get_by_test_id("stChatInput").locator("input[type=file]")
    uploads: list[object] = []
    page.on("response", lambda r: uploads.append(r) if "/_stcore/upload_file" in r.url else None)
    chooser.set_input_files([{"name": n, "mimeType": m, "buffer": b} for n, b, m in files])
    expect(page.get_by_test_id("stChatInput").get_by_text(files[-1][0])).to_be_visible(timeout=15_000)
    page.wait_for_function("() => true")  # let the upload requests start
    deadline = time.monotonic() + 30
    while len(uploads) < len(files) and time.monotonic() < deadline:  # each file is on the server
        page.wait_for_timeout(50)
    send(page, text)
