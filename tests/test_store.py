"""The conversation store, on real files under tmp_path: format, names, cache, safety under
threads, processes and SIGKILL, and speed."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from model.message import Conversation, Message
from model.store import (
    MAX_NAME_LENGTH,
    ConversationNotFound,
    ConversationStore,
    InvalidName,
    NameTaken,
    StoreCorrupted,
    StoreError,
    clean_name,
)

MP = multiprocessing.get_context("spawn") if sys.platform == "win32" else multiprocessing.get_context("fork")


def chat(name: str, *contents: str, updated_at: str = "2025-01-01T00:00:00.000Z") -> Conversation:
    messages = [Message("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(contents)]
    return Conversation(name=name, messages=tuple(messages), model="m", updated_at=updated_at)


def big_document(count: int, messages: int = 20, size: int = 500) -> dict[str, Any]:
    """A v1 file body written directly, much faster than `count` saves."""
    body = "x" * size
    conversations = {}
    for i in range(count):
        conv = Conversation(
            id=f"c{i:05d}",
            name=f"conversation {i}",
            messages=tuple(Message("user", body, "2025-01-01T00:00:00.000Z") for _ in range(messages)),
            created_at="2025-01-01T00:00:00.000Z",
            updated_at=f"2025-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        )
        conversations[conv.id] = conv.to_dict()
    return {"version": 1, "conversations": conversations}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "conversations.json"


@pytest.fixture
def store(path: Path) -> ConversationStore:
    return ConversationStore(path)


# --- basics ---


def test_missing_file_is_an_empty_store_and_nothing_is_created(path: Path, store: ConversationStore) -> None:
    assert store.list() == [] and store.problem is None
    assert store.load("nope") is None and store.find("nope") is None
    assert list(path.parent.iterdir()) == []  # reading creates nothing, not even the lock file
    assert store.delete("nope") is False and not path.exists()


def test_round_trip_through_a_new_store(path: Path, store: ConversationStore) -> None:
    conv = chat("Hello", "hi", "hello <b>there</b> 👋")
    assert store.save(conv) == conv
    again = ConversationStore(path)
    assert again.load(conv.id) == conv
    assert again.find("  HELLO ") == again.list()[0]
    summary = again.list()[0]
    assert (summary.id, summary.name, summary.message_count, summary.model) == (conv.id, "Hello", 2, "m")


def test_list_is_most_recently_updated_first(store: ConversationStore) -> None:
    for name, when in [
        ("old", "2024-01-01T00:00:00.000Z"),
        ("new", "2026-01-01T00:00:00.000Z"),
        ("mid", "2025-01-01T00:00:00.000Z"),
    ]:
        store.save(chat(name, updated_at=when))
    assert [s.name for s in store.list()] == ["new", "mid", "old"]


def test_file_is_v2_with_only_conversation_fields_and_mode_0600(path: Path, store: ConversationStore) -> None:
    conv = store.save(chat("a", "hi"))
    data = json.loads(path.read_text("utf-8"))
    assert set(data) == {"version", "conversations"} and data["version"] == 2
    assert data["conversations"] == {conv.id: conv.to_dict()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_save_swaps_in_a_new_file_so_a_reader_never_sees_half_of_one(path: Path, store: ConversationStore) -> None:
    store.save(chat("a", "hi"))
    before = path.read_bytes()
    with open(path, "rb") as reader:  # a reader in the middle of reading the old file
        head = reader.read(10)
        store.save(chat("b", "x" * 100_000))
        assert head + reader.read() == before
    assert not list(path.parent.glob("*.tmp")) and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_one_megabyte_message_round_trips(path: Path, store: ConversationStore) -> None:
    content = ('ünïcødé 🙂 "quotes" \\ \n' * 50_000)[: 1024 * 1024]
    conv = store.save(chat("big", content))
    assert ConversationStore(path).load(conv.id) == conv


# --- names ---


@pytest.mark.parametrize(
    ("bad", "says"),
    [("", "empty or blank"), ("   \t\n", "empty or blank"), ("x" * (MAX_NAME_LENGTH + 1), "at most 100")],
)
def test_bad_names_are_refused_with_a_reason(store: ConversationStore, bad: str, says: str) -> None:
    with pytest.raises(InvalidName, match=says):
        clean_name(bad)
    with pytest.raises(InvalidName, match=says):
        store.save(chat(bad))
    kept = store.save(chat("ok"))
    with pytest.raises(InvalidName, match=says):
        store.rename(kept.id, bad)
    assert [s.name for s in store.list()] == ["ok"]


def test_names_are_trimmed_and_100_characters_are_fine(store: ConversationStore) -> None:
    assert store.save(chat("  padded \n")).name == "padded"
    assert store.save(chat(" " + "x" * MAX_NAME_LENGTH + " ")).name == "x" * MAX_NAME_LENGTH


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "<b>bold</b> & &amp;",
        "**md** `code` [link](x)",
        "🙂 emoji 👩‍💻",
        "a/b\\c",
        "../../etc/passwd",
        "名前",
    ],
)
def test_any_other_characters_round_trip_verbatim(path: Path, store: ConversationStore, name: str) -> None:
    conv = store.save(chat(name, "hi"))
    again = ConversationStore(path)
    assert again.load(conv.id) == conv and again.list()[0].name == name


def test_duplicate_name_is_refused_unless_overwrite(path: Path, store: ConversationStore) -> None:
    first = store.save(chat("Work", "one"))
    with pytest.raises(NameTaken) as caught:
        store.save(chat(" work ", "two"))  # names clash trimmed and ignoring case
    assert caught.value.existing_id == first.id and caught.value.name == "work"
    second = store.save(chat("work", "two"), overwrite=True)
    assert [s.id for s in store.list()] == [second.id]
    assert ConversationStore(path).load(first.id) is None


def test_saving_the_same_id_replaces_it(store: ConversationStore) -> None:
    conv = store.save(chat("a", "hi"))
    longer = store.save(conv.with_messages([*conv.messages, Message("assistant", "hello")]))
    assert len(store.list()) == 1 and store.load(conv.id) == longer and store.list()[0].message_count == 2


def test_rename(path: Path, store: ConversationStore) -> None:
    a, b = store.save(chat("a")), store.save(chat("b"))
    renamed = store.rename(a.id, "  A new name ")
    assert renamed.name == "A new name" and renamed.updated_at >= a.updated_at
    assert ConversationStore(path).load(a.id) == renamed and store.find("a") is None
    assert store.rename(a.id, "a NEW name").name == "a NEW name"  # its own name in another case is fine
    with pytest.raises(NameTaken):
        store.rename(a.id, "B")
    with pytest.raises(ConversationNotFound) as caught:
        store.rename("missing", "x")
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, KeyError)
    assert "missing" in str(caught.value) and store.load(b.id) == b


def test_delete(path: Path, store: ConversationStore) -> None:
    a, b = store.save(chat("a")), store.save(chat("b"))
    assert store.delete(a.id) is True and store.delete(a.id) is False
    assert [s.id for s in ConversationStore(path).list()] == [b.id]


def test_import_gives_new_ids_and_numbers_clashing_names(store: ConversationStore) -> None:
    existing = store.save(chat("Notes", "x"))
    incoming = [chat("notes", "1"), chat("Notes", "2"), chat("Other", "3")]
    stored = store.import_conversations(incoming)
    assert [c.name for c in stored] == ["notes (2)", "Notes (3)", "Other"]
    assert all(c.id != existing.id and c.id not in {i.id for i in incoming} for c in stored)
    assert [c.messages for c in stored] == [c.messages for c in incoming]
    assert {s.name for s in store.list()} == {"Notes", "notes (2)", "Notes (3)", "Other"}


# --- legacy, corrupt and empty files ---

LEGACY = {
    "Trip to Perú": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hola"},
        {"role": "assistant", "content": "¡Hola!"},
    ],
    "  second ": [{"role": "user", "content": "x"}],
}


def test_legacy_file_is_read_as_is_then_upgraded_with_a_byte_identical_backup(path: Path) -> None:
    original = json.dumps(LEGACY, indent=4).encode()
    path.write_bytes(original)
    store = ConversationStore(path)
    assert {s.name for s in store.list()} == {"Trip to Perú", "second"}
    trip = store.find("trip to perú")
    assert trip is not None and trip.id == ConversationStore(path).find("Trip to Perú").id  # type: ignore[union-attr]
    conv = store.load(trip.id)
    assert conv is not None and [m.role for m in conv.messages] == ["system", "user", "assistant"]
    assert path.read_bytes() == original  # reading never writes

    new = store.save(chat("new", "hi"))
    backups = list(path.parent.glob("conversations.json.legacy-*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    data = json.loads(path.read_text("utf-8"))
    assert data["version"] == 2 and set(data["conversations"]) == {trip.id, new.id, store.find("second").id}  # type: ignore[union-attr]
    assert ConversationStore(path).load(trip.id) == conv
    store.save(chat("newer"))
    assert len(list(path.parent.glob("*.bak"))) == 1  # backed up once, on the upgrade


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'{"version": 3, "conversations": {}}',
        b'{"a": 5}',
        b'{"version": 1, "conversations": {"x": {"name": "n", "messages": [{"role": "robot", "content": ""}]}}}',
    ],
)
def test_corrupt_file_is_moved_aside_never_overwritten_and_the_store_works(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    store = ConversationStore(path)
    assert store.list() == []
    problem = store.problem
    assert isinstance(problem, StoreCorrupted) and problem.path == path and problem.reason
    assert problem.moved_to is not None and problem.moved_to.name.startswith("conversations.json.corrupt-")
    assert ":" not in problem.moved_to.name and problem.moved_to.read_bytes() == content
    assert not path.exists()
    conv = store.save(chat("after", "hi"))
    assert ConversationStore(path).load(conv.id) == conv and problem.moved_to.read_bytes() == content

    path.write_bytes(content)  # corrupt again: a second, distinct backup
    assert ConversationStore(path).list() == []
    assert len(list(path.parent.glob("conversations.json.corrupt-*"))) == 2


@pytest.mark.parametrize("content", [b"", b"  \n\t "])
def test_empty_file_is_an_empty_store_not_a_corrupt_one(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    store = ConversationStore(path)
    assert store.list() == [] and store.problem is None
    store.save(chat("a"))
    assert len(ConversationStore(path).list()) == 1 and not list(path.parent.glob("*.corrupt-*"))


def test_stale_temp_files_are_cleaned_up_on_the_next_write(path: Path, store: ConversationStore) -> None:
    stale, fresh = path.parent / ".conversations.json.dead.tmp", path.parent / ".conversations.json.live.tmp"
    stale.write_text("partial")
    fresh.write_text("partial")
    os.utime(stale, (time.time() - 120, time.time() - 120))
    store.save(chat("a"))
    assert not stale.exists() and fresh.exists()


# --- cache ---


def test_reads_come_from_memory_until_the_file_changes(path: Path, store: ConversationStore) -> None:
    conv = store.save(chat("a", "hi"))
    reader = ConversationStore(path)
    first = reader.list()
    assert reader.parse_count == 1
    assert reader.list() == first and reader.list()[0] is first[0] and reader.load(conv.id) is reader.load(conv.id)
    assert reader.parse_count == 1

    store.save(chat("b"))  # another instance (another tab) writes
    assert {s.name for s in reader.list()} == {"a", "b"} and reader.parse_count == 2

    data = json.loads(path.read_text("utf-8"))  # a hand edit in place
    data["conversations"][conv.id]["name"] = "edited"
    path.write_text(json.dumps(data), "utf-8")
    assert reader.load(conv.id).name == "edited"  # type: ignore[union-attr]


def test_own_writes_do_not_reparse_and_stale_state_is_reread_inside_the_lock(path: Path) -> None:
    one, two = ConversationStore(path), ConversationStore(path)
    one.save(chat("from one"))
    assert two.list()[0].name == "from one"
    one.save(chat("one again"))
    two.save(chat("from two"))  # two's cache is stale here: it must re-read before writing
    assert {s.name for s in ConversationStore(path).list()} == {"from one", "one again", "from two"}
    assert one.parse_count == 0
    one.list()
    assert one.parse_count == 1  # only because two wrote


# --- concurrency and crashes ---


def _save_many(path: str, prefix: str, count: int) -> None:
    store = ConversationStore(path)
    for i in range(count):
        store.save(chat(f"{prefix}-{i}", "hello " * 50))


def test_threads_with_their_own_stores_lose_nothing(path: Path) -> None:
    threads = [threading.Thread(target=_save_many, args=(str(path), f"t{t}", 25)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ConversationStore(path).list()) == 200


def test_threads_sharing_one_store_lose_nothing(path: Path) -> None:
    store = ConversationStore(path)

    def work(t: int) -> None:
        for i in range(25):
            store.save(chat(f"s{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list()) == 200 and len(ConversationStore(path).list()) == 200


def test_processes_lose_nothing(path: Path) -> None:
    processes = [MP.Process(target=_save_many, args=(str(path), f"p{p}", 25)) for p in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert len(ConversationStore(path).list()) == 100


def _save_forever(path: str, saving: threading.Event) -> None:
    store = ConversationStore(path)
    for i in range(10**6):
        conv = store.load(f"c{i % 40:05d}")
        assert conv is not None
        store.save(conv.with_messages([Message("user", f"{i}:" + "y" * 20_000)] * 20))
        saving.set()  # the first save encoded everything; the next ones spend their time writing


def _kill_while_writing(path: Path) -> None:
    """Wait until the writer's temp file exists, so the kill lands between writing and renaming."""
    deadline = time.monotonic() + 10
    while not list(path.parent.glob(f".{path.name}.*.tmp")):
        assert time.monotonic() < deadline, "the writer never wrote a temp file"


