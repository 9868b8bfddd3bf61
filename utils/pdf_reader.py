"""Read a PDF's text layer, page by page, with each page's bookmark title as its heading.

pypdfium2 (PDFium, Chrome's PDF engine) reads about 1 ms a page against pypdf's 14 ms on the
same real documents. It reads in a child process of its own, with a cap on its memory and a time
limit: PDFium aborts the whole process when an allocation fails (a hostile page of a few MB asks
for gigabytes), and it is native code fed an untrusted file, so a file that crashes or hangs it
must cost one sentence, not the app and every conversation open in it. The child costs about
0.1 s, and it lets sessions read PDFs at once, where one process had to serialise PDFium's calls.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

from model.message import valid_text
from utils.document_base import DocumentError, Limits, Section, short_list, tidy

_ROOT = Path(__file__).resolve().parents[1]
_log = logging.getLogger(__name__)


def read_pdf(data: bytes, name: str, limits: Limits) -> tuple[list[Section], int, tuple[str, ...]]:
    """Sections (one a page with text), the page count, and notes naming pages left out."""
    request = json.dumps({"name": name, "max_pages": limits.max_pages, "memory": limits.pdf_memory_bytes})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "utils.pdf_reader"],
            input=request.encode() + b"\n" + data,
            capture_output=True,
            timeout=limits.pdf_seconds,
            cwd=_ROOT,
            env={"LANG": "C.UTF-8"},  # not the app's: it holds the API keys
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DocumentError(
            f"Reading “{name}” took over {limits.pdf_seconds:g} s and was stopped; it may be damaged or built to "
            "overload readers. Print it to a new PDF and upload that."
        ) from exc
    try:
        reply = json.loads(done.stdout)
    except ValueError:
        reply = None
    if done.returncode != 0 or not isinstance(reply, dict):
        _log.warning(
            "the PDF reader ended with %s on %r: %s",
            done.returncode,
            name,
            done.stderr[-2000:].decode(errors="replace"),
        )
        # PDFium aborts (SIGABRT) when an allocation fails; the kernel's OOM killer sends SIGKILL
        if done.returncode in (-6, -9, 134, 137) or b"MemoryError" in done.stderr:
            raise DocumentError(
                f"“{name}” needs more than {limits.pdf_memory_bytes // 2**20:,} MB of memory to read, so it was "
                "stopped; it may be built to overload readers. Print it to a new PDF, or split it, and upload that."
            )
        raise DocumentError(_DAMAGED_PDF.format(name=name))
    if "error" in reply:
        raise DocumentError(str(reply["error"]))
    sections = [Section(text, page, heading) for text, page, heading in reply["sections"]]
    return sections, int(reply["pages"]), tuple(reply["notes"])


def _child() -> None:
    """The child's side: a JSON line of what to read, then the PDF, on stdin; the result as JSON on
    stdout, or {"error": sentence} for a file that is refused."""
    request = json.loads(sys.stdin.buffer.readline())
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (request["memory"], request["memory"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort hands no core dump to the host, as in sandbox.py
    except (ImportError, ValueError, OSError):  # no such limit here (not Linux or macOS): read uncapped
        pass
    data = sys.stdin.buffer.read()
    limits = Limits(max_pages=request["max_pages"])
    try:
        sections, pages, notes = _read(data, request["name"], limits)
    except DocumentError as exc:
        reply: dict[str, object] = {"error": str(exc)}
    else:
        reply = {"sections": [[s.text, s.page, s.heading] for s in sections], "pages": pages, "notes": notes}
    sys.stdout.write(json.dumps(reply))


def _read(data: bytes, name: str, limits: Limits) -> tuple[list[Section], int, tuple[str, ...]]:
    import pypdfium2 as pdfium

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
                texts.append(tidy(valid_text(_joined(textpage.get_text_range()))))
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
        (f"Pages {short_list(blank)} of “{name}” have no text layer (scans?) and were left out.",) if blank else ()
    )
    if damaged:
        notes += (f"Pages {short_list(damaged)} of “{name}” are damaged and could not be read.",)
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
            title = tidy(valid_text(bookmark.get_title() or ""))
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


_LINE_END_HYPHEN = re.compile("\ufffe(\\w?)")


def _joined(text: str) -> str:
    """Words hyphenated at a line's end made whole again: PDFium marks such a hyphen with U+FFFE and
    drops the line break, and read as a blank the halves could not be found ("nego-" "tiated"). Before
    a small letter the hyphen goes, as in pdfminer's and PyMuPDF's dehyphenation (a compound broken at
    its own hyphen loses it: "wellknown"); before anything else it stays ("Paris-Berlin")."""
    return _LINE_END_HYPHEN.sub(lambda m: m[1] if m[1].islower() else f"-{m[1]}", text)


if __name__ == "__main__":
    _child()
