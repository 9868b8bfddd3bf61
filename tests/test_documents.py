"""Chat with your files: parsing real files made here, the content-addressed file store, the BM25
index on disk (Portuguese, Chinese, pages, restarts, failures) and fitting passages in a budget."""

from __future__ import annotations

import io
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest
from filelock import FileLock

import controller.documents as documents_controller
import controller.index_versions as index_versions
from controller.agent import count_tokens
from controller.documents import DocumentIndex, IndexBroken, IndexBusy
from controller.passages import Passage, fit_passages, passages_prompt, sentences, tokenize
from model.files import FileCorrupted, FileMissing, FileStore
from utils.documents import DocumentError, Limits, parse

# --- files made in the test ---


def make_pdf(pages: list[list[str] | None]) -> bytes:
    """A real PDF: one page per list of lines (Helvetica, Latin-1 text); None draws a box and no text, like a scan."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for i, lines in enumerate(pages):
        if lines is None:
            stream = b"0.5 g 72 72 468 648 re f"
        else:
            escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
            stream = ("BT /F1 11 Tf 14 TL 72 750 Td " + " ".join(f"({e}) Tj T*" for e in escaped) + " ET").encode(
                "latin-1"
            )
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> "
            f"/Contents {4 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


THREE_PAGES = [
    ["Chapter one: the orchard.", "Apples ripen in September."],
    ["Chapter two: the contract.", "A ação judicial foi proposta em março; a indenização é de 5%."],
    ["Chapter three: the harbour.", "Ships unload copper at dawn."],
]


def with_bookmarks(data: bytes, marks: dict[str, int]) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    for title, page_index in marks.items():
        writer.add_outline_item(title, page_index)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Preface without a heading.")
    document.add_heading("Relatório de ação", level=1)
    document.add_paragraph("A ação coletiva pede indenização por danos.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Cidade", "População"
    table.cell(1, 0).text, table.cell(1, 1).text = "São Paulo", "12 milhões"
    document.add_heading("北京", level=2)
    document.add_paragraph("北京是中华人民共和国的首都。")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx() -> bytes:
    """A "DOCX" whose document.xml inflates from ~20 KB to 20 MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b" " * (20 * 2**20))
    return out.getvalue()


# --- parsing ---


def test_pdf_pages_keep_their_numbers_and_text() -> None:
    data = make_pdf(THREE_PAGES)
    parsed = parse(data, "contrato.pdf")
    assert (parsed.kind, parsed.pages, parsed.notes) == ("pdf", 3, ())
    assert [s.page for s in parsed.sections] == [1, 2, 3]
    assert "A ação judicial foi proposta em março; a indenização é de 5%." in parsed.sections[1].text
    assert "copper" in parsed.sections[2].text and "copper" not in parsed.sections[1].text


def test_pdf_bookmarks_become_headings_of_their_pages() -> None:
    parsed = parse(with_bookmarks(make_pdf(THREE_PAGES), {"Orchard": 0, "Contract": 1}), "book.pdf")
    assert [s.heading for s in parsed.sections] == ["Orchard", "Contract", "Contract"]


def test_the_type_comes_from_the_bytes_not_the_name() -> None:
    assert parse(make_pdf(THREE_PAGES), "download").kind == "pdf"
    assert parse(make_docx(), "attachment.bin").kind == "docx"


def test_an_encrypted_pdf_is_refused_in_a_sentence() -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(THREE_PAGES))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentError, match="“locked.pdf” is password-protected; save a copy without the password"):
        parse(out.getvalue(), "locked.pdf")