@pytest.mark.parametrize("when", ["while writing", 0.0, 0.02, 0.05, 0.08])
def test_a_writer_killed_mid_save_leaves_a_readable_file(path: Path, when: str | float) -> None:
    path.write_text(json.dumps(big_document(40, size=20_000)), "utf-8")  # every save rewrites 16 MB
    saving = MP.Event()
    writer = MP.Process(target=_save_forever, args=(str(path), saving))
    writer.start()
    assert saving.wait(30)
    if isinstance(when, float):
        time.sleep(when)  # a save takes ~30 ms: the kill lands at varying points of one
    else:
        _kill_while_writing(path)
    os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
    writer.join()
    assert writer.exitcode == -signal.SIGKILL

    data = json.loads(path.read_text("utf-8"))  # whole, valid JSON
    store = ConversationStore(path)
    assert store.problem is None and len(store.list()) == len(data["conversations"]) == 40
    for summary in store.list():  # each conversation is whole: one save's 20 equal messages
        conv = store.load(summary.id)
        assert conv is not None and len(conv.messages) == 20 and len({m.content for m in conv.messages}) == 1
    store.save(chat("after"))  # stray temp files do not get in the way
    assert ConversationStore(path).find("after") is not None


# --- staying fast: the numbers are in benchmarks/store_bench.py; here, the mechanism ---


