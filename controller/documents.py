"""Chat with your files: index the passages of parsed documents, find the ones a question needs.

`DocumentIndex(folder, embedder)` keeps one owner's files (a conversation's or an assistant's)
searchable on disk: BM25 (bm25s) over the passages and words of controller/passages.py
(`split`, `tokenize`), offline. This module adds, embeds, finds and removes files, and swaps one
saved state of the index for the next under a lock. What a saved state holds, how it scores a
question and how it is written to disk is controller/index_versions.py.

With an embedder (utils/embeddings.py), passages also get vectors (EMBED_WORDS words at a time,
a passage's best piece speaking for it), and a question is answered by both rankings, words and
meaning, their first FUSE_DEPTH fused by reciprocal rank (RRF, k = 60). This is what LlamaIndex's
QueryFusionRetriever does with num_queries=1, without its LLM and its callbacks. If the embedder
fails while answering, the words alone answer and `find` says so in a note: it never stops the answer.

On disk: `<folder>/current` names the version folder in use (`v-<hex>/`, see
controller/index_versions.py). A change builds a new version folder beside it and then
swaps `current` with one atomic rename, so a failure at any step leaves the previous index whole;
leftovers of a failed build are removed the next time the index is written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from controller.index_versions import RRF_K, IndexedFile, _key, _Version
from controller.passages import Passage, Progress, split
from model.files import StoredFile
from utils.documents import ParsedDocument
from utils.files import fsync_dir

if TYPE_CHECKING:
    from utils.embeddings import Embedder

EMBED_WORDS = 120  # a passage is embedded in pieces of this many words; its best piece speaks for it
LOCK_TIMEOUT = 60.0  # seconds to wait for another process's add to finish


class IndexBroken(RuntimeError):
    """The index on disk cannot be read; `str(error)` says so and what to do."""


class IndexBusy(RuntimeError):
    """Another process held the index's lock for longer than LOCK_TIMEOUT seconds."""


@dataclass(frozen=True)
class Found:
    """What `find` found: the passages, best first, and a sentence for the page when it searched by words
    only although an embedder is configured (None otherwise)."""

    passages: list[Passage]
    note: str | None = None


class Indexes:
    """Several indexes searched as one (a chat's own files and its assistant's knowledge): each
    ranks its passages, and the rankings are fused by reciprocal rank, since scores of different
    indexes cannot be compared (each weighs words by its own files)."""

    def __init__(self, *indexes: DocumentIndex) -> None:
        self.indexes = indexes

    def find(self, query: str, top_k: int = 5) -> Found:
        if len(self.indexes) == 1:
            return self.indexes[0].find(query, top_k)
        founds = [index.find(query, top_k) for index in self.indexes]
        fused: dict[tuple[str, str], tuple[float, Passage]] = {}
        for found in founds:
            for rank, passage in enumerate(found.passages, 1):
                key = (passage.sha256, passage.text)  # a file in both is one file
                score = fused.get(key, (0.0, passage))[0] + 1.0 / (RRF_K + rank)
                fused[key] = (score, passage)
        best = sorted(fused.values(), key=lambda pair: pair[0], reverse=True)[:top_k]
        notes = [f.note for f in founds if f.note]
        return Found([passage for _, passage in best], notes[0] if notes else None)

    def retrieve(self, query: str, top_k: int = 5) -> list[Passage]:
        return self.find(query, top_k).passages