def test_a_pdf_with_only_an_owner_password_is_read() -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(THREE_PAGES))))
    writer.encrypt("", "owner-only", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert "copper" in parse(out.getvalue(), "print-protected.pdf").text


def test_a_scanned_pdf_says_it_has_no_text_layer() -> None:
    with pytest.raises(DocumentError) as caught:
        parse(make_pdf([None, None]), "scan.pdf")
    assert str(caught.value) == "“scan.pdf” has no text layer; it may be a scan — OCR is not available yet."


def test_scanned_pages_inside_a_text_pdf_are_named() -> None:
    parsed = parse(make_pdf([THREE_PAGES[0], None, THREE_PAGES[2]]), "mixed.pdf")
    assert [s.page for s in parsed.sections] == [1, 3]
    assert parsed.notes == ("Pages 2 of “mixed.pdf” have no text layer (scans?) and were left out.",)


def test_too_many_pages_is_refused_before_reading_them() -> None:
    with pytest.raises(DocumentError, match="has 3 pages; at most 2 can be read"):
        parse(make_pdf(THREE_PAGES), "long.pdf", Limits(max_pages=2))


def test_a_damaged_pdf_is_refused() -> None:
    with pytest.raises(DocumentError, match="“broken.pdf” is a damaged PDF"):
        parse(b"%PDF-1.4\nnothing else", "broken.pdf")


def heavy_pdf(lines: int) -> bytes:
    """One page of many short lines: a few MB that PDFium needs about 100 bytes of memory a byte to read."""
    return make_pdf([[f"line {n}" for n in range(lines)]])


def test_a_pdf_that_needs_too_much_memory_costs_a_sentence_not_the_app() -> None:
    # 400k lines (~6 MB) take PDFium ~0.6 GB; capped at 300 MB it aborts, as it would the app's
    # process if it read there. Here the test process lives on and is told in a sentence.
    with pytest.raises(
        DocumentError, match=r"“heavy\.pdf” needs more than 300 MB of memory to read, so it was stopped"
    ):
        parse(heavy_pdf(400_000), "heavy.pdf", Limits(pdf_memory_bytes=300 * 1024 * 1024))
    assert parse(make_pdf(THREE_PAGES), "after.pdf").sections[0].text.startswith("Chapter one")  # still reading


def test_a_pdf_that_takes_too_long_is_stopped() -> None:
    with pytest.raises(DocumentError, match=r"Reading “slow\.pdf” took over 0\.2 s and was stopped"):
        parse(heavy_pdf(400_000), "slow.pdf", Limits(pdf_seconds=0.2))  # the reader is killed, not waited for


def test_pdfs_are_read_at_once_by_several_sessions() -> None:
    from concurrent.futures import ThreadPoolExecutor

    books = {f"book{n}.pdf": make_pdf([[f"Book {n}, page {p}."] for p in range(1, 6)]) for n in range(4)}
    with ThreadPoolExecutor(4) as pool:
        read = dict(zip(books, pool.map(lambda item: parse(item[1], item[0]), books.items()), strict=True))
    for name, parsed in read.items():
        number = name.removeprefix("book").removesuffix(".pdf")
        assert [s.text for s in parsed.sections] == [f"Book {number}, page {p}." for p in range(1, 6)]
        assert [s.page for s in parsed.sections] == [1, 2, 3, 4, 5]


def test_docx_keeps_headings_tables_portuguese_and_chinese() -> None:
    parsed = parse(make_docx(), "relatório.docx")
    assert parsed.kind == "docx"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        (None, "Preface without a heading."),
        (
            "Relatório de ação",
            "A ação coletiva pede indenização por danos.\nCidade | População\nSão Paulo | 12 milhões",
        ),
        ("北京", "北京是中华人民共和国的首都。"),
    ]


