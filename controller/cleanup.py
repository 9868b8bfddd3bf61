"""After a conversation or an assistant is deleted, in the background (reading every conversation
takes a moment at 5,000): the search indexes nothing saved uses any more are deleted, then the
stored files nothing saved refers to, so deleting a conversation with a 40 MB PDF frees the disk.

Losing a file that something still refers to is far worse than keeping a useless one, so a stored
file is deleted only when that is sure:
- Referenced means any SHA-256 (64 hex digits) written anywhere in the bytes of the stores' files and
  of every copy the stores leave beside them (the journal, stale journals, files set aside as
  corrupt, legacy backups: model.jsonstore), and of any other JSON file there (another conversations
  file may share the stored files). A damaged or set-aside file thus still holds on to its files.
  The parsed conversations and assistants are added as a cross-check.
- Nothing is deleted while unsure: a store reports a problem, one of those files cannot be read, or
  there are stored files but no conversations file (moved, renamed, on a disk not mounted?).
- A file changed in the last hour stays: it may be attached to a question whose turn is not saved
  yet, or to an assistant being edited. Storing the same bytes again sets its time to now.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from controller.runtime import Runtime
from model.assistant import Assistant
from model.files import FileStore, Freed
from model.message import Conversation
from model.search import index_path
from settings import Settings

KEEP_FILES_SECONDS = 3600.0
CHUNK = 1 << 20
# Each lowercase hex digit as "x", anything else as ".": a SHA-256 is then a run of 64 "x" that
# bytes.find spots >10x faster than re's [0-9a-f]{64} (51-80 ms, not 740-970, for 5,000 conversations).
_MARKS = bytes(ord("x") if chr(byte) in "0123456789abcdef" else ord(".") for byte in range(256))
_RUN = b"x" * 64
_log = logging.getLogger(__name__)
_running = threading.Lock()


def files_in_use(conversations: Iterable[Conversation], assistants: Iterable[Assistant]) -> list[frozenset[str]]:
    """Each owner's files: a conversation's attachments and the pictures its tools made, on every
    branch, with its assistant's knowledge; each assistant's knowledge."""
    knowledge = {a.id: frozenset(k.sha256 for k in a.knowledge) for a in assistants}
    owners = [
        frozenset(a.sha256 for m in c.messages for a in m.attachments)
        | frozenset(image for m in c.messages for run in m.tool_runs for image in run.images)
        | knowledge.get(c.assistant_id or "", frozenset())
        for c in conversations
    ]
    return [files for files in (*owners, *knowledge.values()) if files]


def written_in(path: Path) -> set[str]:
    """Every SHA-256 (64 lowercase hex digits, as re.findall would find them) written anywhere in
    the file, whatever its format. Read a chunk at a time; the last 63 bytes of each are read again
    with the next, so one split between two is found whole."""
    found: set[bytes] = set()
    carried = b""
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            data = carried + chunk
            marks = data.translate(_MARKS)
            start = marks.find(_RUN)
            while start >= 0:
                found.add(data[start : start + 64])
                start = marks.find(_RUN, start + 64)
            carried = data[-63:]
    return {sha256.decode("ascii") for sha256 in found}


def files_to_read(config: Settings) -> list[Path]:
    """The files that may name a stored file: the stores' files and every copy they leave beside
    them (beside the configured path, and beside a symlink's target where copies set aside go), and
    any other JSON file in those folders or the data folder. Not the search index of the
    conversations (`<file>.search.db`): it is made from them, and bigger. OSError if a folder
    cannot be listed."""
    stores = [config.conversations_file, config.assistants_file]
    places = {path for store in stores for path in (store, Path(os.path.realpath(store)))}
    names = tuple(path.name for path in places)
    derived = tuple(index_path(path).name for path in places)
    found: set[Path] = set()
    for folder in {path.parent for path in places} | {config.data_dir}:
        with os.scandir(folder) as entries:
            for entry in entries:
                named = entry.name.startswith(names) or ".json" in entry.name
                if named and not entry.name.startswith(derived) and entry.is_file():
                    found.add(Path(entry.path))
    return sorted(found)


def delete_unused_files(runtime: Runtime, keep_newer_than: float = KEEP_FILES_SECONDS) -> Freed:
    """Delete the stored files nothing saved refers to, unless changed in the last `keep_newer_than`
    seconds; how many and how many bytes were freed. Nothing at all when unsure (see above)."""
    config = runtime.configured
    if not config.files_dir.is_dir():
        return Freed()
    if not config.conversations_file.exists():
        return Freed()  # files but no conversations: the file may be moved or on a disk not mounted
    conversations, assistants = runtime.conversations().store, runtime.assistants().store
    referenced: set[str] = set()
    try:
        for path in files_to_read(config):
            referenced |= written_in(path)
    except OSError:
        return Freed()
    _, saved = conversations.contents()
    referenced.update(*files_in_use(saved.values(), assistants.list()))
    # Asked after reading, so a file found damaged while we read it stops the sweep too.
    if conversations.problem is not None or assistants.problem is not None:
        return Freed()
    return FileStore(config.files_dir).sweep(referenced, keep_newer_than)


def forget_unused_indexes(runtime: Runtime) -> threading.Thread:
    """Delete, in a thread of its own, the indexes and then the stored files no saved conversation
    or assistant uses (delete_unused_files)."""
    from controller.tools import prune_indexes

    def prune() -> None:
        if not _running.acquire(blocking=False):
            return  # one pass at a time is enough: it looks at everything
        try:
            try:
                _, conversations = runtime.conversations().store.contents()
                assistants = runtime.assistants().list()
                prune_indexes(runtime.configured, files_in_use(conversations.values(), assistants))
            except (OSError, RuntimeError):
                pass  # an index left behind costs only disk; the next delete tries again
            try:
                freed = delete_unused_files(runtime)
            except OSError:
                return  # so does a file left behind (no permission, the store's lock held too long)
            _log.debug("deleted %d stored files no one uses (%d bytes)", freed.files, freed.bytes)
        finally:
            _running.release()

    thread = threading.Thread(target=prune, name="bnagpt-prune-indexes", daemon=True)
    thread.start()
    return thread
