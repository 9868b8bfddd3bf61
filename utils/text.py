"""Untrusted text on the page: markdown that shows, but never fetches or runs anything.

Model answers, user messages and imported names are untrusted. Streamlit (1.67) renders markdown
with micromark (CommonMark, GFM, :directives:, and $math$ when a heuristic finds some), draws
`![alt](url)` as an <img> the browser fetches, keeps link URLs other than `javascript:` (so
`data:` links work), and draws ```mermaid fences as diagrams, which can load pictures.
Raw HTML is shown as text. Two functions make untrusted text safe to show:

- `inert_markdown(text)` for message bodies (`inert_stream` for the same, delta by delta): the
  markdown a reader expects stays (emphasis, lists, tables, headings, code, math, http(s) links
  and bare URLs); whatever could fetch or run is escaped, so it shows as the text it is;
- `as_text(text)` for short labels (names on buttons, in toasts and errors): every markdown
  character escaped, on one line.

How `inert_markdown` reads, line by line; every rule holds however many backslashes come first:
- a line opening a ``` or ~~~ fence, however indented, moves to column 0 after a blank line, so
  nothing around it can make the renderer read the block as anything but code; the block stays
  verbatim and keeps its language only if that is a plain word other than `mermaid`. A $$ block
  moves the same way, but its lines are escaped like text: Streamlit may not read it as math;
- elsewhere `[` after `!` is escaped (no image, in any of its forms), `](` is kept only before a
  plain http(s) URL, `]:` (link definitions) and `::` (directive blocks) are escaped, `<` is
  escaped where it could open HTML or an autolink (other than <http(s)://…>), and so are `:`
  before a letter, `{` after a directive and ~~~ runs;
- `code` stays verbatim where both of its ends are on the line; $math$ too, if its content would
  read the same as text. Every other backtick or dollar run is escaped, so the renderer opens
  no span this function did not see, and none can hide markup from it;
- a bare URL is read as the renderer reads one (it swallows backslashes up to a space or `<`),
  so nothing in it relies on a backslash: `<` there becomes `&lt;`, and backticks, dollars
  and brackets in it are escaped as if it were text, in case the renderer reads no URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from string import punctuation

_WORD_JOINER = "\u2060"  # breaks Streamlit's `:streamlit:` logo without showing anything
_STREAMLIT = "streamlit:"

_TEXT_SPECIAL = re.compile(r"(?i)[\\`$\[\](:<{~|]|https?://|www\.")
_URL_SPECIAL = re.compile(r"[ \t<\\`$\[\](:{]")
_URL_START = re.compile(r"(?i)https?://|www\.")
_URL_PREFIXES = ("http://", "https://", "www.")
_URL_CHAR = r"[^\s<>()`$\\|]"
_LONGEST_KEPT = 2048  # a longer link or autolink shows as text
_KEPT_LINK = re.compile(rf"\((?i:https?://)(?:{_URL_CHAR}|\({_URL_CHAR}*\))*\)")
_KEPT_AUTOLINK = re.compile(r"<(?i:https?://)[^\s<>`$\\|]*>")
_LINK_SO_FAR = re.compile(rf"\((?i:https?://)(?:{_URL_CHAR}|\({_URL_CHAR}*\))*(?:\({_URL_CHAR}*)?")
_AUTOLINK_SO_FAR = re.compile(r"<(?i:https?://)[^\s<>`$\\|]*")
# `<` opening an HTML tag, comment or block, an autolink, or an e-mail autolink
_ANGLE_MARKUP = re.compile(
    r"<(?:[A-Za-z][A-Za-z0-9-]*(?:[\s/>]|$)|/[A-Za-z]|[!?]|[A-Za-z][A-Za-z0-9+.-]{1,31}:|[^\s<>@]*@)"
)
_DIRECTIVE_BEFORE = re.compile(r":[A-Za-z][\w-]*$")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]+")
_DELIMITER_ROW_CHARS = frozenset(" \t|:->+*0123456789.)")


@lru_cache(maxsize=2048)
def inert_markdown(text: str) -> str:
    """`text` as markdown that keeps its formatting but shows no image and runs no link."""
    guard = _Guard()
    return guard.feed(text) + guard.finish()


def inert_stream(deltas: Iterable[str]) -> Iterator[str]:
    """`inert_markdown` over a stream: what it yields adds up to `inert_markdown` of the whole,
    and every prefix of that is just as inert (whatever may still change meaning is held back)."""
    guard = _Guard()
    for delta in deltas:
        text = guard.feed(delta)
        if text:
            yield text
    text = guard.finish()
    if text:
        yield text


def as_text(text: str) -> str:
    """`text` on one line with every markdown character escaped, for labels (names, not markup)."""
    one_line = re.sub(r":(?=streamlit:)", ":" + _WORD_JOINER, " ".join(text.split()))
    return "".join("\\" + ch if ch in punctuation else ch for ch in one_line)


class _Guard:
    """The incremental reader behind `inert_markdown`: `feed` returns the output decided so far."""

    def __init__(self, math: bool = False) -> None:
        self.math = math  # reading the inside of a $span$: leave `:` before letters alone
        self.buf = ""  # input from the start of the line being read
        self.after_cr = False
        self.block: tuple[str, int, int] | None = None  # open fence: character, length, indent
        self.prev_blank = True  # the last line written was blank (or there was none)
        self.after_delimiter = False  # a table's delimiter row was seen, no blank line since
        self._start_line()

    def _start_line(self) -> None:
        self.kind: str | None = None  # "text", "opener", "code", "math" (a $$ block's line), "closer"
        self.line = ""
        self.i = 0  # input characters of the line already decided
        self.out: list[str] = []
        self.emitted = 0  # pieces of `out` already returned
        self.parity = 0  # backslashes right before position i
        self.depth = 0  # link labels open on this line
        self.in_url = False
        self.escape_at: set[int] = set()  # runs closing a span that was refused: escape them too
        self.searched: dict[int, int] = {}  # span openers held back: how far their closing was sought
        self.dedent = self.block[2] if self.block else 0
        self.body_start = -1  # where a block line starts once its indent is dropped
        self.next_is_delimiter: bool | None = None

    def feed(self, text: str) -> str:
        if not text:
            return ""
        if self.after_cr and text.startswith("\n"):
            text = text[1:]
        self.after_cr = text.endswith("\r")
        self.buf += text.replace("\r\n", "\n").replace("\r", "\n")
        return self._drain(final=False)

    def finish(self) -> str:
        return self._drain(final=True)

    # lines --------------------------------------------------------------------------------
    def _drain(self, final: bool) -> str:
        pieces: list[str] = []
        while True:
            end = self.buf.find("\n")
            complete = end >= 0 or final
            if end >= 0:
                self.next_is_delimiter = _next_is_delimiter(self.buf[end + 1 :], final)
            else:
                self.next_is_delimiter = False if final else None  # the line itself may go on
            self._advance(self.buf if end < 0 else self.buf[:end], complete)
            done = complete and self.i >= len(self.line)
            if done and end >= 0:
                self.out.append("\n")
            pieces.extend(self.out[self.emitted :])
            self.emitted = len(self.out)
            if not done or end < 0:
                return "".join(pieces)
            self._end_line()
            self.buf = self.buf[end + 1 :]
            self._start_line()

    def _advance(self, line: str, complete: bool) -> None:
        self.line = line
        if self.kind is None:
            self._decide(complete)
        if self.kind in ("code", "math"):
            self._block_line(complete)
        if self.kind == "text":
            self._scan_text(complete)

    def _decide(self, complete: bool) -> None:
        """Text, a line of an open block, or the opening of a block? Undecided until it shows."""
        line = self.line
        if self.block is not None:
            self.kind = "math" if self.block[0] == "$" else "code"
            return
        start = len(line) - len(line.lstrip(" \t"))
        if start == len(line) or line[start] not in "`~$":
            if start < len(line) or complete:
                self.kind = "text"
            return
        char = line[start]
        end = start
        while end < len(line) and line[end] == char:
            end += 1
        if end == len(line) and not complete:
            return
        info = line[end:]
        if end - start < (2 if char == "$" else 3) or (char != "~" and char in info):
            self.kind = "text"
        elif complete:
            if not self.prev_blank:
                self.out.append("\n")  # a blank line first: no paragraph, list or table goes on
            self.out.append(char * (end - start) + ("" if char == "$" else _language(info)))
            self.block = (char, end - start, start)
            self.kind, self.i = "opener", len(line)

    def _block_line(self, complete: bool) -> None:
        """A line inside a fence: code is kept as it is, a $$ block's lines are read as text."""
        line, i = self.line, self.i
        while i < len(line) and self.dedent and line[i] in " \t":
            i, self.dedent = i + 1, self.dedent - 1
        if i == len(line) and self.dedent and not complete:
            self.i = i
            return
        if self.dedent or self.body_start < 0:
            self.dedent, self.body_start = 0, i
        assert self.block is not None
        char, size, _ = self.block
        body = line[self.body_start :]
        closer = re.fullmatch(rf" {{0,3}}{re.escape(char)}{{{size},}}[ \t]*", body)
        if self.kind == "code" or closer and complete:
            self.kind = "closer" if closer and complete else self.kind
            self.out.append(line[i:])
            self.i = len(line)
        elif not complete and re.fullmatch(r" {0,3}\$*[ \t]*", body):
            self.i = i  # may still be the closing line
        else:
            self.kind, self.i = "text", i

    def _end_line(self) -> None:
        if self.kind == "opener":
            self.prev_blank = self.after_delimiter = False
            return
        if self.kind == "code" or self.kind == "closer":
            if self.kind == "closer":
                self.block = None
            self.prev_blank = self.after_delimiter = False
            return
        line = self.line
        blank = line.strip(" \t") == ""
        if blank:
            self.after_delimiter = False
        elif _is_delimiter_row(line) and not self.prev_blank:
            self.after_delimiter = True
        self.prev_blank = blank

    # text ---------------------------------------------------------------------------------
    def _scan_text(self, complete: bool) -> None:
        line, i = self.line, self.i
        while i < len(line):
            found = (_URL_SPECIAL if self.in_url else _TEXT_SPECIAL).search(line, i)
            stop = found.start() if found else len(line)
            if not complete and not self.in_url and _url_prefix_at_end(line, i) < stop:
                stop, found = _url_prefix_at_end(line, i), None  # a URL may be starting: wait
            if stop > i:
                self.out.append(line[i:stop])
                self.parity, i = 0, stop
            if found is None or i < found.start():
                break
            step = self._url_char(i, complete) if self.in_url else self._text_char(i, complete)
            if step is None:
                break
            i = step
        self.i = i

    def _text_char(self, i: int, complete: bool) -> int | None:
        """Decide the special character at `i` outside a URL; None to wait for more input."""
        line, out = self.line, self.out
        char, prev = line[i], line[i - 1] if i else ""
        if char == "\\":
            self.parity += 1
            out.append(char)
            return i + 1
        if char in "`$":
            return self._span(i, complete)
        if char == ":":
            return self._colon(i, complete)
        if char == "<":
            return self._angle(i, complete)
        if char == "~":
            end = i
            while end < len(line) and line[end] == "~":
                end += 1
            if end == len(line) and not complete:
                return None
            out.append("\\" + line[i:end] if end - i >= 3 and not self.parity % 2 else line[i:end])
            self.parity = 0
            return end
        even, self.parity = not self.parity % 2, 0
        if char == "[":
            if prev == "!":
                out.append("\\[")  # not an image, whatever follows
                return i + 1
            self.depth += even
        elif char == "]":
            self.depth = max(0, self.depth - even)
        elif char == "|":
            self.depth = 0  # a table cell may end here
        elif char == "(" and prev == "]":
            return self._kept(i, complete, _KEPT_LINK)
        elif char == "{" and even and (prev == "]" or _DIRECTIVE_BEFORE.search(line, 0, i)):
            out.append("\\{")  # no directive attributes, which could swallow what follows
            return i + 1
        elif char in "hHwW":
            found = _URL_START.match(line, i)
            assert found is not None
            self.in_url = self.depth == 0  # inside a link label the renderer makes no URL
            out.append(found.group())
            return found.end()
        out.append(char)
        return i + 1

    def _url_char(self, i: int, complete: bool) -> int | None:
        """Decide the special character at `i` inside a bare URL, which may swallow backslashes."""
        line, out = self.line, self.out
        char, prev = line[i], line[i - 1] if i else ""
        if char == "\\":
            self.parity += 1
            out.append(char)
            return i + 1
        if char == ":":
            return self._colon(i, complete)
        even, self.parity = not self.parity % 2, 0
        if char in " \t":
            self.in_url = False
            out.append(char)
        elif char == "<":
            out.append("&lt;")  # ends the URL here, but not the renderer's if it reads one on
        elif char in "`${":
            out.append("\\" + char if even else char)
        elif char == "[" and prev == "!" or char == "(" and prev == "]":
            out.append("\\" + char)
        else:
            out.append(char)
        return i + 1

    def _colon(self, i: int, complete: bool) -> int | None:
        line = self.line
        after = line[i + 1 : i + 1 + len(_STREAMLIT)]
        if not complete and len(after) < len(_STREAMLIT) and _STREAMLIT.startswith(after):
            return None
        even, self.parity = not self.parity % 2, 0
        prev, following = line[i - 1] if i else "", after[:1]
        escape = prev == "]" or (  # a link definition, a directive
            not self.in_url and (following == ":" or not self.math and following.isascii() and following.isalpha())
        )
        self.out.append(("\\:" if escape and even else ":") + (_WORD_JOINER if after == _STREAMLIT else ""))
        return i + 1

    def _angle(self, i: int, complete: bool) -> int | None:
        line = self.line
        if self.parity % 2:
            self.parity = 0
            self.out.append("<")
            return i + 1
        kept = self._kept(i, complete, _KEPT_AUTOLINK, escape=False)
        if kept != i:
            return kept
        markup = _ANGLE_MARKUP.match(line, i)
        if not complete and (
            markup and markup.end() == len(line) or not markup and re.fullmatch(r"<[^\s<>@]*", line[i:])
        ):
            return None
        self.out.append("\\<" if markup else "<")
        self.parity = 0
        return i + 1

    def _kept(self, i: int, complete: bool, kept: re.Pattern[str], escape: bool = True) -> int | None:
        """Keep a plain http(s) link or <autolink> at `i` as it is; else escape its first
        character (or, with `escape` False, return `i` undecided)."""
        found = kept.match(self.line, i, i + _LONGEST_KEPT)
        if found:
            self.out.append(found.group())
            self.in_url = True  # if the renderer reads no link here, it reads a bare URL that goes on
            return found.end()
        if not complete and _may_become(self.line[i : i + _LONGEST_KEPT + 1]):
            return None
        if not escape:
            return i
        self.out.append("\\" + self.line[i])
        return i + 1

    def _span(self, i: int, complete: bool) -> int | None:
        """A run of backticks or dollars at `i`: verbatim code or math if its closing run is on
        this line and nothing can read them apart, else escaped so the renderer opens nothing."""
        line, out = self.line, self.out
        char = line[i]
        end = i
        while end < len(line) and line[end] == char:
            end += 1
        if end == len(line) and not complete:
            return None
        if self.parity % 2:
            self.parity = 0
            out.append(char)  # escaped by the backslash before it; the rest of the run goes on
            return i + 1
        closing = None
        if i not in self.escape_at:
            closing = _closing_run(char, end - i).search(line, max(end, self.searched.get(i, end)))
        if not complete and (closing is None and i not in self.escape_at or closing and closing.end() == len(line)):
            trailing = len(line)
            while trailing > end and line[trailing - 1] == char:
                trailing -= 1
            self.searched[i] = trailing  # where the next look for the closing run starts
            return None
        if closing is not None:
            content = line[end : closing.start()]
            table = self._in_table() if "|" in content else False
            if table is None:
                return None
            refused = table or ("]:" in content and _may_define(line[: end + content.index("]:")]))
            if char == "$":
                refused = refused or not _reads_as_text(content)
            if not refused:
                out.append(line[i : closing.end()])
                return closing.end()
            self.escape_at.add(closing.start())
        out.append(("\\" + char) * (end - i))
        return end

    def _in_table(self) -> bool | None:
        """Could this line be a table row (whose cells would split a span at `|`)? None: not known yet."""
        if self.after_delimiter or self.next_is_delimiter:
            return True
        return None if self.next_is_delimiter is None else False