def test_a_docx_zip_bomb_is_refused_before_anything_is_inflated(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zip_bomb_docx()
    assert len(bomb) < 100_000

    def no_inflating(*args: object, **kwargs: object) -> None:
        raise AssertionError("a part of the zip was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_inflating)
    with pytest.raises(DocumentError, match=r"would grow from .* to 20.0 MB .*that is how a zip bomb looks"):
        parse(bomb, "bomb.docx")


def test_a_docx_over_the_unpacked_limit_is_refused() -> None:
    with pytest.raises(DocumentError, match="takes .* unpacked; at most 10 bytes can be read"):
        parse(make_docx(), "big.docx", Limits(max_unpacked_bytes=10))


def test_a_password_protected_office_file_is_named() -> None:
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with pytest.raises(DocumentError, match="“secret.docx” is really an old Office file .* password-protected"):
        parse(ole2, "secret.docx")


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (make_docx(), "report.pdf", "“report.pdf” is really a Word document (DOCX), not a PDF; rename it"),
        (make_pdf(THREE_PAGES), "report.docx", "“report.docx” is really a PDF, not a Word document (DOCX)"),
        (b"just some words", "report.pdf", "“report.pdf” is not a PDF: it holds plain text."),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "notes.txt", "“notes.txt” is really an image (PNG), not plain text;"),
        (b"\x7fELF" + bytes(64), "tool", "“tool” is a program (ELF); bnaGPT reads PDF, Word (DOCX)"),
    ],
)
def test_a_lying_extension_says_what_the_file_really_is(data: bytes, name: str, message: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse(data, name)
    assert str(caught.value).startswith(message)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"^“empty.txt” is empty \(0 bytes\); there is nothing to read.$"):
        parse(b"", "empty.txt")


def test_a_500_mb_upload_is_refused_by_its_size_first() -> None:
    huge = bytes(500 * 2**20)  # zeroed pages the kernel never hands over unless they are read
    started = time.perf_counter()
    with pytest.raises(DocumentError, match=r"“movie.pdf” is 500.0 MB; files can be at most 25.0 MB."):
        parse(huge, "movie.pdf")
    assert time.perf_counter() - started < 0.05  # hashing or sniffing 500 MB would take far longer


def test_a_million_row_csv_keeps_the_row_cap_and_says_so() -> None:
    data = ("id,city\n" + "".join(f"{i},cidade {i}\n" for i in range(1_000_000))).encode()
    parsed = parse(data, "rows.csv")
    assert parsed.notes == ("“rows.csv” has 1,000,000 rows; only the first 5,000 were kept.",)
    assert len(parsed.sections) == 100 and parsed.sections[-1].heading == "rows 4,951–5,000"
    assert parsed.sections[0].text.splitlines()[0] == "id: 0; city: cidade 0"
    assert "id: 4999; city: cidade 4999" in parsed.text and "cidade 5000" not in parsed.text


def test_a_semicolon_csv_in_latin1_is_read() -> None:
    text = "produto;descrição\n" + "".join(f"ação {i};Informação sobre a operação número {i}\n" for i in range(40))
    parsed = parse(text.encode("cp1252"), "produtos.csv")
    assert "produto: ação 7; descrição: Informação sobre a operação número 7" in parsed.text


def test_markdown_keeps_headings_but_not_inside_code() -> None:
    text = "Intro line.\n\n# Ação\n\nTexto em português.\n\n北京\n====\n\n北京大学。\n\n```\n# not a heading\n```\n"
    parsed = parse(text.encode(), "notes.md")
    assert [(s.heading, s.text) for s in parsed.sections] == [
        (None, "Intro line."),
        ("Ação", "Texto em português."),
        ("北京", "北京大学。\n\n```\n# not a heading\n```"),
    ]


def test_html_drops_scripts_and_styles_and_keeps_headings() -> None:
    page = (
        "<!doctype html><html><head><title>Guia</title><style>p{color:red}</style></head><body>"
        "<p>Bem-vindo.</p><h2>Seção de ação</h2><p>Texto <b>importante</b>.</p><script>steal()</script>"
        "<h3>北京</h3><div>北京是首都。</div></body></html>"
    )
    parsed = parse(page.encode(), "guia.html")
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Guia", "Bem-vindo."),
        ("Seção de ação", "Texto importante."),
        ("北京", "北京是首都。"),
    ]
    assert "steal" not in parsed.text and "color" not in parsed.text


def test_plain_text_in_another_encoding_is_decoded() -> None:
    text = "Relatório anual: a ação da companhia valorizou, e a administração está satisfeita com a evolução. " * 5
    assert parse(text.encode("cp1252"), "relatorio.txt").text == text.strip()
    assert parse(("\ufeff" + text).encode("utf-8"), "bom.txt").text == text.strip()