def test_reads_at_5000_conversations_parse_once_and_own_writes_do_not_reparse(path: Path) -> None:
    path.write_text(json.dumps(big_document(5000), ensure_ascii=False), "utf-8")
    store = ConversationStore(path)
    assert len(store.list()) == 5000  # the one parse
    for _ in range(5):
        store.list()
        assert store.load("c02500") is not None
    conv = store.load("c00001")
    assert conv is not None
    store.save(conv.with_messages([*conv.messages, Message("assistant", "more")]))
    assert len(store.list()) == 5000
    assert store.parse_count == 1


def test_update_messages_keeps_a_rename_from_another_tab_and_recreates_a_deleted_one(path: Path) -> None:
    mine, theirs = ConversationStore(path), ConversationStore(path)
    conv = mine.save(Conversation("Draft", (Message("user", "a"),)))
    theirs.rename(conv.id, "Renamed elsewhere")
    updated = mine.update_messages(conv.id, [*conv.messages, Message("assistant", "b")], "m", "Draft")
    assert updated.name == "Renamed elsewhere" and len(updated.messages) == 2
    theirs.delete(conv.id)
    theirs.save(Conversation("Renamed elsewhere", ()))
    again = mine.update_messages(conv.id, conv.messages, "m", "Renamed elsewhere")
    assert again.id == conv.id and again.name == "Renamed elsewhere (2)"
    assert {c.name for c in theirs.list()} == {"Renamed elsewhere", "Renamed elsewhere (2)"}