class DocumentIndex:
    """One owner's files, searchable: `add` a parsed file, `retrieve` passages for a question, `delete` it all.

    With an `embedder`, `embed_missing` gives passages vectors and `find` fuses words and meaning."""

    def __init__(self, folder: Path, embedder: Embedder | None = None) -> None:
        self.folder = Path(folder)
        self.embedder = embedder
        self._lock = FileLock(str(self.folder / ".lock"), timeout=LOCK_TIMEOUT)
        self._mutex = threading.Lock()
        self._loaded: tuple[str, _Version] | None = None
        self._embed_problem: str | None = None  # why the last embed_missing failed, for find's note

    # --- reading ---

    def files(self) -> list[IndexedFile]:
        """The files in the index, in the order they were added."""
        return list(self._current().files)

    def retrieve(self, query: str, top_k: int = 5) -> list[Passage]:
        """The passages that best match `query`, best first; [] when nothing matches."""
        return self.find(query, top_k).passages

    def find(self, query: str, top_k: int = 5) -> Found:
        """`retrieve`, with a note when meaning could not be searched and words alone answered."""
        version = self._current()
        if self.embedder is None or not version.passages:
            return Found(version.search(query, top_k))
        from utils.embeddings import EmbeddingError

        if version.embedded_with != self.embedder.model:
            why = self._embed_problem or "The files were searched by words only: their passages have no embeddings yet."
            return Found(version.search(query, top_k), why)
        try:
            vector = self.embedder.embed([query])[0]
        except EmbeddingError as error:
            return Found(version.search(query, top_k), f"The files were searched by words only: {error}")
        assert version.dense is not None  # embedded_with said so
        if len(vector) != version.dense.vectors.shape[1]:  # the model changed behind the same name
            with self._writing():
                current = self._current()
                self._commit(_Version(current.files, current.passages, current.bm25, current.windows))
            why = f"The files were searched by words only: {self.embedder.model} changed; they are embedded again next time."
            return Found(current.search(query, top_k), why)
        return Found(version.search(query, top_k, vector))

    def as_retriever(self, top_k: int = 5) -> Any:
        """This index as a LlamaIndex BaseRetriever (for an agent's tool or a fusion retriever)."""
        return _retriever_class()(self, top_k)

    # --- writing ---

    def add(self, parsed: ParsedDocument, stored: StoredFile, on_progress: Progress | None = None) -> int:
        """Index a parsed file; returns how many passages it added (0 when it was already in).

        Only words are indexed here: `embed_missing` gives the new passages vectors."""
        if parsed.sha256 != stored.sha256:
            raise ValueError(f"{parsed.name} was parsed from other bytes than the stored {stored.name}.")
        report = on_progress or (lambda fraction, text: None)
        if any(f.sha256 == stored.sha256 for f in self.files()):
            report(1.0, f"{stored.name} is already in the index.")
            return 0
        passages = split(parsed, stored.name, report)  # outside the lock: it needs no index
        with self._writing():
            current = self._current()  # again, inside the lock: another tab may have added it since
            if any(f.sha256 == stored.sha256 for f in current.files):
                report(1.0, f"{stored.name} is already in the index.")
                return 0
            entry = IndexedFile(stored.sha256, stored.name, parsed.kind, len(passages), parsed.notes)
            report(0.8, f"Indexing {len(current.passages) + len(passages):,} passages…")
            self._commit(_Version([*current.files, entry], [*current.passages, *passages], dense=current.dense))
            report(1.0, f"{stored.name}: {len(passages):,} passages indexed.")
            return len(passages)

    def embed_missing(self, on_progress: Progress | None = None) -> str | None:
        """Give every passage that has none a vector from the embedder (all of them when the model
        changed); None when done or nothing was needed, else a sentence saying why not (the index
        still searches by words)."""
        from utils.embeddings import EmbeddingError

        if self.embedder is None:
            return None
        model = self.embedder.model
        version = self._current()
        missing = version.unembedded(model)
        if not missing:
            return None
        # embedded outside the lock (it can take a while); matched back to passages by their content
        pieces = [(_key(passage), text) for passage in missing for text in _pieces(passage)]
        report = on_progress or (lambda fraction, text: None)
        try:
            vectors = self.embedder.embed([text for _, text in pieces], report)
        except EmbeddingError as error:
            self._embed_problem = f"The files were searched by words only: {error}"
            return self._embed_problem
        self._embed_problem = None
        computed: dict[str, list[int]] = {}
        for row, (key, _) in enumerate(pieces):
            computed.setdefault(key, []).append(row)
        with self._writing():
            current = self._current()
            self._commit(current.with_vectors(model, computed, vectors))
        report(1.0, f"{len(missing):,} passages embedded.")
        return None

    def remove(self, sha256: str) -> bool:
        """Take a file out of the index; False when it was not in."""
        with self._writing():
            current = self._current()
            if not any(f.sha256 == sha256 for f in current.files):
                return False
            keep = [i for i, p in enumerate(current.passages) if p.sha256 != sha256]
            files = [f for f in current.files if f.sha256 != sha256]
            dense = current.dense.keeping(keep) if current.dense is not None else None
            self._commit(_Version(files, [current.passages[i] for i in keep], dense=dense))
            return True

    def delete(self) -> None:
        """Remove the whole index and its folder."""
        if not self.folder.exists():
            return
        with self._writing():
            doomed = self.folder.with_name(f".deleted-{self.folder.name}-{uuid.uuid4().hex[:8]}")
            os.replace(self.folder, doomed)  # one step: no half-deleted index is ever seen
            shutil.rmtree(doomed, ignore_errors=True)
            self._loaded = None

    # --- the folder ---

    def _writing(self) -> Any:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _Both(self._mutex, self._lock)

    def _current(self, retry: bool = False) -> _Version:
        """The version `current` names, loaded once and again only when another writer replaced it."""
        try:
            name = (self.folder / "current").read_text("utf-8").strip()
        except FileNotFoundError:
            return _Version([], [])
        if self._loaded is not None and self._loaded[0] == name:
            return self._loaded[1]
        try:
            version = _Version.load(self.folder / name)
        except FileNotFoundError as exc:
            if not retry:  # a writer swapped versions and removed this one as we read it: read the new one
                return self._current(retry=True)
            raise IndexBroken(
                f"The document index in {self.folder} is incomplete ({exc}); add the files again."
            ) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexBroken(f"The document index in {self.folder} is damaged ({exc}); add the files again.") from exc
        self._loaded = (name, version)
        return version

    def _commit(self, version: _Version) -> None:
        """Write `version` to a new folder, then point `current` at it in one rename."""
        name = f"v-{uuid.uuid4().hex[:12]}"
        building = self.folder / f".building-{name}"
        try:
            version.save(building)
            os.replace(building, self.folder / name)
            pointer = self.folder / f".current-{name}"
            pointer.write_text(name, "utf-8")
            with pointer.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(pointer, self.folder / "current")
            fsync_dir(self.folder)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            shutil.rmtree(self.folder / name, ignore_errors=True)
            (self.folder / f".current-{name}").unlink(missing_ok=True)
            raise
        self._loaded = (name, version)
        for leftover in self.folder.iterdir():  # earlier versions, and what killed builds left
            if leftover.name not in (name, "current", ".lock"):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)


