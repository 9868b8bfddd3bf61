"""Imports from ChatGPT's and Open WebUI's exports, built here in their real shapes, through the
real store on a file under tmp_path: every branch kept, the right path shown, and each bad input
refused with a sentence and nothing added."""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from controller.imports import import_export
from model.imports import MAX_RATIO, MAX_UNCOMPRESSED_BYTES, read_export
from model.message import Conversation, Message
from model.store import ConversationStore
from model.transfer import ImportFailed, to_json

T0 = 1714564800.0  # 2024-05-01T12:00:00Z


# --- ChatGPT's shapes ---


def gpt_node(key: str, parent: str | None, role: str | None = None, text: str = "", **extra: Any) -> dict[str, Any]:
    """One mapping node; `extra` goes into the message (content, metadata, recipient, …)."""
    message = None
    if role is not None:
        message = {
            "id": key,
            "author": {"role": role, "name": extra.pop("name", None), "metadata": {}},
            "create_time": extra.pop("time", None),
            "update_time": None,
            "content": extra.pop("content", {"content_type": "text", "parts": [text]}),
            "status": extra.pop("status", "finished_successfully"),
            "end_turn": True,
            "weight": 1.0,
            "metadata": extra.pop("metadata", {}),
            "recipient": extra.pop("recipient", "all"),
            "channel": None,
        }
    return {"id": key, "message": message, "parent": parent, "children": []}


def gpt_conversation(conv_id: str, title: str, nodes: list[dict[str, Any]], current: str | None) -> dict[str, Any]:
    mapping = {node["id"]: node for node in nodes}
    for node in nodes:
        if node["parent"] in mapping:
            mapping[node["parent"]]["children"].append(node["id"])
    data = {
        "title": title,
        "create_time": T0,
        "update_time": T0 + 900,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": current,
        "plugin_ids": None,
        "conversation_id": conv_id,
        "conversation_template_id": None,
        "gizmo_id": None,
        "is_archived": False,
        "safe_urls": [],
        "default_model_slug": "gpt-4o",
        "id": conv_id,
    }
    if current is None:
        del data["current_node"]
    return data


def answer(model: str, finish: str = "stop") -> dict[str, Any]:
    return {"model_slug": model, "finish_details": {"type": finish}}


