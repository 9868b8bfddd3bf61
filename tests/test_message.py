from __future__ import annotations

import json
from dataclasses import replace

import pytest
from llama_index.core.llms import ChatMessage, MessageRole

from model.message import Conversation, Message, suggest_name, valid_text


def test_message_round_trips_through_dict_and_llamaindex() -> None:
    message = Message("assistant", "Hello <b>there</b> 👋")
    assert Message.from_dict(message.to_dict()) == message
    chat = message.to_llamaindex()
    assert isinstance(chat, ChatMessage)
    assert chat.role == MessageRole.ASSISTANT and chat.content == message.content
    back = Message.from_llamaindex(chat)
    assert (back.role, back.content) == ("assistant", message.content)


@pytest.mark.parametrize("role", ["tool", "User", "", None])
def test_unknown_role_raises_naming_it(role: object) -> None:
    with pytest.raises(ValueError, match="unknown message role"):
        Message.from_dict({"role": role, "content": "x"})


def test_missing_fields_and_wrong_types_are_refused() -> None:
    with pytest.raises(ValueError, match="'role' and 'content'"):
        Message.from_dict({"role": "user"})
    with pytest.raises(ValueError, match="must be text"):
        Message.from_dict({"role": "user", "content": 3})
    with pytest.raises(ValueError, match="must be an object"):
        Message.from_dict(["user", "hi"])


def test_legacy_message_without_time_gets_one() -> None:
    message = Message.from_dict({"role": "system", "content": "be brief"})
    assert message.created_at.endswith("Z")


def test_conversation_round_trip() -> None:
    conversation = Conversation("Trip", (Message("user", "a"), Message("assistant", "b")), model="m")
    assert Conversation.from_dict(conversation.to_dict()) == conversation
    newer = conversation.with_messages([*conversation.messages, Message("user", "c")])
    assert len(newer.messages) == 3 and newer.id == conversation.id
    assert newer.updated_at >= conversation.updated_at


def test_suggest_name_from_first_user_message() -> None:
    assert suggest_name([]) == "New conversation"
    assert suggest_name([Message("system", "x"), Message("user", "  plan   a trip ")]) == "plan a trip"
    long = suggest_name([Message("user", "word " * 30)])
    assert len(long) <= 41 and long.endswith("…")


# --- lone surrogates (issue 8) ---


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("bad\ud800name", "bad\ufffdname"),
        ("\udc00", "\ufffd"),
        ("\ud800\ud800x", "\ufffd\ufffdx"),  # one U+FFFD for each
        ("\ud83d\ude00", "😀"),  # a pair is the character it stands for
        ("plain ünïcødé 🙂", "plain ünïcødé 🙂"),
    ],
)
def test_valid_text_replaces_lone_surrogates(raw: str, valid: str) -> None:
    assert valid_text(raw) == valid
    valid.encode("utf-8")


def test_messages_and_conversations_hold_only_valid_text() -> None:
    message = Message("assistant", "cut \ud83d off", created_at="2025\udfff")
    assert message.content == "cut \ufffd off" and message.created_at == "2025\ufffd"
    conversation = Conversation("bad\ud800name", (message,), model="m\udc00", id="i\ud800d")
    assert (conversation.name, conversation.model, conversation.id) == ("bad\ufffdname", "m\ufffd", "i\ufffdd")
    renamed = replace(conversation, name="again\ud800")  # replace() builds a new value: cleaned too
    assert renamed.name == "again\ufffd"
    loaded = Conversation.from_dict({"id": "x", "name": "n\ud800", "messages": [{"role": "user", "content": "\ud800"}]})
    assert loaded.name == "n\ufffd" and loaded.messages[0].content == "\ufffd"
    json.dumps(loaded.to_dict(), ensure_ascii=False).encode("utf-8")


def test_valid_text_is_not_copied() -> None:
    big = "x" * 20_000_000  # a 20 MB answer: checking it must not cost a copy
    assert Message("assistant", big).content is big
    accented = "é" * 1000
    assert Message("assistant", accented).content is accented


def test_an_answer_keeps_its_model_and_format_and_a_conversation_its_assistant() -> None:
    answer = Message("assistant", '{"a": 1}', model="llama-3.1-8b-instant", format="json")
    data = answer.to_dict()
    assert data["model"] == "llama-3.1-8b-instant" and data["format"] == "json"
    assert Message.from_dict(data) == answer
    plain = Message("user", "hi").to_dict()
    assert "model" not in plain and "format" not in plain  # files stay as small as before
    conv = Conversation("c", (Message("user", "q"), answer), assistant_id="abc")
    assert Conversation.from_dict(json.loads(json.dumps(conv.to_dict()))) == conv
    assert "assistant_id" not in Conversation("d").to_dict()
    assert conv.with_messages(conv.messages).assistant_id == "abc"
    assert conv.with_messages(conv.messages, assistant_id="").assistant_id == ""


def test_unknown_or_wrong_model_and_format_from_a_file_are_read_safely() -> None:
    read = Message.from_dict({"role": "assistant", "content": "x", "model": 5, "format": "yaml"})
    assert (read.model, read.format) == ("", "text")
    assert Conversation.from_dict({"id": "1", "name": "n", "messages": [], "assistant_id": ["x"]}).assistant_id == ""
    with pytest.raises(ValueError, match="unknown message format"):
        Message("assistant", "x", format="yaml")  # type: ignore[arg-type]