def _reads_as_text(content: str) -> bool:
    """Would the inside of a $span$ show the same as text? Then it is safe however Streamlit
    reads it: as math, or (when its heuristic finds no math) as text."""
    if "`" in content or _URL_START.search(content):
        return False
    guard = _Guard(math=True)
    guard.kind, guard.line, guard.next_is_delimiter = "text", content, False
    guard._scan_text(complete=True)
    return "".join(guard.out) == content


def _language(info: str) -> str:
    """The fence's language if it is one plain word; never `mermaid`, which Streamlit draws."""
    words = info.split()
    if not words or not _LANGUAGE.fullmatch(words[0]):
        return ""
    head = re.match(r"\w*", words[0])
    return "text" if head is not None and head.group().lower() == "mermaid" else words[0]


def _url_prefix_at_end(line: str, start: int) -> int:
    """Where a URL may be starting at the end of `line` (to be held back), else its length."""
    for k in range(max(start, len(line) - 7), len(line)):
        tail = line[k:].lower()
        if any(prefix.startswith(tail) for prefix in _URL_PREFIXES):
            return k
    return len(line)


def _may_become(rest: str) -> bool:
    """Could more input turn `rest` into a kept `(https://…)` link or `<https://…>` autolink?"""
    body = rest[1:]
    if len(rest) > _LONGEST_KEPT:
        return False
    if not re.match(r"(?i)https?://", body):
        return any(prefix.startswith(body.lower()) for prefix in _URL_PREFIXES[:2])
    return (_LINK_SO_FAR if rest[0] == "(" else _AUTOLINK_SO_FAR).fullmatch(rest) is not None


@lru_cache(maxsize=64)
def _closing_run(char: str, size: int) -> re.Pattern[str]:
    """A run of exactly `size` of `char`: the end of a code or math span."""
    c = re.escape(char)
    return re.compile(rf"(?<!{c}){c}{{{size}}}(?!{c})")


def _may_define(before: str) -> bool:
    """Could a `]:` after `before` close a link definition's label (which opens its paragraph)?"""
    if "[" not in before:
        return True  # the label may have opened on an earlier line
    return before.count("[") == 1 and before.lstrip(" \t>-+*0123456789.)").startswith("[")


def _is_delimiter_row(line: str) -> bool:
    return "-" in line and set(line) <= _DELIMITER_ROW_CHARS


def _next_is_delimiter(rest: str, final: bool) -> bool | None:
    end = rest.find("\n")
    following = rest if end < 0 else rest[:end]
    if end < 0 and not final:
        return False if not set(following) <= _DELIMITER_ROW_CHARS else None
    return _is_delimiter_row(following)
