"""Untrusted text stays inert: utils.text on hostile strings, delta by delta, and in the real
renderer (Streamlit's own markdown in Chromium), where nothing may be fetched or linked."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser import streamlit_app
from utils.text import as_text, inert_markdown, inert_stream

ROOT = Path(__file__).resolve().parent.parent
PIXEL = "http://127.0.0.1:9/p.png"  # replaced by a live loopback server in the browser test

HOSTILE = [
    f"![a]({PIXEL})",
    f"\\![a]({PIXEL})",
    f"\\\\![a]({PIXEL})",
    f"\\\\\\![a]({PIXEL})",
    f"!\n[a]({PIXEL})",
    f"![a][r]\n\n[r]: {PIXEL}",
    f"![a]\n\n[a]: {PIXEL}",
    f"<img src={PIXEL} onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1)) [d](data:text/html,hi) [v](vbscript:x) [r](/relative) [p](//evil.example/x)",
    f"![a](<{PIXEL}>)",
    f"[![a]({PIXEL})](https://example.com/v)",
    f"！[a]({PIXEL})",
    f"&#33;[a]({PIXEL})",
    f"&#x21;[a]({PIXEL}) &excl;[b]({PIXEL})",
    "<javascript:alert(1)>",
    "[x]: javascript:alert(1)\n\n[x]",
    "[`a]: javascript:alert(1)`\n\n[`a]",
    f"| a | b |\n|---|---|\n| `x | ![i]({PIXEL}) ` | z |",
    "https://example.com/<javascript:alert(1)>",
    "www.example.com\\<javascript:alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    f'```mermaid\ngraph TD\n  A@{{ img: "{PIXEL}", label: "x" }}\n```',
    f'~~~ Mermaid\ngraph TD\n  A@{{ img: "{PIXEL}" }}\n~~~',
    f'> ~~~mermaid\n> graph TD\n>   A@{{ img: "{PIXEL}" }}\n> ~~~',
    f"```\ncode\n```\n![a]({PIXEL})",
    f"1. step\n   ```\n   x\n![a]({PIXEL})\n   ```",
    f"$$\n![a]({PIXEL})",
    f"$ ![a]({PIXEL}) $ and $b$",
    f'<a title="`"> ![a]({PIXEL}) `',
    f"https://example.com/`a ![i]({PIXEL}) `b` `",
    f':x[a]{{b="`"}} ![i]({PIXEL}) `',
    f"<!--\n\n```\n-->\n![a]({PIXEL})\n```",
    f'![a]({PIXEL} "t")',
    "$\\href{javascript:alert(1)}{x}$ $\\includegraphics{" + PIXEL + "}$",
    ":streamlit: :red[red]",
]


def splits(text: str) -> Iterator[list[str]]:
    """Every way of cutting `text` into 2 and into 3 deltas."""
    for i in range(len(text) + 1):
        yield [text[:i], text[i:]]
        for j in range(i, len(text) + 1):
            yield [text[:i], text[i:j], text[j:]]


# the escaping itself -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hostile", "inert"),
    [
        ("![a](u)", "!\\[a]\\(u)"),
        ("\\![a](u)", "\\!\\[a]\\(u)"),  # the old bug: `\\![` escaped the backslash, not the image
        ("\\\\![a](u)", "\\\\!\\[a]\\(u)"),
        ("![a][r]\n\n[r]: http://x/p.png", "!\\[a][r]\n\n[r]\\: http://x/p.png"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),
        ("[click](javascript:alert(1))", "[click]\\(javascript\\:alert(1))"),
        ("![a](<u>)", "!\\[a]\\(\\<u>)"),
        ("[![a](u)](v)", "[!\\[a]\\(u)]\\(v)"),
        ("&#33;[a](u)", "&#33;[a]\\(u)"),  # an entity is text, never syntax: no image, and no link to u
        ("！[a](u)", "！[a]\\(u)"),
        ("<javascript:alert(1)>", "\\<javascript\\:alert(1)>"),
        ("https://x.example/<javascript:x>", "https://x.example/&lt;javascript:x>"),  # one URL, no autolink
        ("```mermaid\ngraph\n```", "```text\ngraph\n```"),
        ("a\r\nb\rc", "a\nb\nc"),
    ],
)
def test_hostile_markup_is_escaped(hostile: str, inert: str) -> None:
    assert inert_markdown(hostile) == inert


def test_ordinary_markdown_is_kept() -> None:
    answer = (
        "# Plan\n\nSome **bold**, *italic*, ~~struck~~, `code`, `a | b` and `Vec<T>`.\n\n"
        "- see [the docs](https://docs.streamlit.io/a_(b)) or https://example.com/x?y=1\n"
        "- [ ] a task\n\n| Name | Value |\n|------|-------|\n| `x` | 1 < 2 |\n\n"
        "> Note: it is 10:30, ratio 3:1. Mail bob@example.com.\n\n"
        "Area $A = \\pi r^2$ for $0<r<1$:\n\n$$\n\\int_0^1 f(x)\\,dx < \\infty\n$$\n\n"
        "```rust\nlet v = vec![1, 2]; // ![not](an image) <b>\n```\n"
    )
    assert inert_markdown(answer) == answer


def test_a_fence_is_code_however_it_is_indented_and_stays_verbatim() -> None:
    answer = "1. Install:\n   ```bash\n   pip install x < y\n   ```\n2. Run"
    assert inert_markdown(answer) == "1. Install:\n\n```bash\npip install x < y\n```\n2. Run"
    # the fence ends where the renderer ends it, so nothing after it passes as code
    assert inert_markdown("```\ncode\n````\n![a](u)") == "```\ncode\n````\n!\\[a]\\(u)"


def test_unpaired_backticks_and_dollars_open_nothing() -> None:
    assert inert_markdown("`a ![x](u)") == "\\`a !\\[x]\\(u)"
    assert inert_markdown("costs $5 ![x](u)") == "costs \\$5 !\\[x]\\(u)"
    # a $span$ that would not read the same as text (Streamlit may not read it as math)
    assert inert_markdown("$ ![x](u) $") == "\\$ !\\[x]\\(u) \\$"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_every_way_of_streaming_gives_the_same_text(hostile: str) -> None:
    whole = inert_markdown(hostile)
    for deltas in splits(hostile):
        assert "".join(inert_stream(deltas)) == whole, deltas


def test_streaming_holds_back_only_what_may_change() -> None:
    assert list(inert_stream(["Hello ", "world", "!"])) == ["Hello ", "world", "!"]
    assert list(inert_stream(["look: !", "[a](u)"])) == ["look: !", "\\[a]\\(u)"]
    assert "".join(inert_stream(["`a", "` b"])) == "`a` b"  # held until its closing backtick came


def test_labels_are_text() -> None:
    assert as_text("  **Plan**\n![x](u) <b>  ") == "\\*\\*Plan\\*\\* \\!\\[x\\]\\(u\\) \\<b\\>"
    assert as_text("a\\![x](u)") == "a\\\\\\!\\[x\\]\\(u\\)"
    assert as_text("bob@example.com www.example.com") == "bob\\@example\\.com www\\.example\\.com"
    assert ":\u2060streamlit" in as_text(":streamlit:")  # not Streamlit's logo


# the real renderer ----------------------------------------------------------------------------
APP = """
import json, sys
sys.path.insert(0, {root!r})
import streamlit as st
from utils.text import inert_markdown, inert_stream

