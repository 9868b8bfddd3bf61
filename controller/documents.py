"""Chat with your files: index the passages of parsed documents, find the ones a question needs.

`DocumentIndex(folder, embedder)` keeps one owner's files (a conversation's or an assistant's)
searchable on disk: BM25 (bm25s) over the passages and words of controller/passages.py
(`split`, `tokenize`), offline.

A passage is scored by its best window of WINDOW_TOKENS words (BM25 over windows that overlap by
half) plus PASSAGE_WEIGHT times its own BM25 score: a question's words found close together in
one part of a long passage count for more than the same words scattered over all of it. On the
benchmark's held-out questions this took hit@5 from 0.77 to 0.80 on the book it was chosen on,
and from 0.88 to 0.94 on a second book (benchmarks/rag_bench.py; README).

With an embedder (utils/embeddings.py), passages also get vectors (EMBED_WORDS words at a time,
a passage's best piece speaking for it), and a question is answered by both rankings, words and
meaning, their first FUSE_DEPTH fused by reciprocal rank (RRF, k = 60). This is what LlamaIndex's
QueryFusionRetriever does with num_queries=1, without its LLM and its callbacks. If the embedder
fails while answering, the words alone answer and `find` says so in a note: it never stops the answer.

On disk: `<folder>/current` names the version folder in use (`v-<hex>/`: files.json,
passages.jsonl, the BM25 arrays of passages and of windows, and, with an embedder, vectors.npy
with its model named in files.json). A change builds a new version folder beside it and then
swaps `current` with one atomic rename, so a failure at any step leaves the previous index whole;
leftovers of a failed build are removed the next time the index is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from controller.passages import Passage, Progress, split, tokenize
from model.files import StoredFile
from utils.documents import ParsedDocument
from utils.files import fsync_dir

if TYPE_CHECKING:
    import numpy as np

    from utils.embeddings import Embedder

WINDOW_TOKENS = 80  # words in a window; windows overlap by half
PASSAGE_WEIGHT = 0.3  # of the whole passage's BM25 score, added to its best window's
RRF_K = 60  # reciprocal rank fusion: 1 / (RRF_K + rank) from each ranking
FUSE_DEPTH = 20  # passages each ranking brings to the fusion
EMBED_WORDS = 120  # a passage is embedded in pieces of this many words; its best piece speaks for it
LOCK_TIMEOUT = 60.0  # seconds to wait for another process's add to finish


@dataclass(frozen=True)
class IndexedFile:
    sha256: str
    name: str
    kind: str
    passages: int
    notes: tuple[str, ...] = ()


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


def _key(passage: Passage) -> str:
    """Names a passage by its content, so vectors computed outside the lock find their passage."""
    text = f"{passage.sha256}\0{passage.page}\0{passage.heading}\0{passage.text}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _pieces(passage: Passage) -> list[str]:
    """What is embedded of a passage: its heading and EMBED_WORDS words at a time. Small models read
    few tokens (all-MiniLM-L6-v2 256 word pieces: a 512-token passage would lose its end) and many
    servers cut long input without saying so. On the drill book, hybrid hit@5 was 0.77 with whole
    passages, 0.84 with pieces (all-MiniLM-L6-v2)."""
    head = f"{passage.heading}\n" if passage.heading else ""
    words = passage.text.split()
    return [head + " ".join(words[i : i + EMBED_WORDS]) for i in range(0, max(1, len(words)), EMBED_WORDS)]


def _windows(tokens: list[str], head: int) -> list[list[str]]:
    """A passage's tokens as windows of WINDOW_TOKENS, overlapping by half, each with the heading's `head` tokens."""
    heading, body = tokens[:head], tokens[head:]
    step = WINDOW_TOKENS // 2
    return [heading + body[i : i + WINDOW_TOKENS] for i in range(0, max(1, len(body) - step), step)]


class _Dense:
    """Vectors of a version's passages: rows of normalised float32, `owners[i]` the passage of row i."""

    def __init__(self, model: str, vectors: np.ndarray, owners: np.ndarray) -> None:
        self.model, self.vectors, self.owners = model, vectors, owners

    def covered(self) -> set[int]:
        return set(self.owners.tolist())

    def keeping(self, keep: list[int]) -> _Dense:
        """The vectors of passages `keep` (old positions), numbered as their new positions."""
        import numpy as np

        where = np.full(int(self.owners.max(initial=-1)) + 1, -1, dtype=np.int64)
        for new, old in enumerate(keep):
            if old < len(where):
                where[old] = new
        moved = where[self.owners] if len(self.owners) else self.owners
        rows = moved >= 0
        return _Dense(self.model, self.vectors[rows], moved[rows].astype(np.int32))

    def scores(self, vector: np.ndarray, count: int) -> np.ndarray:
        """Each passage's best cosine with `vector` over its pieces (-inf for a passage without)."""
        import numpy as np

        best = np.full(count, -np.inf, dtype=np.float32)
        np.maximum.at(best, self.owners, self.vectors @ vector.astype(np.float32))
        return best


