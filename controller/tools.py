"""What the switched-on tools find for an answer, before it is asked for.

The embedded model cannot call tools, so each tool the user switched on runs first: the web is
searched (or the conversation's documents are), and what was found goes into the instructions,
numbered [1], [2]… so the answer can cite it. The sources and what ran are kept with the answer.
Nothing here draws; the page shows progress around `gather`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from model.parts import Attachment, Source, ToolRun
from settings import Settings

# What the found text may take of the model's window (the rest is for the chat and the answer).
SHARE_OF_WINDOW = 3
CHARS_PER_TOKEN = 3
EXCERPT_CHARS = 600  # of each source, kept with the answer and shown under it: the stretch the question is about

CITE = (
    "Answer from the numbered sources below when they help, and cite each claim you take from them "
    "with its number in square brackets, like [1]. If they do not answer the question, say so."
)


@dataclass
class Findings:
    """What the tools found for one question: text for the instructions, the sources, the runs."""

    context: str = ""
    sources: list[Source] = field(default_factory=list)
    runs: list[ToolRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one sentence per tool that failed
    handed: list[str] = field(default_factory=list)  # found text handed to a model that called a tool

    def instructions(self, base: str) -> str:
        """`base` with the sources after it (unchanged when nothing was found)."""
        return f"{base}\n\n{self.context}" if self.context else base

    def given_tokens(self, count_tokens: Callable[[str], int]) -> int:
        """How many tokens of found text the model was given, in its instructions or as tool results."""
        return sum(count_tokens(text) for text in (self.context, *self.handed) if text)


# The embedded model reads a prompt at 150-260 tokens a second on 2 cores, so found text is what
# makes its first words late. With 1,800 tokens of passages the answer's passage was given as often
# as with its whole share (2,730 tokens): drill questions 0.89 / 0.80 (odd / even), music 0.94;
# with 1,200 it fell to 0.71 / 0.74 (benchmarks/rag_bench.py, "what the model is given").
EMBEDDED_FOUND_TOKENS = 1_800


def found_tokens(context_window: int, embedded: bool = False) -> int:
    """How many tokens of found text to give the model: a share of its window, less for the embedded model."""
    share = context_window // SHARE_OF_WINDOW
    return min(share, EMBEDDED_FOUND_TOKENS) if embedded else share


def budget_chars(context_window: int, embedded: bool = False) -> int:
    """How many characters of found text fit the model's window."""
    return max(1_000, found_tokens(context_window, embedded) * CHARS_PER_TOKEN)


def search_the_web(
    question: str,
    settings: Settings,
    budget: int,
    *,
    search: Callable[..., list] | None = None,
    fetch: Callable[..., list] | None = None,
) -> Findings:
    """Search the web for `question`, read the top pages, and number them as sources."""
    from controller.passages import excerpt
    from utils import web_search

    search = search or web_search.search
    fetch = fetch or web_search.fetch_pages
    try:
        results = search(question, settings, max_results=5)
        pages = fetch(results, budget, min(settings.request_timeout, 10.0), allow_private=settings.search_allow_private)
    except web_search.SearchError as error:
        return Findings(runs=[ToolRun("web_search", question, str(error), ok=False)], problems=[str(error)])
    sources, blocks = [], []
    for number, page in enumerate(pages, 1):
        shown = excerpt(page.text, question, EXCERPT_CHARS)
        sources.append(Source(number, "web", page.title or page.url, page.url, shown, url=page.url))
        blocks.append(f"[{number}] {page.title} ({page.url})\n{page.text}")
    listed = "\n".join(f"{r.title} — {r.url}" for r in results)
    run = ToolRun("web_search", question, listed or "no results")
    if not pages:
        return Findings(runs=[run], problems=["The web search found no page that could be read."])
    return Findings(CITE + "\n\nSources from the web:\n\n" + "\n\n".join(blocks), sources, [run])


# --- the conversation's documents ---


def attach(data: bytes, filename: str, settings: Settings) -> tuple[Attachment, list[str]]:
    """Check and store an uploaded file; its Attachment and what was left out of it (sentences).
    DocumentError (one sentence) when it cannot be read; nothing is stored then."""
    from model.files import FileStore
    from utils.documents import parse

    parsed = parse(data, filename, document_limits(settings))  # refused files are never stored
    stored = FileStore(settings.files_dir).put(data, filename, parsed.kind)
    return Attachment(stored.sha256, stored.name, stored.kind, stored.size), list(parsed.notes)


