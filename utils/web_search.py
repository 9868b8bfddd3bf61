"""Web search: three providers behind one `search()`, and `fetch_pages()` for the readable text of results.

- SearXNG (self-hosted, no key): its JSON API at SEARXNG_URL, `/search?q=...&format=json`.
- Tavily (TAVILY_API_KEY): its HTTP API, called directly; the base URL is a setting.
- DuckDuckGo through the `ddgs` package (no key, but the internet).

Every failure is a `SearchError` whose message is one sentence for the user, with no key and no
password from a URL in it. Pages are fetched with a byte cap and a deadline each, only over
http(s), never from a private or loopback address unless asked, and reduced to text: HTML is
parsed, never rendered.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

PROVIDERS = ("searxng", "tavily", "duckduckgo")
TAVILY_DEFAULT_BASE = "https://api.tavily.com"
USER_AGENT = "Mozilla/5.0 (compatible; bnaGPT web search)"
PAGE_BYTES = 2 << 20  # read at most this much of one page
MAX_REDIRECTS = 5
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class SearchError(Exception):
    """A search failed; `str(error)` is one sentence for the user that says what to do."""


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    text: str


@dataclass(frozen=True)
class SearchConfig:
    provider: str = ""  # one of PROVIDERS; empty: SearXNG if its URL is set, else Tavily if its key is, else DuckDuckGo
    searxng_url: str = ""
    tavily_api_key: str = field(default="", repr=False)
    tavily_api_base: str = TAVILY_DEFAULT_BASE
    timeout: float = 15.0

    @classmethod
    def of(cls, settings: object) -> SearchConfig:
        """The search part of a Settings-like object (missing attributes take the defaults)."""
        if isinstance(settings, SearchConfig):
            return settings
        return cls(
            provider=str(getattr(settings, "search_provider", "") or "").strip().lower(),
            searxng_url=str(getattr(settings, "searxng_url", "") or "").strip().rstrip("/"),
            tavily_api_key=str(getattr(settings, "tavily_api_key", "") or "").strip(),
            tavily_api_base=str(getattr(settings, "tavily_api_base", "") or TAVILY_DEFAULT_BASE).strip().rstrip("/"),
            timeout=float(getattr(settings, "request_timeout", 15.0) or 15.0),
        )

    @property
    def chosen(self) -> str:
        if self.provider:
            return self.provider
        if self.searxng_url:
            return "searxng"
        return "tavily" if self.tavily_api_key else "duckduckgo"


def search(query: str, settings: object, max_results: int = 5) -> list[SearchResult]:
    """Up to `max_results` results for `query` from the configured provider; only http(s) links."""
    config = SearchConfig.of(settings)
    query = query.strip()
    if not query:
        return []
    provider = config.chosen
    if provider == "searxng":
        found = _searxng(query, config, max_results)
    elif provider == "tavily":
        found = _tavily(query, config, max_results)
    elif provider == "duckduckgo":
        found = _duckduckgo(query, config, max_results)
    else:
        raise SearchError(f"SEARCH_PROVIDER must be one of {', '.join(PROVIDERS)}, not {provider!r}.")
    return [r for r in found if _is_web_link(r.url)][:max_results]


def _clean(text: object) -> str:
    return " ".join(str(text or "").split())


def _is_web_link(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _where(url: str) -> str:
    """A URL's host and port for a message: never its user, password, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _http_error(error: Exception, name: str, fix: str) -> SearchError:
    if isinstance(error, httpx.TimeoutException):
        return SearchError(f"{name} did not answer in time. Try again in a moment.")
    return SearchError(f"Could not reach {name}. {fix}")


def _status_error(response: httpx.Response, name: str, key_hint: str = "") -> SearchError | None:
    code = response.status_code
    if code < 400:
        return None
    if code == 429:
        wait = response.headers.get("retry-after", "")
        when = f"in {wait} s" if wait.isdigit() else "in a moment"
        return SearchError(f"{name} is rate-limiting searches (429). Try again {when}.")
    if code in (401, 403) and key_hint:
        return SearchError(f"{name} refused the API key ({code}). Check {key_hint} in .env.")
    return SearchError(f"{name} failed with an error ({code}). Try again later.")


def _searxng(query: str, config: SearchConfig, max_results: int) -> list[SearchResult]:
    if not config.searxng_url:
        raise SearchError("Web search with SearXNG needs SEARXNG_URL in .env (for example http://localhost:8888).")
    name = f"SearXNG at {_where(config.searxng_url)}"
    # a user:password in SEARXNG_URL goes in an Authorization header, so no log line shows it
    parts = urlsplit(config.searxng_url)
    auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or "")) if parts.username else None
    base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    try:
        response = httpx.get(
            f"{base}/search",
            auth=auth,
            params={"q": query, "format": "json"},
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=config.timeout,
        )
    except httpx.HTTPError as error:
        raise _http_error(error, name, "Check that it is running and SEARXNG_URL in .env.") from None
    if response.status_code == 403:
        raise SearchError(f"{name} refused JSON (403). Add json under search: formats: in its settings.yml.")
    problem = _status_error(response, name)
    if problem:
        raise problem
    rows = _json_results(response, name)
    return [SearchResult(_clean(r.get("title")), str(r.get("url", "")), _clean(r.get("content"))) for r in rows][
        : max_results * 2
    ]


