"""The Assistants form's "Knowledge files": an uploader, the assistant's files with a Remove each,
and a sentence for each file left out; the index is built on the run after a save.

The list shown is the form's own copy (session state FILES) until Save: Remove and new uploads
change nothing stored, and Cancel forgets them. At Save the uploads are checked and stored
(controller.knowledge.add_files) and join the list, and the uploader starts empty again, so a
save refused for another field does not read them twice. Nothing here reads a stored file or
opens an index while the page is only drawn.

Widget keys, for tests (labels in quotes):
    asst:knowledge:<n>              "Knowledge files"   a fresh uploader after each save
    asst:knowledge:<sha256>:remove  "Remove"            one per file listed
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from controller.knowledge import FILE_TYPES, MAX_FILES, Added, add_files, knowledge_index
from model.assistant import Assistant
from model.parts import Attachment
from settings import Settings
from utils.documents import DocumentError
from utils.text import as_text
from view.notices import naming

FILES = "asst:knowledge"  # session state: the files the form shows (list[Attachment])
UPLOADS = "asst:knowledge-uploads"  # session state: how many saves took uploads (a fresh uploader for each)
LEFT_OUT = "asst:knowledge-left-out"  # session state: (level, sentence) under the field after a save
INDEXING = "asst:indexing"  # session state: (name, files) to index on the next run, after a save
HELP = (
    "Files this assistant searches in every chat with it, citing what it uses: PDF, Word (DOCX), "
    f"Markdown, text, HTML or CSV; at most {MAX_FILES}. They are read and indexed when you save."
)


def fill(assistant: Assistant | None) -> None:
    """Show `assistant`'s files (a new one's: none) in the form."""
    st.session_state[FILES] = list(assistant.knowledge) if assistant else []
    st.session_state.pop(LEFT_OUT, None)


def shown() -> list[Attachment]:
    return list(st.session_state.get(FILES, []))


def uploader_key() -> str:
    return f"asst:knowledge:{st.session_state.get(UPLOADS, 0)}"


def field(settings: Settings) -> None:
    """The uploader, the files with a Remove each, and what the last save left out. Inside the form."""
    st.file_uploader(
        "Knowledge files",
        type=list(FILE_TYPES),
        accept_multiple_files=True,
        key=uploader_key(),
        help=HELP,
        max_upload_size=settings.document_max_mb,
    )
    for file in shown():
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.markdown(
                f":material/description: {as_text(file.name)} :gray[{as_text(file.kind)} · {size(file.size)}]",
                width="stretch",
            )
            st.form_submit_button(
                "Remove",
                key=f"asst:knowledge:{file.sha256}:remove",
                type="tertiary",
                icon=":material/close:",
                help=f"Take {file.name} out of this assistant's files (when you save)",
                on_click=remove,
                args=(file.sha256,),
            )
    for level, sentence in st.session_state.get(LEFT_OUT, []):
        (st.error if level == "error" else st.info)(as_text(sentence), icon=":material/attach_file:")


def remove(sha256: str) -> None:
    st.session_state[FILES] = [file for file in shown() if file.sha256 != sha256]
    st.session_state.pop(LEFT_OUT, None)


def take_uploads(settings: Settings) -> Added:
    """Check and store the uploads of this save after the files listed; they join the list (the
    uploader starts empty again) and a sentence for each file left out is kept for the field."""
    uploads: Sequence = st.session_state.get(uploader_key()) or []  # UploadedFile: name, getvalue()
    added = add_files(shown(), [(upload.name, upload.getvalue()) for upload in uploads], settings)
    st.session_state[FILES] = list(added.files)
    st.session_state[LEFT_OUT] = [("error", naming(name, sentence)) for name, sentence in added.refused] + [
        ("info", naming(name, sentence)) for name, sentence in added.notes
    ]
    if uploads:
        st.session_state[UPLOADS] = st.session_state.get(UPLOADS, 0) + 1
    return added


def left_out() -> int:
    """How many files the last save left out."""
    return sum(level == "error" for level, _ in st.session_state.get(LEFT_OUT, []))


def index_later(saved: Assistant) -> None:
    """Index `saved`'s files on the next run, where a progress bar can be drawn."""
    if saved.knowledge:
        st.session_state[INDEXING] = (saved.name, saved.knowledge)


def index_saved(settings: Settings) -> None:
    """Build the index of the files just saved, with a progress bar where this is called, so the
    first chat with the assistant does not wait for it. Called once, after a save."""
    name, files = st.session_state.pop(INDEXING, (None, ()))
    if not files:
        return
    slot = st.empty()
    bar = slot.progress(0.0, text=f"Indexing {as_text(name)}'s files…")

    def report(done: float, text: str) -> None:
        bar.progress(min(done, 1.0), text=as_text(text))

    try:
        knowledge_index(files, settings, report)
    except (DocumentError, OSError, LookupError, RuntimeError) as error:
        slot.warning(
            f"{as_text(name)}'s files could not be indexed now ({as_text(str(error))}); "
            "the first chat with it will try again.",
            icon=":material/warning:",
        )
        return
    slot.empty()


def size(count: int) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} bytes"
