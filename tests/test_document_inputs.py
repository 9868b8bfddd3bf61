"""Files users really have, made here in memory: other text encodings, text that starts like a
binary format, HTML under another name, long cells and separators in CSV, what Word keeps
outside plain paragraphs, damaged PDFs, and text without sentence ends that must still be cut fast."""

from __future__ import annotations

import base64
import io
import os
import re
import zipfile

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE

import controller.passages as passages_module
from controller.passages import split
from tests.test_documents import make_docx, make_pdf
from utils.documents import DocumentError, Section, parse

real_count = passages_module._chunk_tokens

SENTENCE = "Zebras negotiate copper contracts at midnight."
PORTUGUESE = "A ação judicial foi proposta em março; a indenização é de 5%."


# --- text encodings and what a file really is ---


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_without_a_bom_and_utf32_are_read(codec: str) -> None:
    text = f"{SENTENCE}\n{PORTUGUESE}\n北京是中华人民共和国的首都。\n"
    assert parse(text.encode(codec), "export.txt").text == text.strip()


def test_a_stray_nul_does_not_make_8_bit_text_utf16() -> None:
    with pytest.raises(DocumentError, match="is really a binary file"):
        parse(b"a,b\n1,\x002\n3,4\n", "table.csv")


@pytest.mark.parametrize("start", ["MZ Industries", "RIFF analysis", "Rar! said the lion", "GIF89a is a format"])
def test_text_that_starts_like_a_binary_format_is_read(start: str) -> None:
    assert parse(f"{start}: {SENTENCE}".encode(), "notes.txt").text == f"{start}: {SENTENCE}"


@pytest.mark.parametrize("name", ["notes.txt", "notes.md"])
def test_a_text_file_that_quotes_a_pdf_header_is_read(name: str) -> None:
    text = f"A PDF starts with %PDF-1.7 and ends with %%EOF.\n\n{SENTENCE}"
    assert SENTENCE in parse(text.encode(), name).text
    assert parse(b"junk before the header\n" + make_pdf([[SENTENCE]]), "scan.pdf").kind == "pdf"


@pytest.mark.parametrize(("name", "bom"), [("page.md", b""), ("page.txt", b""), ("download", b"\xef\xbb\xbf")])
def test_an_html_page_under_another_name_is_read_as_html(name: str, bom: bytes) -> None:
    page = (
        f"<!DOCTYPE html><html><head><script>track()</script></head><body><h1>Guide</h1><p>{SENTENCE}</p></body></html>"
    )
    parsed = parse(bom + page.encode(), name)
    assert (parsed.kind, parsed.sections[0].heading, parsed.text) == ("html", "Guide", SENTENCE)


def test_terminal_colours_in_a_saved_log_are_dropped() -> None:
    parsed = parse(b"\x1b[31mERROR\x1b[0m disk full\n\x1b[1;32mOK\x1b[0m retried\n", "build.log")
    assert parsed.text == "ERROR disk full\nOK retried"


def test_a_file_of_headings_only_is_read() -> None:
    parsed = parse(b"# Plan\n\n## Hire a lawyer\n\n## File the claim\n", "outline.md")
    assert [s.text for s in parsed.sections] == ["Plan", "Hire a lawyer", "File the claim"]


def test_a_markdown_fence_closes_only_with_a_fence_as_long() -> None:
    text = f"````markdown\n```\n# not a heading\n```\n````\n\n# Real\n\n{SENTENCE}\n"
    parsed = parse(text.encode(), "readme.md")
    assert [s.heading for s in parsed.sections] == [None, "Real"]  # the fenced "# not a heading" is code


# --- HTML ---


def test_html_with_thousands_of_unclosed_paragraphs_is_read_whole() -> None:
    # how long it takes (30 s before, when each word looked through its 20,000 parents): benchmarks/parse_bench.py
    page = "<html><body>" + "".join(f"<p>Paragraph {n} of an old page" for n in range(20_000))
    parsed = parse(page.encode(), "old.html")
    assert "Paragraph 0 of an old page" in parsed.text and "Paragraph 19999 of an old page" in parsed.text


def test_html_table_cells_and_page_regions_are_not_glued_together() -> None:
    page = (
        "<header>Acme</header><main><table><tr><th>Name</th><th>City</th></tr>"
        "<tr><td>Ana</td><td>Lisbon</td></tr></table></main><footer>Contact</footer><p>Line one<br>Line two</p>"
    )
    assert parse(page.encode(), "page.html").text == "Acme\nName City\nAna Lisbon\nContact\nLine one\nLine two"


