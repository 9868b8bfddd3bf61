"""Stored files follow their owners: after a delete, a file nothing saved refers to is deleted with
its meta and notes; one anything may still refer to stays, and nothing goes while unsure."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import settings
from controller.cleanup import (
    CHUNK,
    delete_unused_files,
    files_in_use,
    files_to_read,
    forget_unused_indexes,
    written_in,
)
from controller.runtime import Runtime
from model.files import FileStore, Freed
from model.message import Conversation, Message
from model.parts import Attachment, ToolRun

HOURS_AGO = 2 * 3600


def stored(config: settings.Settings, data: bytes, name: str) -> Attachment:
    file = FileStore(config.files_dir).put(data, name)
    return Attachment(file.sha256, file.name, file.kind, file.size)


def parts(config: settings.Settings, sha256: str) -> list[str]:
    """The names on disk of a stored file's parts (the file, its meta, its notes)."""
    shard = config.files_dir / sha256[:2]
    return sorted(p.name for p in shard.iterdir() if p.name.startswith(sha256)) if shard.is_dir() else []


def aged(folder: Path, seconds: float = HOURS_AGO) -> None:
    """As if stored `seconds` ago (files changed in the last hour are always kept)."""
    past = time.time() - seconds
    for path in folder.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)


def asked(*attachments: Attachment, name: str = "Chat") -> Conversation:
    return Conversation(name, (Message("user", "read this", attachments=attachments), Message("assistant", "done")))


def test_a_deleted_conversations_pdf_goes_with_its_meta_and_notes() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    store = runtime.conversations().store
    pdf = stored(config, b"%PDF-1.4 forty megabytes, in spirit", "report.pdf")
    FileStore(config.files_dir).put_note(pdf.sha256, "ocr", {"engine": "test", "text": "words"})
    gone = store.save(asked(pdf))
    assert parts(config, pdf.sha256) == [pdf.sha256, f"{pdf.sha256}.json", f"{pdf.sha256}.ocr.json"]
    sizes = sum(p.stat().st_size for p in (config.files_dir / pdf.sha256[:2]).iterdir())

    assert delete_unused_files(runtime, keep_newer_than=0) == Freed()  # still saved: kept
    store.delete(gone.id)
    assert delete_unused_files(runtime, keep_newer_than=0) == Freed(1, sizes)

    assert parts(config, pdf.sha256) == []
    assert not (config.files_dir / pdf.sha256[:2]).exists()  # its folder, empty now, too
    assert not FileStore(config.files_dir).exists(pdf.sha256)


def test_a_file_anything_may_still_refer_to_stays() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    store = runtime.conversations().store
    orphan = stored(config, b"nobody's", "orphan.pdf")
    shared = stored(config, b"two conversations", "shared.pdf")
    branch = stored(config, b"asked on the other branch", "branch.pdf")
    knowledge = stored(config, b"an assistant's manual", "manual.md")
    picture = stored(config, b"\x89PNG a chart the code drew", "chart.png")
    set_aside = stored(config, b"named in a damaged copy", "corrupt.pdf")
    journaled = stored(config, b"named in a stale journal", "stale.pdf")
    escaped = stored(config, b"named only through a JSON escape", "escaped.pdf")

    gone = store.save(asked(shared))
    store.save(asked(shared, name="Also shared"))
    first = Message("user", "first try", id="q1", parent_id="", attachments=(branch, escaped))
    again = Message("user", "second try", id="q2", parent_id="")
    drawn = ToolRun("run_code", "plot()", "saved chart.png", images=(picture.sha256,))
    shown = Message("assistant", "here", id="a2", parent_id="q2", tool_runs=(drawn,))
    store.save(Conversation("Branches", (first, again, shown), current="a2"))
    runtime.assistants().create(name="Expert", knowledge=(knowledge,))
    store.delete(gone.id)
    corrupt = Path(f"{config.conversations_file}.corrupt-20250101T000000.000000Z")
    corrupt.write_text('{"version": 2, "conversations": {"x": [' + json.dumps(set_aside.to_dict()))  # cut short
    stale = Path(f"{config.conversations_file}.journal.stale-20250101T000000.000000Z")
    stale.write_text(json.dumps({"attachments": [journaled.to_dict()]}) + "\n")
    # The bytes hide this one (\u0030 is "0"): only the parsed conversations still name it.
    text = config.conversations_file.read_text("utf-8")
    first_digit = escaped.sha256[0]
    hidden = text.replace(escaped.sha256, f"\\u{ord(first_digit):04x}{escaped.sha256[1:]}")
    assert escaped.sha256 not in hidden
    config.conversations_file.write_text(hidden, "utf-8")
    aged(config.files_dir)

    freed = delete_unused_files(runtime)

    assert freed.files == 1 and parts(config, orphan.sha256) == []
    for kept in (shared, branch, knowledge, picture, set_aside, journaled, escaped):
        assert FileStore(config.files_dir).get(kept.sha256)  # still there, whole