def test_a_v1_file_is_upgraded_to_v2_after_a_byte_identical_backup(path: Path) -> None:
    original = json.dumps(
        {
            "version": 1,
            "conversations": {
                "c1": {
                    "id": "c1",
                    "name": "Old",
                    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                }
            },
        }
    ).encode()
    path.write_bytes(original)
    store = ConversationStore(path)
    old = store.load("c1")
    assert old is not None and [m.content for m in old.path()] == ["hi", "hello"]
    store.save(chat("new", "x"))
    [backup] = path.parent.glob("conversations.json.legacy-*.bak")
    assert backup.read_bytes() == original
    data = json.loads(path.read_text("utf-8"))
    assert data["version"] == 2
    ids = [m["id"] for m in data["conversations"]["c1"]["messages"]]
    assert ids == [m.id for m in old.messages]  # the ids read before the upgrade are the ids written
    assert data["conversations"]["c1"]["messages"][1]["parent_id"] == ids[0]


def test_two_tabs_adding_branches_to_one_conversation_lose_neither(path: Path) -> None:
    mine, theirs = ConversationStore(path), ConversationStore(path)
    conv = mine.save(chat("Shared", "q"))
    question = conv.messages[0]
    mine.update_messages(conv.id, [question, Message("assistant", "mine")], "m", "Shared")
    after = theirs.update_messages(conv.id, [question, Message("assistant", "theirs")], "m", "Shared")
    assert sorted(m.content for m in after.children(question.id)) == ["mine", "theirs"]
    assert [m.content for m in after.path()] == ["q", "theirs"]


def test_pin_archive_and_an_import_that_comes_twice(path: Path, store: ConversationStore) -> None:
    conv = store.save(chat("Keep", "x"))
    token, everything = store.contents()
    assert set(everything) == {conv.id}
    flagged = store.set_flags(conv.id, pinned=True, archived=True)
    assert flagged.pinned and flagged.archived
    [summary] = store.list()
    assert summary.pinned and summary.archived
    assert store.contents()[0] != token  # the content changed: indexes rebuild
    assert ConversationStore(path).load(conv.id).pinned  # type: ignore[union-attr]
    assert store.set_flags(conv.id, archived=False).pinned
    with pytest.raises(ConversationNotFound):
        store.set_flags("gone", pinned=True)
    imported = Conversation("From ChatGPT", (Message("user", "q"),), source="chatgpt:abc")
    assert len(store.import_conversations([imported, imported])) == 1
    assert store.import_conversations([imported]) == []
    assert len(store.list()) == 2
