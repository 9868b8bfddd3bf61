"""Read a Word document (DOCX) by walking its XML: sections under each heading, then the
footnotes, endnotes, headers and footers.

python-docx's paragraphs and tables skip text in content controls, tracked insertions, text
boxes and tables inside tables, so the XML is walked instead. The zip's declared sizes and ratios
are checked before anything is inflated (in memory, never on disk), so a zip bomb is refused
unopened; python-docx is imported only when a DOCX is read, to keep page start-up fast.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

from model.message import valid_text
from utils.document_base import DocumentError, Limits, Section, human_size, tidy


def read_docx(data: bytes, name: str, limits: Limits) -> list[Section]:
    """Sections under each heading, then the footnotes, endnotes, headers and footers."""
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
            text = tidy(valid_text(line))
            if text and is_heading:
                sections.append(Section(tidy("\n".join(lines)), heading=heading))
                heading, lines = text, []
            elif text:
                lines.append(text)
        sections.append(Section(tidy("\n".join(lines)), heading=heading))
        around: dict[str, list[str]] = {}
        for rel in document.part.rels.values():
            if (title := _DOCX_AROUND.get(rel.reltype)) and not rel.is_external:
                root = parse_xml(rel.target_part.blob)  # python-docx's parser: no entities, no network
                # <w:footnotes> holds notes, and separator lines marked with a type; <w:hdr> is one header
                notes = [n for n in root if n.get(f"{_W}type") is None] if root.tag.endswith("notes") else [root]
                around.setdefault(title, []).extend(line for note in notes for _, line in _docx_lines(note, set()))
        for title, found in around.items():  # a header repeated in each part of the document is read once
            sections.append(Section(tidy("\n".join(dict.fromkeys(tidy(valid_text(t)) for t in found))), heading=title))
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
                f"“{name}” would grow from {human_size(info.compress_size)} to {human_size(info.file_size)} when unpacked "
                f"({info.filename}): that is how a zip bomb looks, so it was not opened."
            )
        total += info.file_size
    if total > limits.max_unpacked_bytes:
        raise DocumentError(
            f"“{name}” takes {human_size(total)} unpacked; at most {human_size(limits.max_unpacked_bytes)} can be read."
        )