def document_limits(settings: Settings):  # type: ignore[no-untyped-def]
    from utils.documents import Limits

    return Limits(
        max_bytes=settings.document_max_mb * 1024 * 1024,
        max_pages=settings.document_max_pages,
        max_csv_rows=settings.document_max_rows,
        pdf_memory_bytes=settings.document_pdf_memory_mb * 1024 * 1024,
    )


def index_key(sha256s: Iterable[str]) -> str:
    """The folder name of the index that holds exactly these files."""
    return hashlib.sha256("\n".join(sorted(set(sha256s))).encode()).hexdigest()[:32]


def index_for(
    attachments: list[Attachment], settings: Settings, on_progress: Callable[[float, str], None] | None = None
):  # type: ignore[no-untyped-def]
    """The index of these files (built on first use, then reused: also after a restart).

    An index is named by the files it holds, so a conversation reopened in a fresh session finds
    its index again without the files being uploaded again; it is rebuilt from the stored files
    if it is gone. With an embedder configured, passages without vectors (new files, an index
    built before, another model) are embedded here; if that fails the index searches by words
    and its `find` says why."""
    from controller.documents import DocumentIndex
    from model.files import FileStore
    from utils.documents import parse
    from utils.embeddings import embedder_for

    files = {a.sha256: a for a in attachments}
    index = DocumentIndex(settings.data_dir / "indexes" / index_key(files), embedder_for(settings))
    present = {f.sha256 for f in index.files()}
    store = FileStore(settings.files_dir)
    missing = [a for a in files.values() if a.sha256 not in present]
    for number, attachment in enumerate(missing):
        if on_progress is not None:
            on_progress(number / len(missing), f"Indexing {attachment.name}…")
        parsed = parse(store.get(attachment.sha256), attachment.name, document_limits(settings))
        stored = store.info(attachment.sha256)
        if stored is not None:
            index.add(parsed, stored)
    index.embed_missing(on_progress)
    return index


def prune_indexes(settings: Settings, referenced: Iterable[Iterable[str]], keep_newer_than: float = 600.0) -> int:
    """Delete the indexes no saved conversation or assistant can use any more; how many were deleted.

    `referenced` holds each owner's files (the sha256s of a conversation's attachments, on all its
    branches; an assistant's knowledge files). An index is kept while its files are all among one
    owner's, so the index of a branch with fewer files survives too. One changed in the last
    `keep_newer_than` seconds is kept: it may belong to a chat whose first turn is not saved yet."""
    import time

    from controller.documents import DocumentIndex

    folder = settings.data_dir / "indexes"
    if not folder.is_dir():
        return 0
    owners = [frozenset(files) for files in referenced]
    deleted = 0
    for path in folder.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        changed = max((p.stat().st_mtime for p in (path, path / "current") if p.exists()), default=0.0)
        if time.time() - changed < keep_newer_than:
            continue
        index = DocumentIndex(path)
        try:
            held = {f.sha256 for f in index.files()}
        except RuntimeError:  # IndexBroken: nobody can search it either
            held = set()
        if held and any(held <= files for files in owners):
            continue
        index.delete()
        deleted += 1
    return deleted


def search_documents(question: str, index, budget_tokens: int, count_tokens: Callable[[str], int]) -> Findings:  # type: ignore[no-untyped-def]
    """The passages of the conversation's files that best answer `question`, fitted to the budget.

    A sentence in `problems` when meaning could not be searched (the words still answered)."""
    from controller.passages import excerpt, fit_passages, passages_prompt

    found = index.find(question, top_k=6)
    problems = [found.note] if found.note else []
    passages = fit_passages(found.passages, budget_tokens, count_tokens)
    sources = [
        Source(number, "document", p.file_name, p.where(), excerpt(p.text, question, EXCERPT_CHARS), sha256=p.sha256)
        for number, p in enumerate(passages, 1)
    ]
    listed = "\n".join(f"[{s.number}] {s.location}" for s in sources) or "nothing matched"
    run = ToolRun("documents", question, listed)
    if not passages:
        return Findings(runs=[run], problems=problems)
    return Findings(passages_prompt(passages), sources, [run], problems)


def combine(*found: Findings) -> Findings:
    """Several tools' findings as one, their sources numbered on from each other."""
    total = Findings()
    for findings in found:
        shift = len(total.sources)
        context = findings.context
        for source in reversed(findings.sources):  # [10] before [1], so no number is renumbered twice
            context = context.replace(f"[{source.number}]", f"[{source.number + shift}]")
        total.sources += [replace(s, number=s.number + shift) for s in findings.sources]
        total.context = "\n\n".join(c for c in (total.context, context) if c)
        total.runs += findings.runs
        total.problems += findings.problems
    return total