for n, doc in enumerate(json.loads(open({docs!r}).read())):
    with st.container(key=f"doc{{n}}"):
        st.markdown(inert_markdown(doc))
    with st.container(key=f"streamed{{n}}"):
        st.write_stream(inert_stream(iter([doc[i : i + 3] for i in range(0, len(doc), 3)])))
st.markdown("All drawn.")
"""

FRAGMENTS = [
    *["![a](PIXEL)", "!", "[", "]", "(", ")", "PIXEL", "javascript:alert(1)", "`", "``", "```", "~~~", "$", "$$"],
    *["\\", "\\\\", "|", "| a | b |\n|---|---|\n", "\n", "\n\n", "    ", " ", "> ", "- ", "1. ", "[r]: ", "[r]"],
    *["<", ">", "<img src=PIXEL>", "https://x.example/", "www.x.example", "mermaid", "{", ":", "::", "red["],
    *['graph TD\n A@{ img: "PIXEL" }\n', "&#33;", "&lt;", "*", "_", "[^1]", "[^1]: ", "\t", "\r", "<!--", "-->"],
    *["<https://ok.example>", "<javascript:x>", "(https://ok.example)", "](", "]:", "![", "x", "$x<y$", "`a|b`"],
    *['<a title="`">', "<a`b@x.co>", ':x[a]{b="`"}', "$a$", "<div>\n", "\n```py\n", "mailto:a@b.co", "$`$"],
]


def fuzz(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(3, 25))) for _ in range(count)]


class _Recorder(BaseHTTPRequestHandler):
    fetched: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.fetched.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def pixel_server() -> Iterator[str]:
    """A loopback server that records every request: what the page fetched."""
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@contextmanager
def markdown_app(docs: list[str], tmp_path: Path) -> Iterator[str]:
    (tmp_path / "docs.json").write_text(json.dumps(docs))
    script = tmp_path / "render.py"
    script.write_text(APP.format(root=str(ROOT), docs=str(tmp_path / "docs.json")))
    with streamlit_app({}, tmp_path / "streamlit.log", script=str(script)) as url:
        yield url


LIVE = """(n) => {
  const found = [];
  for (const key of ["doc", "streamed"]) for (let i = 0; i < n; i++) {
    const box = document.querySelector(`.st-key-${key}${i}`);
    if (!box) { found.push(`${key}${i}: not drawn`); continue; }
    for (const e of box.querySelectorAll("img, video, audio, iframe, object, embed, svg image"))
      found.push(`${key}${i}: ${e.outerHTML.slice(0, 100)}`);
    for (const a of box.querySelectorAll("a"))
      if (!/^(https?:\\/\\/|mailto:|#.)/i.test(a.getAttribute("href") || "")) found.push(`${key}${i}: ${a.outerHTML}`);
    if (box.querySelector('svg[id^="mermaid"], [data-testid*="ermaid"]')) found.push(`${key}${i}: a diagram`);
  }
  return found;
}"""


def test_nothing_is_fetched_or_linked_in_the_real_renderer(page: Page, tmp_path: Path) -> None:
    with pixel_server() as pixel:
        docs = [
            doc.replace(PIXEL, pixel + "/p.png").replace("PIXEL", pixel + "/q.png") for doc in HOSTILE + fuzz(300, 7)
        ]
        docs.append("**bold** [docs](https://example.com/docs)\n\n| a |\n|---|\n| 1 |\n\n```py\nx = vec![1]\n```")
        with markdown_app(docs, tmp_path) as url:
            page.goto(url)
            page.get_by_text("All drawn.").wait_for(timeout=120_000)
            page.wait_for_timeout(2000)  # let lazy plugins (math, diagrams) and images load, if any
            assert page.evaluate(LIVE, len(docs)) == []
            assert _Recorder.fetched == []
            assert not page.dialogs  # type: ignore[attr-defined]
            assert "![a](" in page.locator(".st-key-doc0").inner_text()  # shown as the text it is
            ordinary = page.locator(f".st-key-doc{len(docs) - 1}")  # and markdown is still markdown
            assert ordinary.locator("strong").inner_text() == "bold"
            assert ordinary.locator("a").get_attribute("href") == "https://example.com/docs"
            assert ordinary.locator("pre").count() == 1 and ordinary.locator("table").count() == 1
