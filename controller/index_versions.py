"""One saved state of a document index: its files and passages, how it scores a question, its folder on disk.

A passage is scored by its best window of WINDOW_TOKENS words (BM25 over windows that overlap by
half) plus PASSAGE_WEIGHT times its own BM25 score: a question's words found close together in
one part of a long passage count for more than the same words scattered over all of it. On the
benchmark's held-out questions this took hit@5 from 0.77 to 0.80 on the book it was chosen on,
and from 0.88 to 0.94 on a second book (benchmarks/rag_bench.py; README).

With vectors, `search` fuses the ranking by words with the ranking by meaning, their first
FUSE_DEPTH, by reciprocal rank (RRF, k = RRF_K).

A version folder (`v-<hex>/`) holds files.json (the files, and the model of the vectors when there
are any), passages.jsonl, the BM25 arrays of passages and of windows, and vectors.npy with its
vector-owners.npy. It is written once and never changed: controller/documents.py builds a new one
for every change and decides which one is current.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.passages import Passage, tokenize
from utils.files import fsync_dir

if TYPE_CHECKING:
    import numpy as np

WINDOW_TOKENS = 80  # words in a window; windows overlap by half
PASSAGE_WEIGHT = 0.3  # of the whole passage's BM25 score, added to its best window's
RRF_K = 60  # reciprocal rank fusion: 1 / (RRF_K + rank) from each ranking
FUSE_DEPTH = 20  # passages each ranking brings to the fusion


@dataclass(frozen=True)
class IndexedFile:
    """A file in an index: its SHA-256, name and kind, how many passages it gave, what parsing noted."""

    sha256: str
    name: str
    kind: str
    passages: int
    notes: tuple[str, ...] = ()


def _key(passage: Passage) -> str:
    """Names a passage by its content, so vectors computed outside the lock find their passage."""
    text = f"{passage.sha256}\0{passage.page}\0{passage.heading}\0{passage.text}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


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