def test_a_file_stored_in_the_last_hour_stays() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    runtime.conversations().store.save(Conversation("Other", (Message("user", "hi"),)))
    young = stored(config, b"attached to a question not saved yet", "draft.pdf")

    assert delete_unused_files(runtime) == Freed()
    assert FileStore(config.files_dir).exists(young.sha256)
    aged(config.files_dir, 3500)  # not quite an hour
    assert delete_unused_files(runtime) == Freed() and FileStore(config.files_dir).exists(young.sha256)
    aged(config.files_dir, 3700)
    assert delete_unused_files(runtime).files == 1 and not FileStore(config.files_dir).exists(young.sha256)


def test_storing_the_same_bytes_again_makes_an_old_file_young() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    runtime.conversations().store.save(Conversation("Other", (Message("user", "hi"),)))
    old = stored(config, b"orphaned two days ago", "old.pdf")
    blob = config.files_dir / old.sha256[:2] / old.sha256
    aged(config.files_dir, 2 * 86400)

    again = stored(config, b"orphaned two days ago", "again.pdf")  # uploaded again, turn not saved yet

    assert again.sha256 == old.sha256 and time.time() - blob.stat().st_mtime < 60
    assert delete_unused_files(runtime) == Freed()
    assert FileStore(config.files_dir).get(old.sha256) == b"orphaned two days ago"


def test_an_import_that_finds_a_file_stored_already_makes_it_young() -> None:
    """An import (of a conversation or an assistant) uses a file this machine has instead of the
    bytes it carries: claiming it sets its time, so a sweep running meanwhile keeps it."""
    config = settings.get_settings()
    runtime = Runtime(config)
    runtime.conversations().store.save(Conversation("Other", (Message("user", "hi"),)))
    old = stored(config, b"kept by an import", "old.pdf")
    blob = config.files_dir / old.sha256[:2] / old.sha256
    aged(config.files_dir, 2 * 86400)
    files = FileStore(config.files_dir)

    assert files.claim(old.sha256) and time.time() - blob.stat().st_mtime < 60
    assert not files.claim("0" * 64)
    assert delete_unused_files(runtime) == Freed()
    assert files.get(old.sha256) == b"kept by an import"


@pytest.mark.parametrize("trouble", ["corrupt", "a folder", "newer", "assistants corrupt", "missing"])
def test_nothing_is_deleted_while_unsure(trouble: str) -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    runtime.conversations().store.save(Conversation("Other", (Message("user", "hi"),)))
    orphan = stored(config, b"would be deleted on a good day", "orphan.pdf")
    aged(config.files_dir)
    conversations = config.conversations_file
    if trouble == "corrupt":  # moved aside; the store works as empty
        conversations.write_text('{"version": 2, "conversations": {')
    elif trouble == "a folder":  # cannot be read at all
        conversations.unlink()
        conversations.mkdir()
    elif trouble == "newer":  # left in place, saving off
        conversations.write_text(json.dumps({"version": 99, "conversations": {}}))
    elif trouble == "assistants corrupt":
        config.assistants_file.write_text("not json")
    else:  # moved, renamed, or on a disk not mounted
        conversations.unlink()

    assert delete_unused_files(runtime, keep_newer_than=0) == Freed()
    assert FileStore(config.files_dir).exists(orphan.sha256)


