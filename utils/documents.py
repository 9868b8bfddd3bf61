"""Read the user's files into text: PDF, DOCX, Markdown, plain text, HTML and CSV.

`parse(data, filename, limits)` returns a `ParsedDocument` of `Section`s (text with its page and
heading, so an answer can say where a claim comes from) or raises `DocumentError` with one
sentence for the user. Nothing is half-read: a file is refused whole or read whole (a CSV over
the row cap is the one exception, and its `notes` say what was kept).

The type comes from the bytes (`%PDF-`, a zip holding word/document.xml, other magic numbers),
not from the name alone; a name whose extension claims another type is refused, saying what the
file really is. The size is checked before anything else, and a DOCX zip's declared sizes and
ratios before anything is inflated (in memory, never on disk).

PDFs are read with pypdfium2 (PDFium, Chrome's PDF engine): about 1 ms a page against pypdf's
14 ms on the same real documents. PDFium is not thread-safe, and Streamlit runs each session in
a thread, so one lock serialises its calls.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
import threading
import unicodedata
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

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
    elif kind == "csv":
        sections, notes = _read_csv(decode_text(data, name), name, limits)
    elif kind == "html":
        sections = _read_html(decode_text(data, name))
    elif kind == "markdown":
        sections = _read_markdown(decode_text(data, name))
    else:
        sections = [Section(_tidy(decode_text(data, name)))]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise DocumentError(f"“{name}” holds no text (only blanks or markup).")
    return ParsedDocument(name, kind, sections, sha256, pages=pages, notes=notes)


# --- what a file really is ---


def detect(data: bytes, name: str) -> Kind:
    """The kind of a file from its bytes; the extension only chooses among the text kinds."""
    claimed = _EXTENSIONS.get(PurePath(name).suffix.lower())
    actual = _sniff_binary(data)
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
    if claimed is not None:
        return claimed
    head = data[:512].lstrip().lower()
    return "html" if head.startswith((b"<!doctype html", b"<html")) else "text"


def _sniff_binary(data: bytes) -> str | None:
    """ "pdf", "docx", a phrase naming another binary type, or None for what may be text."""
    if b"%PDF-" in data[:1024]:  # the spec allows junk before the header
        return "pdf"
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
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "a binary file"
    return None


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
    (b"{\\rtf", "an RTF document (save it as DOCX)"),
)


def decode_text(data: bytes, name: str) -> str:
    """Text files as UTF-8 (a BOM is honoured), else the encoding charset-normalizer finds."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return valid_text(data.decode(codec))
            except UnicodeDecodeError:
                break
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
            raise DocumentError(f"“{name}” is a damaged PDF that cannot be opened ({exc}).") from exc
        try:
            pages = len(pdf)
            if pages > limits.max_pages:
                raise DocumentError(
                    f"“{name}” has {pages:,} pages; at most {limits.max_pages:,} can be read. Split it and upload the parts."
                )
            headings = _pdf_headings(pdf, pages)
            texts = []
            for index in range(pages):
                page = pdf[index]
                textpage = page.get_textpage()
                texts.append(_tidy(valid_text(textpage.get_text_range())))
                textpage.close()
                page.close()
        finally:
            pdf.close()
    if not any(texts):
        raise DocumentError(f"“{name}” has no text layer; it may be a scan — OCR is not available yet.")
    blank = [str(number) for number, text in enumerate(texts, 1) if not text]
    notes = (f"Pages {_list(blank)} of “{name}” have no text layer (scans?) and were left out.",) if blank else ()
    sections = [Section(text, number, headings[number - 1]) for number, text in enumerate(texts, 1) if text]
    return sections, pages, notes


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
    _check_zip(data, name, limits)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        sections: list[Section] = []
        heading: str | None = None
        lines: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                text = _tidy(valid_text(block.text))
                style = (block.style.name if block.style is not None else "") or ""
                if text and (style.startswith("Heading") or style == "Title"):
                    sections.append(Section(_tidy("\n".join(lines)), heading=heading))
                    heading, lines = text, []
                elif text:
                    lines.append(text)
            elif isinstance(block, Table):
                for row in block.rows:
                    cells = [_tidy(valid_text(cell.text)).replace("\n", " ") for cell in row.cells]
                    if any(cells):
                        lines.append(" | ".join(dict.fromkeys(cells)))  # merged cells repeat: keep one
        sections.append(Section(_tidy("\n".join(lines)), heading=heading))
    except Exception as exc:  # noqa: BLE001 — python-docx raises many types for a broken file
        raise DocumentError(f"“{name}” is a damaged Word document ({type(exc).__name__}: {exc}).") from exc
    return sections


def _check_zip(data: bytes, name: str, limits: Limits) -> None:
    """Refuse a zip whose parts would inflate past the limits, from the declared sizes alone.

    zipfile stops reading a part at its declared size, so declared sizes bound what is inflated.
    """
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError(f"“{name}” is a damaged Word document ({exc}).") from exc
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
            if line.strip().startswith(fence):
                fence = None
            continue
        if opened := _FENCE.match(line):
            fence = opened.group(1)[:3]
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
_BLOCKS = {"p", "div", "br", "li", "tr", "table", "section", "article", "blockquote", "pre", "ul", "ol", "dd", "dt"}


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
    for node in soup.descendants:
        if isinstance(node, Tag):
            if node.name in _HEADINGS:
                sections.append(Section(_tidy("".join(parts)), heading=heading))
                heading, parts = node.get_text(" ", strip=True) or heading, []
            elif node.name in _BLOCKS:
                parts.append("\n")
        elif type(node) is NavigableString and not any(p.name in _HEADINGS for p in node.parents):
            parts.append(str(node))
    sections.append(Section(_tidy("".join(parts)), heading=heading))
    return sections


def _read_csv(text: str, name: str, limits: Limits) -> tuple[list[Section], tuple[str, ...]]:
    """Each row as "column: value; …" text, CSV_ROWS_PER_SECTION rows a section, at most max_csv_rows rows."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
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
        raise DocumentError(f"“{name}” is not a well-formed CSV table (line {rows.line_num:,}: {exc}).") from exc
    if not sections and header:
        sections = [Section(", ".join(header), heading="header")]
    notes: tuple[str, ...] = ()
    if more:
        notes = (f"“{name}” has {kept + more:,} rows; only the first {kept:,} were kept.",)
    return sections, notes


# --- small helpers ---

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Line ends as \\n, no control characters, runs of spaces as one, at most one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _size(count: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} bytes"


def _list(items: list[str]) -> str:
    return ", ".join(items[:20]) + (f" and {len(items) - 20:,} more" if len(items) > 20 else "")
