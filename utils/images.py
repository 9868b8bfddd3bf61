"""Pictures from outside (uploads, an image endpoint): what they are, whether they are safe to
open, and the smaller copy a vision model is sent.

`check()` refuses a file whole or accepts it whole, with one sentence (`ImageError`) that says what
to do. Its order matters: the byte size first (nothing touches a huge upload), then the type from
the magic bytes (a PDF named .png is not a picture), then the pixel count from the header, before
any pixel is decoded (a 20000 × 20000 PNG of a few hundred bytes would take 1.6 GB), and only then
one full decode of the first frame, which proves that a truncated or corrupt file is unreadable now
rather than when a model is waiting for it.

`for_model()` always re-encodes, even a small JPEG that would fit as it is: re-encoding applies the
EXIF orientation the model cannot read, and leaves the EXIF block (a phone photo's GPS position, the
camera's serial number) behind instead of sending it to a remote endpoint.
"""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image, ImageOps

IMAGE_TYPES = ("png", "jpg", "jpeg", "webp", "gif")  # extensions the chat input accepts
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
_PILLOW_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
_OTHER_FILES = ((b"%PDF-", "a PDF"), (b"PK\x03\x04", "a zip archive (or an Office document)"))
# What a decoder of untrusted bytes raises for a damaged file (Pillow's own UnidentifiedImageError
# is an OSError); anything else would be a bug of ours and should surface as one.
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
MB = 1024 * 1024


class ImageError(ValueError):
    """A picture cannot be used; `str(error)` is one sentence for the user: what happened, what to do."""


@dataclass(frozen=True)
class CheckedImage:
    kind: str  # "png", "jpeg", "webp" or "gif", from the bytes
    width: int
    height: int
    frames: int
    notes: tuple[str, ...]  # what the user should know (sentences), e.g. that only a first frame is used

    @property
    def mime(self) -> str:
        return MIME[self.kind]


def sniff(data: bytes) -> str | None:
    """ "png", "jpeg", "webp" or "gif" from the file's first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def check(data: bytes, filename: str, max_bytes: int, max_pixels: int) -> CheckedImage:
    """What the picture is; ImageError (one sentence) when it is empty, too big, not a picture,
    has too many pixels, or cannot be decoded."""
    name = PurePath(filename.replace("\\", "/")).name or "the image"
    if len(data) > max_bytes:  # first: nothing else may touch a huge upload
        raise ImageError(
            f"“{name}” is {_size(len(data))}, over the {_size(max_bytes)} limit for images; "
            "attach a smaller copy (a screenshot, or the photo exported at a lower resolution)."
        )
    if not data:
        raise ImageError(f"“{name}” is empty (0 bytes); attach the picture again from where it is saved.")
    kind = sniff(data)
    if kind is None:
        what = next((label for magic, label in _OTHER_FILES if data.startswith(magic)), "")
        really = f" (it is {what})" if what else ""
        raise ImageError(
            f"“{name}” is not a PNG, JPEG, WebP or GIF picture{really}; attach a picture in one of those formats."
        )
    with _open(data, kind, name, max_pixels) as image:
        width, height = image.size
        frames = max(1, int(getattr(image, "n_frames", 1)))
        if kind == "jpeg":  # decoded at 1/8 scale: every byte is still read, in an eighth of the memory
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        try:
            image.load()  # one full decode of the first frame: a truncated file fails here, not later
        except _DAMAGED:
            raise _damaged(name) from None
    notes = []
    if frames > 1 and kind in ("gif", "webp"):  # a JPEG's extra "frames" (MPO) are not an animation
        notes.append(f"“{name}” is animated ({frames} frames); only its first frame is used.")
    return CheckedImage(kind, width, height, frames, tuple(notes))


def for_model(data: bytes, max_side: int = 1568, max_bytes: int = 3_500_000) -> tuple[bytes, str]:
    """The bytes and MIME type to send a vision model: upright, first frame, long side at most
    `max_side`, re-encoded (JPEG, or PNG when it has transparency) to under `max_bytes`."""
    image = upright(data, max_side)
    if image.mode == "RGBA":
        return _shrunk(image, max_bytes, _png), "image/png"
    for quality in (88, 80, 70):  # a lower quality first: it costs less detail than fewer pixels
        encoded = _jpeg(image, quality)
        if len(encoded) <= max_bytes:
            return encoded, "image/jpeg"
    return _shrunk(image, max_bytes, lambda smaller: _jpeg(smaller, 60)), "image/jpeg"


def thumbnail(data: bytes, max_side: int = 512) -> bytes:
    """A small copy for showing in the history: JPEG, or PNG when it has transparency."""
    image = upright(data, max_side)
    return _png(image) if image.mode == "RGBA" else _jpeg(image, 82)


def to_png(data: bytes) -> bytes:
    """The first frame as a PNG, upright and full size (for pictures kept as PNG or JPEG only)."""
    return _png(upright(data, None))


def data_url(data: bytes, mime: str) -> str:
    """`data:<mime>;base64,…`, the form an OpenAI-compatible chat message carries a picture in."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- helpers ---


