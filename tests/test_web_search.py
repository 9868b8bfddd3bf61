"""Web search against real HTTP servers on loopback: a fake SearXNG, a fake Tavily and fake web pages
that behave (an article, a latin-1 page) and misbehave (50 MB, never ending, scripts, javascript:
links). DuckDuckGo's transport cannot be pointed at loopback, so its `ddgs.DDGS` class is stood in for."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import ddgs
import pytest
from ddgs.exceptions import DDGSException, RatelimitException

import settings
from utils.web_search import Page, SearchConfig, SearchError, SearchResult, fetch_pages, search

KEY = "tvly-test-5f4dcc3b5aa765d61d8327deb882cf99"
ARTICLE = (
    "<html><head><title>Tide tables</title><style>p {{ color: red }}</style></head><body>"
    "<nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav><article><h1>How tides work</h1>"
    + "".join(
        f"<p>Paragraph {i}: the moon pulls the oceans, and twice a day the water rises along the coast.</p>"
        for i in range(12)
    )
    + "</article><footer>Copyright footer text</footer></body></html>"
)
SCRIPTED = (
    "<html><head><title>Scripts</title><script>var leaked = 'SCRIPT-BODY';</script>"
    "<style>.x { content: 'STYLE-BODY' }</style></head><body onload=\"alert('ONLOAD')\">"
    "<p>Visible words only.</p><noscript>NOSCRIPT-BODY</noscript>"
    "<script type='text/template'>TEMPLATE-BODY</script></body></html>"
)
LATIN1 = "<html><body><p>Un café à Besançon, déjà très connu pour ses crêpes.</p></body></html>"


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients stop reading on purpose
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class Web:
    """One loopback server playing SearXNG, Tavily and the web pages its results link to."""

    def __init__(self) -> None:
        self.searxng_status = 200
        self.tavily_status = 200
        self.delay = 0.0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.stop = threading.Event()
        web = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                web.requests.append(("GET", self.path, dict(self.headers), b""))
                web.get(self)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                web.requests.append(("POST", self.path, dict(self.headers), body))
                web.post(self, body)

        self.server = _Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Web:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def results(self) -> list[dict[str, str]]:
        pages = ["article", "latin1", "meta-charset", "scripts", "big", "endless", "redirect"]
        rows = [{"title": f"{p} title", "url": f"{self.base}/page/{p}", "content": f"{p}  snippet\n"} for p in pages]
        rows.append({"title": "evil", "url": "javascript:alert(document.cookie)", "content": "x"})
        rows.append({"title": "data", "url": "data:text/html,<script>alert(1)</script>", "content": "x"})
        return rows

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if self.delay:
            time.sleep(self.delay)
        if path == "/search":
            if self.searxng_status != 200:
                return self.send(handler, self.searxng_status, b"no", "text/plain", {"Retry-After": "30"})
            return self.send(handler, 200, json.dumps({"results": self.results()}).encode(), "application/json")
        pages: dict[str, Callable[[], None]] = {
            "/page/article": lambda: self.send(handler, 200, ARTICLE.encode(), "text/html; charset=utf-8"),
            "/page/latin1": lambda: self.send(handler, 200, LATIN1.encode("latin-1"), "text/html; charset=ISO-8859-1"),
            "/page/meta-charset": lambda: self.send(
                handler, 200, b'<meta charset="windows-1252">' + LATIN1.encode("cp1252"), "text/html"
            ),
            "/page/scripts": lambda: self.send(handler, 200, SCRIPTED.encode(), "text/html"),
            "/page/big": lambda: self.big(handler),
            "/page/endless": lambda: self.endless(handler),
            "/page/redirect": lambda: self.send(handler, 302, b"", "text/plain", {"Location": "/page/article"}),
            "/page/to-js": lambda: self.send(handler, 302, b"", "text/plain", {"Location": "javascript:alert(1)"}),
            "/page/image": lambda: self.send(handler, 200, b"\x89PNG\r\n\x1a\n", "image/png"),
        }
        pages.get(path, lambda: self.send(handler, 404, b"missing", "text/plain"))()

    def post(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if handler.headers.get("authorization") != f"Bearer {KEY}":
            return self.send(handler, 401, b'{"detail": {"error": "Unauthorized"}}', "application/json")
        if self.tavily_status != 200:
            return self.send(handler, self.tavily_status, b'{"detail": {"error": "limit"}}', "application/json")
        rows = [{"title": "Tavily hit", "url": f"{self.base}/page/article", "content": "from tavily", "score": 0.9}]
        self.send(
            handler, 200, json.dumps({"query": json.loads(body)["query"], "results": rows}).encode(), "application/json"
        )

    def send(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def big(self, handler: BaseHTTPRequestHandler) -> None:
        size = 50 * 1024 * 1024
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"<p>" + b"big page words " * 4369 + b"</p>\n"
        sent = 0
        while sent < size and not self.stop.is_set():
            handler.wfile.write(chunk[: size - sent])
            sent += len(chunk)

    def endless(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()  # no length: the page goes on until the client leaves (or the test ends)
        handler.wfile.write(b"<html><body>")
        ends = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < ends:
            handler.wfile.write(b"<p>still going</p>\n")
            handler.wfile.flush()
            time.sleep(0.05)


@pytest.fixture
def web() -> Iterator[Web]:
    with Web() as server:
        yield server


def searxng(web: Web, timeout: float = 5.0) -> SearchConfig:
    return SearchConfig(provider="searxng", searxng_url=web.base, timeout=timeout)


def test_searxng_results_keep_only_web_links(web: Web) -> None:
    results = search("tides", searxng(web), max_results=10)

    assert [r.title for r in results][:2] == ["article title", "latin1 title"]
    assert results[0] == SearchResult("article title", f"{web.base}/page/article", "article snippet")
    assert all(r.url.startswith("http://") for r in results) and len(results) == 7
    method, path, _, _ = web.requests[0]
    assert method == "GET" and parse_qs(urlsplit(path).query) == {"q": ["tides"], "format": ["json"]}
    assert len(search("tides", searxng(web), max_results=3)) == 3


def test_pages_are_fetched_as_text_within_caps_and_time(web: Web) -> None:
    results = search("tides", searxng(web), max_results=10)
    results.append(SearchResult("evil", "javascript:alert(1)", ""))
    started = time.monotonic()

    pages = fetch_pages(results, budget_chars=40_000, timeout=3.0, allow_private=True)

    elapsed = time.monotonic() - started
    by_url = {p.title.split()[0]: p for p in pages}  # "article title" → article
    assert elapsed < 10, elapsed  # the 50 MB and the endless page stop at their cap / deadline
    assert "the moon pulls the oceans" in by_url["article"].text
    assert "Copyright footer text" not in by_url["article"].text  # trafilatura keeps the article, not the chrome
    assert "Un café à Besançon, déjà très connu pour ses crêpes." in by_url["latin1"].text
    assert "Un café à Besançon" in by_url["meta-charset"].text
    scripted = by_url["scripts"].text
    assert "Visible words only." in scripted
    for hidden in ("SCRIPT-BODY", "STYLE-BODY", "ONLOAD", "NOSCRIPT-BODY", "TEMPLATE-BODY", "<p>"):
        assert hidden not in scripted
    assert "big page words" in by_url["big"].text and "still going" in by_url["endless"].text
    assert by_url["redirect"].url == f"{web.base}/page/article" and set(by_url) == {
        "article",
        "latin1",
        "meta-charset",
        "scripts",
        "big",
        "endless",
        "redirect",
    }
    assert sum(len(p.text) for p in pages) <= 40_000
    assert all(p.url.startswith("http") for p in pages)


def test_a_redirect_is_followed_but_not_to_another_scheme_and_non_text_is_skipped(web: Web) -> None:
    results = [
        SearchResult("moved", f"{web.base}/page/redirect", ""),
        SearchResult("to js", f"{web.base}/page/to-js", ""),
        SearchResult("image", f"{web.base}/page/image", ""),
        SearchResult("missing", f"{web.base}/page/none", ""),
        SearchResult("file", "file:///etc/passwd", ""),
    ]

    pages = fetch_pages(results, budget_chars=10_000, timeout=3.0, allow_private=True)

    assert [p.url for p in pages] == [f"{web.base}/page/article"]


def test_the_budget_is_shared_and_loopback_pages_are_refused_by_default(web: Web) -> None:
    results = [SearchResult("a", f"{web.base}/page/article", ""), SearchResult("b", f"{web.base}/page/big", "")]

    pages = fetch_pages(results, budget_chars=1000, timeout=3.0, allow_private=True)

    assert [len(p.text) for p in pages] == [500, 500]
    assert fetch_pages(results, budget_chars=1000, timeout=3.0) == []  # no reaching into the host or the LAN


def test_searxng_429_403_down_and_slow_are_one_sentence_each(web: Web) -> None:
    web.searxng_status = 429
    with pytest.raises(
        SearchError, match=r"^SearXNG at 127\.0\.0\.1:\d+ is rate-limiting searches \(429\)\. Try again in 30 s\.$"
    ):
        search("q", searxng(web))
    web.searxng_status = 403
    with pytest.raises(SearchError, match="refused JSON"):
        search("q", searxng(web))
    web.searxng_status = 200
    web.delay = 2.0
    with pytest.raises(SearchError, match="did not answer in time"):
        search("q", searxng(web, timeout=0.5))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(SearchError) as down:
        search("q", SearchConfig(provider="searxng", searxng_url=f"http://admin:hunter2@127.0.0.1:{port}"))
    assert (
        str(down.value)
        == f"Could not reach SearXNG at 127.0.0.1:{port}. Check that it is running and SEARXNG_URL in .env."
    )
    with pytest.raises(SearchError, match="needs SEARXNG_URL"):
        search("q", SearchConfig(provider="searxng"))


def test_tavily_is_called_with_the_key_in_a_header_and_its_errors_never_show_it(web: Web) -> None:
    config = SearchConfig(tavily_api_key=KEY, tavily_api_base=web.base)

    results = search("tides", config, max_results=4)

    assert results == [SearchResult("Tavily hit", f"{web.base}/page/article", "from tavily")]
    method, path, headers, body = web.requests[-1]
    assert (method, path) == ("POST", "/search") and KEY not in path
    assert json.loads(body) == {"query": "tides", "max_results": 4, "search_depth": "basic", "topic": "general"}
    messages = []
    for status in (429, 432, 500):
        web.tavily_status = status
        with pytest.raises(SearchError) as error:
            search("tides", config)
        messages.append(str(error.value))
    with pytest.raises(SearchError) as refused:
        search("tides", SearchConfig(tavily_api_key="tvly-wrong", tavily_api_base=web.base))
    messages.append(str(refused.value))
    assert messages == [
        "Tavily is rate-limiting searches (429). Try again in a moment.",
        "Tavily says this key's plan limit is reached. Check your Tavily account.",
        "Tavily failed with an error (500). Try again later.",
        "Tavily refused the API key (401). Check TAVILY_API_KEY in .env.",
    ]
    assert not any(KEY in m or "tvly-wrong" in m for m in messages)
    assert KEY not in repr(config)


def test_without_trafilatura_beautifulsoup_gives_the_text_without_scripts(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # `import trafilatura` now raises ImportError
    results = [SearchResult("s", f"{web.base}/page/scripts", ""), SearchResult("a", f"{web.base}/page/article", "")]

    scripts, article = fetch_pages(results, budget_chars=10_000, timeout=3.0, allow_private=True)

    assert scripts.text == "Visible words only."
    assert "Paragraph 11: the moon pulls the oceans" in article.text and "Tide tables" not in article.text


def test_searxng_credentials_in_its_url_become_basic_auth(web: Web) -> None:
    search("q", SearchConfig(provider="searxng", searxng_url=f"http://me:p%40ss@{web.base[7:]}"))

    _, path, headers, _ = web.requests[-1]
    assert headers["Authorization"] == "Basic bWU6cEBzcw=="  # me:p@ss
    assert "p%40ss" not in path


class FakeDDGS:
    """Stands in for `ddgs.DDGS`, whose transport cannot be pointed at loopback."""

    calls: list[tuple[str, int, int | None]] = []
    raises: Exception | None = None

    def __init__(self, proxy: str | None = None, timeout: int | None = 5) -> None:
        self.timeout = timeout

    def text(self, query: str, max_results: int = 10) -> list[dict[str, str]]:
        FakeDDGS.calls.append((query, max_results, self.timeout))
        if FakeDDGS.raises:
            raise FakeDDGS.raises
        return [
            {"title": "Tides - Wikipedia", "href": "https://en.wikipedia.org/wiki/Tide", "body": "Tides are the rise"},
            {"title": "bad", "href": "javascript:void(0)", "body": ""},
        ]


@pytest.fixture
def fake_ddgs(monkeypatch: pytest.MonkeyPatch) -> type[FakeDDGS]:
    monkeypatch.setattr(ddgs, "DDGS", FakeDDGS)
    FakeDDGS.calls, FakeDDGS.raises = [], None
    return FakeDDGS


def test_duckduckgo_is_the_default_without_settings_and_its_errors_are_sentences(fake_ddgs: type[FakeDDGS]) -> None:
    results = search("tides", settings.get_settings(), max_results=3)  # today's Settings has no search fields

    assert results == [SearchResult("Tides - Wikipedia", "https://en.wikipedia.org/wiki/Tide", "Tides are the rise")]
    assert fake_ddgs.calls == [("tides", 3, 60)]
    fake_ddgs.raises = RatelimitException("202 Ratelimit")
    with pytest.raises(SearchError, match=r"^DuckDuckGo is rate-limiting searches\. Try again in a minute\.$"):
        search("tides", SearchConfig())
    fake_ddgs.raises = DDGSException("No results found.")
    assert search("tides", SearchConfig()) == []
    fake_ddgs.raises = DDGSException("https://html.duckduckgo.com/html 403 Forbidden")
    with pytest.raises(SearchError, match=r"^DuckDuckGo search failed\. Check your connection and try again\.$"):
        search("tides", SearchConfig())


def test_the_provider_follows_the_settings_it_is_given() -> None:
    class Configured:
        search_provider = ""
        searxng_url = "http://127.0.0.1:8888/"
        tavily_api_key = KEY
        request_timeout = 7.0

    assert SearchConfig.of(Configured()).chosen == "searxng"
    assert SearchConfig.of(Configured()).searxng_url == "http://127.0.0.1:8888"
    assert SearchConfig(tavily_api_key=KEY).chosen == "tavily"
    assert SearchConfig().chosen == "duckduckgo"
    with pytest.raises(SearchError, match="SEARCH_PROVIDER must be one of searxng, tavily, duckduckgo"):
        search("q", SearchConfig(provider="bing"))
    assert search("   ", SearchConfig()) == []
    assert Page("u", "t", "x").text == "x"
