"""Full-text search: the index (model.search) through the controller, on real files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import model.search
from controller.conversations import ConversationController
from model.message import Conversation, Message
from model.search import MARK_END, MARK_START, SearchIndex, index_path
from model.store import ConversationStore
from view.sidebar import highlighted

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def file(tmp_path: Path) -> Path:
    return tmp_path / "conversations.json"


def controller(file: Path) -> ConversationController:
    """A controller with an index of its own (not the process-wide one), as a new process has."""
    return ConversationController(ConversationStore(file), SearchIndex(index_path(file)))


def chat(*texts: str) -> tuple[Message, ...]:
    return tuple(Message("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(texts))


def found(c: ConversationController, query: str, names: bool = False) -> list[str]:
    return [hit.conversation_name for hit in c.search(query, names=names)]


def test_accents_case_and_portuguese(file: Path) -> None:
    c = controller(file)
    c.save("Trabalho", chat("Qual é a melhor AÇÃO para hoje?", "Uma decisão rápida."), "m")
    c.save("Work", chat("What is the best action?", "A quick one."), "m")
    for query in ("acao", "ação", "ACAO", "Ação", "decisao rapida", "DECISÃO"):
        assert found(c, query) == ["Trabalho"], query
    [hit] = c.search("acao")
    assert hit.parts() == [("Qual é a melhor ", False), ("AÇÃO", True), (" para hoje?", False)]
    assert hit.role == "user" and hit.matches == 1


def test_chinese_words_inside_a_sentence_and_emoji(file: Path) -> None:
    c = controller(file)
    c.save("旅行", chat("我们明天去北京参观故宫。", "好的 🎉 出发!"), "m")
    c.save("Other", chat("南京很好", "no party here"), "m")
    assert found(c, "北京") == ["旅行"]  # two characters in the middle of a sentence without spaces
    assert found(c, "京") == ["旅行", "Other"] or found(c, "京") == ["Other", "旅行"]
    assert found(c, "故宫 北京") == ["旅行"]
    assert found(c, "京北") == []  # the characters in that order
    [hit] = c.search("🎉")
    assert hit.parts() == [("好的 ", False), ("🎉", True), (" 出发!", False)]
    assert found(c, "party 🎉") == []  # every word must be in one message


def test_whole_words_and_the_last_one_as_a_prefix(file: Path) -> None:
    c = controller(file)
    c.save("Code", chat("A memory leak in the parser", "Fixed the leaking buffer"), "m")
    assert found(c, "memory") == ["Code"] and found(c, "mem") == ["Code"]  # typing: the last word is a prefix
    assert found(c, "mem leak") == []  # but earlier words are whole words
    [hit] = c.search("leak")  # "leak" before "leaking"
    assert hit.snippet == f"A memory {MARK_START}leak{MARK_END} in the parser"
    [hit] = c.search("leaki")
    assert hit.snippet == f"Fixed the {MARK_START}leaking{MARK_END} buffer"
    assert found(c, "nothing like it") == [] and c.search("   ") == [] and c.search("?!") == []


def test_names_match_anywhere_and_rank_first(file: Path) -> None:
    c = controller(file)
    c.save("Trip 0042 to Lisbon", chat("Plan the days"), "m")
    c.save("Notes", chat("Lisbon has trams", "And Lisbon has hills"), "m")
    c.save("Lisbon again", chat("Lisbon, once more"), "m")
    hits = c.search("lisbon")
    assert [(h.conversation_name, h.message_id is None, h.rank) for h in hits] == [
        ("Lisbon again", True, 1),
        ("Trip 0042 to Lisbon", True, 2),
        ("Lisbon again", False, 3),
        ("Notes", False, 4),
    ] or [h.conversation_name for h in hits][2:] == ["Notes", "Lisbon again"]
    assert hits[1].snippet == f"Trip 0042 to {MARK_START}Lisbon{MARK_END}" and hits[1].role == "name"
    assert found(c, "0042", names=True) == ["Trip 0042 to Lisbon"]  # anywhere, as the name filter did
    assert all(h.message_id for h in c.search("lisbon", names=False))
    assert len(c.search("lisbon", limit=2)) == 2


def test_a_long_message_is_cut_around_its_matches(file: Path) -> None:
    c = controller(file)
    filler = " ".join(f"word{i}" for i in range(200))
    c.save("Long", chat(f"{filler} the needle is here {filler}"), "m")
    [hit] = c.search("needle")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and len(hit.snippet) < 200
    assert f"the {MARK_START}needle{MARK_END} is here" in hit.snippet


def test_hostile_text_stays_inert_in_a_snippet(file: Path) -> None:
    c = controller(file)
    hostile = (
        f"<img src=x onerror=alert(1)> ![p](http://127.0.0.1:9/p.png) [go](javascript:alert(1)) "
        f"**bold** {MARK_START}fake{MARK_END} :red[red] target\n\n# heading"
    )
    c.save("![x](http://127.0.0.1:9/n.png)", chat(hostile), "m")
    [hit] = c.search("target")
    assert hit.snippet.count(MARK_START) == 1 and hit.snippet.count(MARK_END) == 1  # only ours
    assert ("fake", True) not in hit.parts() and "\n" not in hit.snippet
    shown = highlighted(hit)
    assert ":orange-background[**target**]" in shown
    for raw in ("<img", "![", "](", "**bold", ":red["):
        assert raw not in shown, raw
    assert "\\# heading" in shown  # on the one line of the snippet, and escaped
    [name] = c.search("x", names=True, limit=1)
    assert "![" not in highlighted(name)


def test_a_turn_indexes_one_conversation_again_and_nothing_runs_without_a_search(file: Path) -> None:
    c = controller(file)
    saved = [c.save(f"C{i}", chat(f"text {i}", "answer"), "m") for i in range(5)]
    assert c.index.indexed == 0  # saving builds nothing
    assert found(c, "text") and c.index.indexed == 5
    c.autosave(saved[2].id, "C2", [*saved[2].path(), Message("user", "zebra crossing")], "m")
    assert c.index.indexed == 5  # a turn does not touch the index
    assert found(c, "zebra") == ["C2"] and c.index.indexed == 6
    c.rename(saved[0].id, "Renamed")
    c.pin(saved[1].id)
    assert found(c, "text 0") == ["Renamed"] and c.index.indexed == 6  # names and flags are not indexed
    c.delete(saved[3].id)
    assert "C3" not in found(c, "text") and found(c, "answer", names=False).count("C3") == 0


def test_a_file_rewritten_by_another_process_is_indexed_again(file: Path) -> None:
    c = controller(file)
    kept = c.save("Mine", chat("apples"), "m")
    assert found(c, "apples") == ["Mine"]
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from model.message import Conversation, Message
        from model.store import ConversationStore
        store = ConversationStore({str(file)!r})
        store.save(Conversation("Theirs", (Message("user", "bananas from elsewhere"),)))
        mine = store.load({kept.id!r})
        store.update_messages(mine.id, [*mine.path(), Message("user", "and cherries")], "m", mine.name)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    assert found(c, "bananas") == ["Theirs"] and found(c, "cherries") == ["Mine"]
    assert c.index.indexed == 3  # the two that changed, not every one
    # a new process finds the index up to date: nothing indexed again
    fresh = controller(file)
    assert found(fresh, "cherries") == ["Mine"] and fresh.index.indexed == 0


def test_a_damaged_or_deleted_index_is_built_again(file: Path) -> None:
    c = controller(file)
    c.save("Kept", chat("the word is pelican"), "m")
    assert found(c, "pelican") == ["Kept"]
    index = index_path(file)
    c.index.close()
    size = index.stat().st_size
    with index.open("r+b") as damaged:  # a sound header, pages that make no sense
        damaged.seek(4096)
        damaged.write(b"\xff" * (size - 4096))
    fresh = controller(file)
    assert found(fresh, "pelican") == ["Kept"] and fresh.index.indexed == 1 and not fresh.index.in_memory
    fresh.index.close()
    index.write_bytes(b"this is not a database" * 100)
    fresh = controller(file)
    assert found(fresh, "pelican") == ["Kept"] and fresh.index.indexed == 1 and not fresh.index.in_memory
    assert index.read_bytes()[:16] == b"SQLite format 3\x00"
    for leftover in index.parent.glob(index.name + "*"):
        leftover.unlink()  # deleted while open
    assert found(fresh, "pelican") == ["Kept"] and fresh.index.indexed == 2 and index.exists()


def test_an_index_that_cannot_be_written_lives_in_memory(file: Path) -> None:
    index_path(file).mkdir(parents=True)  # a folder where the file should be
    c = controller(file)
    c.save("Kept", chat("the word is heron"), "m")
    assert found(c, "heron") == ["Kept"] and c.index.in_memory


def test_a_message_on_another_branch_is_found_with_its_id(file: Path) -> None:
    c = controller(file)
    question = Message("user", "Name a bird", id="q1", parent_id="")
    first = Message("assistant", "A sparrow", id="a1", parent_id="q1")
    other = Message("assistant", "A flamingo", id="a2", parent_id="q1")
    saved = c.store.save(Conversation("Birds", (question, other, first), current="a1"))
    assert [m.id for m in saved.path()] == ["q1", "a1"]  # the flamingo is not on the shown branch
    [hit] = c.search("flamingo")
    assert (hit.conversation_id, hit.message_id, hit.role) == (saved.id, "a2", "assistant")


def test_a_word_in_most_messages_lists_the_newest_conversations(file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.search, "BROAD", 3)  # past this many matching messages, no ranking
    c = controller(file)
    for i in range(6):
        c.save(f"C{i}", chat(f"common {i}", "common again", "other"), "m")
    hits = c.search("common", limit=4)
    assert [h.conversation_name for h in hits] == ["C5", "C4", "C3", "C2"]
    assert all(h.matches == 2 for h in hits) and hits[0].snippet == f"{MARK_START}common{MARK_END} 5"


def test_archived_ones_are_found_and_marked(file: Path) -> None:
    c = controller(file)
    old = c.save("Old", chat("walrus"), "m")
    c.archive(old.id)
    [hit] = c.search("walrus")
    assert hit.archived
    listing = c.listing()
    assert listing.shown == [] and listing.archived == 1
    assert [s.name for s in c.listing("old").shown] == ["Old"]


def test_the_index_keeps_no_conversation_alive(tmp_path: Path) -> None:
    import gc
    import weakref

    index = SearchIndex(None)
    conversations = {c.id: c for c in (Conversation(f"C{i}", chat(f"gannet {i}")) for i in range(3))}
    assert len(index.search("gannet", 1, conversations)) == 3 and index.in_memory
    watched = weakref.ref(next(iter(conversations.values())))
    del conversations
    gc.collect()
    assert watched() is None  # a file read again must not leave the old conversations in memory
