"""Pictures from outside: what is accepted, what is refused (in one sentence that says what to do),
and the copy a vision model gets. Every picture is made here with Pillow; the bomb is a PNG header
written by hand, so nothing big is ever allocated."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

import settings as app_settings
from controller.images import attach_image
from utils.images import IMAGE_TYPES, CheckedImage, ImageError, check, data_url, for_model, sniff, thumbnail

MB = 1024 * 1024
LIMIT_BYTES = 20 * MB
LIMIT_PIXELS = 50_000_000


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(width: int = 640, height: int = 480) -> Image.Image:
    """Something like a photo: noise over a gradient, so JPEG cannot shrink it to nothing."""
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return Image.blend(noise, gradient, 0.5)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 48), colour) for colour in ("red", "green", "blue")]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    """A valid PNG that claims width × height pixels in a few dozen bytes (8-bit RGB)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def settings_in(tmp_path: Path, **env: str) -> app_settings.Settings:
    return app_settings.from_environ({"DATA_DIR": str(tmp_path), **env}, dotenv_path=tmp_path / "none")


def stored_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "files"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- what a picture is ---


def test_the_chat_input_accepts_the_four_kinds_by_extension() -> None:
    assert IMAGE_TYPES == ("png", "jpg", "jpeg", "webp", "gif")


@pytest.mark.parametrize(("fmt", "kind"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif")])
def test_the_kind_comes_from_the_bytes(fmt: str, kind: str) -> None:
    data = encode(Image.new("RGB", (32, 24), "orange"), fmt)
    assert sniff(data) == kind
    checked = check(data, "named-anything.bin", LIMIT_BYTES, LIMIT_PIXELS)
    assert checked == CheckedImage(kind, 32, 24, 1, ())
    assert checked.mime == f"image/{kind}"


def test_a_pdf_named_png_is_not_a_picture() -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    assert sniff(pdf) is None  # so the page hands it to the document reader instead
    with pytest.raises(ImageError) as refused:
        check(pdf, "scan.png", LIMIT_BYTES, LIMIT_PIXELS)
    assert str(refused.value) == (
        "“scan.png” is not a PNG, JPEG, WebP or GIF picture (it is a PDF); attach a picture in one of those formats."
    )


# --- refused, in one sentence that says what to do ---


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ImageError, match=r"^“blank.png” is empty \(0 bytes\); attach the picture again"):
        check(b"", "blank.png", LIMIT_BYTES, LIMIT_PIXELS)


def test_a_file_over_the_byte_limit_is_refused_before_anything_reads_it() -> None:
    huge = b"\xff\xd8\xff" + b"\0" * (2 * MB)  # not even a decodable JPEG: the size is told first
    with pytest.raises(ImageError) as refused:
        check(huge, "holiday.jpg", 1 * MB, LIMIT_PIXELS)
    message = str(refused.value)
    assert message.startswith("“holiday.jpg” is 2.0 MB, over the 1 MB limit for images; attach a smaller copy")
    assert message.endswith(".") and ". " not in message  # one sentence


def test_a_20000_by_20000_png_is_refused_from_its_header() -> None:
    bomb = png_header(20_000, 20_000)  # 1.6 GB of pixels in 90 bytes
    assert len(bomb) < 100
    started = time.perf_counter()
    with pytest.raises(ImageError) as refused:
        check(bomb, "bomb.png", LIMIT_BYTES, LIMIT_PIXELS)
    assert time.perf_counter() - started < 1.0
    assert str(refused.value) == (
        "“bomb.png” has 400 megapixels, more than the 50 megapixels a picture can have; resize it and attach it again."
    )


def test_pixels_over_our_limit_are_refused_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(self: object) -> None:
        raise AssertionError("a picture over the pixel limit was decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", never)  # a spy on Pillow: any decode fails the test
    with pytest.raises(ImageError) as refused:
        check(png_header(9_000, 9_000), "scan.png", LIMIT_BYTES, LIMIT_PIXELS)  # under Pillow's own ceiling
    assert str(refused.value) == (
        "“scan.png” is 9000 × 9000 pixels (81 megapixels), more than the 50 megapixels a picture can have; "
        "resize it and attach it again."
    )


def test_a_limit_set_above_pillows_ceiling_still_refuses_a_bomb() -> None:
    with pytest.raises(ImageError, match=r"has 400 megapixels, more than the 179 megapixels"):
        check(png_header(20_000, 20_000), "bomb.png", LIMIT_BYTES, 1_000_000_000)


def test_a_truncated_jpeg_is_refused() -> None:
    whole = encode(photo(), "JPEG", quality=90)
    with pytest.raises(ImageError) as refused:
        check(whole[: len(whole) // 2], "cut.jpg", LIMIT_BYTES, LIMIT_PIXELS)
    assert str(refused.value) == (
        "“cut.jpg” is damaged or cut short and cannot be decoded; save or export it again and attach the new file."
    )


def test_a_corrupt_jpeg_and_a_corrupt_png_are_refused() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    png = encode(Image.new("RGB", (40, 40), "teal"), "PNG")
    idat = png.index(b"IDAT")
    damaged_png = png[: idat + 8] + b"\x00" * 16 + png[idat + 24 :]  # the compressed pixels overwritten
    for data, name in ((jpeg, "photo.jpg"), (damaged_png, "chart.png")):
        with pytest.raises(ImageError, match=rf"^“{name}” is damaged or cut short"):
            check(data, name, LIMIT_BYTES, LIMIT_PIXELS)


# --- animations ---


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "dance.gif"), ("WEBP", "dance.webp")])
def test_an_animation_is_accepted_and_only_its_first_frame_is_used(fmt: str, name: str) -> None:
    data = animated(fmt)
    checked = check(data, name, LIMIT_BYTES, LIMIT_PIXELS)
    assert checked.frames == 3
    assert checked.notes == (f"“{name}” is animated (3 frames); only its first frame is used.",)
    sent, mime = for_model(data)
    assert mime == "image/jpeg"
    red, green, blue = Image.open(io.BytesIO(sent)).convert("RGB").getpixel((32, 24))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60  # the first frame, red


