"""What a model is given for the pictures in a chat.

A model that sees gets the pictures themselves, resized and stripped of their EXIF (the newest
few: each costs a thousand tokens or more). A model that cannot see (the embedded SmolLM2) gets the
text read from each picture by the offline OCR, added to the message it came with, and the answer
records that it read the text, not the picture (a `read_image` run, shown under the answer and
saved with it). The stored messages are never changed: this is only what the model is sent.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from model.message import Message
from model.parts import Attachment, ToolRun
from settings import Settings

PICTURE_KINDS = frozenset({"png", "jpeg", "webp", "gif"})
PICTURES_SENT = 4  # the newest pictures of a chat a seeing model is sent
READ_CHARS = 4_000  # of the text read from one picture
READ = "read_image"

# Pictures resized for a model, by SHA-256: the same picture is sent again on every later turn.
_prepared: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
_prepared_lock = threading.Lock()
PREPARED_KEPT = 16

# Names the model ids of vision models commonly carry (Groq's Llama 4, OpenAI's GPT-4o and later,
# Ollama's llava, qwen2.5vl, gemma3…); the /models answers of Groq and OpenAI do not say which see.
_SEEING = (
    "vision",
    "llama-4",
    "llama4",
    "gpt-4o",
    "gpt-4.1",
    "gpt-5",
    "llava",
    "bakllava",
    "-vl",
    "vl:",
    "2.5vl",
    "pixtral",
    "gemma3",
    "gemma-3",
    "minicpm-v",
    "moondream",
    "mistral-small3",
    "claude",
)


def sees_pictures(model: str) -> bool:
    """Whether a model (by its id) is known to take pictures (`image_url` parts)."""
    name = model.lower()
    return any(hint in name for hint in _SEEING)


def is_picture(attachment: Attachment) -> bool:
    return attachment.kind in PICTURE_KINDS


@dataclass
class ForModel:
    """The chat as a model is sent it."""

    messages: list[Message]  # a model that cannot see: the text read from pictures added to their messages
    pictures: dict[str, tuple[tuple[bytes, str], ...]] = field(default_factory=dict)  # message id → (bytes, MIME)
    runs: list[ToolRun] = field(default_factory=list)  # "read_image", for the question's pictures
    problems: list[str] = field(default_factory=list)  # one sentence per picture that could not be used


def for_model(
    messages: Sequence[Message],
    sees: bool,
    settings: Settings,
    read: Callable[[Attachment, Settings], str] | None = None,
) -> ForModel:
    """`messages` (the question last) as a model that sees, or cannot see, is to be sent them.
    Reading a picture's text the first time takes seconds (then it is kept): show progress."""
    if not any(is_picture(a) for m in messages for a in m.attachments):
        return ForModel(list(messages))
    if sees:
        return _with_pictures(messages, settings)
    if read is None:
        from controller.images import image_text

        read = image_text
    return _with_text(messages, settings, read)


def _with_pictures(messages: Sequence[Message], settings: Settings) -> ForModel:
    from model.files import FileStore

    store = FileStore(settings.files_dir)
    found = ForModel(list(messages))
    left = PICTURES_SENT
    for message in reversed(messages):
        kept = []
        for attachment in message.attachments:
            if not is_picture(attachment) or left == 0:
                continue
            try:
                kept.append(_prepared_for_model(attachment.sha256, store))
                left -= 1
            except (OSError, LookupError, ValueError):
                found.problems.append(f"The picture {attachment.name} is no longer stored, so it was not sent.")
        if kept:
            found.pictures[message.id] = tuple(kept)
    return found


def _prepared_for_model(sha256: str, store) -> tuple[bytes, str]:  # type: ignore[no-untyped-def]
    from utils.images import for_model as resized

    with _prepared_lock:
        if sha256 in _prepared:
            _prepared.move_to_end(sha256)
            return _prepared[sha256]
    prepared = resized(store.get(sha256))
    with _prepared_lock:
        _prepared[sha256] = prepared
        while len(_prepared) > PREPARED_KEPT:
            _prepared.popitem(last=False)
    return prepared


def _with_text(
    messages: Sequence[Message], settings: Settings, read: Callable[[Attachment, Settings], str]
) -> ForModel:
    from utils.ocr import OcrError

    found = ForModel([])
    last = len(messages) - 1
    for number, message in enumerate(messages):
        pictures = [a for a in message.attachments if is_picture(a)]
        if not pictures:
            found.messages.append(message)
            continue
        notes = []
        for picture in pictures:
            try:
                text = read(picture, settings).strip()
            except (OSError, LookupError, OcrError) as error:
                problem = f"The text in {picture.name} could not be read: {error}"
                notes.append(f"[Picture “{picture.name}”: it could not be read.]")
                if number == last:
                    found.problems.append(problem)
                    found.runs.append(ToolRun(READ, picture.name, problem, ok=False))
                continue
            if text:
                shown = text[:READ_CHARS] + (" …" if len(text) > READ_CHARS else "")
                notes.append(f"[Picture “{picture.name}”. You cannot see it; the text read from it:]\n{shown}")
            else:
                notes.append(f"[Picture “{picture.name}”. You cannot see it, and no text was found in it.]")
            if number == last:
                found.runs.append(ToolRun(READ, picture.name, text[:READ_CHARS] or "no text found"))
        found.messages.append(replace(message, content="\n\n".join([message.content, *notes]).strip()))
    return found