# --- the file store ---


def test_a_file_is_stored_once_privately_and_read_back(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    first = store.put(b"same bytes", "a.txt", "text")
    second = store.put(b"same bytes", "b.txt")
    assert first.sha256 == second.sha256 and (first.name, second.name) == ("a.txt", "b.txt")
    blobs = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert sorted(p.name for p in blobs) == [first.sha256, f"{first.sha256}.json"]
    assert blobs[0].parent.name == first.sha256[:2]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in blobs)
    assert stat.S_IMODE((tmp_path / "files").stat().st_mode) == 0o700
    assert store.get(first.sha256) == b"same bytes" and store.exists(first.sha256)
    assert store.info(first.sha256) == first  # the first name is kept


def test_missing_corrupted_and_bogus_ids(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    stored = store.put(b"original", "x.txt")
    with pytest.raises(FileMissing, match="no longer stored"):
        store.get("0" * 64)
    assert not store.exists("0" * 64) and store.info("0" * 64) is None
    (tmp_path / stored.sha256[:2] / stored.sha256).write_bytes(b"tampered")
    with pytest.raises(FileCorrupted):
        store.get(stored.sha256)
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.get("../../etc/passwd")


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        FileStore(tmp_path).put(b"data", "x.txt")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --- the index ---


def index_file(index: DocumentIndex, store: FileStore, data: bytes, name: str) -> int:
    parsed = parse(data, name)
    return index.add(parsed, store.put(data, name, parsed.kind))


@pytest.fixture
def filled(tmp_path: Path) -> tuple[DocumentIndex, FileStore]:
    store, index = FileStore(tmp_path / "files"), DocumentIndex(tmp_path / "indexes" / "owner")
    index_file(index, store, make_pdf(THREE_PAGES), "contrato.pdf")
    index_file(index, store, make_docx(), "relatório.docx")
    index_file(index, store, "# Travel\n\nWe flew to Shanghai, then took the train to 上海.\n".encode(), "trip.md")
    return index, store


def test_the_tokenizer_keeps_portuguese_and_chinese() -> None:
    assert tokenize("AÇÃO ação acao") == ["acao", "acao", "acao"]
    assert tokenize("北京大学") == ["北", "京", "大", "学", "北京", "京大", "大学"]
    assert tokenize("Running to 東京!") == ["run", "to", "東", "京", "東京"]


def test_sentences_join_back_into_the_text() -> None:
    text = "Dr. Smith paid 3.5 million. Então? Sim! 北京是首都。上海很大。 The end"
    assert "".join(sentences(text)) == text
    assert sentences(text)[-3:] == ["北京是首都。", "上海很大。 ", "The end"]


def test_portuguese_is_found_with_and_without_accents(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, _ = filled
    for query in ("ação coletiva", "acao coletiva"):
        best = index.retrieve(query)[0]
        assert (best.file_name, best.heading) == ("relatório.docx", "Relatório de ação")
        assert "A ação coletiva pede indenização" in best.text


def test_chinese_is_found(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, _ = filled
    best = index.retrieve("北京")[0]
    assert best.text == "北京是中华人民共和国的首都。" and best.heading == "北京"
    assert index.retrieve("上海")[0].file_name == "trip.md"
    # 東京 shares only the character 京 with 北京: a weaker match than the whole word's
    assert index.retrieve("東京")[0].score < best.score / 2
    assert index.retrieve("zzyzx") == []


def test_passages_carry_the_right_page(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, store = filled
    for query, page in (("apples September", 1), ("indenização março", 2), ("copper ships", 3)):
        best = index.retrieve(query, top_k=1)[0]
        assert (best.file_name, best.page) == ("contrato.pdf", page)
        assert store.exists(best.sha256) and best.score > 0


def test_the_index_survives_a_restart_without_parsing_again(
    filled: tuple[DocumentIndex, FileStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = filled
    before = index.retrieve("copper")

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(documents_controller, "split", no_parsing)
    reopened = DocumentIndex(index.folder)
    assert reopened.retrieve("copper") == before
    assert [f.name for f in reopened.files()] == ["contrato.pdf", "relatório.docx", "trip.md"]


FILLER = " ".join(f"filler{n}" for n in range(120))  # words no question asks for


def test_words_close_together_outrank_the_same_words_far_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, index = FileStore(tmp_path / "files"), DocumentIndex(tmp_path / "ix")
    apart = f"Copper was mined in the hills. {FILLER} The harbour froze in winter."
    together = f"{FILLER} Copper left the harbour on barges. {FILLER[:300]}"
    index_file(index, store, apart.encode(), "apart.txt")
    index_file(index, store, together.encode(), "together.txt")
    assert [p.file_name for p in index.retrieve("copper harbour")] == ["together.txt", "apart.txt"]
    # scored by whole passages only (before windows), the shorter passage wins: windows made the difference
    monkeypatch.setattr(index_versions, "_windows", lambda tokens, head: [tokens])
    whole = DocumentIndex(tmp_path / "whole")
    index_file(whole, store, apart.encode(), "apart.txt")
    index_file(whole, store, together.encode(), "together.txt")
    assert [p.file_name for p in whole.retrieve("copper harbour")] == ["apart.txt", "together.txt"]


def test_windows_cover_every_word_of_a_passage() -> None:
    tokens = [f"w{n}" for n in range(203)]
    windows = index_versions._windows(["head", *tokens], 1)
    assert all(w[0] == "head" and len(w) <= index_versions.WINDOW_TOKENS + 1 for w in windows)
    assert {t for w in windows for t in w[1:]} == set(tokens)
    assert index_versions._windows(["short"], 0) == [["short"]]


def test_an_index_written_before_windows_is_read_and_searched_the_same(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, _ = filled
    before = [index.retrieve(q) for q in ("copper ships", "ação coletiva", "北京")]
    version = index.folder / (index.folder / "current").read_text()
    shutil.rmtree(version / "windows")
    (version / "window-owners.npy").unlink()
    reopened = DocumentIndex(index.folder)
    assert [reopened.retrieve(q) for q in ("copper ships", "ação coletiva", "北京")] == before


def test_damaged_window_arrays_are_a_broken_index(
    filled: tuple[DocumentIndex, FileStore],
) -> None:
    index, _ = filled
    version = index.folder / (index.folder / "current").read_text()
    (version / "window-owners.npy").write_bytes(b"not numpy")
    with pytest.raises(IndexBroken, match="add the files again"):
        DocumentIndex(index.folder).retrieve("copper")


def test_adding_the_same_file_again_adds_nothing(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, store = filled
    count = sum(f.passages for f in index.files())
    assert index_file(index, store, make_pdf(THREE_PAGES), "copy.pdf") == 0
    assert sum(f.passages for f in index.files()) == count


def test_another_instance_sees_what_one_added(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, store = filled
    other = DocumentIndex(index.folder)
    assert other.retrieve("volcano") == []
    index_file(index, store, b"The volcano erupted twice.", "news.txt")
    assert other.retrieve("volcano")[0].file_name == "news.txt"


def test_progress_is_reported_up_to_done(tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    data = make_pdf(THREE_PAGES)
    parsed = parse(data, "c.pdf")
    DocumentIndex(tmp_path / "ix").add(
        parsed, FileStore(tmp_path / "f").put(data, "c.pdf"), lambda f, m: seen.append((f, m))
    )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][1] == "c.pdf: 3 passages indexed."


def test_remove_and_delete(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, _ = filled
    pdf = index.retrieve("copper")[0].sha256
    assert index.remove(pdf) and not index.remove(pdf)
    assert index.retrieve("copper") == [] and index.retrieve("北京")
    index.delete()
    assert not index.folder.exists() and list(index.folder.parent.iterdir()) == []
    assert index.retrieve("北京") == [] and index.files() == []


def test_a_failed_add_leaves_the_previous_index_whole(
    filled: tuple[DocumentIndex, FileStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, store = filled
    before = sorted(p.name for p in index.folder.iterdir())
    real_save = documents_controller._Version.save

    def save_then_fail(self: object, folder: Path) -> None:
        real_save(self, folder)  # type: ignore[arg-type]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(documents_controller._Version, "save", save_then_fail)
    with pytest.raises(OSError, match="No space left"):
        index_file(index, store, b"The volcano erupted twice.", "news.txt")
    assert sorted(p.name for p in index.folder.iterdir()) == before  # no half-built version left
    for reader in (index, DocumentIndex(index.folder)):
        assert reader.retrieve("volcano") == [] and reader.retrieve("copper")[0].page == 3
        assert [f.name for f in reader.files()] == ["contrato.pdf", "relatório.docx", "trip.md"]


def test_a_failed_first_add_leaves_no_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace

    def crash_on_switch(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "current":
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_switch)
    index = DocumentIndex(tmp_path / "ix")
    with pytest.raises(OSError, match="Input/output"):
        index_file(index, FileStore(tmp_path / "f"), b"The volcano erupted twice.", "news.txt")
    assert sorted(p.name for p in index.folder.iterdir()) == [".lock"]
    assert DocumentIndex(index.folder).retrieve("volcano") == []


def test_what_a_killed_build_left_is_cleared_by_the_next_write(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, store = filled
    (index.folder / ".building-v-dead").mkdir()
    (index.folder / ".current-v-dead").write_text("v-dead")
    index_file(index, store, b"The volcano erupted twice.", "news.txt")
    assert sorted(p.name for p in index.folder.iterdir() if not p.name.startswith("v-")) == [".lock", "current"]
    assert len([p for p in index.folder.iterdir() if p.name.startswith("v-")]) == 1


def test_a_writer_waiting_too_long_gets_a_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents_controller, "LOCK_TIMEOUT", 0.1)
    index = DocumentIndex(tmp_path / "ix")
    index.folder.mkdir()
    with FileLock(str(index.folder / ".lock")), pytest.raises(IndexBusy, match="try again in a moment"):
        index_file(index, FileStore(tmp_path / "f"), b"The volcano erupted twice.", "news.txt")
    assert index.retrieve("volcano") == []


def test_the_llamaindex_retriever_gives_nodes_with_metadata(filled: tuple[DocumentIndex, FileStore]) -> None:
    index, _ = filled
    nodes = index.as_retriever(top_k=2).retrieve("copper ships")
    assert nodes[0].node.metadata["page"] == 3 and nodes[0].node.metadata["file_name"] == "contrato.pdf"
    assert nodes[0].score == index.retrieve("copper ships")[0].score


# --- fitting the window ---

PASSAGES = [
    Passage(f"Passage number {n} says something long about topic {n}. " * 12, f"f{n}.pdf", "a" * 64, n, None, 10 - n)
    for n in range(1, 6)
]


def test_passages_prompt_numbers_passages_with_file_and_page() -> None:
    prompt = passages_prompt([PASSAGES[0], Passage("北京是首都。", "notes.md", "b" * 64, None, "北京")])
    assert "[1] or [2][3]" in prompt.split("\n\n")[0]
    assert "\n\n[1] f1.pdf, page 1\nPassage number 1" in prompt
    assert prompt.endswith("\n\n[2] notes.md, “北京”\n北京是首都。")
    assert passages_prompt([]) == ""


@pytest.mark.parametrize("counter", [count_tokens, lambda text: len(text.split())], ids=["tiktoken", "words"])
def test_fit_passages_never_exceeds_the_budget(counter: object) -> None:
    count = counter  # type: ignore[assignment]
    whole = count(passages_prompt(PASSAGES))  # type: ignore[operator]
    for budget in [0, 10, 60, 80, 150, 200, 333, 500, whole - 1, whole]:
        kept = fit_passages(PASSAGES, budget, count)  # type: ignore[arg-type]
        assert count(passages_prompt(kept)) <= budget  # type: ignore[operator]
        assert [p.file_name for p in kept] == [p.file_name for p in PASSAGES[: len(kept)]]  # best first, none skipped
        assert all(p == q for p, q in zip(kept[:-1], PASSAGES, strict=False))  # only the last may be cut
    assert fit_passages(PASSAGES, whole, count) == PASSAGES  # type: ignore[arg-type]
    cut = fit_passages(PASSAGES, whole - 40, count)[-1]  # type: ignore[arg-type]
    assert cut.text.endswith(" …") and PASSAGES[4].text.startswith(cut.text[:-2])


def test_the_embedded_model_is_given_fewer_passages_than_its_window_holds(tmp_path: Path) -> None:
    """It reads a prompt at a few hundred tokens a second: found text is capped for it, not for others."""
    from controller.tools import EMBEDDED_FOUND_TOKENS, found_tokens, search_documents

    store, index = FileStore(tmp_path / "files"), DocumentIndex(tmp_path / "indexes" / "owner")
    pages = [
        [f"Page {n}: the lighthouse keeper logs the lamp, the weather and the ships seen."] * 40 for n in range(30)
    ]
    index_file(index, store, make_pdf(pages), "log.pdf")  # type: ignore[arg-type]
    embedded = search_documents("lighthouse lamp ships", index, found_tokens(8192, embedded=True), count_tokens)
    other = search_documents("lighthouse lamp ships", index, found_tokens(8192), count_tokens)
    assert found_tokens(8192, embedded=True) == EMBEDDED_FOUND_TOKENS < found_tokens(8192) == 8192 // 3
    assert count_tokens(embedded.context) <= EMBEDDED_FOUND_TOKENS < count_tokens(other.context)
    assert len(embedded.sources) < len(other.sources)
    assert found_tokens(2048, embedded=True) == found_tokens(2048) == 682  # a small window's share is smaller still


# --- what is shown of a passage under an answer ---

MARCH = "The regiment marched along the river road and camped by the mill that evening. "


def test_a_source_shows_the_stretch_its_question_is_about_not_the_passages_first_lines(tmp_path: Path) -> None:
    from controller.tools import EXCERPT_CHARS, search_documents

    answer = "The lighthouse roof was painted turquoise in 1998. "
    page = MARCH * 12 + answer + MARCH * 12  # one passage of ~2,000 characters, the answer in its middle
    store, index = FileStore(tmp_path / "files"), DocumentIndex(tmp_path / "indexes" / "owner")
    index_file(index, store, make_pdf([[page]]), "log.pdf")  # type: ignore[arg-type]
    found = search_documents("What colour is the lighthouse roof?", index, 2_000, count_tokens)
    [source] = found.sources
    assert answer.strip() in source.excerpt
    assert source.excerpt.startswith("…") and source.excerpt.endswith("…")  # said where it was cut
    assert len(source.excerpt) <= EXCERPT_CHARS + 2
    assert answer.strip() in found.context and len(found.context) > 2_000  # the model is given the whole passage


def test_an_excerpt_keeps_whole_sentences_and_cuts_a_long_one_at_a_word() -> None:
    from controller.passages import excerpt

    assert excerpt("  Short enough.  ", "anything", 600) == "Short enough."
    text = MARCH * 20
    shown = excerpt(text, "nothing in common", 300)
    assert shown.startswith("The regiment") and shown.endswith("evening.…")  # the start, whole sentences
    one_long = "word " * 400
    cut = excerpt(one_long, "word", 300)
    assert cut.endswith("word…") and len(cut) <= 301
    chinese = "灯塔的屋顶是绿松石色的。" * 10 + "渔船每天早上九点出发。" + "灯塔的屋顶是绿松石色的。" * 10
    assert "渔船每天早上九点出发。" in excerpt(chinese, "渔船几点出发", 60)
