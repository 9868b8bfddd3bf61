"""Importing a ChatGPT export: seconds to read the zip and to write the store, and peak memory.

    python benchmarks/import_bench.py [--sizes 1000,5000]

Times are wall clock, CPU seconds of the process in brackets (steadier on a busy machine).
Each size is read in a fresh process that only loads the zip's bytes, as an upload arrives ("RSS
before": Python, the app's modules and those bytes; the peak is per process), into an empty store
in a temporary folder. Each conversation has 20 messages of ~500 characters of varied words, in ChatGPT's full
shape (hidden system root, metadata, model slugs); every third has a regenerated answer (a branch).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.imports import summarize
from model.imports import read_export
from model.store import ConversationStore

T0 = 1714564800.0
WORDS = (__doc__ or "").split()  # ~80 ordinary words, so the JSON packs as a real export does


def node(key: str, parent: str | None, role: str | None, text: str, stamp: float, **meta: Any) -> dict[str, Any]:
    message = None
    if role:
        message = {
            "id": key,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": stamp,
            "update_time": None,
            "content": {"content_type": "text", "parts": [text]},
            "status": "finished_successfully",
            "end_turn": role == "assistant",
            "weight": 1.0,
            "metadata": meta,
            "recipient": "all",
            "channel": None,
        }
    return {"id": key, "message": message, "parent": parent, "children": []}


def conversation(number: int, rng: random.Random) -> dict[str, Any]:
    start = T0 + number * 3600
    nodes = [
        node(f"{number}-root", None, None, "", start),
        node(f"{number}-sys", f"{number}-root", "system", "", start, is_visually_hidden_from_conversation=True),
    ]
    parent = f"{number}-sys"
    for k in range(20):
        role = "user" if k % 2 == 0 else "assistant"
        text = " ".join(rng.choices(WORDS, k=85))
        meta = {"model_slug": "gpt-4o", "finish_details": {"type": "stop"}} if role == "assistant" else {}
        nodes.append(node(f"{number}-{k}", parent, role, text, start + k * 30, **meta))
        if k == 5 and number % 3 == 0:  # a regenerated answer, a branch of its own
            nodes.append(node(f"{number}-{k}b", parent, role, text[::-1], start + k * 30 + 5, **meta))
        parent = f"{number}-{k}"
    mapping = {n["id"]: n for n in nodes}
    for n in nodes:
        if n["parent"]:
            mapping[n["parent"]]["children"].append(n["id"])
    return {
        "title": f"Conversation {number}",
        "create_time": start,
        "update_time": start + 600,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": parent,
        "conversation_id": f"conv-{number:06d}",
        "id": f"conv-{number:06d}",
        "default_model_slug": "gpt-4o",
        "is_archived": False,
        "safe_urls": [],
    }


def export_zip(size: int) -> tuple[bytes, int]:
    rng = random.Random(size)
    text = json.dumps([conversation(n, rng) for n in range(size)])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/conversations.json", text)
    return buffer.getvalue(), len(text.encode())


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) in MB. Not getrusage's ru_maxrss: Linux keeps that across exec,
    so a child would report the peak of the parent that built the export."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: the peak so far, in KB (bytes on macOS)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)[1]) / 1024  # type: ignore[index]


def run_one(zip_path: Path, json_bytes: int) -> dict[str, Any]:
    """In this process: load the zip's bytes (as an upload arrives), read them, import into an empty store."""
    data = zip_path.read_bytes()
    before = rss_mb("VmRSS")
    with tempfile.TemporaryDirectory() as folder:
        store = ConversationStore(Path(folder) / "conversations.json")
        started, cpu = time.perf_counter(), time.process_time()
        read = read_export(data, "export.zip")  # what controller.imports.import_export does, timed apart
        read_s, read_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert read is not None
        started, cpu = time.perf_counter(), time.process_time()
        imported = store.import_conversations(read.conversations)
        write_s, write_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert len(imported) == len(read.conversations)
        file_mb = (Path(folder) / "conversations.json").stat().st_size / 2**20
        summary = summarize(read, imported, 0)
    messages = sum(len(c.messages) for c in imported)
    return {
        "size": len(imported),
        "messages": messages,
        "zip_mb": len(data) / 2**20,
        "json_mb": json_bytes / 2**20,
        "ratio": json_bytes / len(data),
        "read_s": read_s,
        "write_s": write_s,
        "read_cpu": read_cpu,
        "write_cpu": write_cpu,
        "total_s": read_s + write_s,
        "store_mb": file_mb,
        "rss_before": before,
        "rss_peak": rss_mb("VmHWM"),
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # the child process: zip path, JSON bytes
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]), int(args.one[1]))))
        return
    print(
        "| conversations | messages | zip MB | JSON MB | packed | read s (CPU) | store write s (CPU) | total s | store MB "
        "| RSS before MB | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summaries = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            data, json_bytes = export_zip(size)
            zip_path = Path(folder) / "export.zip"
            zip_path.write_bytes(data)
            del data
            command = [sys.executable, __file__, "--one", str(zip_path), str(json_bytes)]
            r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(
            f"| {r['size']:,} | {r['messages']:,} | {r['zip_mb']:.1f} | {r['json_mb']:.1f} | {r['ratio']:.1f}:1 "
            f"| {r['read_s']:.2f} ({r['read_cpu']:.2f}) | {r['write_s']:.2f} ({r['write_cpu']:.2f}) | {r['total_s']:.2f} "
            f"| {r['store_mb']:.1f} "
            f"| {r['rss_before']:.0f} | {r['rss_peak']:.0f} |"
        )
        summaries.append(r["summary"])
    for summary in summaries:
        print(f"\n{summary}")


if __name__ == "__main__":
    main()