def _open(data: bytes, kind: str, name: str, max_pixels: int) -> Image.Image:
    """The picture opened lazily (header only) and its pixel count checked before any decoding."""
    try:
        image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[kind]])
    except Image.DecompressionBombError as error:  # Pillow's own ceiling, past ours when raised
        found = _BOMB_PIXELS.search(str(error))
        pixels = int(found.group(1)) if found else 0
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        raise ImageError(
            f"“{name}” has {_megapixels(pixels)} megapixels, more than the {_megapixels(limit)} "
            "megapixels a picture can have; resize it and attach it again."
        ) from None
    except _DAMAGED:
        raise _damaged(name) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageError(
            f"“{name}” is {width} × {height} pixels ({_megapixels(width * height)} megapixels), more than the "
            f"{_megapixels(max_pixels)} megapixels a picture can have; resize it and attach it again."
        )
    return image


def upright(data: bytes, max_side: int | None) -> Image.Image:
    """The first frame upright (EXIF orientation applied), in RGB or RGBA, its long side shrunk to
    `max_side` (None: full size); ImageError when it cannot be decoded. For checked pictures."""
    kind = sniff(data)
    if kind is None:
        raise ImageError("This file is not a PNG, JPEG, WebP or GIF picture; attach a picture in one of those formats.")
    try:
        with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[kind]]) as image:
            if max_side:
                image.draft("RGB", (max_side, max_side))  # a JPEG decodes at 1/2, 1/4, 1/8 size: far faster
            turned = ImageOps.exif_transpose(image) or image  # a copy, fully decoded
            if max_side:
                turned.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return _flattened(turned)
    except Image.DecompressionBombError:
        raise ImageError("This picture has too many pixels to open; resize it and attach it again.") from None
    except _DAMAGED:
        raise _damaged("The picture") from None


def _flattened(image: Image.Image) -> Image.Image:
    """RGBA when some pixel is see-through, else RGB (palette, grey, 16-bit and CMYK included)."""
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema() != (255, 255):
            return rgba
        return rgba.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale to 8 bits before RGB
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


def _shrunk(image: Image.Image, max_bytes: int, encode: Callable[[Image.Image], bytes]) -> bytes:
    """`image` encoded, shrunk to three quarters of its size until it fits `max_bytes` (or is tiny)."""
    encoded = encode(image)
    while len(encoded) > max_bytes and max(image.size) > 64:
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)), Image.Resampling.LANCZOS)
        encoded = encode(image)
    return encoded


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _damaged(name: str) -> ImageError:
    who = name if name == "The picture" else f"“{name}”"
    return ImageError(
        f"{who} is damaged or cut short and cannot be decoded; save or export it again and attach the new file."
    )


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size % MB else f"{size // MB} MB"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.0f}" if pixels >= 10_000_000 else f"{pixels / 1_000_000:.1f}"