# --- CSV ---


def test_a_csv_cell_longer_than_the_csv_modules_cap_is_read() -> None:
    note = "word " * 40_000 + SENTENCE  # 200,000 characters; the csv module refuses cells over 131,072
    parsed = parse(f'id,note\n1,"{note}"\n2,short\n'.encode(), "notes.csv")
    assert SENTENCE in parsed.text and "id: 2; note: short" in parsed.text


def test_excels_separator_line_and_blank_lines_before_the_header() -> None:
    assert parse(b"sep=;\r\nnome;cidade\r\nAna;Lisboa\r\n", "excel.csv").text == "nome: Ana; cidade: Lisboa"
    assert parse(b"\n\nnome,cidade\nAna,Lisboa\n", "blank.csv").text == "nome: Ana; cidade: Lisboa"


# --- Word ---

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_with(body: str, parts: dict[str, str] | None = None, relations: str = "", types: str = "") -> bytes:
    """A real DOCX (python-docx's template) whose body is `body` (WordprocessingML), with more parts."""
    document = docx.Document()
    document.add_paragraph("placeholder")
    out = io.BytesIO()
    document.save(out)
    source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    xml = source.read("word/document.xml").decode()
    replaced = {
        "word/document.xml": re.sub(
            r"<w:body>.*?(<w:sectPr)", lambda m: f"<w:body>{body}{m.group(1)}", xml, flags=re.S
        ),
        "word/_rels/document.xml.rels": source.read("word/_rels/document.xml.rels")
        .decode()
        .replace("</Relationships>", relations + "</Relationships>"),
        "[Content_Types].xml": source.read("[Content_Types].xml").decode().replace("</Types>", types + "</Types>"),
        **(parts or {}),
    }
    result = io.BytesIO()
    with zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            archive.writestr(name, replaced.pop(name, None) or source.read(name))
        for name, text in replaced.items():
            archive.writestr(name, text)
    return result.getvalue()


