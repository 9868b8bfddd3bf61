"""Reading the text in a picture offline, with the real engine and its shipped models: lines
rendered here with a real font (DejaVu Sans, bundled with matplotlib) must come back, in order."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import matplotlib
import pytest
from PIL import Image, ImageDraw, ImageFont

import settings as app_settings
from controller.images import attach_image, image_text
from utils import ocr

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def rendered(lines: list[str], size: tuple[int, int] = (900, 260), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """`lines` drawn black, one under another, on white (or on nothing, in RGBA)."""
    font = ImageFont.truetype(str(FONT), 26)
    image = Image.new(mode, size, (0, 0, 0, 0) if mode == "RGBA" else "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((30, 30 + number * 60), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def normalised(text: str) -> str:
    return " ".join(text.split()).lower()


def test_printed_lines_come_back_top_to_bottom() -> None:
    lines = ["Meeting moved to Thursday", "Room 4B at 10:30", "Bring the signed contract"]
    text = ocr.read_text(rendered(lines))
    assert [normalised(line) for line in text.splitlines()] == [normalised(line) for line in lines]


def test_words_side_by_side_are_one_line_read_left_to_right() -> None:
    font = ImageFont.truetype(str(FONT), 26)
    image = Image.new("RGB", (1000, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.text((620, 40), "Amount", fill="black", font=font)  # drawn first, but on the right
    draw.text((30, 42), "Invoice", fill="black", font=font)
    draw.text((30, 120), "Total due", fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert normalised(ocr.read_text(buffer.getvalue())).split() == ["invoice", "amount", "total", "due"]


def test_a_picture_without_text_gives_an_empty_string() -> None:
    sky = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    buffer = io.BytesIO()
    sky.save(buffer, "JPEG")
    assert ocr.read_text(buffer.getvalue()) == ""


def test_text_on_a_see_through_background_is_read() -> None:
    text = ocr.read_text(rendered(["Transparent label"], size=(600, 120), mode="RGBA"))
    assert normalised(text) == "transparent label"


def test_a_file_that_is_not_a_picture_is_one_sentence() -> None:
    with pytest.raises(ocr.OcrError, match=r"^This file is not a PNG, JPEG, WebP or GIF picture; attach"):
        ocr.read_text(b"%PDF-1.7\n%%EOF\n")


def test_readings_at_the_same_time_are_each_right() -> None:
    pictures = {word: rendered([f"Parcel {word}"], size=(600, 120)) for word in ("alpha", "bravo", "charlie")}
    found: dict[str, str] = {}

    def read(word: str) -> None:
        found[word] = normalised(ocr.read_text(pictures[word]))

    threads = [threading.Thread(target=read, args=(word,)) for word in pictures]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert found == {word: f"parcel {word}" for word in pictures}


def test_warm_builds_the_engine_in_the_background() -> None:
    thread = ocr.warm()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert ocr._engine is not None


def test_a_stored_pictures_text_is_read_once_and_kept_beside_it(tmp_path: Path) -> None:
    settings = app_settings.from_environ({"DATA_DIR": str(tmp_path)}, dotenv_path=tmp_path / "none")
    attachment, _ = attach_image(rendered(["Keep this receipt"], size=(600, 120)), "receipt.png", settings)
    assert normalised(image_text(attachment, settings)) == "keep this receipt"
    sidecar = tmp_path / "files" / attachment.sha256[:2] / f"{attachment.sha256}.ocr.json"
    kept = json.loads(sidecar.read_text("utf-8"))
    assert kept["engine"] == ocr.engine_version() and kept["engine"].startswith("rapidocr 3.")
    assert sidecar.stat().st_mode & 0o077 == 0  # private, like the picture itself

    sidecar.write_text(json.dumps({"engine": kept["engine"], "text": "from the kept reading"}), "utf-8")
    assert image_text(attachment, settings) == "from the kept reading"  # not read again

    sidecar.write_text(json.dumps({"engine": "rapidocr 0.1", "text": "an older reader's"}), "utf-8")
    assert normalised(image_text(attachment, settings)) == "keep this receipt"  # another reader: read again
    sidecar.write_text("{torn", "utf-8")
    assert normalised(image_text(attachment, settings)) == "keep this receipt"