def _tavily(query: str, config: SearchConfig, max_results: int) -> list[SearchResult]:
    if not config.tavily_api_key:
        raise SearchError("Web search with Tavily needs TAVILY_API_KEY in .env.")
    try:
        response = httpx.post(
            f"{config.tavily_api_base}/search",
            json={"query": query, "max_results": max_results, "search_depth": "basic", "topic": "general"},
            headers={"Authorization": f"Bearer {config.tavily_api_key}", "User-Agent": USER_AGENT},
            timeout=config.timeout,
        )
    except httpx.HTTPError as error:
        raise _http_error(error, "Tavily", "Check your connection (and TAVILY_API_BASE).") from None
    if response.status_code in (432, 433):
        raise SearchError("Tavily says this key's plan limit is reached. Check your Tavily account.")
    problem = _status_error(response, "Tavily", "TAVILY_API_KEY")
    if problem:
        raise problem
    rows = _json_results(response, "Tavily")
    return [SearchResult(_clean(r.get("title")), str(r.get("url", "")), _clean(r.get("content"))) for r in rows]


def _json_results(response: httpx.Response, name: str) -> list[dict[str, object]]:
    try:
        rows = response.json().get("results")
    except (ValueError, AttributeError):
        rows = None
    if not isinstance(rows, list):
        raise SearchError(f"{name} answered with something other than search results. Check its address.")
    return [r for r in rows if isinstance(r, dict)]


def _duckduckgo(query: str, config: SearchConfig, max_results: int) -> list[SearchResult]:
    import ddgs  # imported on the first DuckDuckGo search, not when a page starts
    from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

    try:
        rows = ddgs.DDGS(timeout=max(1, round(config.timeout))).text(query, max_results=max_results)
    except RatelimitException:
        raise SearchError("DuckDuckGo is rate-limiting searches. Try again in a minute.") from None
    except TimeoutException:
        raise SearchError("DuckDuckGo did not answer in time. Try again in a moment.") from None
    except DDGSException as error:
        if "no results" in str(error).lower():
            return []
        raise SearchError("DuckDuckGo search failed. Check your connection and try again.") from None
    return [SearchResult(_clean(r.get("title")), str(r.get("href", "")), _clean(r.get("body"))) for r in rows or []]


# --- pages -----------------------------------------------------------------------------------


def _public(host: str) -> bool:
    """True if every address the host resolves to is a public one (no loopback, LAN or link-local)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return bool(addresses) and all(a.is_global and not a.is_multicast for a in addresses)


def _decode(body: bytes, content_type: str) -> str:
    """Text from the header's charset, else the page's <meta charset>, else UTF-8, else a best guess."""
    declared = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.IGNORECASE)
    meta = META_CHARSET.search(body[:4096])
    for charset in (declared.group(1) if declared else None, meta.group(1).decode() if meta else None):
        if charset:
            try:
                return body.decode(charset)
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("cp1252", "replace")


def _readable(html: str) -> tuple[str, str]:
    """(title, main text) of a page: trafilatura, or beautifulsoup4's text, either without scripts and styles."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = _clean(soup.title.get_text()) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "iframe", "svg", "object", "embed"]):
        tag.decompose()
    try:
        import trafilatura

        text = trafilatura.extract(str(soup), include_comments=False, include_tables=True) or ""
    except ImportError:
        text = ""
    if not text.strip():
        if soup.head:
            soup.head.decompose()
        text = soup.get_text("\n")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return title, "\n".join(line for line in lines if line)


def _fetch(url: str, timeout: float, allow_private: bool) -> tuple[str, str, str] | None:
    """(final URL, content type, decoded text) of one page, or None if it cannot be had in time."""
    deadline = time.monotonic() + timeout
    with httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if not _is_web_link(url) or not (allow_private or _public(parts.hostname or "")):
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with client.stream("GET", url, timeout=httpx.Timeout(left)) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                content_type = response.headers.get("content-type", "text/html").lower()
                if response.status_code >= 400 or not content_type.startswith(TEXT_TYPES):
                    return None
                body = bytearray()
                for chunk in response.iter_bytes():  # a 50 MB page or one that never ends stops here
                    body += chunk
                    if len(body) >= PAGE_BYTES or time.monotonic() > deadline:
                        break
                return str(response.url), content_type, _decode(bytes(body[:PAGE_BYTES]), content_type)
    return None


def _page(result: SearchResult, timeout: float, allow_private: bool) -> Page | None:
    try:
        fetched = _fetch(result.url, timeout, allow_private)
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):  # InvalidURL: a redirect to javascript:
        return None
    if fetched is None:
        return None
    url, content_type, text = fetched
    if content_type.startswith("text/plain"):
        return Page(url, result.title, "\n".join(line.strip() for line in text.splitlines() if line.strip()))
    title, body = _readable(text)
    return Page(url, result.title or title, body) if body else None


def fetch_pages(
    results: Iterable[SearchResult], budget_chars: int, timeout: float, *, allow_private: bool = False
) -> list[Page]:
    """The readable text of each result's page, in order, sharing `budget_chars` fairly between them.

    Pages that fail, time out, are not text, or are not http(s) are left out. `timeout` is per page.
    `allow_private` lets pages on loopback or the LAN be fetched (tests, an intranet search).
    """
    wanted = [r for r in results if _is_web_link(r.url)]
    if not wanted or budget_chars <= 0:
        return []
    with ThreadPoolExecutor(max_workers=min(4, len(wanted)), thread_name_prefix="fetch-page") as pool:
        pages = [p for p in pool.map(lambda r: _page(r, timeout, allow_private), wanted) if p is not None]
    shared: list[Page] = []
    left = budget_chars
    for i, page in enumerate(pages):
        share = left // (len(pages) - i)  # a short page leaves its unused share to the ones after it
        text = page.text[:share]
        left -= len(text)
        shared.append(Page(page.url, page.title, text))
    return [p for p in shared if p.text]