# --- tools a model calls itself (Groq's and OpenAI-compatible servers' models) ---

CODE_OUTPUT_CHARS = 4_000  # of a run's output, given back to the model and kept with the answer


def add_sources(findings: Findings, found: Findings) -> str:
    """Add a later search's sources to `findings`, numbered on; the text to hand the model."""
    shift = len(findings.sources)
    context = found.context
    for source in reversed(found.sources):
        context = context.replace(f"[{source.number}]", f"[{source.number + shift}]")
    findings.sources += [replace(s, number=s.number + shift) for s in found.sources]
    findings.runs += found.runs
    findings.problems += [p for p in found.problems if p not in findings.problems]
    if context:
        findings.handed.append(context)
    return context or (found.problems[0] if found.problems else "Nothing was found.")


def run_code_tool(findings: Findings, attachments: list[Attachment], settings: Settings) -> Callable[[str], str]:
    """`run_code(code)` for the agent: Python in the bubblewrap sandbox, with the chat's files in
    its working folder; the code, its output and the PNG files it wrote are kept with the answer."""
    from model.files import FileStore
    from utils.sandbox import SandboxLimits, SandboxUnavailable, run_python

    store = FileStore(settings.files_dir)

    def run_code(code: str) -> str:
        """Run Python 3 code in a sandbox and return what it printed. The files the user attached
        are in the working folder under their names. There is no network. Save charts with
        matplotlib as PNG files (plt.savefig("chart.png")): they are shown to the user."""
        files = {}
        for attachment in attachments:
            name = PurePath(attachment.name).name or attachment.sha256[:12]
            with suppress(OSError, LookupError):
                files[name] = store.get(attachment.sha256)
        try:
            result = run_python(code, files, SandboxLimits())
        except SandboxUnavailable as error:
            findings.runs.append(ToolRun("run_code", code, str(error), ok=False))
            return str(error)
        images = tuple(store.put(data, PurePath(path).name, "png").sha256 for path, data in result.images)
        output = result.stdout + (f"\n{result.stderr}" if result.stderr.strip() else "")
        if result.killed_reason:
            output += f"\n{result.killed_reason}"
        output = output.strip()[:CODE_OUTPUT_CHARS] or "(no output)"
        ok = result.exit_code == 0 and not result.killed_reason
        findings.runs.append(ToolRun("run_code", code, output, ok, images))
        return output + (f"\n(The user sees {len(images)} image(s) it saved.)" if images else "")

    return run_code


def searched(findings: Findings, tool: str, query: object, search: Callable[[str], Findings]) -> str:
    """What a search tool hands the model for `query`. Models sometimes send a list of keywords or a
    number where the schema says a string; they mean the words, not an error about Python types."""
    if isinstance(query, (list, tuple)):
        words = " ".join(str(item) for item in query if item is not None).strip()
    else:
        words = ("" if query is None else str(query)).strip()
    if not words:
        return f"The query was empty: call {tool} again with the words to look for."
    return add_sources(findings, search(words))


def agent_tools(
    findings: Findings,
    *,
    settings: Settings,
    budget: int,
    web: bool,
    code: bool,
    attachments: list[Attachment],
    index: object | None,
    count_tokens: Callable[[str], int],
) -> list[object]:
    """The tools a tool-calling model gets for one answer; what they find goes into `findings`."""
    from llama_index.core.tools import FunctionTool

    tools: list[object] = []
    if web:

        def search_web(query: str) -> str:
            """Search the web and read the top pages; returns numbered sources to cite as [n]."""
            return searched(findings, "search_web", query, lambda words: search_the_web(words, settings, budget))

        tools.append(FunctionTool.from_defaults(fn=search_web, name="search_web"))
    if index is not None:

        def search_files(query: str) -> str:
            """Search the files the user attached; returns numbered passages (file, page) to cite as [n]."""
            return searched(
                findings,
                "search_files",
                query,
                lambda words: search_documents(words, index, budget // CHARS_PER_TOKEN, count_tokens),
            )

        tools.append(FunctionTool.from_defaults(fn=search_files, name="search_files"))
    if code:
        tools.append(FunctionTool.from_defaults(fn=run_code_tool(findings, attachments, settings), name="run_code"))
    return tools