# --- what a vision model is sent ---


def test_a_big_photo_is_shrunk_to_the_long_side_and_sent_as_jpeg() -> None:
    data = encode(photo(3000, 2000), "PNG")
    sent, mime = for_model(data)
    assert mime == "image/jpeg"
    assert Image.open(io.BytesIO(sent)).size == (1568, 1045)
    assert len(sent) <= 3_500_000


def test_the_byte_cap_is_kept_by_lowering_quality_then_size() -> None:
    sent, mime = for_model(encode(photo(2000, 1500), "JPEG", quality=95), max_bytes=60_000)
    assert mime == "image/jpeg"
    assert len(sent) <= 60_000
    assert max(Image.open(io.BytesIO(sent)).size) < 1568


def test_exif_orientation_is_applied_and_the_exif_left_behind() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": the sensor's landscape is a portrait
    exif[0x010F] = "Camera maker"
    data = encode(photo(400, 200), "JPEG", exif=exif.tobytes())
    sent, _ = for_model(data)
    upright = Image.open(io.BytesIO(sent))
    assert upright.size == (200, 400)
    assert not upright.getexif()


def test_see_through_pictures_stay_png_and_opaque_ones_become_jpeg() -> None:
    clear = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
    clear.paste((200, 0, 0, 255), (10, 10, 40, 40))
    sent, mime = for_model(encode(clear, "PNG"))
    assert mime == "image/png"
    assert Image.open(io.BytesIO(sent)).mode == "RGBA"
    opaque = Image.new("RGBA", (80, 60), (10, 200, 10, 255))  # an alpha channel with nothing see-through
    assert for_model(encode(opaque, "PNG"))[1] == "image/jpeg"


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    grey = Image.new("I;16", (50, 40), 40_000)
    sent, _ = for_model(encode(grey, "PNG"))
    value = Image.open(io.BytesIO(sent)).convert("L").getpixel((10, 10))
    assert isinstance(value, int) and 150 <= value <= 162  # 40000 / 256 ≈ 156, not 255


def test_a_data_url_and_a_thumbnail() -> None:
    data = encode(photo(1200, 900), "JPEG")
    assert data_url(b"\x89PNG", "image/png") == "data:image/png;base64,iVBORw=="
    small = thumbnail(data)
    assert sniff(small) == "jpeg"
    assert Image.open(io.BytesIO(small)).size == (512, 384)


# --- attaching (the controller verb) ---


def test_attaching_a_picture_stores_it_once_by_content(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    data = encode(photo(), "JPEG")
    attachment, notes = attach_image(data, "C:\\Users\\me\\holiday.JPG", settings)
    assert (attachment.name, attachment.kind, attachment.size, notes) == ("holiday.JPG", "jpeg", len(data), [])
    again, _ = attach_image(data, "copy.jpg", settings)
    assert again.sha256 == attachment.sha256
    assert len([p for p in stored_files(tmp_path) if not p.name.endswith(".json")]) == 1


def test_an_animated_gif_is_attached_with_its_note(tmp_path: Path) -> None:
    attachment, notes = attach_image(animated("GIF"), "dance.gif", settings_in(tmp_path))
    assert attachment.kind == "gif"
    assert notes == ["“dance.gif” is animated (3 frames); only its first frame is used."]


def test_refused_pictures_store_nothing(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, IMAGE_MAX_MB="1")
    whole = encode(photo(), "JPEG")
    refused = {
        "empty.png": b"",
        "big.jpg": b"\xff\xd8\xff" + b"\0" * (2 * MB),
        "bomb.png": png_header(20_000, 20_000),
        "report.png": b"%PDF-1.7\n%%EOF\n",
        "cut.jpg": whole[: len(whole) // 2],
    }
    for name, data in refused.items():
        with pytest.raises(ImageError) as error:
            attach_image(data, name, settings)
        assert str(error.value).startswith(f"“{name}”")
        assert any(verb in str(error.value) for verb in ("attach", "resize", "export"))
    assert stored_files(tmp_path) == []