def trip() -> dict[str, Any]:
    """A question answered, the answer regenerated, the question edited; on the second answer's
    branch a picture, a python run, a web search and the model's thoughts; shown: that branch."""
    nodes = [
        gpt_node("root", None),
        gpt_node("sys", "root", "system", "You are ChatGPT.", metadata={"is_visually_hidden_from_conversation": True}),
        gpt_node("u1", "sys", "user", "Plan a trip to Peru", time=T0),
        gpt_node("a1", "u1", "assistant", "Day 1: Lima.", time=T0 + 10, metadata=answer("gpt-4o")),
        gpt_node("a1b", "u1", "assistant", "Start in Cusco.", time=T0 + 60, metadata=answer("gpt-4o")),
        gpt_node("u2", "a1", "user", "What about food?", time=T0 + 20),
        gpt_node("a2", "u2", "assistant", "Try ceviche and", time=T0 + 30, metadata=answer("gpt-4", "interrupted")),
        gpt_node(
            "u2b",
            "a1b",
            "user",
            time=T0 + 70,
            content={
                "content_type": "multimodal_text",
                "parts": [
                    {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-abc", "width": 800},
                    "Is this Machu Picchu? How far is it in km squared?",
                ],
            },
        ),
        gpt_node(
            "c1",
            "u2b",
            "assistant",
            time=T0 + 80,
            recipient="python",
            content={"content_type": "code", "language": "python", "text": "print(2 + 2)"},
            metadata={"model_slug": "gpt-4o"},
        ),
        gpt_node(
            "t1",
            "c1",
            "tool",
            name="python",
            time=T0 + 81,
            content={"content_type": "execution_output", "text": "4"},
        ),
        gpt_node(
            "b1",
            "t1",
            "tool",
            name="browser",
            time=T0 + 82,
            content={
                "content_type": "tether_browsing_display",
                "result": "# 【0†Machu Picchu - Wikipedia】",
                "summary": None,
            },
        ),
        gpt_node(
            "th1",
            "b1",
            "assistant",
            time=T0 + 83,
            content={"content_type": "thoughts", "thoughts": [{"summary": "Checking", "content": "It is."}]},
        ),
        gpt_node("a3", "th1", "assistant", "Yes, that is Machu Picchu. 4.", time=T0 + 90, metadata=answer("gpt-4o")),
        gpt_node("u1e", "sys", "user", "Plan a trip to Chile", time=T0 + 100),
        gpt_node("a1e", "u1e", "assistant", "Santiago first, then", time=T0 + 110, metadata=answer("o1", "max_tokens")),
    ]
    return gpt_conversation("conv-trip", "Trip plans", nodes, current="a3")


def hidden_only() -> dict[str, Any]:
    nodes = [
        gpt_node("r", None),
        gpt_node(
            "ctx",
            "r",
            "user",
            content={
                "content_type": "user_editable_context",
                "user_profile": "I live in Lima.",
                "user_instructions": "",
            },
            metadata={"is_visually_hidden_from_conversation": True},
        ),
    ]
    return gpt_conversation("conv-empty", "Empty", nodes, current="ctx")


def looped() -> dict[str, Any]:
    """x and y name each other as parent; z hangs from x."""
    nodes = [
        gpt_node("x", "y", "user", "first", time=T0),
        gpt_node("y", "x", "assistant", "second", time=T0 + 1),
        gpt_node("z", "x", "assistant", "third", time=T0 + 2),
    ]
    return gpt_conversation("conv-loop", "Loop", nodes, current="z")


def no_current() -> dict[str, Any]:
    nodes = [
        gpt_node("q", None, "user", "Hi", time=T0),
        gpt_node("old", "q", "assistant", "Hello (old)", time=T0 + 1),
        gpt_node("new", "q", "assistant", "Hello (new)", time=T0 + 5),
    ]
    return gpt_conversation("conv-nocur", "No current", nodes, current=None)


def chatgpt_zip(members: dict[str, object], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content if isinstance(content, bytes | str) else json.dumps(content))
    return buffer.getvalue()


def split_export() -> bytes:
    """ChatGPT's zip with the conversations split in two files inside a folder, and the rest."""
    return chatgpt_zip(
        {
            "export/chat.html": "<html></html>",
            "export/user.json": {"id": "user-1", "email": "a@example.com"},
            "export/conversations-000.json": [trip(), hidden_only()],
            "export/conversations-001.json": [looped(), no_current()],
            "export/file-abc.webp": b"RIFF....WEBP",
            "../../evil/conversations.json": [
                gpt_conversation("evil", "Evil", [gpt_node("e", None, "user", "x")], "e")
            ],
            "__MACOSX/export/._conversations-000.json": b"\x00\x05\x16\x07",
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(tmp_path / "conversations.json")


def by_name(store: ConversationStore, name: str) -> Conversation:
    found = store.find(name)
    assert found is not None, name
    conv = store.load(found.id)
    assert conv is not None
    return conv


def ids(messages: tuple[Message, ...]) -> list[str]:
    return [m.id for m in messages]


def test_chatgpt_zip_keeps_every_branch_and_shows_the_current_one(store: ConversationStore) -> None:
    report = import_export(store, split_export(), "chatgpt-export.zip")
    assert sorted(c.name for c in report.imported) == ["Loop", "No current", "Trip plans"]
    assert report.already_there == 0
    assert report.skipped == ["“Empty” (ChatGPT): no messages with text"]
    assert report.summary.startswith("Imported 3 conversations from ChatGPT (3 with several branches);")
    assert "1 skipped: “Empty” (ChatGPT): no messages with text." in report.summary

    conv = by_name(store, "Trip plans")  # read back from the file
    assert conv.source == "chatgpt:conv-trip" and conv.model == "gpt-4o"
    assert conv.created_at == "2024-05-01T12:00:00.000Z" and conv.updated_at == "2024-05-01T12:15:00.000Z"
    assert sorted(ids(conv.messages)) == sorted(["u1", "a1", "a1b", "u2", "a2", "u2b", "c1", "t1", "a3", "u1e", "a1e"])
    assert ids(conv.children("")) == ["u1", "u1e"]  # the edit is a second root: its parents were hidden
    assert ids(conv.children("u1")) == ["a1", "a1b"]  # the regenerate
    assert ids(conv.path()) == ["u1", "a1b", "u2b", "c1", "t1", "a3"]
    assert ids(conv.path("a2")) == ["u1", "a1", "u2", "a2"]
    seen = {m.id: m for m in conv.messages}
    assert seen["u1"].created_at == "2024-05-01T12:00:00.000Z" and seen["a1b"].created_at == "2024-05-01T12:01:00.000Z"
    assert [seen[k].model for k in ("u1", "a1", "a2", "a3", "a1e")] == ["", "gpt-4o", "gpt-4", "gpt-4o", "o1"]
    assert [seen[k].status for k in ("a1", "a2", "a1e")] == ["complete", "stopped", "length"]
    assert seen["u2b"].content == "[image]\n\nIs this Machu Picchu? How far is it in km squared?"
    assert seen["c1"].content == "[Tool call: python]\n```python\nprint(2 + 2)\n```" and seen["c1"].role == "assistant"
    assert seen["t1"].content == "[Tool output: python]\n```\n4\n```" and seen["t1"].role == "assistant"
    assert seen["a3"].parent_id == "t1"  # the browsing dump and the thoughts between were left out
    assert all(
        "Machu Picchu - Wikipedia" not in m.content and "You are ChatGPT" not in m.content for m in conv.messages
    )


def test_the_summary_counts_what_was_left_out(store: ConversationStore) -> None:
    read = read_export(split_export(), "chatgpt-export.zip")
    assert read is not None and read.app == "ChatGPT"
    assert (read.hidden, read.reasoning, read.tools_as_text, read.tools_dropped, read.images) == (1, 1, 2, 1, 1)
    assert read.loops_broken == 1
    summary = import_export(store, split_export(), "x.zip").summary
    assert summary.endswith(
        "1 hidden system message, 1 reasoning note and 1 browsing or tool message left out; "
        "2 tool messages kept as text, 1 image shown as [image] and 1 loop in the message links cut."
    )


def test_a_loop_in_parent_links_is_cut_at_its_oldest_message_and_nothing_is_lost(store: ConversationStore) -> None:
    import_export(store, split_export(), "x.zip")
    conv = by_name(store, "Loop")
    assert ids(conv.messages) == ["x", "y", "z"] and conv.messages[0].parent_id == ""
    assert ids(conv.path()) == ["x", "z"] and ids(conv.children("x")) == ["y", "z"]


def test_without_current_node_the_newest_leaf_is_shown(store: ConversationStore) -> None:
    import_export(store, split_export(), "x.zip")
    assert ids(by_name(store, "No current").path()) == ["q", "new"]


def test_a_dropped_current_node_shows_its_nearest_kept_ancestor() -> None:
    conv = trip()
    conv["current_node"] = "th1"  # the thoughts: left out
    read = read_export(json.dumps([conv]).encode(), "conversations.json")
    assert read is not None and read.conversations[0].current == "t1"
    conv["current_node"] = "no-such-node"
    read = read_export(json.dumps([conv]).encode(), "conversations.json")
    assert read is not None and read.conversations[0].current == "a1e"  # the newest leaf


def test_importing_the_same_export_again_adds_nothing(store: ConversationStore) -> None:
    import_export(store, split_export(), "x.zip")
    before = Path(store.path).read_bytes()
    report = import_export(store, split_export(), "x.zip")
    assert report.imported == [] and report.already_there == 3
    assert report.summary.startswith("Nothing new from ChatGPT; all 3 were already here;")
    assert Path(store.path).read_bytes() == before
    # the bare conversations.json of the same export is the same conversations
    bare = json.dumps([trip(), looped()]).encode()
    assert import_export(store, bare, "conversations.json").already_there == 2
    assert len(store.list()) == 3


def test_a_bare_conversations_json_and_a_single_conversation_import(store: ConversationStore) -> None:
    report = import_export(store, json.dumps([trip()]).encode(), "conversations.json")
    assert [c.name for c in report.imported] == ["Trip plans"]
    single = json.dumps(no_current()).encode()
    assert [c.name for c in import_export(store, single, "one.json").imported] == ["No current"]


def test_a_conversation_without_title_or_id_is_named_from_its_first_question() -> None:
    conv = no_current()
    conv["title"], conv["id"], conv["conversation_id"] = None, None, None
    read = read_export(json.dumps([conv]).encode(), "conversations.json")
    again = read_export(json.dumps([conv]).encode(), "conversations.json")
    assert read is not None and again is not None
    assert read.conversations[0].name == "Hi"
    assert (
        read.conversations[0].source.startswith("chatgpt:")
        and read.conversations[0].source == again.conversations[0].source
    )


# --- Open WebUI's shape ---


def webui_chat() -> dict[str, Any]:
    """Open WebUI's export of one chat: a question asked of two models, the second answer stopped."""
    messages = {
        "m1": {
            "id": "m1",
            "parentId": None,
            "childrenIds": ["m2", "m3"],
            "role": "user",
            "content": "Why is the sky blue?",
            "timestamp": 1714564800,
            "models": ["llama3:8b", "mistral:7b"],
            "files": [{"type": "image", "url": "data:image/png;base64,AAAA"}],
        },
        "m2": {
            "id": "m2",
            "parentId": "m1",
            "childrenIds": [],
            "role": "assistant",
            "content": '<details type="reasoning" done="true" duration="2">\n<summary>Thought</summary>\n> hmm\n</details>\nRayleigh scattering.',
            "model": "llama3:8b",
            "modelName": "Llama 3",
            "modelIdx": 0,
            "timestamp": 1714564805,
            "done": True,
        },
        "m3": {
            "id": "m3",
            "parentId": "m1",
            "childrenIds": [],
            "role": "assistant",
            "content": "Because of",
            "model": "mistral:7b",
            "modelName": "Mistral",
            "modelIdx": 1,
            "timestamp": 1714564806,
            "done": False,
        },
    }
    chat = {
        "id": "",
        "title": "Sky",
        "models": ["llama3:8b", "mistral:7b"],
        "params": {},
        "history": {"messages": messages, "currentId": "m2"},
        "messages": [messages["m1"], messages["m2"]],
        "tags": [],
        "timestamp": 1714564800123,
    }
    return {
        "id": "chat-sky",
        "user_id": "u",
        "title": "Sky",
        "chat": chat,
        "updated_at": 1714565000,
        "created_at": 1714564800,
        "share_id": None,
        "archived": False,
        "pinned": True,
        "meta": {},
        "folder_id": None,
    }


def test_open_webui_export_keeps_both_models_answers(store: ConversationStore) -> None:
    report = import_export(store, json.dumps([webui_chat()]).encode(), "chat-export-1714565000000.json")
    assert report.summary.startswith("Imported 1 conversation from Open WebUI (1 with several branches).")
    conv = by_name(store, "Sky")
    assert conv.source == "openwebui:chat-sky" and conv.pinned and conv.model == "llama3:8b"
    assert ids(conv.messages) == ["m1", "m2", "m3"] and ids(conv.path()) == ["m1", "m2"]
    m1, m2, m3 = conv.messages
    assert m1.content == "Why is the sky blue?\n\n[image]" and m1.created_at == "2024-05-01T12:00:00.000Z"
    assert m2.content == "Rayleigh scattering." and m2.model == "llama3:8b" and m2.status == "complete"
    assert m3.model == "mistral:7b" and m3.status == "stopped"
    assert conv.updated_at == "2024-05-01T12:03:20.000Z"
    assert import_export(store, json.dumps(webui_chat()).encode(), "chat.json").already_there == 1


def test_an_old_open_webui_chat_with_only_a_flat_list_reads_in_order() -> None:
    chat = {
        "title": "Old",
        "history": {},
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    }
    read = read_export(json.dumps([{"id": "old-1", "chat": chat}]).encode(), "export.json")
    assert read is not None
    conv = read.conversations[0]
    assert [m.content for m in conv.path()] == ["a", "b"]


# --- bnaGPT's own files fall through ---


def test_bnagpt_files_are_left_to_its_own_import(store: ConversationStore) -> None:
    mine = to_json(Conversation(name="Mine", messages=(Message("user", "hi"),)))
    assert read_export(mine.encode(), "mine.json") is None
    report = import_export(store, mine.encode(), "mine.json")
    assert [c.name for c in report.imported] == ["Mine"] and report.summary == "Imported 1 conversation."
    legacy = json.dumps({"Old chat": [{"role": "user", "content": "hi"}]}).encode()
    assert read_export(legacy, "conversations.json") is None
    assert import_export(store, legacy, "conversations.json").summary == "Imported 1 conversation."


# --- bad input: a sentence, and nothing added ---


def refused(store: ConversationStore, data: bytes, filename: str = "chatgpt.zip") -> str:
    with pytest.raises(ImportFailed) as caught:
        import_export(store, data, filename)
    assert store.list() == []
    return str(caught.value)


def test_a_file_named_zip_that_is_not_one(store: ConversationStore) -> None:
    assert (
        refused(store, b"hello", "export.zip")
        == "“export.zip” is not a zip archive, though its name ends in .zip; download it again."
    )


def test_a_damaged_zip(store: ConversationStore) -> None:
    good = chatgpt_zip({"conversations.json": [trip()]})
    assert "The zip archive is damaged" in refused(store, good[:-30])
    flipped = bytearray(good)
    start = good.index(b"PK\x03\x04") + 30 + len("conversations.json") + 5
    flipped[start : start + 20] = bytes(20)  # the packed data itself
    assert "conversations.json in the zip is damaged" in refused(store, bytes(flipped))


def test_a_zip_without_conversations(store: ConversationStore) -> None:
    message = refused(store, chatgpt_zip({"photos/a.jpg": b"...", "user.json": {}}))
    assert message.startswith("The zip holds no conversations.json, so it is not a ChatGPT export")


def test_member_names_that_climb_out_are_ignored(store: ConversationStore) -> None:
    message = refused(store, chatgpt_zip({"../../conversations.json": [trip()], "/abs/conversations.json": [trip()]}))
    assert message.startswith("The zip holds no conversations.json")


def test_a_cut_short_conversations_json(store: ConversationStore) -> None:
    text = json.dumps([trip()])
    message = refused(store, chatgpt_zip({"conversations.json": text[: len(text) // 2]}))
    assert message.startswith("conversations.json in the zip is not valid JSON (")
    assert message.endswith("the export may be cut short, so download it again.")


def test_wrong_json_shapes(store: ConversationStore) -> None:
    assert refused(store, chatgpt_zip({"conversations.json": {"a": 1}})) == (
        "conversations.json in the zip is not a list of ChatGPT conversations."
    )
    assert refused(store, b"[]", "conversations.json") == "“conversations.json” holds no conversations."
    message = refused(store, json.dumps([{"title": "T", "mapping": "nope"}, 7]).encode(), "conversations.json")
    assert message == ("No conversation in the ChatGPT export could be read: “T” (ChatGPT): no messages (and 1 more).")
    assert refused(store, b'[{"x": 1}]', "weird.json").startswith("The file is not a bnaGPT export")  # not ours either


def test_a_zip_bomb_is_refused_before_it_is_read(store: ConversationStore) -> None:
    bomb = chatgpt_zip({"conversations.json": b"[" + b" " * (8 * 2**20) + b"]"})
    message = refused(store, bomb)
    assert message.startswith("conversations.json in the zip would grow from 0.0 MB to 8.0 MB, over")
    assert message.endswith("that is how a zip bomb looks, so it was not opened.")
    assert MAX_RATIO < 8 * 2**20 / 9000


def declare_size(archive: bytes, size: int) -> bytes:
    """The zip with its one member's uncompressed size (local header and central directory) changed."""
    data = bytearray(archive)
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, size)
    struct.pack_into("<I", data, central + 24, size)
    return bytes(data)


def test_a_zip_that_claims_2_gb_is_refused_without_reading(store: ConversationStore) -> None:
    big = declare_size(chatgpt_zip({"conversations.json": [trip()] * 50}, zipfile.ZIP_STORED), 2**31)
    started = time.perf_counter()
    message = refused(store, big)
    assert time.perf_counter() - started < 1
    assert "2.0 GB" in message and message.startswith("conversations.json in the zip would grow")


def test_more_than_the_cap_in_all_is_refused(store: ConversationStore) -> None:
    part = chatgpt_zip({"a/conversations-000.json": [trip()]}, zipfile.ZIP_STORED)
    stored_size = len(json.dumps([trip()]))
    over = declare_size(part, MAX_UNCOMPRESSED_BYTES + 1)
    # stored, so the ratio check does not fire first: the packed size is as large as declared
    data = bytearray(over)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 20, MAX_UNCOMPRESSED_BYTES + 1)
    assert stored_size < 2**20
    message = refused(store, bytes(data))
    assert message.startswith("The conversations in the zip take 1.0 GB unpacked; at most 1.0 GB can be imported")


def test_a_member_larger_than_declared_is_caught(store: ConversationStore) -> None:
    small = declare_size(chatgpt_zip({"conversations.json": [trip()]}), 100)
    assert "in the zip is" in refused(store, small)


def test_a_password_protected_member(store: ConversationStore) -> None:
    data = bytearray(chatgpt_zip({"conversations.json": [trip()]}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        struct.pack_into("<H", data, at + offset, struct.unpack_from("<H", data, at + offset)[0] | 1)
    assert refused(store, bytes(data)).endswith("is password-protected; export it again without a password.")


def test_five_thousand_conversations_in_one_file(store: ConversationStore) -> None:
    many = []
    for number in range(5000):
        nodes = [
            gpt_node(
                f"n{number}-{k}",
                f"n{number}-{k - 1}" if k else None,
                "user" if k % 2 == 0 else "assistant",
                f"message {k}",
                time=T0 + k,
            )
            for k in range(4)
        ]
        many.append(gpt_conversation(f"c{number}", f"Chat {number}", nodes, f"n{number}-3"))
    data = chatgpt_zip({"conversations.json": many})
    started = time.perf_counter()
    report = import_export(store, data, "x.zip")
    assert len(report.imported) == 5000 and len(store.list()) == 5000
    assert time.perf_counter() - started < 30