def _tree() -> Conversation:
    """q1 → a1, then q1 edited as q1b → a1b, and a1b regenerated as a1c."""
    q1 = Message("user", "q1", id="q1", parent_id="")
    a1 = Message("assistant", "a1", id="a1", parent_id="q1")
    q1b = Message("user", "q1b", id="q1b", parent_id="")
    a1b = Message("assistant", "a1b", id="a1b", parent_id="q1b")
    a1c = Message("assistant", "a1c", id="a1c", parent_id="q1b")
    return Conversation("t", (q1, a1, q1b, a1b, a1c), current="a1b")


def test_a_tree_shows_the_path_to_its_current_leaf_and_knows_the_branches() -> None:
    conv = _tree()
    assert [m.id for m in conv.path()] == ["q1b", "a1b"]
    assert [m.id for m in conv.path("a1")] == ["q1", "a1"]
    assert [m.id for m in conv.children("")] == ["q1", "q1b"]
    assert [m.id for m in conv.children("q1b")] == ["a1b", "a1c"]
    assert conv.leaf_under("q1b") == "a1c" and conv.leaf_under("q1") == "a1" and conv.leaf_under("a1") == "a1"
    back = Conversation.from_dict(json.loads(json.dumps(conv.to_dict())))
    assert back.current == "a1b" and [(m.id, m.parent_id) for m in back.messages] == [
        (m.id, m.parent_id) for m in conv.messages
    ]
    assert back.to_dict()["messages"][0]["parent_id"] is None  # a root is written as null


def test_a_v1_conversation_reads_as_one_line_with_ids_that_stay_the_same() -> None:
    data = {
        "id": "c",
        "name": "n",
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    }
    first, second = Conversation.from_dict(data), Conversation.from_dict(data)
    assert [m.id for m in first.messages] == [m.id for m in second.messages]
    assert first.messages[1].parent_id == first.messages[0].id and first.messages[0].parent_id == ""
    assert first.path() == first.messages and first.current == first.messages[1].id


def test_hand_edited_trees_are_repaired_not_refused() -> None:
    data = {
        "id": "c",
        "name": "n",
        "current": "nowhere",
        "messages": [
            {"role": "user", "content": "a", "id": "x", "parent_id": "later"},  # a parent that comes after: a cycle
            {"role": "assistant", "content": "b", "id": "later", "parent_id": "x"},
            {"role": "user", "content": "c", "id": "x", "parent_id": "ghost"},  # an id twice, an unknown parent
        ],
    }
    conv = Conversation.from_dict(data)
    ids = [m.id for m in conv.messages]
    assert len(set(ids)) == 3 and conv.messages[0].parent_id == ""
    assert conv.messages[2].parent_id == "later"  # placed after the message before it
    assert conv.current == ids[-1] and [m.content for m in conv.path()] == ["a", "b", "c"]


def test_with_branches_keeps_every_message_and_shows_the_new_leaf() -> None:
    conv = _tree()
    regenerated = Message("assistant", "a1d")
    grown = conv.with_branches([*conv.path()[:-1], regenerated])
    assert len(grown.messages) == 6 and grown.current == regenerated.id
    assert grown.message(regenerated.id).parent_id == "q1b"  # type: ignore[union-attr]
    continued = replace(conv.message("a1b"), content="a1b and more")  # type: ignore[type-var]
    again = grown.with_branches([*conv.path()[:-1], continued], current="a1b")
    assert len(again.messages) == 6 and again.message("a1b").content == "a1b and more"  # type: ignore[union-attr]
    assert again.current == "a1b"


def test_attachments_sources_and_tool_runs_round_trip_and_bad_entries_are_left_out() -> None:
    from model.parts import Attachment, Source, ToolRun

    answer = Message(
        "assistant",
        "Lisbon has seven hills [1].",
        attachments=(Attachment("ab" * 32, "guide.pdf", "pdf", 1234),),
        sources=(
            Source(1, "document", "guide.pdf", "page 3", "Lisbon is built on seven hills.", sha256="ab" * 32),
            Source(2, "web", "Lisbon", "https://example.org/lisbon", "…", url="https://example.org/lisbon"),
        ),
        tool_runs=(ToolRun("run_code", "print(1)", "1\n"), ToolRun("web_search", "lisbon hills", "…", ok=False)),
    )
    back = Message.from_dict(json.loads(json.dumps(answer.to_dict())))
    assert back == answer
    hostile = {
        "role": "assistant",
        "content": "x",
        "sources": [{"number": "1"}, {"number": 3, "kind": "web", "url": "javascript:alert(1)"}, 7],
        "tool_runs": [{"tool": ""}, {"tool": "run_code", "images": ["a", 5]}],
        "attachments": "nope",
    }
    read = Message.from_dict(hostile)
    assert [s.number for s in read.sources] == [3] and read.sources[0].url == ""  # no javascript: link kept
    assert read.tool_runs == (ToolRun("run_code", "", "", True, ("a",)),) and read.attachments == ()
    assert "sources" not in Message("assistant", "plain").to_dict()