def test_a_folder_that_cannot_be_listed_stops_the_sweep(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANTS_FILE", str(tmp_path / "not mounted" / "assistants.json"))
    settings.get_settings.cache_clear()
    config = settings.get_settings()
    runtime = Runtime(config)
    runtime.conversations().store.save(Conversation("Other", (Message("user", "hi"),)))
    orphan = stored(config, b"its owner may be in the folder we cannot see", "orphan.pdf")

    assert delete_unused_files(runtime, keep_newer_than=0) == Freed()
    assert FileStore(config.files_dir).exists(orphan.sha256)


def test_symlinks_in_the_files_folder_are_not_followed(tmp_path: Path) -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    runtime.conversations().store.save(Conversation("Other", (Message("user", "hi"),)))
    own = stored(config, b"a real stored file", "own.pdf")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / "precious.txt"
    target.write_bytes(b"keep me")
    linked_file = own.sha256[:2] + "1" * 62  # a symlink where a stored file would be
    (config.files_dir / own.sha256[:2] / linked_file).symlink_to(target)
    prefix = "ab" if own.sha256[:2] != "ab" else "cd"
    linked_shard = prefix + "0" * 62  # a file named like a stored one, in a folder the store's folder links to
    (outside / linked_shard).write_bytes(b"not the store's")
    (outside / f"{linked_shard}.json").write_text("{}")
    (config.files_dir / prefix).symlink_to(outside, target_is_directory=True)
    aged(config.files_dir)
    aged(outside)

    freed = delete_unused_files(runtime, keep_newer_than=0)

    assert freed.files == 1 and not FileStore(config.files_dir).exists(own.sha256)
    assert sorted(p.name for p in outside.iterdir()) == sorted([linked_shard, f"{linked_shard}.json", "precious.txt"])
    assert target.read_bytes() == b"keep me"
    assert (config.files_dir / own.sha256[:2] / linked_file).is_symlink()  # left where it is
    assert FileStore(config.files_dir).remove(linked_file) == 0 and target.exists()
    assert FileStore(config.files_dir).remove(linked_shard) == 0 and (outside / linked_shard).exists()


def test_remove_frees_a_file_once_and_stale_temps_go_after_the_grace() -> None:
    config = settings.get_settings()
    files = FileStore(config.files_dir)
    one, two = files.put(b"one", "one.txt"), files.put(b"two", "two.txt")
    shard = config.files_dir / one.sha256[:2]

    size = len(b"one") + (shard / f"{one.sha256}.json").stat().st_size
    assert files.remove(one.sha256) == size and not shard.joinpath(one.sha256).exists()
    assert files.remove(one.sha256) == 0  # already gone: no error
    assert files.remove("f" * 64) == 0  # never stored

    folder = config.files_dir / two.sha256[:2]
    old_temp, young_temp = folder / f".{two.sha256}.abc123.tmp", folder / f".{two.sha256}.json.xyz789.tmp"
    old_temp.write_bytes(b"half a write")
    young_temp.write_bytes(b"a write going on")
    aged(config.files_dir)
    os.utime(young_temp)
    freed = files.sweep({two.sha256}, keep_newer_than=3600)
    assert freed == Freed(0, len(b"half a write"))
    assert not old_temp.exists() and young_temp.exists() and files.get(two.sha256) == b"two"


def test_what_is_read_for_references(tmp_path: Path) -> None:
    config = settings.get_settings()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "real.json").write_text("{}")
    config.conversations_file.symlink_to(elsewhere / "real.json")  # copies set aside go beside the target
    for name in ("real.json.corrupt-20250101T000000.000000Z", "real.json.legacy-20250101T000000.000000Z.bak"):
        (elsewhere / name).write_text("{")
    (tmp_path / "personal.json").write_text("{}")  # another conversations file sharing the stored files
    (tmp_path / "conversations.json.search.db").write_bytes(b"made from the conversations")
    (tmp_path / "notes.txt").write_text("not the app's")

    assert {p.name for p in files_to_read(config)} == {
        "conversations.json",
        "real.json",
        "real.json.corrupt-20250101T000000.000000Z",
        "real.json.legacy-20250101T000000.000000Z.bak",
        "personal.json",
    }


def test_a_sha256_split_between_two_chunks_is_found(tmp_path: Path) -> None:
    sha256 = "0123456789abcdef" * 4
    path = tmp_path / "conversations.json"
    path.write_bytes(b'{"x": "' + b"y" * (CHUNK - 40) + b'", "sha256": "' + sha256.encode() + b'"}' + b"z" * 10)
    assert written_in(path) == {sha256}


def test_the_pictures_tools_made_count_as_a_conversations_files() -> None:
    run = ToolRun("run_code", "plot()", "ok", images=("c" * 64,))
    chat = Conversation("Chat", (Message("user", "draw"), Message("assistant", "drawn", tool_runs=(run,))))
    assert files_in_use([chat], []) == [frozenset({"c" * 64})]


def test_the_pass_after_a_delete_frees_the_files_in_the_background() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    store = runtime.conversations().store
    pdf = stored(config, b"%PDF-1.4 deleted with its conversation", "gone.pdf")
    kept = stored(config, b"%PDF-1.4 still attached", "kept.pdf")
    gone = store.save(asked(pdf))
    store.save(asked(kept, name="Kept"))
    aged(config.files_dir)

    store.delete(gone.id)
    forget_unused_indexes(runtime).join(timeout=30)

    assert not FileStore(config.files_dir).exists(pdf.sha256)
    assert FileStore(config.files_dir).get(kept.sha256) == b"%PDF-1.4 still attached"
