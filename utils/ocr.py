"""The text in a picture, read offline: for a model that cannot see (the embedded SmolLM2).

RapidOCR (Apache-2.0) runs PaddleOCR's PP-OCRv6 small detection and recognition models, which
ship inside its wheel, on ONNX Runtime: nothing is downloaded at run time. One engine serves the
whole process. It is built on first use behind a lock (its ~30 MB of models and ONNX Runtime's
sessions cost ~300 MB of memory, so a process that never reads a picture never pays), and runs
are serialised: on two cores a second run at the same time would only slow the first and double
the memory. `warm()` builds it in the background, so the first picture does not wait for it.
"""

from __future__ import annotations

import threading
from importlib import metadata
from typing import Any

from utils.images import ImageError, upright

MAX_SIDE = 2000  # the engine shrinks anything larger itself; shrinking first saves the big decode
_load_lock = threading.Lock()
_run_lock = threading.Lock()
_engine: Any = None


class OcrError(RuntimeError):
    """Text could not be read from a picture; `str(error)` is one sentence that says what to do."""


def engine_version() -> str:
    """Which reader (and version) reads the text: a cache of what it read is only good for this one."""
    try:
        return f"rapidocr {metadata.version('rapidocr')}"
    except metadata.PackageNotFoundError:
        return "rapidocr (not installed)"


def read_text(data: bytes) -> str:
    """The picture's text, line by line from top to bottom ("" when it holds none); OcrError otherwise."""
    try:
        image = upright(data, MAX_SIDE)
    except ImageError as error:
        raise OcrError(str(error)) from None
    engine = _get_engine()
    with _run_lock:
        try:
            result = engine(image)
        except Exception as error:  # a failure inside ONNX Runtime or OpenCV, whatever its type
            raise OcrError(
                f"Reading the text in this picture failed ({type(error).__name__}); "
                "try a clearer or smaller picture, or describe it in words."
            ) from error
    boxes, texts = getattr(result, "boxes", None), getattr(result, "txts", None)
    if boxes is None or not texts:
        return ""
    return "\n".join(_lines([[tuple(point) for point in box] for box in boxes], list(texts)))


def warm() -> threading.Thread:
    """Build the engine (and run it once) in a background thread; the thread is returned to join."""

    def build() -> None:
        from PIL import Image, ImageDraw, ImageFont

        sample = Image.new("RGB", (240, 60), "white")
        ImageDraw.Draw(sample).text((10, 15), "warm up", fill="black", font=ImageFont.load_default(24))
        try:
            engine = _get_engine()
            with _run_lock:
                engine(sample)  # the models load on their first use: detection, then recognition
        except OcrError:
            pass  # the first real picture raises it again, where a page can show the sentence

    thread = threading.Thread(target=build, name="ocr-warm", daemon=True)
    thread.start()
    return thread


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        with _load_lock:  # re-checked inside: another thread may have built it while we waited
            if _engine is None:
                _engine = _build()
    return _engine


def _build() -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise OcrError(
            "Reading text from pictures needs the rapidocr package; run pip install -r requirements.txt "
            "and restart bnaGPT."
        ) from None
    try:
        return RapidOCR(params={"Global.log_level": "error"})
    except Exception as error:  # a model file missing or unreadable, ONNX Runtime refusing it…
        raise OcrError(
            f"The text reader (OCR) could not start ({type(error).__name__}); reinstall it with "
            "pip install -r requirements.txt."
        ) from error


def _lines(boxes: list[list[tuple[float, float]]], texts: list[str]) -> list[str]:
    """Texts joined into lines in reading order: boxes whose middle lies within a line's height
    are on that line (left to right), lines from top to bottom."""
    found = []
    for box, text in zip(boxes, texts, strict=False):
        ys = [y for _, y in box]
        found.append((min(ys), max(ys), min(x for x, _ in box), text.strip()))
    found.sort(key=lambda item: ((item[0] + item[1]) / 2, item[2]))
    lines: list[tuple[float, float, list[tuple[float, str]]]] = []
    for top, bottom, left, text in found:
        if not text:
            continue
        if lines and lines[-1][0] <= (top + bottom) / 2 <= lines[-1][1]:
            lines[-1][2].append((left, text))
        else:
            lines.append((top, bottom, [(left, text)]))
    return [" ".join(text for _, text in sorted(parts)) for _, _, parts in lines]