class _Version:
    """One saved state of an index: its files, passages, the BM25 arrays over passages and over
    their windows, and the passages' vectors when they have any."""

    def __init__(
        self,
        files: list[IndexedFile],
        passages: list[Passage],
        bm25: Any = None,
        windows: tuple[Any, np.ndarray] | None = None,
        dense: _Dense | None = None,
    ) -> None:
        self.files, self.passages, self.dense = files, passages, dense
        if passages and (bm25 is None or windows is None):
            import bm25s
            import numpy as np

            texts = [tokenize(p.heading or "") for p in passages]
            tokens = [head + tokenize(p.text) for head, p in zip(texts, passages, strict=True)]
            if bm25 is None:
                bm25 = bm25s.BM25()
                bm25.index(tokens, show_progress=False)
            if windows is None:
                cut = [_windows(t, len(head)) for t, head in zip(tokens, texts, strict=True)]
                owners = np.array([i for i, pieces in enumerate(cut) for _ in pieces], dtype=np.int32)
                by_window = bm25s.BM25()
                by_window.index([w for pieces in cut for w in pieces], show_progress=False)
                windows = (by_window, owners)
        self.bm25, self.windows = bm25, windows

    @property
    def embedded_with(self) -> str | None:
        """The model of the vectors, when every passage has them (None otherwise)."""
        if self.dense is None or len(self.dense.covered()) < len(self.passages):
            return None
        return self.dense.model

    def unembedded(self, model: str) -> list[Passage]:
        """The passages without a vector from `model`."""
        covered = self.dense.covered() if self.dense is not None and self.dense.model == model else set()
        return [p for i, p in enumerate(self.passages) if i not in covered]

    def with_vectors(self, model: str, computed: dict[str, list[int]], vectors: np.ndarray) -> _Version:
        """This version with `vectors` rows given to the passages they were computed for (by `_key`)."""
        import numpy as np

        rows: list[int] = []
        owners: list[int] = []
        old = self.dense if self.dense is not None and self.dense.model == model else None
        if old is not None and old.vectors.shape[1] != vectors.shape[1]:
            old = None  # the same name now gives vectors of another size: those kept are worthless
        covered = old.covered() if old is not None else set()
        for i, passage in enumerate(self.passages):
            if i not in covered:
                for row in computed.get(_key(passage), []):
                    rows.append(row)
                    owners.append(i)
        new_vectors = vectors[rows].astype(np.float32)
        new_owners = np.array(owners, dtype=np.int32)
        if old is not None:
            new_vectors = np.concatenate([old.vectors, new_vectors])
            new_owners = np.concatenate([old.owners, new_owners])
        return _Version(self.files, self.passages, self.bm25, self.windows, _Dense(model, new_vectors, new_owners))

    def lexical(self, query: str) -> np.ndarray | None:
        """Each passage's score for `query`'s words: its best window's BM25 plus PASSAGE_WEIGHT × its own."""
        import numpy as np

        if self.bm25 is None or self.windows is None:
            return None
        tokens = tokenize(query)
        ids = self.bm25.get_tokens_ids(tokens)
        by_window, owners = self.windows
        window_ids = by_window.get_tokens_ids(tokens)
        if not ids:
            return None
        best = np.zeros(len(self.passages), dtype=np.float32)
        if window_ids:
            np.maximum.at(best, owners, by_window.get_scores_from_ids(window_ids))
        return best + PASSAGE_WEIGHT * self.bm25.get_scores_from_ids(ids)

    def search(self, query: str, top_k: int, vector: np.ndarray | None = None) -> list[Passage]:
        """The best `top_k` passages for the words of `query`, fused with meaning when `vector` is given."""
        import numpy as np

        if top_k < 1 or not self.passages:
            return []
        scores = self.lexical(query)
        ranked = [] if scores is None else [i for i in np.argsort(-scores, kind="stable")[:FUSE_DEPTH] if scores[i] > 0]
        if vector is None or self.dense is None:
            assert scores is not None or not ranked
            return [replace(self.passages[i], score=round(float(scores[i]), 4)) for i in ranked[:top_k]]  # type: ignore[index]
        meaning = self.dense.scores(vector, len(self.passages))
        close = [i for i in np.argsort(-meaning, kind="stable")[:FUSE_DEPTH] if np.isfinite(meaning[i])]
        fused: dict[int, float] = {}
        for ranking in (ranked, close):
            for rank, i in enumerate(ranking, 1):
                fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=lambda i: (-fused[i], i))[:top_k]
        return [replace(self.passages[i], score=round(fused[i], 5)) for i in best]

    def save(self, folder: Path) -> None:
        import numpy as np

        folder.mkdir(mode=0o700, parents=True)
        manifest: dict[str, Any] = {"version": 2, "files": [asdict(f) for f in self.files]}
        if self.dense is not None:
            manifest["embedding"] = {"model": self.dense.model, "rows": len(self.dense.owners)}
            np.save(folder / "vectors.npy", self.dense.vectors.astype(np.float32))
            np.save(folder / "vector-owners.npy", self.dense.owners.astype(np.int32))
        (folder / "files.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
        with (folder / "passages.jsonl").open("w", encoding="utf-8") as out:
            for passage in self.passages:
                out.write(json.dumps(asdict(passage), ensure_ascii=False) + "\n")
        if self.bm25 is not None and self.windows is not None:
            self.bm25.save(str(folder / "bm25"))
            self.windows[0].save(str(folder / "windows"))
            np.save(folder / "window-owners.npy", self.windows[1])
        for path in sorted(folder.rglob("*"), reverse=True):  # files, then their folders
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
            else:
                fsync_dir(path)
        fsync_dir(folder)

    @classmethod
    def load(cls, folder: Path) -> _Version:
        manifest = json.loads((folder / "files.json").read_text("utf-8"))
        files = [IndexedFile(**{**f, "notes": tuple(f.get("notes", ()))}) for f in manifest["files"]]
        with (folder / "passages.jsonl").open(encoding="utf-8") as lines:
            passages = [Passage(**json.loads(line)) for line in lines if line.strip()]
        bm25, windows, dense = None, None, None
        if passages:
            import bm25s
            import numpy as np

            bm25 = bm25s.BM25.load(str(folder / "bm25"))
            if bm25.scores["num_docs"] != len(passages):
                raise ValueError(f"{len(passages)} passages but {bm25.scores['num_docs']} in the BM25 arrays")
            if (folder / "windows").is_dir():  # an index written before windows were scored has none: built below
                owners = np.load(folder / "window-owners.npy")
                windows = (bm25s.BM25.load(str(folder / "windows")), owners)
                if owners.size and int(owners.max()) >= len(passages):
                    raise ValueError("a window belongs to no passage")
            if embedding := manifest.get("embedding"):
                vectors = np.load(folder / "vectors.npy")
                vector_owners = np.load(folder / "vector-owners.npy")
                if len(vectors) != len(vector_owners) or len(vectors) != embedding["rows"]:
                    raise ValueError(f"{len(vectors)} vectors for {embedding['rows']} rows")
                if vector_owners.size and int(vector_owners.max()) >= len(passages):
                    raise ValueError("a vector belongs to no passage")
                dense = _Dense(str(embedding["model"]), vectors, vector_owners)
        return cls(files, passages, bm25, windows, dense)


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
