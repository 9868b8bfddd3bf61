"""ConversationStore beside the tutorial's store: median ms per operation, then lost updates.

    python benchmarks/store_bench.py [--quick]

Each conversation has 20 messages of 500 characters. `--quick` skips 5,000 conversations.
Files live in a temporary folder (on the same disk as the system temp dir; our writes fsync).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.message import Conversation, Message
from model.store import ConversationStore

STAMP = "2025-01-01T00:00:00.000Z"
MP = multiprocessing.get_context("spawn") if sys.platform == "win32" else multiprocessing.get_context("fork")


class TutorialStore:
    """The tutorial's store: every call reads the whole file; writes dump it back in place, no lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[dict[str, str]]]:
        with open(self.path, encoding="utf-8") as file:
            data: dict[str, list[dict[str, str]]] = json.load(file)
        return data

    def _write(self, data: dict[str, list[dict[str, str]]]) -> None:
        with open(self.path, "w", encoding="utf-8") as file:
            json.dump(data, file)

    def save(self, name: str, messages: list[dict[str, str]]) -> None:
        data = self._read()
        data[name] = messages
        self._write(data)

    def load(self, name: str) -> list[dict[str, str]] | None:
        return self._read().get(name)

    def list(self) -> list[str]:
        return list(self._read())

    def delete(self, name: str) -> None:
        data = self._read()
        data.pop(name, None)
        self._write(data)


def conversation(i: int, tag: str = "") -> Conversation:
    text = (f"{tag}message {i} " + "lorem ipsum dolor sit amet " * 20)[:500]
    messages = tuple(Message("user" if j % 2 == 0 else "assistant", text, STAMP) for j in range(20))
    return Conversation(
        id=f"c{i:05d}", name=f"conversation {i}", messages=messages, model="m", created_at=STAMP, updated_at=STAMP
    )


def plain(conv: Conversation) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in conv.messages]


def median_ms(action: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(folder: Path, count: int, repeat: int) -> list[str]:
    convs = [conversation(i) for i in range(count)]
    ours_path, theirs_path = folder / f"ours-{count}.json", folder / f"theirs-{count}.json"
    # Build both files directly: `count` saves through the tutorial store would take minutes.
    ours_path.write_text(
        json.dumps({"version": 1, "conversations": {c.id: c.to_dict() for c in convs}}, ensure_ascii=False)
    )
    theirs_path.write_text(json.dumps({c.name: plain(c) for c in convs}))

    store, tutorial = ConversationStore(ours_path), TutorialStore(theirs_path)
    start = time.perf_counter()
    store.list()
    first_read = (time.perf_counter() - start) * 1000
    store.save(convs[0])  # the first save serialises every conversation once; later saves reuse that
    edits = [conversation(i * 7 % count, tag=f"edit {i} ") for i in range(repeat)]
    ours = (
        median_ms(lambda i: store.save(edits[i]), repeat),
        median_ms(lambda i: store.load(convs[i * 13 % count].id), max(repeat, 50)),
        median_ms(lambda i: store.list(), max(repeat, 50)),
    )
    theirs = (
        median_ms(lambda i: tutorial.save(edits[i].name, plain(edits[i])), repeat),
        median_ms(lambda i: tutorial.load(convs[i * 13 % count].name), repeat),
        median_ms(lambda i: tutorial.list(), repeat),
    )
    size = f"{ours_path.stat().st_size / 2**20:.1f} MB"
    row = "| {:,} | {} | {} | {:.2f} | {:.3f} | {:.3f} | {:.1f} |"
    return [
        row.format(count, size, "tutorial", *theirs, theirs[1]),
        row.format(count, size, "**ConversationStore**", *ours, first_read),
    ]


# --- concurrency: each worker has its own store instance on the shared file ---


def ours_worker(path: str, prefix: str, saves: int) -> int:
    store = ConversationStore(path)
    for i in range(saves):
        store.save(Conversation(name=f"{prefix}-{i}", messages=conversation(i).messages))
    return 0


def tutorial_worker(path: str, prefix: str, saves: int) -> int:
    store, errors = TutorialStore(Path(path)), 0
    for i in range(saves):
        try:
            store.save(f"{prefix}-{i}", plain(conversation(i)))
        except json.JSONDecodeError:  # read a file another writer had just truncated: this save is lost
            errors += 1
    return errors


def count_tutorial(path: Path) -> int:
    return len(json.loads(path.read_text() or "{}"))


def count_ours(path: Path) -> int:
    return len(ConversationStore(path).list())


def _process_main(worker: Callable[[str, str, int], int], path: str, prefix: str, saves: int, errors: object) -> None:
    errors.value += worker(path, prefix, saves)  # type: ignore[attr-defined]


def run_concurrently(kind: str, worker: Callable[[str, str, int], int], path: Path, workers: int, saves: int) -> int:
    """Run the workers as threads or processes; return how many saves raised."""
    if kind == "threads":
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda p=f"w{w}": results.append(worker(str(path), p, saves)))
            for w in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(results)
    errors = MP.Value("i", 0, lock=True)
    processes = [
        MP.Process(target=_process_main, args=(worker, str(path), f"w{w}", saves, errors)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return int(errors.value)


def concurrency(folder: Path) -> list[str]:
    lines = []
    for kind, workers in (("threads", 8), ("processes", 4)):
        saves, expected = 25, workers * 25
        for label, worker, count in (
            ("tutorial", tutorial_worker, count_tutorial),
            ("**ConversationStore**", ours_worker, count_ours),
        ):
            path = folder / f"{kind}-{label.strip('*')}.json"
            path.write_text("{}")
            start = time.perf_counter()
            errors = run_concurrently(kind, worker, path, workers, saves)
            seconds = time.perf_counter() - start
            try:
                kept = str(count(path))
            except ValueError as exc:
                kept = f"file unreadable ({type(exc).__name__})"
            lines.append(
                f"| {workers} {kind} × {saves} saves | {label} | {kept} / {expected} | {errors} | {seconds:.1f} s |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="ConversationStore beside the tutorial's store.")
    parser.add_argument("--quick", action="store_true", help="only 10 and 1,000 conversations")
    args = parser.parse_args()
    sizes = [(10, 20), (1000, 10)] + ([] if args.quick else [(5000, 3)])
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        folder = Path(tmp)
        print("Median ms per call (20 messages × 500 characters per conversation).\n")
        print("| conversations | file | store | save | load | list | first read |")
        print("|---:|---:|---|---:|---:|---:|---:|")
        for count, repeat in sizes:
            for line in measure(folder, count, repeat):
                print(line, flush=True)
        print("\n`first read`: the store's first list() (parse), also paid after another process writes;")
        print("for the tutorial store every call is a first read.\n")
        print("| workers | store | conversations kept | saves that raised | time |")
        print("|---|---|---:|---:|---:|")
        for line in concurrency(folder):
            print(line, flush=True)


if __name__ == "__main__":
    main()
