"""Pictures and voice on the chat pages: pictures sent with a message and made by the image tool,
a voice note written down and shown for review before it is sent, and Read aloud under answers.

The adapters (utils.images, utils.ocr, utils.transcribe, utils.speech, utils.image_generation)
are imported when first used: none of them is on the path of a page that does not use them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import streamlit as st

from model.message import Message
from model.parts import Attachment, ToolRun
from utils.text import as_text
from view import resources
from view.chat_state import Action

# Small copies of pictures for the history, by SHA-256 (a picture is drawn again on every run).
_thumbnails: OrderedDict[str, bytes] = OrderedDict()
_thumbnails_lock = threading.Lock()
THUMBNAILS_KEPT = 64
THUMBNAIL_WIDTH = 240


@dataclass(frozen=True)
class VoiceNote:
    """A recording written down, waiting for the user to send it (or not)."""

    text: str  # what was typed with it, then what was heard
    files: tuple[tuple[str, bytes], ...] = ()
    caption: str = ""  # how long, and what wrote it down
    notes: tuple[str, ...] = ()
    problem: str = ""  # why nothing was written down


def picture_types() -> list[str]:
    from utils.images import IMAGE_TYPES

    return list(IMAGE_TYPES)


def thumbnail(sha256: str) -> bytes:
    """A small copy of a stored picture (made once per process)."""
    from utils.images import thumbnail as shrink

    with _thumbnails_lock:
        if sha256 in _thumbnails:
            _thumbnails.move_to_end(sha256)
            return _thumbnails[sha256]
    small = shrink(resources.file_store().get(sha256), max_side=2 * THUMBNAIL_WIDTH)
    with _thumbnails_lock:
        _thumbnails[sha256] = small
        while len(_thumbnails) > THUMBNAILS_KEPT:
            _thumbnails.popitem(last=False)
    return small


def draw_pictures(attachments: tuple[Attachment, ...]) -> None:
    """The pictures sent with a message, small."""
    from controller.media import is_picture

    pictures = [a for a in attachments if is_picture(a)]
    if not pictures:
        return
    with st.container(horizontal=True, gap="small"):
        for picture in pictures:
            try:
                st.image(thumbnail(picture.sha256), caption=as_text(picture.name), width=THUMBNAIL_WIDTH)
            except (OSError, LookupError, ValueError):
                st.caption(f":material/image: {as_text(picture.name)} is no longer stored.")


def draw_made_pictures(message: Message) -> None:
    """Pictures the image tool made for an answer, full width, with the prompt they were made from."""
    for run in message.tool_runs:
        if run.tool != "generate_image":
            continue
        if not run.ok:
            st.caption(f":material/image: The picture could not be made: {as_text(run.output)}")
            continue
        for sha256 in run.images:
            try:
                st.image(resources.file_store().get(sha256), caption=as_text((run.output or run.input)[:300]))
            except (OSError, LookupError):
                st.caption(":material/image: This picture is no longer stored.")


def draw_read_aloud_button(key: str, message: Message) -> None:
    """Read aloud, under an answer (`key`: the page's)."""

    def ask() -> None:
        st.session_state[f"{key}:spoken"] = message.id
        st.session_state[f"{key}:spoken-now"] = True

    st.button(
        "Read aloud",
        key=f"{key}:read:{message.id}",
        icon=":material/volume_up:",
        type="tertiary",
        help="Hear this answer (made on this machine unless a speech endpoint is set).",
        on_click=ask,
    )


def draw_read_aloud(key: str, message: Message) -> None:
    """The answer read aloud, under it, once asked for (made on demand, kept in memory only)."""
    if st.session_state.get(f"{key}:spoken") != message.id:
        return
    from utils.speech import SpeechError, speak

    settings = resources.runtime().configured
    try:
        with st.spinner("Making the audio…"):
            spoken = speak(message.content, settings)
    except SpeechError as error:
        st.error(as_text(str(error)), icon=":material/volume_up:")
        return
    autoplay = bool(st.session_state.pop(f"{key}:spoken-now", False))  # only right after the click
    st.audio(spoken.data, format=spoken.mime, autoplay=autoplay)
    st.caption(f":material/volume_up: {as_text(spoken.engine)}" + "".join(f" · {as_text(n)}" for n in spoken.notes))


class MediaMixin:
    """Part of ChatView: `key` names the page's state."""

    key: str

    def request(self, action: Action) -> None:
        raise NotImplementedError

    # what became of the files sent with the last question ------------------
    def file_note(self, level: str, text: str, icon: str) -> None:
        """Say something about a file sent with the question, now and until the next question (a
        rerun after the answer must not take the sentence away before it is read)."""
        st.session_state.setdefault(f"{self.key}:file-notes", []).append((level, text, icon))
        getattr(st, level)(text, icon=icon)

    def draw_file_notes(self) -> None:
        for level, text, icon in st.session_state.get(f"{self.key}:file-notes", ()):
            getattr(st, level)(text, icon=icon)

    # voice in ---------------------------------------------------------------
    def take_voice_note(self, audio: bytes, typed: str, files: tuple[tuple[str, bytes], ...]) -> None:
        """Write down a recording; the text waits on the page for the user to send it."""
        from utils.audio import AudioError, duration_text
        from utils.transcribe import TranscriptionError, transcribe

        settings = resources.runtime().configured
        try:
            with st.spinner("Writing down your voice note…"):
                heard = transcribe(audio, "voice-note.wav", settings)
        except (AudioError, TranscriptionError) as error:
            note = VoiceNote(typed, files, problem=str(error))
        else:
            text = f"{typed.strip()}\n\n{heard.text}".strip() if typed.strip() else heard.text
            caption = f"{duration_text(heard.seconds)} written down by {heard.engine}"
            note = VoiceNote(text, files, caption, heard.notes)
        st.session_state[f"{self.key}:voice"] = note

    def draw_voice_note(self) -> None:
        """The written-down voice note: edit it, then Send it (or Discard it)."""
        note: VoiceNote | None = st.session_state.get(f"{self.key}:voice")
        if note is None:
            return
        field = f"{self.key}:voice-text"

        def send() -> None:
            text = st.session_state.get(field, "")
            st.session_state.pop(f"{self.key}:voice", None)
            if text.strip() or note.files:
                self.request(Action("ask", text, files=note.files))

        def discard() -> None:
            st.session_state.pop(f"{self.key}:voice", None)

        with st.chat_message("user"):
            if note.problem:
                st.error(as_text(note.problem), icon=":material/mic:")
                if not note.text and not note.files:
                    st.button("Close", key=f"{self.key}:voice-close", on_click=discard)
                    return
            st.session_state.setdefault(field, note.text)
            st.text_area("Your voice note, written down: check it, then send it", key=field, height=100)
            if note.caption:
                st.caption(f":material/mic: {as_text(note.caption)}")
            for line in note.notes:
                st.caption(as_text(line))
            with st.container(horizontal=True, gap="small"):
                st.button("Send", key=f"{self.key}:voice-send", icon=":material/send:", type="primary", on_click=send)
                st.button("Discard", key=f"{self.key}:voice-discard", on_click=discard)

    def forget_voice_note(self) -> None:
        st.session_state.pop(f"{self.key}:voice", None)
        st.session_state.pop(f"{self.key}:voice-text", None)

    # pictures in ------------------------------------------------------------
    def store_picture(self, name: str, data: bytes, sees: bool) -> Attachment | None:
        """Check and store a picture; for a model that cannot see, read its text now (seconds)."""
        from controller.images import attach_image, image_text
        from utils.images import ImageError
        from utils.ocr import OcrError

        settings = resources.runtime().configured
        try:
            attachment, notes = attach_image(data, name, settings)
        except (ImageError, OSError) as error:
            self.file_note("error", f"{as_text(name)}: {as_text(str(error))}", ":material/image:")
            return None
        for note in notes:
            self.file_note("info", as_text(note), ":material/image:")
        if not sees:
            try:
                with st.spinner(f"Reading the text in {as_text(name)}…"):
                    image_text(attachment, settings)  # kept beside the picture: the turn finds it
            except (OcrError, OSError, LookupError) as error:
                self.file_note("warning", f"{as_text(name)}: {as_text(str(error))}", ":material/image:")
        return attachment

    # pictures out -----------------------------------------------------------
    def make_picture(self, prompt: str) -> tuple[ToolRun | None, str]:
        """A picture for `prompt` from the image endpoint: (the run, "") or (None, why not)."""
        from controller.images import create_image
        from utils.image_generation import NOT_CONFIGURED, ImageGenerationError, available

        settings = resources.runtime().configured
        if not available(settings):
            return None, NOT_CONFIGURED
        try:
            with st.spinner("Making the picture…"):
                return create_image(prompt, settings), ""
        except ImageGenerationError as error:
            return None, str(error)
