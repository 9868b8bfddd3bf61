"""The document benchmark's question sets hold together: each answer quote is in its book, on one
page of the PDF the benchmark makes, and each question says how it is worded. A broken quote would
count as a miss and lower hit@5 without anyone noticing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import rag_bench

SETS = [
    (corpus, path)
    for corpus in rag_bench.CORPORA.values()
    for path in (corpus.questions, corpus.fresh)
    if path.exists()
]


def test_every_book_has_its_question_set_and_a_fresh_one() -> None:
    assert len(SETS) == 2 * len(rag_bench.CORPORA)


@pytest.mark.parametrize(("corpus", "path"), SETS, ids=[path.name for _, path in SETS])
def test_each_answer_quote_is_on_one_page_of_its_book(corpus, path: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text("utf-8"))
    assert data["corpus"] == corpus.book.name
    questions = data["questions"]
    assert len(questions) >= 32
    assert [q["id"] for q in questions] == list(range(1, len(questions) + 1))
    pages = [rag_bench.norm("\n".join(lines)) for lines in rag_bench.book_pages(corpus, 300)]
    for question in questions:
        assert question["kind"] in ("synonym", "paraphrase"), question
        assert question["question"].strip().endswith("?"), question
        assert bool(question.get("synonyms")) == (question["kind"] == "synonym"), question
        quote = rag_bench.norm(question["answer"])
        assert len(quote.split()) >= 2, question  # a quote too short would be found anywhere
        assert any(quote in page for page in pages), f"#{question['id']}: quote not on one page: {quote!r}"
