"""Full-text search over many conversations: query latency, index build time, index size.

    python benchmarks/search_bench.py [--conversations 5000] [--messages 20] [--length 500] [--repeat 15]

Writes a conversations file of N conversations × M messages (~L characters each, words drawn
from a Zipf-like vocabulary, with some Portuguese, Chinese and emoji sentences mixed in), reads
it with the real ConversationStore and searches it through model.search.SearchIndex, the index
the sidebar uses. Query times are medians (min–max) of `repeat` runs, after the index is built.
A linear scan over the folded text in memory (the alternative to an index) is timed for contrast.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.message import Message  # noqa: E402
from model.search import SearchIndex, fold, index_path  # noqa: E402
from model.store import ConversationStore  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
RARE = "zanzibarite"  # in one message only
COMMON = ["the", "of", "and", "to", "a", "in", "is", "it", "that", "for", "you", "with", "on", "as", "this"]
SENTENCES = [
    "A ação de hoje foi uma decisão rápida; a situação exige atenção.",
    "我们明天去北京参观故宫，然后吃烤鸭。",
    "Party time 🎉 with cake 🎂 and music 🎶!",
    "Le café est très chaud, naïve façade.",
]
QUERIES = [
    ("common word", "the"),
    ("two words", "memory leak"),
    ("rare word", RARE),
    ("accented", "acao"),
    ("Chinese", "北京"),
    ("emoji", "🎉"),
    ("prefix", "pyth"),
    ("no match", "qwertyuiopasdf"),
]


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    made = {"".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(size)}
    return COMMON + ["memory", "leak", "python", "streamlit", "index"] + sorted(made)


def corpus(conversations: int, messages: int, length: int, seed: int = 7) -> list[dict[str, Any]]:
    """Conversations in the v1 wire format, as page_bench writes them."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf: "the" is the most common
    pool = rng.choices(words, weights, k=400_000)
    rare_at = (conversations * 4 // 5, messages // 2)
    result = []
    for i in range(conversations):
        stamp = (START + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        texts = []
        for j in range(messages):
            start = rng.randrange(len(pool) - 200)
            text = " ".join(pool[start : start + length // 5])[:length]
            if rng.random() < 0.02:
                text = rng.choice(SENTENCES) + " " + text
            if (i, j) == rare_at:
                text = f"{text[: length // 2]} {RARE} {text[length // 2 :]}"
            texts.append(text)
        result.append(
            {
                "id": f"c{i:05d}",
                "name": f"conversation {i:05d}",
                "created_at": stamp,
                "updated_at": stamp,
                "model": "test-model",
                "messages": [
                    {"role": "user" if j % 2 == 0 else "assistant", "content": t, "created_at": stamp}
                    for j, t in enumerate(texts)
                ],
            }
        )
    return result


def timed(action: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "conversations.json"
        data = corpus(args.conversations, args.messages, args.length)
        document = {"version": 1, "conversations": {c["id"]: c for c in data}}
        file.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        store = ConversationStore(file)
        start = time.perf_counter()
        token, conversations = store.contents()
        read = time.perf_counter() - start
        print(
            f"## Search over {args.conversations:,} conversations × {args.messages} messages × ~{args.length} characters\n"
        )
        print(f"File {file.stat().st_size / 2**20:.0f} MB, read by the store in {read:.1f} s. ", end="")
        print(f"Milliseconds, median (min–max) of {args.repeat}; target: every query ≤ 50 ms median.\n")

        index = SearchIndex(index_path(file))
        start = time.perf_counter()
        index.refresh(token, conversations)
        build = time.perf_counter() - start
        size = index.size()

        print("| query | text | hits | index (FTS5) | linear scan in memory |")
        print("|---|---|---:|---:|---:|")
        folded = [(c.id, fold(m.content)) for c in conversations.values() for m in c.messages]

        def scan(needle: str) -> int:
            words = fold(needle).split()
            return len({cid for cid, text in folded if all(w in text for w in words)})

        for label, query in QUERIES:
            times, hits = timed(lambda q=query: index.search(q, token, conversations), args.repeat)  # type: ignore[misc]
            scans, _ = timed(lambda q=query: scan(q), max(3, args.repeat // 5))  # type: ignore[misc]
            print(f"| {label} | `{query}` | {len(hits)} | {ms(times)} | {ms(scans)} |")  # type: ignore[arg-type]

        # a turn in one conversation: the next search indexes that conversation again
        target = conversations[data[len(data) // 2]["id"]]
        turns = []
        for n in range(5):
            store.update_messages(target.id, [*target.path(), Message("user", f"one more {n}")], "m", target.name)
            token, conversations = store.contents()
            start = time.perf_counter()
            again = index.refresh(token, conversations)
            turns.append((time.perf_counter() - start) * 1000)
            assert again == 1, again
        unchanged, _ = timed(lambda: index.refresh(token, conversations), args.repeat)
        # another process's view: a fresh index object on the built file checks every fingerprint
        index.close()
        start = time.perf_counter()
        fresh = SearchIndex(index_path(file))
        rebuilt = fresh.refresh(token, conversations)
        reopen = time.perf_counter() - start
        # another process rewrote the file: every object new, the text the same but in one conversation
        other = ConversationStore(file)
        first = other.load(data[0]["id"])
        assert first is not None
        other.update_messages(first.id, [*first.path(), Message("user", "from elsewhere")], "m", first.name)
        token2, conversations2 = store.contents()
        start = time.perf_counter()
        changed = fresh.refresh(token2, conversations2)
        rewritten = time.perf_counter() - start
        fresh.close()
        # the text alone, without the index: what the FTS tables add
        text_mb = sum(len(t.encode()) for _, t in folded) / 2**20

        print("\n| index | time |")
        print("|---|---:|")
        print(f"| build from nothing ({len(folded):,} messages) | {build:.1f} s |")
        print(f"| after a turn (1 conversation indexed again) | {ms(turns)} ms |")
        print(f"| nothing changed (same objects) | {ms(unchanged)} ms |")
        print(f"| first search of a new process, file up to date ({rebuilt} indexed) | {reopen * 1000:.0f} ms |")
        print(f"| file rewritten by another process ({changed} indexed) | {rewritten * 1000:.0f} ms |")
        print(f"\nIndex on disk: {size / 2**20:.0f} MB (the messages' text alone: {text_mb:.0f} MB).")


if __name__ == "__main__":
    main()