def run(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def test_docx_text_outside_plain_paragraphs_is_read() -> None:
    text_box = (
        '<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        '<mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p>{box}</w:p></w:txbxContent></w:drawing></mc:Choice>'
        "<mc:Fallback><w:pict><w:txbxContent><w:p>{box}</w:p></w:txbxContent></w:pict></mc:Fallback>"
        "</mc:AlternateContent>"
    ).format(box=run("Text in a box."))
    body = (
        f"<w:sdt><w:sdtPr/><w:sdtContent><w:p>{run('In a content control.')}</w:p></w:sdtContent></w:sdt>"
        f"<w:p>{run('Client: ')}<w:sdt><w:sdtContent>{run('Ana Souza')}</w:sdtContent></w:sdt></w:p>"
        f"<w:p>{run('Kept ')}<w:ins w:id='1' w:author='x'>{run('and inserted')}</w:ins>"
        f"<w:del w:id='2' w:author='x'><w:r><w:delText>and deleted</w:delText></w:r></w:del></w:p>"
        f"<w:p>{run('Anchor.')}<w:r>{text_box}</w:r></w:p>"
        f"<w:tbl><w:tr><w:tc><w:p>{run('Outer')}</w:p></w:tc><w:tc><w:tbl><w:tr><w:tc><w:p>{run('Inner')}</w:p></w:tc>"
        f"<w:tc><w:p>{run('cell')}</w:p></w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>"
    )
    assert parse(docx_with(body), "form.docx").text == (
        "In a content control.\nClient: Ana Souza\nKept and inserted\nAnchor.\nText in a box.\nOuter | Inner | cell"
    )


def test_docx_footnotes_headers_and_footers_are_read() -> None:
    footnotes = (
        f'<w:footnotes xmlns:w="{W}"><w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
        f'</w:footnote><w:footnote w:id="1"><w:p>{run(SENTENCE)}</w:p></w:footnote></w:footnotes>'
    )
    data = docx_with(
        f'<w:p>{run("Claim.")}<w:r><w:footnoteReference w:id="1"/></w:r></w:p>',
        {"word/footnotes.xml": footnotes},
        '<Relationship Id="rIdNotes" Target="footnotes.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"/>',
        '<Override PartName="/word/footnotes.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"/>',
    )
    assert [(s.heading, s.text) for s in parse(data, "claim.docx").sections] == [
        (None, "Claim."),
        ("Footnotes", SENTENCE),
    ]
    document = docx.Document(io.BytesIO(make_docx()))
    document.sections[0].header.paragraphs[0].text = "Contract 2024/117 — confidential"
    out = io.BytesIO()
    document.save(out)
    header = Section("Contract 2024/117 — confidential", heading="Headers and footers")
    assert parse(out.getvalue(), "contract.docx").sections[-1] == header


def test_a_docx_style_based_on_a_heading_makes_headings() -> None:
    document = docx.Document()
    chapter = document.styles.add_style("Chapter", WD_STYLE_TYPE.PARAGRAPH)
    chapter.base_style = document.styles["Heading 1"]
    document.add_paragraph("Capítulo um", style="Chapter")
    document.add_paragraph(PORTUGUESE)
    out = io.BytesIO()
    document.save(out)
    assert [(s.heading, s.text) for s in parse(out.getvalue(), "livro.docx").sections] == [("Capítulo um", PORTUGUESE)]


def long_docx() -> bytes:
    """10,000 paragraphs under 20 headings (also timed by benchmarks/parse_bench.py)."""
    document = docx.Document()
    for n in range(10_000):
        if n % 500 == 0:
            document.add_heading(f"Part {n // 500 + 1}", 1)
        document.add_paragraph(f"Paragraph {n}.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_a_long_docx_is_read_whole() -> None:
    # how long it takes (12.7 s before, each paragraph looking up its style among all): benchmarks/parse_bench.py
    parsed = parse(long_docx(), "thesis.docx")
    assert len(parsed.sections) == 20 and parsed.sections[-1].text.endswith("Paragraph 9999.")


def test_a_damaged_docx_is_refused_in_a_sentence_that_says_what_to_do() -> None:
    data = docx_with(f"<w:p>{run(SENTENCE)}</w:p>", {"word/document.xml": "not XML <<<"})
    with pytest.raises(DocumentError) as caught:
        parse(data, "broken.docx")
    assert str(caught.value) == (
        "“broken.docx” is a damaged Word document that cannot be opened; open it in Word, save it again as .docx "
        "and upload the new copy."
    )


# --- PDF ---


def test_words_hyphenated_at_a_line_end_are_found_whole() -> None:
    lines = [
        "The treaty was nego-",
        "tiated in Ghent; the night train",
        "Paris-",
        "Berlin leaves at ten,",
        "pages 10-",
        "20.",
    ]
    parsed = parse(make_pdf([lines]), "treaty.pdf")
    assert "negotiated in Ghent" in parsed.text  # not "nego tiated": BM25 finds "negotiated"
    assert "Paris-Berlin" in parsed.text and "10-\n20" in parsed.text  # only a break before a small letter joins


def test_pdf_pages_that_cannot_be_loaded_are_named_and_the_others_read() -> None:
    data = make_pdf([[SENTENCE]]).replace(b"/Count 1", b"/Count 3")  # the page tree promises pages it lacks
    parsed = parse(data, "cut.pdf")
    assert [(s.page, s.text) for s in parsed.sections] == [(1, SENTENCE)]
    assert parsed.notes == ("Pages 2, 3 of “cut.pdf” are damaged and could not be read.",)


def test_a_truncated_pdf_is_refused_in_a_sentence_that_says_what_to_do() -> None:
    data = make_pdf([[SENTENCE], [PORTUGUESE]])
    with pytest.raises(DocumentError) as caught:
        parse(data[: len(data) // 2], "download.pdf")
    assert str(caught.value) == (
        "“download.pdf” is a damaged PDF that cannot be opened (perhaps an incomplete download); "
        "download or export it again and upload the new copy."
    )


# --- cutting into passages ---


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ids.txt", "".join(f"ID-{n:07d}\n" for n in range(200_000))),
        (
            "report.md",
            f"# Report\n\n![chart](data:image/png;base64,{base64.b64encode(os.urandom(1_500_000)).decode()})\n",
        ),
    ],
    ids=["a list without sentence ends", "base64 in Markdown"],
)
def test_text_without_sentence_ends_is_cut_in_pieces_not_characters(
    name: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SentenceSplitter cut such text into single characters, counting the tokens of each (12-18 s;
    benchmarks/parse_bench.py times it): the tokenizer is now asked about pieces of lines."""
    counted = []
    monkeypatch.setattr(passages_module, "_chunk_tokens", lambda piece: counted.append(piece) or real_count(piece))
    parsed = parse(text.encode(), name)
    passages = split(parsed, name, lambda fraction, said: None)
    assert len(counted) < len(text) / 100  # ~7,000 for 2 MB; one per character would be millions
    # nothing lost or repeated (pieces of lines are longer than the overlap, so passages do not share any)
    assert "".join("".join(p.text for p in passages).split()) == "".join(parsed.text.split())
