"""Read the user's files into text: PDF, DOCX, Markdown, plain text, HTML and CSV.

`parse(data, filename, limits)` returns a `ParsedDocument` of `Section`s (text with its page and
heading, so an answer can say where a claim comes from) or raises `DocumentError` with one
sentence for the user. Nothing is half-read: a file is refused whole or read whole (a CSV over
the row cap and a PDF with pages PDFium cannot load are the exceptions, and their `notes` say
what was left out).

The type comes from the bytes (`%PDF-`, a zip holding word/document.xml, other magic numbers),
not from the name alone; a name whose extension claims another type is refused, saying what the
file really is. The size is checked before anything else, and a DOCX zip's declared sizes and
ratios before anything is inflated (in memory, never on disk). Text is decoded in one place,
`decode_text` (a BOM, UTF-16 without one, UTF-8, else charset-normalizer's guess); an HTML page
saved as .md or .txt is read as HTML.

This module tells the types apart, decodes text, reads Markdown, HTML and CSV, and is where the
rest of the app imports from. PDFs are read in utils/pdf_reader.py, DOCX in utils/docx_reader.py;
what every reader shares (`Section`, `Limits`, `DocumentError`, `tidy`) is in utils/document_base.py.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import re
import unicodedata
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

from model.message import valid_text
from utils.document_base import DocumentError, Limits, Section, human_size, tidy
from utils.docx_reader import read_docx
from utils.pdf_reader import read_pdf

Kind = Literal["pdf", "docx", "markdown", "text", "html", "csv"]
KINDS: tuple[Kind, ...] = ("pdf", "docx", "markdown", "text", "html", "csv")
_NAMES: dict[str, str] = {
    "pdf": "a PDF",
    "docx": "a Word document (DOCX)",
    "markdown": "Markdown",
    "text": "plain text",
    "html": "an HTML page",
    "csv": "a CSV table",
}
_EXTENSIONS: dict[str, Kind] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".csv": "csv",
}
# What an upload field offers: every extension above but "text", which Streamlit's uploader takes
# for the MIME family text/* (any source file).
DOCUMENT_TYPES = tuple(suffix.lstrip(".") for suffix in _EXTENSIONS if suffix != ".text")
_READABLE = "PDF, Word (DOCX), Markdown, plain text, HTML or CSV"
CSV_ROWS_PER_SECTION = 50


@dataclass(frozen=True)
class ParsedDocument:
    name: str
    kind: Kind
    sections: list[Section]
    sha256: str
    pages: int | None = None  # PDFs only
    notes: tuple[str, ...] = field(default=())  # what was left out, in sentences for the user

    @property
    def text(self) -> str:
        return "\n\n".join(section.text for section in self.sections)


def parse(data: bytes, filename: str, limits: Limits | None = None) -> ParsedDocument:
    """The text of an uploaded file, in sections; DocumentError (one sentence) when it cannot be read."""
    limits = limits or Limits()
    name = PurePath(filename.replace("\\", "/")).name or "the file"
    if len(data) > limits.max_bytes:  # first: nothing else may touch a huge upload
        raise DocumentError(
            f"“{name}” is {human_size(len(data))}; files can be at most {human_size(limits.max_bytes)}."
        )
    if not data:
        raise DocumentError(f"“{name}” is empty (0 bytes); there is nothing to read.")
    kind = detect(data, name)
    sha256 = hashlib.sha256(data).hexdigest()
    pages: int | None = None
    notes: tuple[str, ...] = ()
    if kind == "pdf":
        sections, pages, notes = read_pdf(data, name, limits)
    elif kind == "docx":
        sections = read_docx(data, name, limits)
    else:
        text = decode_text(data, name)
        if kind in ("text", "markdown") and _HTML_START.match(text):
            kind = "html"  # a page saved under another name: its scripts and tags are not text
        if kind == "csv":
            sections, notes = _read_csv(text, name, limits)
        elif kind == "html":
            sections = _read_html(text)
        elif kind == "markdown":
            sections = _read_markdown(text)
        else:
            sections = [Section(tidy(text))]
    kept = [s for s in sections if s.text.strip()]
    if not kept:  # an outline: headings and nothing under them are still the file's words
        kept = [Section(s.heading, s.page, s.heading) for s in sections if s.heading]
    if not kept:
        raise DocumentError(f"“{name}” holds no text (only blanks or markup).")
    return ParsedDocument(name, kind, kept, sha256, pages=pages, notes=notes)


# --- what a file really is ---


def detect(data: bytes, name: str) -> Kind:
    """The kind of a file from its bytes; the extension only chooses among the text kinds."""
    claimed = _EXTENSIONS.get(PurePath(name).suffix.lower())
    actual = _sniff_binary(data, claimed)
    if actual in ("pdf", "docx"):
        if claimed not in (None, actual):
            raise DocumentError(f"“{name}” is really {_NAMES[actual]}, not {_NAMES[claimed]}; rename it and try again.")
        return actual  # type: ignore[return-value]
    if actual is not None:
        if claimed is not None:
            raise DocumentError(f"“{name}” is really {actual}, not {_NAMES[claimed]}; bnaGPT reads {_READABLE}.")
        raise DocumentError(f"“{name}” is {actual}; bnaGPT reads {_READABLE}.")
    if claimed in ("pdf", "docx"):
        raise DocumentError(f"“{name}” is not {_NAMES[claimed]}: it holds plain text. Rename it to .txt to read it.")
    return claimed or "text"  # parse() tells HTML from text once the bytes are decoded


def _sniff_binary(data: bytes, claimed: Kind | None) -> str | None:
    """ "pdf", "docx", a phrase naming another binary type, or None for what may be text."""
    header = data.find(b"%PDF-", 0, 1024)
    if header == 0 or (header > 0 and claimed in (None, "pdf", "docx")):
        return "pdf"  # the spec allows junk before the header; in a file named as text it is a quotation
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return "a damaged ZIP archive"
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "an Excel workbook (XLSX), which bnaGPT cannot read yet (save it as CSV)"
        if "ppt/presentation.xml" in names:
            return "a PowerPoint presentation (PPTX), which bnaGPT cannot read yet (save it as PDF)"
        if "content.xml" in names:
            return "an OpenDocument file, which bnaGPT cannot read yet (save it as DOCX or PDF)"
        return "a ZIP archive"
    if data.startswith(b"{\\rtf"):
        return "an RTF document (save it as DOCX)"
    # Magic numbers such as "MZ" or "RIFF" also begin ordinary sentences: they count only when
    # the first bytes hold one that text never does, as every real header of these types does.
    if _BINARY_BYTE.search(data[:64]):
        for magic, what in _MAGIC:
            if data.startswith(magic):
                return what
    if b"\x00" in data[:8192] and _text_codec(data) is None:
        return "a binary file"
    return None


_BINARY_BYTE = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Office file (.doc/.xls) or a password-protected Office file; save it without a password as DOCX",
    ),
    (b"\x89PNG\r\n\x1a\n", "an image (PNG)"),
    (b"\xff\xd8\xff", "an image (JPEG)"),
    (b"GIF87a", "an image (GIF)"),
    (b"GIF89a", "an image (GIF)"),
    (b"RIFF", "a RIFF file (WebP, WAV or AVI)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
)
_HTML_START = re.compile(r"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)


def decode_text(data: bytes, name: str) -> str:
    """Text files by their BOM, as UTF-16 when they are that without one, as UTF-8, else in the
    encoding charset-normalizer finds."""
    if codec := _text_codec(data):  # near-certain: one bad character is no reason to refuse the file
        return valid_text(data.decode(codec, errors="replace"))
    try:
        return valid_text(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise DocumentError(f"“{name}” is not text in any encoding bnaGPT knows; save it as UTF-8.")
    text = str(best)
    if _LATIN_LETTERS.fullmatch(text):
        # Latin text in some 8-bit code page: charset-normalizer often picks cp1250 or roman8 for
        # short Portuguese or French ("ação" becomes "açăo"); Windows-1252 is by far the likeliest.
        with suppress(UnicodeDecodeError):
            text = data.decode("cp1252")
    return valid_text(text)


_LATIN_LETTERS = re.compile(r"[\x00-\u024f\u2000-\u206f\u20ac\u2122]*")
# Longest first: UTF-32's little-endian mark begins with UTF-16's.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _text_codec(data: bytes) -> str | None:
    """The codec a BOM names, or UTF-16 without one (database and mail exports); None to guess."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    if b"\x00" not in data[:8192]:
        return None
    head = data[:8192]
    # Each ASCII character in UTF-16 has a zero byte, at odd offsets in little-endian, even in
    # big-endian: many zeros on one side and almost none on the other, unlike stray NULs in text.
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if max(even, odd) < max(2, len(head) // 64) or min(even, odd) > max(even, odd) // 8:
        return None
    codec = "utf-16-le" if odd > even else "utf-16-be"
    try:
        sample = codecs.getincrementaldecoder(codec)().decode(head)  # a pair cut at the end waits
    except UnicodeDecodeError:
        return None
    # Binary read as UTF-16 is full of control, unassigned and private-use characters.
    strange = sum(1 for c in sample if (c < " " and c not in "\t\n\r\f") or unicodedata.category(c) in ("Cn", "Co"))
    return codec if sample and strange <= len(sample) // 100 else None


# --- text formats ---

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _read_markdown(text: str) -> list[Section]:
    """Sections under each ATX (`## Title`) or setext (Title / ===) heading; code fences are not headings."""
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        if fence is not None:
            lines.append(line)
            closing = _FENCE.match(line)
            if closing and closing.group(1).startswith(fence) and not line[closing.end() :].strip():
                fence = None  # closed by a run of the same mark at least as long, with nothing after it
            continue
        if opened := _FENCE.match(line):
            fence = opened.group(1)
            lines.append(line)
            continue
        atx = _ATX.match(line)
        setext = _SETEXT.match(line) if lines and lines[-1].strip() else None
        if atx or setext:
            title = atx.group(2) if atx else lines.pop()
            sections.append(Section(tidy("\n".join(lines)), heading=heading))
            heading, lines = title.strip() or heading, []
            continue
        lines.append(line)
    sections.append(Section(tidy("\n".join(lines)), heading=heading))
    return sections


_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_DROPPED = ["script", "style", "noscript", "template", "svg", "head", "iframe", "object"]
_BLOCKS = {
    *("address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl", "dt", "fieldset"),
    *("figcaption", "figure", "footer", "form", "header", "li", "main", "nav", "ol", "p", "pre", "section"),
    *("summary", "table", "tr", "ul"),
}
_BREAKS = {"br": "\n", "hr": "\n", "td": " ", "th": " "}  # a line break; table cells side by side
_BLOCK_END = object()  # pushed after a block's children: what follows the block starts a new line


def _read_html(text: str) -> list[Section]:
    """Visible text under each h1-h6; script, style and the head are dropped."""
    from bs4 import BeautifulSoup, NavigableString, Tag

    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(_DROPPED):
        tag.decompose()
    sections: list[Section] = []
    heading: str | None = title or None
    parts: list[str] = []
    # Depth first with a stack, not recursion or a look at each node's parents: unclosed <p> or
    # <div> tags nest as deep as the page is long.
    stack: list[object] = [soup]
    while stack:
        node = stack.pop()
        block = node is _BLOCK_END or (isinstance(node, Tag) and node.name in _BLOCKS)
        if block and parts and not parts[-1].endswith("\n"):
            parts.append("\n")  # a block starts and ends a line
        if isinstance(node, Tag):
            if node.name in _HEADINGS:  # its words are the heading, not text under it
                sections.append(Section(tidy("".join(parts)), heading=heading))
                heading, parts = node.get_text(" ", strip=True) or heading, []
                continue
            if node.name in _BLOCKS:
                stack.append(_BLOCK_END)
            if node.name in _BREAKS:
                parts.append(_BREAKS[node.name])
            stack.extend(reversed(node.contents))
        elif type(node) is NavigableString:
            parts.append(str(node))
    sections.append(Section(tidy("".join(parts)), heading=heading))
    return sections


def _read_csv(text: str, name: str, limits: Limits) -> tuple[list[Section], tuple[str, ...]]:
    """Each row as "column: value; …" text, CSV_ROWS_PER_SECTION rows a section, at most max_csv_rows rows."""
    # A cell may be as long as the file: the csv module's default cap (128 K characters) refuses
    # exports with long notes. The cap is the module's, for the whole process, so it only grows.
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_bytes))
    text = text.lstrip("\r\n")
    if hint := _EXCEL_SEPARATOR.match(text):  # Excel's "sep=;" first line names the delimiter
        text = text[hint.end() :]
    delimiters = hint.group(1) if hint else ",;\t|"
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:20_000], delimiters=delimiters)
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text, newline=""), dialect, delimiter=hint.group(1) if hint else dialect.delimiter)
    try:
        header = [cell.strip() for cell in next(rows, [])]
        sections: list[Section] = []
        batch: list[str] = []
        first = kept = 0
        for kept, row in enumerate(itertools.islice(rows, limits.max_csv_rows), 1):
            if not batch:
                first = kept
            pairs = [
                f"{header[i] if i < len(header) and header[i] else f'column {i + 1}'}: {cell.strip()}"
                for i, cell in enumerate(row)
                if cell.strip()
            ]
            batch.append("; ".join(pairs))
            if len(batch) == CSV_ROWS_PER_SECTION:
                sections.append(Section("\n".join(batch), heading=f"rows {first:,}–{kept:,}"))
                batch = []
        if batch:
            sections.append(Section("\n".join(batch), heading=f"rows {first:,}–{kept:,}"))
        more = sum(1 for _ in rows)
    except csv.Error as exc:
        raise DocumentError(
            f"“{name}” is not a well-formed CSV table (line {rows.line_num:,}: {exc}); "
            "export it again from the spreadsheet as CSV."
        ) from exc
    if not sections and header:
        sections = [Section(", ".join(header), heading="header")]
    notes: tuple[str, ...] = ()
    if more:
        notes = (f"“{name}” has {kept + more:,} rows; only the first {kept:,} were kept.",)
    return sections, notes


_EXCEL_SEPARATOR = re.compile(r"sep=(.)\r?\n")
