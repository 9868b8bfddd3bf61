"""How long files that were slow to read now take: parse (utils.documents.parse) and cut into
passages (controller.passages.split), each case built in memory, the median of `--repeat` runs.

    .venv/bin/python benchmarks/parse_bench.py [--repeat 3]

The cases are the ones a fuzzing of the parser found slow (an old HTML page of unclosed paragraphs,
a long Word document, text without sentence ends) and 25 MB of ordinary prose, the largest file the
default limit lets in. The tests check that these are read whole; timings live here, not in tests.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from tests.test_document_inputs import long_docx  # noqa: E402 - the same file the test reads


def html_unclosed() -> bytes:
    return ("<html><body>" + "".join(f"<p>Paragraph {n} of an old page" for n in range(20_000))).encode()


def id_list() -> bytes:
    return "".join(f"ID-{n:07d}\n" for n in range(200_000)).encode()


def base64_markdown() -> bytes:
    picture = base64.b64encode(random.Random(7).randbytes(1_500_000)).decode()
    return f"# Report\n\n![chart](data:image/png;base64,{picture})\n".encode()


def prose_25_mb() -> bytes:
    book = (ROOT / "benchmarks" / "data" / "how-to-listen-to-music-1897.txt").read_bytes()
    return (book * (25 * 2**20 // len(book)))[: 25 * 2**20 - 1]


# (name, file name, maker, parse + split before the fixes: this script on 9104d73, same machine, --repeat 1)
CASES: list[tuple[str, str, Callable[[], bytes], str]] = [
    ("HTML, 20,000 unclosed <p>", "old.html", html_unclosed, "30.1 + 0.9 s"),
    ("DOCX, 10,000 paragraphs", "thesis.docx", long_docx, "12.7 + 0.1 s"),
    ("2.2 MB list of IDs, no sentence ends", "ids.txt", id_list, "0.1 + 12.8 s"),
    ("Markdown with a 2 MB base64 picture", "report.md", base64_markdown, "0.1 + 11.9 s"),
    ("25 MB of prose (the size limit)", "book.txt", prose_25_mb, "1.3 + 5.6 s"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from controller.passages import split
    from utils.documents import parse

    split(parse(b"Warm up the splitter's tokenizer.", "warm.txt"), "warm.txt", lambda f, s: None)
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; seconds, median (min–max) of {args.repeat}\n")
    print("| file | size | parse | split | passages | before: parse + split |")
    print("|---|---:|---:|---:|---:|---|")
    for label, name, make, before in CASES:
        data = make()
        parse_s, split_s = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            parsed = parse(data, name)
            parsed_at = time.perf_counter()
            passages = split(parsed, name, lambda f, s: None)
            parse_s.append(parsed_at - started)
            split_s.append(time.perf_counter() - parsed_at)

        def spread(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"

        print(
            f"| {label} | {len(data) / 2**20:.1f} MB | {spread(parse_s)} | {spread(split_s)} "
            f"| {len(passages):,} | {before} |"
        )


if __name__ == "__main__":
    main()