class _Both:
    """Enter a thread lock and then a file lock (other processes), leave both."""

    def __init__(self, mutex: threading.Lock, lock: FileLock) -> None:
        self.mutex, self.lock = mutex, lock

    def __enter__(self) -> None:
        self.mutex.acquire()
        try:
            self.lock.acquire()
        except Timeout as exc:
            self.mutex.release()
            raise IndexBusy("Files are being added to this index elsewhere; try again in a moment.") from exc
        except BaseException:
            self.mutex.release()
            raise

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        self.mutex.release()


def _pieces(passage: Passage) -> list[str]:
    """What is embedded of a passage: its heading and EMBED_WORDS words at a time. Small models read
    few tokens (all-MiniLM-L6-v2 256 word pieces: a 512-token passage would lose its end) and many
    servers cut long input without saying so. On the drill book, hybrid hit@5 was 0.77 with whole
    passages, 0.84 with pieces (all-MiniLM-L6-v2)."""
    head = f"{passage.heading}\n" if passage.heading else ""
    words = passage.text.split()
    return [head + " ".join(words[i : i + EMBED_WORDS]) for i in range(0, max(1, len(words)), EMBED_WORDS)]


@lru_cache(maxsize=1)
def _retriever_class() -> type:
    """Defined on first use, so importing this module does not load LlamaIndex."""
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    class PassageRetriever(BaseRetriever):
        """A DocumentIndex's passages as TextNodes with file, page and heading in their metadata."""

        def __init__(self, index: DocumentIndex, top_k: int) -> None:
            super().__init__()
            self._index, self._top_k = index, top_k

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            found = self._index.retrieve(query_bundle.query_str, self._top_k)
            return [NodeWithScore(node=_node(TextNode, p), score=p.score) for p in found]

    return PassageRetriever


def _node(text_node: Any, passage: Passage) -> Any:
    digest = hashlib.sha1(f"{passage.page}\0{passage.heading}\0{passage.text}".encode(), usedforsecurity=False)
    return text_node(
        text=passage.text,
        id_=f"{passage.sha256[:16]}-{digest.hexdigest()[:16]}",
        metadata={
            "file_name": passage.file_name,
            "sha256": passage.sha256,
            "page": passage.page,
            "heading": passage.heading,
        },
    )
