"""The journal of a big conversations file: a turn appends one line instead of rewriting the file.

Real stores on real files; the size from which changes are journaled is lowered so that a few
conversations make a "big" file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model import jsonstore
from model.message import Conversation, Message
from model.store import ConversationStore


@pytest.fixture(autouse=True)
def small_journal_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ConversationStore, "journal_from", 2_000)
    monkeypatch.setattr(jsonstore, "JOURNAL_MIN_MERGE", 6_000)


def conversation(name: str, words: int = 60) -> Conversation:
    text = " ".join(f"{name}-{i}" for i in range(words))
    return Conversation(name=name, messages=[Message("user", text), Message("assistant", "ok " + name)])


def big_store(path: Path, count: int = 12) -> tuple[ConversationStore, list[Conversation]]:
    writer = ConversationStore(path)
    writer.journal_from = 0  # written whole, so each test starts with no journal
    saved = [writer.save(conversation(f"chat {n}")) for n in range(count)]
    assert path.stat().st_size >= ConversationStore.journal_from and not journal(path).exists()
    return ConversationStore(path), saved


def journal(path: Path) -> Path:
    return Path(f"{path}.journal")


def test_a_change_to_a_big_file_is_appended_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    store, saved = big_store(path)
    store.save(conversation("one more"))  # the file is big now: from here on, changes are journaled
    before = path.read_bytes()

    updated = store.update_messages(saved[0].id, [*saved[0].messages, Message("user", "and then?")], "m", "chat 0")

    assert path.read_bytes() == before  # the big file was not rewritten
    lines = journal(path).read_bytes().splitlines()
    header = json.loads(lines[0])
    assert header["file_size"] == len(before)
    assert any(saved[0].id in json.loads(line)["put"] for line in lines[1:])
    fresh = ConversationStore(path)  # another process: the file, then the journal
    assert fresh.load(saved[0].id) == updated
    assert store.list()[0].id == saved[0].id  # the list is not stale: the changed one comes first
    assert [s.id for s in fresh.list()] == [s.id for s in store.list()]


def test_deletes_renames_and_flags_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    store, saved = big_store(path)
    store.save(conversation("x"))
    store.delete(saved[1].id)
    store.rename(saved[2].id, "renamed")
    store.set_flags(saved[3].id, pinned=True)

    fresh = ConversationStore(path)
    assert fresh.load(saved[1].id) is None
    assert fresh.find("renamed") is not None and fresh.find("renamed").id == saved[2].id  # type: ignore[union-attr]
    assert fresh.find("chat 2") is None
    assert fresh.load(saved[3].id).pinned  # type: ignore[union-attr]


def test_another_store_sees_appended_changes_without_reading_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    writer, saved = big_store(path)
    writer.save(conversation("x"))
    reader = ConversationStore(path)
    assert len(reader.list()) == 13
    parsed = reader.parse_count

    writer.save(conversation("from the other tab"))
    writer.delete(saved[0].id)

    assert reader.find("from the other tab") is not None
    assert reader.load(saved[0].id) is None
    assert reader.parse_count == parsed  # only the journal's new lines were read


def test_the_journal_is_merged_into_the_file_when_it_grows(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    store, saved = big_store(path)
    merges, messages = 0, list(saved[0].messages)
    for n in range(40):
        before = path.stat().st_ino
        messages.append(Message("user", f"turn {n}"))
        store.update_messages(saved[0].id, messages, "m", "chat 0")
        merges += path.stat().st_ino != before
        limit = max(jsonstore.JOURNAL_MIN_MERGE, path.stat().st_size // 4)
        assert not journal(path).exists() or journal(path).stat().st_size <= limit
    assert 1 <= merges < 20  # merged now and then, not at every turn
    whole = json.loads(path.read_text())  # a merge wrote the whole file again, with the changes in it
    assert "turn 1" in json.dumps(whole["conversations"][saved[0].id])
    fresh = ConversationStore(path)
    assert fresh.load(saved[0].id) == store.load(saved[0].id)
    assert len(fresh.list()) == 12


def test_a_torn_last_line_is_ignored_and_closed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    store, saved = big_store(path)
    store.save(conversation("kept"))
    with open(journal(path), "ab") as file:
        file.write(b'{"put": {"zzz": {"name": "half wri')  # a writer stopped mid-append

    reader = ConversationStore(path)
    assert reader.find("kept") is not None and len(reader.list()) == 13

    reader.save(conversation("after the crash"))
    fresh = ConversationStore(path)
    assert fresh.find("after the crash") is not None and fresh.find("kept") is not None
    assert len(fresh.list()) == 14


def test_a_journal_left_after_a_merge_is_never_applied_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    store, saved = big_store(path)
    store.save(conversation("x"))
    store.delete(saved[0].id)
    left_behind = journal(path).read_bytes()
    # the file is replaced (a merge that crashed before removing its journal, or a restore by hand)
    ConversationStore(tmp_path / "other.json")  # unrelated
    data = json.loads(path.read_text())
    data["conversations"][saved[0].id]["name"] = "restored by hand"
    path.write_text(json.dumps(data))
    journal(path).write_bytes(left_behind)

    fresh = ConversationStore(path)
    assert fresh.find("restored by hand") is not None  # the old journal's delete is not applied to it
    fresh.save(conversation("next"))
    assert fresh.find("restored by hand") is not None
    stale = list(tmp_path.glob("conversations.json.journal.stale-*"))
    assert len(stale) == 1 and stale[0].read_bytes() == left_behind  # set aside, never lost
    assert ConversationStore(path).find("next") is not None


def test_small_files_are_still_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    store = ConversationStore(path)
    conv = store.save(conversation("small", words=2))
    store.rename(conv.id, "still small")
    assert not journal(path).exists()
    assert json.loads(path.read_text())["conversations"][conv.id]["name"] == "still small"
