"""Import a file into the store: ChatGPT's or Open WebUI's export, or bnaGPT's own, with a
report in words of what came in, what was already here and what was left out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from model.files import FileStore
from model.imports import ImportRead, read_export
from model.message import Conversation
from model.store import ConversationStore
from model.transfer import ImportFailed, ReadImport, carried_files, files_of, read_import


@dataclass(frozen=True)
class ImportReport:
    imported: list[Conversation]  # as stored (new ids, names made unique)
    already_there: int  # conversations from the same source imported before, left out
    skipped: list[str]  # one "“Title” (ChatGPT): reason" per conversation that could not be read
    summary: str  # one or two sentences for the user (and one about the files an export carried)


def import_export(store: ConversationStore, data: bytes, filename: str, files: FileStore | None = None) -> ImportReport:
    """Read `data` (ChatGPT, Open WebUI or bnaGPT) and add its conversations in one write, after
    the files a bnaGPT export carries (into `files`; None: they are not read).
    ImportFailed says why a file cannot be imported; then no conversation was added."""
    read = read_export(data, filename)
    notes: list[str] = []
    if read is None:
        found = read_import(data)
        conversations = found.conversations
        if files is not None:
            notes = store_carried(found, files)
    else:
        conversations = read.conversations
    imported = store.import_conversations(conversations)
    already = len(conversations) - len(imported)
    skipped = [] if read is None else read.skipped
    return ImportReport(imported, already, skipped, " ".join([summarize(read, imported, already), *notes]))


def store_carried(found: ReadImport, files: FileStore) -> list[str]:
    """Store the files a bnaGPT export carries that its conversations refer to and `files` lacks,
    so no conversation is saved without a file its export had. A sentence for each kind of file
    left out; ImportFailed if one cannot be written."""
    wanted = [sha256 for conv in found.conversations for sha256 in files_of(conv) if not files.claim(sha256)]
    carried, notes = carried_files(found.files, wanted)
    for file in carried:
        try:
            files.put(file.data, file.name, file.kind)
        except OSError as exc:
            raise ImportFailed(
                f"Its attached files could not be stored ({exc.strerror or exc}); free some disk space "
                "and import it again."
            ) from exc
    return notes


def summarize(read: ImportRead | None, imported: list[Conversation], already: int) -> str:
    """“Imported 12 conversations from ChatGPT (3 with several branches); 2 were already here; …”"""
    source = f" from {read.app}" if read else ""
    branched = sum(1 for conv in imported if _has_branches(conv))
    if imported:
        first = f"Imported {_count(len(imported), 'conversation')}{source}"
        first += f" ({branched} with several branches)" if branched else ""
    else:
        first = f"Nothing new{source}"
    clauses = [first]
    if already:
        clauses.append(f"{_count(already, 'was', 'were')} already here" if imported else _all_there(already))
    skipped = read.skipped if read else []
    if len(skipped) == 1:
        clauses.append(f"1 skipped: {skipped[0]}")
    elif skipped:
        clauses.append(f"{len(skipped)} skipped (listed below)")
    summary = "; ".join(clauses) + "."
    left_out = _left_out(read) if read and imported else ""
    return f"{summary} {left_out}" if left_out else summary


def _left_out(read: ImportRead) -> str:
    dropped = [
        _count(read.hidden, "hidden system message"),
        _count(read.reasoning, "reasoning note"),
        _count(read.tools_dropped, "browsing or tool message"),
    ]
    kept = [
        _count(read.tools_as_text, "tool message") + " kept as text",
        _count(read.images, "image") + " shown as [image]",
        _count(read.other_parts, "audio or file attachment") + " shown as [audio] or [file]",
        _count(read.loops_broken, "loop in the message links", "loops in the message links") + " cut",
    ]
    dropped = [part for part in dropped if not part.startswith("0 ")]
    kept = [part for part in kept if not part.startswith("0 ")]
    sentence = f"{_join(dropped)} left out" if dropped else ""
    if kept:
        sentence += ("; " if sentence else "") + _join(kept)
    return sentence[:1].upper() + sentence[1:] + "." if sentence else ""


def _has_branches(conv: Conversation) -> bool:
    return any(count > 1 for count in Counter(m.parent_id for m in conv.messages).values())


def _all_there(already: int) -> str:
    return "it was already here" if already == 1 else f"all {already} were already here"


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
