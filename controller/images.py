"""The verbs for pictures: attach one to a message, read the text in it, and make one from a prompt.

`attach_image` checks an upload (`utils.images.check`) before it is stored, so a refused file is
never written. `image_text` is what a model that cannot see gets instead of the picture; what it
read is kept beside the stored file as its note `<sha256>.ocr.json` (with the reader's name and version),
because the same picture is read again on every later turn of its conversation, after a restart
and in every tab, and one reading costs seconds of CPU: the bytes never change under a SHA-256, so
the file is never stale, and a newer reader reads the picture again. `create_image` and the
agent's `generate_image` tool store a made picture and say what ran as a `ToolRun`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from model.files import FileStore
from model.parts import Attachment, ToolRun
from settings import Settings
from utils.images import MB, check, sniff, to_png

TOOL = "generate_image"


def attach_image(data: bytes, filename: str, settings: Settings) -> tuple[Attachment, list[str]]:
    """Check and store an uploaded picture; its Attachment and what the user should know (sentences).
    ImageError (one sentence) when it cannot be used; nothing is stored then."""
    checked = check(data, filename, settings.image_max_mb * MB, settings.image_max_megapixels * 1_000_000)
    stored = _store(settings).put(data, filename, checked.kind)
    return Attachment(stored.sha256, stored.name, stored.kind, stored.size), list(checked.notes)


def image_text(attachment: Attachment, settings: Settings) -> str:
    """The text in a stored picture, line by line ("" when it holds none), read once per picture.
    FileMissing / FileCorrupted when the picture is gone, OcrError when it cannot be read."""
    from utils.ocr import engine_version, read_text

    store = _store(settings)
    engine = engine_version()
    kept = store.note(attachment.sha256, "ocr")
    if isinstance(kept, dict) and kept.get("engine") == engine and isinstance(kept.get("text"), str):
        return kept["text"]
    text = read_text(store.get(attachment.sha256))
    store.put_note(attachment.sha256, "ocr", {"engine": engine, "text": text})
    return text


def create_image(prompt: str, settings: Settings) -> ToolRun:
    """Make a picture for `prompt` and store it: the run, with the stored picture in `images`.
    ImageGenerationError (one sentence) when no picture was made; nothing is stored then."""
    from utils.image_generation import generate

    made = generate(prompt, settings)
    data, kind = made.data, sniff(made.data)
    if kind not in ("png", "jpeg"):  # a WebP or GIF answer is kept as PNG, as every picture a tool made
        data, kind = to_png(made.data), "png"
    name = f"{_slug(prompt)}.{'jpg' if kind == 'jpeg' else 'png'}"
    stored = _store(settings).put(data, name, kind)
    return ToolRun(TOOL, prompt, made.revised_prompt, images=(stored.sha256,))


def image_tool(settings: Settings, on_run: Callable[[ToolRun], None]) -> object:
    """`generate_image(prompt)` for the agent (a LlamaIndex FunctionTool): each run, made or failed,
    goes to `on_run` so it is kept with the answer; the model is told what happened in a sentence."""
    from llama_index.core.tools import FunctionTool

    from utils.image_generation import ImageGenerationError

    def generate_image(prompt: str) -> str:
        """Make a picture from a description and show it to the user. Describe it fully in English:
        subject, setting, style, colours and composition. Use only when the user asks for a picture."""
        try:
            run = create_image(prompt, settings)
        except ImageGenerationError as error:
            on_run(ToolRun(TOOL, prompt, str(error), ok=False))
            return str(error)
        on_run(run)
        revised = f" The image service drew it from this prompt: {run.output}" if run.output else ""
        return (
            f"The picture was made and is shown to the user under your answer; do not link or describe a file.{revised}"
        )

    return FunctionTool.from_defaults(fn=generate_image, name=TOOL)


# --- helpers ---


def _store(settings: Settings) -> FileStore:
    return FileStore(settings.files_dir)


def _slug(prompt: str) -> str:
    """A file name from the prompt's first words, for a download: "a-red-fox-in-snow"."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    return "-".join(words)[:48].strip("-") or "image"
