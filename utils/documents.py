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

PDFs are read with pypdfium2 (PDFium, Chrome's PDF engine): about 1 ms a page against pypdf's
14 ms on the same real documents. PDFium is not thread-safe, and Streamlit runs each session in
a thread, so one lock serialises its calls.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import re
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

from model.message import valid_text

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
_pdfium_lock = threading.Lock()


class DocumentError(ValueError):
    """A file cannot be read; `str(error)` is a sentence for the user that says why."""


@dataclass(frozen=True)
class Limits:
    """How much one upload may hold; each becomes a setting."""

    max_bytes: int = 25 * 1024 * 1024
    max_pages: int = 500
    max_csv_rows: int = 5_000
    max_unpacked_bytes: int = 200 * 1024 * 1024  # a DOCX's parts, inflated
    max_ratio: int = 100  # a DOCX part that would grow more than this is a zip bomb


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a file: a PDF page, or what follows a heading."""

    text: str
    page: int | None = None
    heading: str | None = None


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
        raise DocumentError(f"“{name}” is {_size(len(data))}; files can be at most {_size(limits.max_bytes)}.")
    if not data:
        raise DocumentError(f"“{name}” is empty (0 bytes); there is nothing to read.")
    kind = detect(data, name)
    sha256 = hashlib.sha256(data).hexdigest()
    pages: int | None = None
    notes: tuple[str, ...] = ()
    if kind == "pdf":
        sections, pages, notes = _read_pdf(data, name, limits)
    elif kind == "docx":
        sections = _read_docx(data, name, limits)
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
            sections = [Section(_tidy(text))]
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


# --- PDF ---


def _read_pdf(data: bytes, name: str, limits: Limits) -> tuple[list[Section], int, tuple[str, ...]]:
    import pypdfium2 as pdfium

    with _pdfium_lock:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) in (4, 6):  # FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY
                raise DocumentError(
                    f"“{name}” is password-protected; save a copy without the password and upload that."
                ) from exc
            raise DocumentError(_DAMAGED_PDF.format(name=name)) from exc
        try:
            pages = len(pdf)
            if pages > limits.max_pages:
                raise DocumentError(
                    f"“{name}” has {pages:,} pages; at most {limits.max_pages:,} can be read. Split it and upload the parts."
                )
            headings = _pdf_headings(pdf, pages)
            texts: list[str | None] = []  # None: a page PDFium cannot load (a cut download, a broken page tree)
            for index in range(pages):
                try:
                    page = pdf[index]
                    textpage = page.get_textpage()
                    texts.append(_tidy(valid_text(textpage.get_text_range())))
                except pdfium.PdfiumError:
                    texts.append(None)
                    continue
                textpage.close()
                page.close()
        finally:
            pdf.close()
    damaged = [str(number) for number, text in enumerate(texts, 1) if text is None]
    if not any(texts):
        if damaged:
            raise DocumentError(_DAMAGED_PDF.format(name=name))
        raise DocumentError(f"“{name}” has no text layer; it may be a scan — OCR is not available yet.")
    blank = [str(number) for number, text in enumerate(texts, 1) if text == ""]
    notes: tuple[str, ...] = (
        (f"Pages {_list(blank)} of “{name}” have no text layer (scans?) and were left out.",) if blank else ()
    )
    if damaged:
        notes += (f"Pages {_list(damaged)} of “{name}” are damaged and could not be read.",)
    sections = [Section(text, number, headings[number - 1]) for number, text in enumerate(texts, 1) if text]
    return sections, pages, notes


_DAMAGED_PDF = (
    "“{name}” is a damaged PDF that cannot be opened (perhaps an incomplete download); "
    "download or export it again and upload the new copy."
)


def _pdf_headings(pdf: object, pages: int) -> list[str | None]:
    """The bookmark (outline) title in force on each page, when the PDF has bookmarks."""
    starts: dict[int, str] = {}
    try:
        for bookmark in pdf.get_toc(max_depth=3):  # type: ignore[attr-defined]
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            title = _tidy(valid_text(bookmark.get_title() or ""))
            if index is not None and 0 <= index < pages and title:
                starts.setdefault(index, title)
    except Exception:  # noqa: BLE001 — bookmarks are a nicety; a broken outline must not lose the text
        return [None] * pages
    headings: list[str | None] = []
    current: str | None = None
    for index in range(pages):
        current = starts.get(index, current)
        headings.append(current)
    return headings


# --- DOCX ---


def _read_docx(data: bytes, name: str, limits: Limits) -> list[Section]:
    """Sections under each heading, then the footnotes, endnotes, headers and footers.

    The XML is walked, not python-docx's paragraphs and tables, which skip text in content
    controls, tracked insertions, text boxes and tables inside tables."""
    _check_zip(data, name, limits)
    import docx
    from docx.oxml.parser import parse_xml

    try:
        document = docx.Document(io.BytesIO(data))
        headings = _docx_heading_styles(document.styles.element)
        sections: list[Section] = []
        heading: str | None = None
        lines: list[str] = []
        for is_heading, line in _docx_lines(document.element.body, headings):
            text = _tidy(valid_text(line))
            if text and is_heading:
                sections.append(Section(_tidy("\n".join(lines)), heading=heading))
                heading, lines = text, []
            elif text:
                lines.append(text)
        sections.append(Section(_tidy("\n".join(lines)), heading=heading))
        around: dict[str, list[str]] = {}
        for rel in document.part.rels.values():
            if (title := _DOCX_AROUND.get(rel.reltype)) and not rel.is_external:
                root = parse_xml(rel.target_part.blob)  # python-docx's parser: no entities, no network
                # <w:footnotes> holds notes, and separator lines marked with a type; <w:hdr> is one header
                notes = [n for n in root if n.get(f"{_W}type") is None] if root.tag.endswith("notes") else [root]
                around.setdefault(title, []).extend(line for note in notes for _, line in _docx_lines(note, set()))
        for title, found in around.items():  # a header repeated in each part of the document is read once
            sections.append(
                Section(_tidy("\n".join(dict.fromkeys(_tidy(valid_text(t)) for t in found))), heading=title)
            )
    except Exception as exc:  # noqa: BLE001 — python-docx and lxml raise many types for a broken file
        raise DocumentError(_DAMAGED_DOCX.format(name=name)) from exc
    return sections


_DAMAGED_DOCX = (
    "“{name}” is a damaged Word document that cannot be opened; open it in Word, save it again as .docx "
    "and upload the new copy."
)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DOCX_AROUND = {
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes": "Footnotes",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/endnotes": "Endnotes",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/header": "Headers and footers",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer": "Headers and footers",
}
# Not the document's words: deleted or moved-away text, properties, and mc:Fallback, which
# repeats a text box for old versions of Word.
_DOCX_HIDDEN = {
    *(f"{_W}{tag}" for tag in ("del", "moveFrom", "pPr", "rPr", "sectPr", "tblPr", "trPr", "tcPr", "sdtPr")),
    "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback",
}
_DOCX_CHARACTERS = {f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


def _docx_lines(container: Any, headings: set[str]) -> Iterator[tuple[bool, str]]:
    """(is it a heading, its text) for each paragraph and table row in `container`, in reading
    order; the lines of a text box follow the paragraph it is anchored in."""
    stack = list(reversed(container))
    while stack:
        node = stack.pop()
        if node.tag == f"{_W}p":
            text, boxes = _docx_paragraph(node)
            level = node.find(f"{_W}pPr/{_W}outlineLvl")
            style = node.find(f"{_W}pPr/{_W}pStyle")
            if level is not None:
                yield level.get(f"{_W}val") != "9", text  # level 9 is body text
            else:
                yield style is not None and style.get(f"{_W}val") in headings, text
            for box in boxes:
                yield from _docx_lines(box, headings)
        elif node.tag == f"{_W}tbl":
            for row in _docx_children(node, f"{_W}tr"):
                cells = [
                    " ".join(" ".join(line for _, line in _docx_lines(cell, headings)).split())
                    for cell in _docx_children(row, f"{_W}tc")
                ]
                yield False, " | ".join(cell for cell in cells if cell)
        elif isinstance(node.tag, str) and node.tag not in _DOCX_HIDDEN:
            stack.extend(reversed(node))  # content controls, custom XML, tracked insertions: look inside


def _docx_paragraph(paragraph: Any) -> tuple[str, list[Any]]:
    """The text of a paragraph, and the text boxes anchored in it."""
    parts: list[str] = []
    boxes: list[Any] = []
    stack = list(reversed(paragraph))
    while stack:
        node = stack.pop()
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag in _DOCX_CHARACTERS:
            parts.append(_DOCX_CHARACTERS[node.tag])
        elif node.tag == f"{_W}txbxContent":
            boxes.append(node)
        elif isinstance(node.tag, str) and node.tag not in _DOCX_HIDDEN:
            stack.extend(reversed(node))
    return "".join(parts), boxes


def _docx_children(node: Any, tag: str) -> Iterator[Any]:
    """The `tag` elements in `node`, also those wrapped in content controls or custom XML."""
    stack = list(reversed(node))
    while stack:
        child = stack.pop()
        if child.tag == tag:
            yield child
        elif isinstance(child.tag, str) and child.tag not in _DOCX_HIDDEN:
            stack.extend(reversed(child))


def _docx_heading_styles(styles: Any) -> set[str]:
    """The ids of the paragraph styles that make headings: ones named "Heading n" or "Title", or
    given an outline level, themselves or through the style they are based on."""
    own: dict[str, bool] = {}
    parent: dict[str, str] = {}
    for style in styles.iter(f"{_W}style"):
        if style.get(f"{_W}type") != "paragraph":
            continue
        sid = style.get(f"{_W}styleId") or ""
        name = style.find(f"{_W}name")
        level = style.find(f"{_W}pPr/{_W}outlineLvl")
        based = style.find(f"{_W}basedOn")
        if level is not None:
            own[sid] = level.get(f"{_W}val") != "9"
        elif name is not None and (name.get(f"{_W}val") or "").lower().startswith(("heading", "title")):
            own[sid] = True
        parent[sid] = based.get(f"{_W}val") or "" if based is not None else ""

    def is_heading(sid: str) -> bool:
        for _ in range(len(parent) + 1):  # a loop of basedOn must end
            if sid in own:
                return own[sid]
            sid = parent.get(sid, "")
        return False

    return {sid for sid in parent if is_heading(sid)}


def _check_zip(data: bytes, name: str, limits: Limits) -> None:
    """Refuse a zip whose parts would inflate past the limits, from the declared sizes alone.

    zipfile stops reading a part at its declared size, so declared sizes bound what is inflated.
    """
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError(_DAMAGED_DOCX.format(name=name)) from exc
    if len(members) > 10_000:
        raise DocumentError(f"“{name}” holds {len(members):,} parts, far more than any document; it was not opened.")
    total = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise DocumentError(f"“{name}” is password-protected; save a copy without the password and upload that.")
        if info.file_size > 2**20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise DocumentError(
                f"“{name}” would grow from {_size(info.compress_size)} to {_size(info.file_size)} when unpacked "
                f"({info.filename}): that is how a zip bomb looks, so it was not opened."
            )
        total += info.file_size
    if total > limits.max_unpacked_bytes:
        raise DocumentError(
            f"“{name}” takes {_size(total)} unpacked; at most {_size(limits.max_unpacked_bytes)} can be read."
        )


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
            sections.append(Section(_tidy("\n".join(lines)), heading=heading))
            heading, lines = title.strip() or heading, []
            continue
        lines.append(line)
    sections.append(Section(_tidy("\n".join(lines)), heading=heading))
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
                sections.append(Section(_tidy("".join(parts)), heading=heading))
                heading, parts = node.get_text(" ", strip=True) or heading, []
                continue
            if node.name in _BLOCKS:
                stack.append(_BLOCK_END)
            if node.name in _BREAKS:
                parts.append(_BREAKS[node.name])
            stack.extend(reversed(node.contents))
        elif type(node) is NavigableString:
            parts.append(str(node))
    sections.append(Section(_tidy("".join(parts)), heading=heading))
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


# --- small helpers ---

_TERMINAL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # colours in a saved log: "\x1b[31mERROR" is "ERROR"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Line ends as \\n, no control characters, runs of spaces as one, at most one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", _TERMINAL_CODES.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _size(count: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} bytes"


def _list(items: list[str]) -> str:
    return ", ".join(items[:20]) + (f" and {len(items) - 20:,} more" if len(items) > 20 else "")
