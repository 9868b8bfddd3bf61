"""What voice and pictures cost offline: speech to text's real-time factor, text to speech's seconds per
100 words, OCR's seconds per picture, and the memory each adds.

    .venv/bin/python benchmarks/media_bench.py [--runs 3] [--skip-ocr]

Each component is measured in a fresh child process of its own, so one's libraries and models do not
count in another's memory: RSS (VmRSS) after importing the app's module, after loading and using the
component, and the peak (VmHWM).

- Speech to text: `utils.transcribe.transcribe` on the local Whisper (tiny.en, int8), on ~10, ~30 and
  ~60 s of English said by the local voice. The model's load and the first transcription are timed
  apart; then the median of `--runs` per recording. Real-time factor = seconds taken / seconds heard
  (the target is ≤ 0.5 on 2 cores). The check (decoding, resampling, the voice detector) is included.
- Text to speech: `utils.speech.speak` on the local voice (Piper, a `python -m piper` process per
  reading, as the app runs it), cache cleared before each run: one word (the process's start-up),
  100 words, and the longest the local voice reads (an answer cut at LOCAL_MAX_CHARS). Piper's own process's peak RSS is read from the child's RUSAGE_CHILDREN.
- OCR: `utils.ocr.read_text` on a rendered 1200×400 PNG of printed text: the first call (the engine
  built) and the median of `--runs` after.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.wording import misheard, words  # noqa: E402

SENTENCES = (
    "The library opens early in the morning and closes late in the evening.",
    "Visitors may borrow a few books at a time for up to three weeks.",
    "The reading room upstairs is quiet, so please turn off your phone.",
    "Old newspapers are kept in the basement and can be read on request.",
    "Every Saturday there is a story hour for young readers near the front desk.",
    "If you lose a book, you will be asked to pay for a new copy.",
    "The garden behind the building has benches where people sit and read in summer.",
    "Volunteers help sort donated books on Tuesday and Thursday afternoons.",
    "The copier takes coins or cards, and printing costs a little per page.",
    "A small cafe beside the entrance sells tea, coffee and fresh bread.",
    "Children can join the summer reading club and collect a sticker for each book.",
    "The map room holds old charts of the coast and the river valley.",
    "Computers on the ground floor can be booked for an hour at a time.",
    "Quiet study rooms are free, but they must be reserved a day ahead.",
    "The local history group meets in the hall on the first Monday of each month.",
    "Large print books and audio books are on the shelves near the lift.",
    "Please return borrowed books to the slot by the door when the library is closed.",
    "The staff are happy to help you find a book or answer a question.",
)
WORDS_PER_SECOND = 3.4  # the local voice's pace, measured: 100 words in ~30 s
OCR_TEXT = ("Invoice 2024-117", "Three boxes of printer paper", "Delivery on Thursday morning", "Total due: 48.90 EUR")


def rss_mb(field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    status = Path("/proc/self/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) / 1024 if found else 0.0


def passage(seconds: float, start: int = 0) -> str:
    """Sentences from SENTENCES, in turn from `start`, until they take about `seconds` to say."""
    chosen: list[str] = []
    index = start
    while sum(len(s.split()) for s in chosen) < seconds * WORDS_PER_SECOND:
        chosen.append(SENTENCES[index % len(SENTENCES)])
        index += 1
    return " ".join(chosen)


def local_settings() -> Any:
    import settings

    return settings.from_environ({}, dotenv_path=Path(os.devnull))


# --- the children: one component each ---


def stt_child(folder: Path, runs: int) -> dict[str, Any]:
    from utils import transcribe

    imported = rss_mb()
    started = time.perf_counter()
    transcribe.local_model()
    load_s = time.perf_counter() - started
    local = local_settings()
    clips = json.loads((folder / "clips.json").read_text())
    rows = []
    first_s = 0.0
    for n, clip in enumerate(clips):
        data = (folder / clip["file"]).read_bytes()
        times = []
        for run in range(runs + (1 if n == 0 else 0)):
            started = time.perf_counter()
            heard = transcribe.transcribe(data, clip["file"], local)
            elapsed = time.perf_counter() - started
            if n == 0 and run == 0:
                first_s = elapsed  # the first transcription after the load: the VAD and buffers set up
                continue
            times.append(elapsed)
        rows.append(
            {
                "seconds": heard.seconds,
                "times": times,
                "misheard": misheard(clip["text"], heard.text),
                "words": len(words(clip["text"])),
            }
        )
    return {
        "imported": imported,
        "load_s": load_s,
        "first_s": first_s,
        "rows": rows,
        "after": rss_mb(),
        "peak": rss_mb("VmHWM"),
    }


def tts_child(runs: int) -> dict[str, Any]:
    import wave

    from utils import speech
    from utils.speakable import cap

    imported = rss_mb()
    local = local_settings()
    hundred = " ".join(" ".join(SENTENCES).split()[:100])
    longest, _ = cap(" ".join(SENTENCES * 2), speech.LOCAL_MAX_CHARS)
    rows = []
    cases = (
        ("one word", "Hello."),
        ("100 words", hundred),
        (f"the local cap ({speech.LOCAL_MAX_CHARS:,} characters)", longest),
    )
    for label, text in cases:
        times, audio_s = [], 0.0
        for _ in range(runs):
            speech.clear_cache()
            started = time.perf_counter()
            spoken = speech.speak(text, local)
            times.append(time.perf_counter() - started)
            with wave.open(io.BytesIO(spoken.data)) as read:
                audio_s = read.getnframes() / read.getframerate()
        rows.append({"label": label, "words": len(text.split()), "times": times, "audio_s": audio_s})
    piper_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"imported": imported, "rows": rows, "after": rss_mb(), "peak": rss_mb("VmHWM"), "piper_peak": piper_peak}


def ocr_child(runs: int) -> dict[str, Any]:
    from PIL import Image, ImageDraw, ImageFont

    from utils import ocr

    picture = Image.new("RGB", (1200, 400), "white")
    draw = ImageDraw.Draw(picture)
    for line, text in enumerate(OCR_TEXT):
        draw.text((60, 40 + 85 * line), text, fill="black", font=ImageFont.load_default(44))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    data = buffer.getvalue()
    imported = rss_mb()
    started = time.perf_counter()
    first = ocr.read_text(data)
    first_s = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        ocr.read_text(data)
        times.append(time.perf_counter() - started)
    read_back = sum(misheard(text, first) == 0 or text.lower() in first.lower() for text in OCR_TEXT)
    return {
        "imported": imported,
        "first_s": first_s,
        "times": times,
        "lines_read": read_back,
        "after": rss_mb(),
        "peak": rss_mb("VmHWM"),
    }


def child(kind: str, *arguments: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the report ---


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def make_clips(folder: Path) -> None:
    """~10, ~30 and ~60 s of speech by the local voice, written as WAV files for the child."""
    from utils import speech

    local = local_settings()
    clips = []
    for target, start in ((10, 0), (30, 4), (60, 9)):
        text = passage(target, start)
        name = f"speech-{target}s.wav"
        (folder / name).write_bytes(speech.speak(text, local).data)
        clips.append({"file": name, "text": text})
    (folder / "clips.json").write_text(json.dumps(clips))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-ocr", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # kind [folder]
    args = parser.parse_args()
    if args.child:
        kind = args.child[0]
        found = (
            stt_child(Path(args.child[1]), args.runs)
            if kind == "stt"
            else tts_child(args.runs)
            if kind == "tts"
            else ocr_child(args.runs)
        )
        print(json.dumps(found))
        return

    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    memory = []
    with tempfile.TemporaryDirectory(prefix="media-bench-") as temp:
        make_clips(Path(temp))
        stt = child("stt", temp, "--runs", str(args.runs))
    print(f"\n## Speech to text: local Whisper tiny.en, int8 (a fresh process; median of {args.runs})\n")
    print(
        f"model load: {stt['load_s']:.2f} s; first transcription after it (~10 s recording): {stt['first_s']:.2f} s\n"
    )
    print("| recording | seconds, median (min–max) | real-time factor | words misheard |")
    print("|---|---:|---:|---:|")
    for row in stt["rows"]:
        factor = statistics.median(row["times"]) / row["seconds"]
        print(
            f"| {row['seconds']:.1f} s of speech | {spread(row['times'])} | **{factor:.3f}×** "
            f"| {row['misheard']} of {row['words']} |"
        )
    print("\ntarget: real-time factor ≤ 0.5× on 2 cores")
    memory.append(
        ("speech to text (Whisper tiny.en)", stt["imported"], stt["after"], stt["peak"], "in the app's process")
    )

    tts = child("tts", "--runs", str(args.runs))
    print(f"\n## Text to speech: local Piper, voice joe (its own process per reading; median of {args.runs})\n")
    print("| text | words | audio s | seconds, median (min–max) | s per 100 words |")
    print("|---|---:|---:|---:|---:|")
    for row in tts["rows"]:
        per_hundred = statistics.median(row["times"]) * 100 / row["words"]
        shown = f"**{per_hundred:.2f}**" if row["words"] >= 100 else "—"
        print(f"| {row['label']} | {row['words']} | {row['audio_s']:.1f} | {spread(row['times'])} | {shown} |")
    memory.append(
        ("text to speech (Piper), the app's side", tts["imported"], tts["after"], tts["peak"], "in the app's process")
    )
    memory.append(
        (
            "text to speech (Piper), its process",
            0.0,
            tts["piper_peak"],
            tts["piper_peak"],
            "its own process, while it speaks",
        )
    )

    if not args.skip_ocr:
        if (ROOT / "utils" / "ocr.py").is_file():
            ocr = child("ocr", "--runs", str(args.runs))
            print(f"\n## OCR: utils.ocr.read_text on a 1200×400 PNG of 4 printed lines (median of {args.runs})\n")
            print("| call | seconds, median (min–max) | lines read back |")
            print("|---|---:|---:|")
            print(f"| first (engine built) | {ocr['first_s']:.2f} | {ocr['lines_read']} of {len(OCR_TEXT)} |")
            print(f"| warm | {spread(ocr['times'])} | |")
            memory.append(("OCR (RapidOCR)", ocr["imported"], ocr["after"], ocr["peak"], "in the app's process"))
        else:
            print("\n## OCR\n\nutils/ocr.py is not there yet: this row runs once it is.")

    print("\n## Memory of each (a fresh process each; MB)\n")
    print("| component | RSS after imports | after loading and use | extra | peak | where |")
    print("|---|---:|---:|---:|---:|---|")
    for name, imported, after, peak, where in memory:
        print(f"| {name} | {imported:.0f} | {after:.0f} | **+{after - imported:.0f}** | {peak:.0f} | {where} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
