"""An answer's Markdown as text a voice can read: what a listener needs, none of the markup.

- a fenced code block becomes "(code)": reading code aloud helps nobody; it stays on the page;
- a link is read as its text, an image as its alt text, a bare URL as "(link)";
- headings, list items, quotes and table rows each end as a sentence, so the voice pauses there;
  the markers (#, -, 1., >) and emphasis (** __ * _ ~~ `) are dropped;
- a table is read row by row, its cells separated by commas (as a screen reader reads one), the
  header row included and the |---| row skipped;
- HTML tags and $ around math are dropped, their text kept.

`cap(text, max_chars)` then keeps whole sentences up to a length, for a note to say the rest is on
the page.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_THEMATIC_BREAK = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_BLOCK_MARKERS = re.compile(r"^\s*(?:>\s*)*(?:#{1,6}\s+|[-*+]\s+(?:\[[ xX]\]\s+)?|\d{1,9}[.)]\s+)?")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<(?:https?|mailto|ftp):[^>\s]*>", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()]*[^\s<>().,;:!?'\"]", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_EMPHASIS = re.compile(r"(\*{1,3}|~~)(?=\S)(.+?)(?<=\S)\1|(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\3(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>$])")
_SENTENCE_END = re.compile(r"[.!?…:;](?:[\"')\]]*)$")


def speakable(markdown: str) -> str:
    """The words of a Markdown answer, one sentence per block, ready for a voice."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    table = _table_lines(lines)
    blocks: list[str] = []
    fence = ""
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            blocks.append(" ".join(paragraph))
            paragraph.clear()

    for number, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            end_paragraph()
            fence = opened.group(1)
            blocks.append("(code)")
        elif not line.strip() or _THEMATIC_BREAK.match(line) or _TABLE_RULE.match(line):
            end_paragraph()
        elif number in table:
            end_paragraph()
            cells = [_inline(cell) for cell in line.strip().strip("|").split("|")]
            blocks.append(", ".join(cell for cell in cells if cell))
        else:
            marker = _BLOCK_MARKERS.match(line)
            text = _inline(line[marker.end() :] if marker else line)
            if marker and marker.group(0).strip():  # a heading, list item or quote: a sentence of its own
                end_paragraph()
                blocks.append(text)
            elif text:
                paragraph.append(text)
    end_paragraph()
    return " ".join(_sentence(block) for block in blocks if block)


def cap(text: str, max_chars: int) -> tuple[str, bool]:
    """At most `max_chars`, cut after the last whole sentence that fits (else the last word); True if cut."""
    if len(text) <= max_chars:
        return text, False
    head = text[: max_chars + 1]
    ends = [m.end() for m in re.finditer(r"[.!?…](?=\s)", head)]
    if ends and ends[-1] > max_chars // 2:
        return head[: ends[-1]].strip(), True
    return head.rsplit(" ", 1)[0].strip(), True


def _table_lines(lines: list[str]) -> set[int]:
    """The rows of each GFM table: the header above a |---| rule and the piped lines below it."""
    rows: set[int] = set()
    for number, line in enumerate(lines):
        if "-" in line and _TABLE_RULE.match(line) and number > 0 and "|" in lines[number - 1]:
            rows.add(number - 1)
            below = number + 1
            while below < len(lines) and "|" in lines[below] and lines[below].strip():
                rows.add(below)
                below += 1
    return rows


def _inline(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub("(link)", text)
    text = _URL.sub("(link)", text)
    text = _TAG.sub("", text)
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), text)
    for _ in range(2):  # ***both*** and **_nested_** emphasis
        text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(4), text)
    text = re.sub(r"(?<![\\\w])\$([^$\n]+)\$", r"\1", text)
    text = _ESCAPE.sub(r"\1", text)
    return " ".join(text.split())


def _sentence(block: str) -> str:
    """A block ends with a full stop unless it already ends like a sentence."""
    return block if _SENTENCE_END.search(block) else f"{block}."
