"""Export as Markdown / JSON and import of the three file shapes, including every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from controller.conversations import ConversationController
from model.message import Conversation, Message
from model.store import ConversationStore
from model.transfer import MAX_IMPORT_BYTES, ImportFailed, parse_import, to_json, to_markdown

CONV = Conversation(
    name="Trip <b>plans</b> 🙂",
    messages=(
        Message("system", "Be brief."),
        Message("user", "Where to?\n\n- Perú\n- **Chile**"),
        Message("assistant", "Both! `code` and <script>x</script> stay as written."),
    ),
    model="test-model",
)


def test_markdown_has_the_title_and_each_message_verbatim_in_order() -> None:
    text = to_markdown(CONV)
    assert text.startswith(f"# {CONV.name}\n\n")
    blocks = [
        f"**System**:\n\n{CONV.messages[0].content}",
        f"**User**:\n\n{CONV.messages[1].content}",
        f"**Assistant**:\n\n{CONV.messages[2].content}",
    ]
    positions = [text.index(block) for block in blocks]
    assert positions == sorted(positions)


def test_json_export_round_trips_exactly() -> None:
    text = to_json(CONV)
    assert json.loads(text) == {"version": 2, "conversation": CONV.to_dict()} and "🙂" in text  # not \\u-escaped
    assert parse_import(text) == [CONV]
    assert parse_import(text.encode("utf-8")) == [CONV]


def test_a_single_export_needs_no_id() -> None:
    found = parse_import(
        '{"version": 1, "conversation": {"name": "n", "messages": [{"role": "user", "content": "hi"}]}}'
    )
    assert [(c.name, c.messages[0].content) for c in found] == [("n", "hi")]


def test_a_whole_v1_file_imports(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations.json")
    first, second = store.save(CONV), store.save(Conversation(name="other", messages=(Message("user", "hi"),)))
    assert parse_import((tmp_path / "conversations.json").read_bytes()) == [first, second]


def test_a_legacy_tutorial_file_imports_with_system_messages() -> None:
    legacy = {
        "Old chat": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ],
        "Another": [],
    }
    found = parse_import(json.dumps(legacy))
    assert [c.name for c in found] == ["Old chat", "Another"]
    assert [(m.role, m.content) for m in found[0].messages] == [("system", "s"), ("user", "u"), ("assistant", "a")]


def test_imported_conversations_can_be_stored_beside_clashing_names(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations.json")
    store.save(CONV)
    stored = store.import_conversations(parse_import(to_json(CONV)))
    assert stored[0].name == f"{CONV.name} (2)" and stored[0].messages == CONV.messages


def _v1(conversation: object) -> str:
    return json.dumps({"version": 1, "conversations": {"c1": conversation}})


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "not a bnaGPT export"),
        ('"text"', "not a bnaGPT export"),
        ('{"a": 1}', "not a bnaGPT export"),
        ('{"version": 3, "conversations": {}}', "version 3 is not supported"),
        ('{"version": 3, "conversation": {}}', "version 3 is not supported"),
        ('{"version": 1}', "needs a 'conversations' object"),
        ("{}", "holds no conversations"),
        ('{"version": 1, "conversations": {}}', "holds no conversations"),
        (_v1({"id": "c1", "messages": []}), "conversation 'c1' is missing 'name'"),
        (_v1({"id": "c1", "name": "n"}), "conversation 'c1' is missing 'messages'"),
        (_v1({"name": "n", "messages": [{"role": "user"}]}), "conversation 'n', message 1 is missing 'content'"),
        (_v1({"name": "n", "messages": [{}]}), "message 1 is missing 'role' and 'content'"),
        (_v1({"name": "n", "messages": [{"role": "user", "content": 5}]}), "'content' must be text"),
        (_v1({"name": "n", "messages": "hi"}), "'messages' must be a list"),
        (_v1([]), "conversation 'c1' must be an object"),
        ('{"Chat": [{"role": "user", "content": "x"}, "oops"]}', "conversation 'Chat', message 2 must be an object"),
        ('{"version": 1, "conversation": {"id": "x", "messages": []}}', "conversation 'x' is missing 'name'"),
        ('{"version": 1, "conversation": 5}', "'conversation' must be an object"),
    ],
)
def test_bad_input_fails_with_a_helpful_sentence(data: str | bytes, says: str) -> None:
    with pytest.raises(ImportFailed, match=says) as caught:
        parse_import(data)
    assert isinstance(caught.value, ValueError) and str(caught.value).endswith(".")


@pytest.mark.parametrize("shape", ["single", "v1", "legacy"])
def test_an_unknown_role_is_named_with_its_conversation_and_nothing_is_returned(shape: str) -> None:
    good = {"role": "user", "content": "fine"}
    bad = {"role": "robot", "content": "beep"}
    data = {
        "single": {"version": 1, "conversation": {"id": "x", "name": "Robots", "messages": [good, bad]}},
        "v1": {
            "version": 1,
            "conversations": {
                "a": {"id": "a", "name": "Fine", "messages": [good]},
                "x": {"id": "x", "name": "Robots", "messages": [good, bad]},
            },
        },
        "legacy": {"Fine": [good], "Robots": [good, bad]},
    }[shape]
    with pytest.raises(ImportFailed, match=r"conversation 'Robots', message 2 has the unknown role 'robot'"):
        parse_import(json.dumps(data))


def test_files_over_the_import_limit_are_refused_before_parsing() -> None:
    with pytest.raises(ImportFailed, match="up to 200 MB"):
        parse_import(b" " * (MAX_IMPORT_BYTES + 1))


# --- hardening, round two (issue 8) ---

DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
HUGE_NUMBER = '{"version": 1, "conversations": {}, "n": ' + "9" * 5000 + "}"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (DEEP_LIST, "nested too deeply"),
        (DEEP_OBJECT, "nested too deeply"),
        ('{"version": 1, "conversations": {"a": {"name": "n", "messages": ' + DEEP_LIST + "}}}", "nested too deeply"),
        (HUGE_NUMBER, "a number 5,000 digits long"),
        ('{"version": 1.0, "conversations": {}}', "version must be the whole number 1 or 2, not 1.0"),
        ('{"version": true, "conversations": {}}', "version must be the whole number 1 or 2, not true"),
        ('{"version": "1", "conversations": {}}', "version must be the whole number 1 or 2, not '1'"),
        ('{"version": 1.0, "conversation": {"name": "n", "messages": []}}', "whole number 1 or 2, not 1.0"),
        ('{"version": {"a": 1}, "conversations": {}}', "version an object is not supported"),
        (
            '{"version": 1, "conversations": {"a": {"name": "n", "messages": []}, "a": {"name": "m", "messages": []}}}',
            "the key 'a' appears twice",
        ),
        ('{"Chat": [], "Chat": []}', "the key 'Chat' appears twice"),
        (
            '{"version": 1, "conversations": {"a": {"name": "n", "messages": [{"role": "user", "content": "a", '
            '"content": "b"}]}}}',
            "the key 'content' appears twice",
        ),
        (_v1({"name": "n", "messages": [{"role": "x" * 10_000, "content": ""}]}), "unknown role 'xxx"),
    ],
)
def test_hostile_files_fail_with_a_sentence_not_a_traceback(data: str, says: str) -> None:
    with pytest.raises(ImportFailed, match=re.escape(says)) as caught:
        parse_import(data)
    assert str(caught.value).endswith(".") and len(str(caught.value)) < 400


def test_lone_surrogates_in_an_import_become_valid_text(tmp_path: Path) -> None:
    raw = (
        r'{"version":1,"conversations":{"a":{"name":"bad\ud800name","messages":[{"role":"user","content":"x\udc00"}]}}}'
    )
    controller = ConversationController(ConversationStore(tmp_path / "conversations.json"))
    [imported] = controller.import_data(raw.encode("utf-8"))
    assert imported.name == "bad\ufffdname" and imported.messages[0].content == "x\ufffd"
    imported.name.encode("utf-8")
    again = ConversationStore(tmp_path / "conversations.json")  # what the next page load reads
    assert again.list()[0].name == "bad\ufffdname" and again.load(imported.id) == imported
    for kind in ("markdown", "json"):
        exported = controller.export(imported.id, kind)
        assert exported is not None and "\ufffd" in exported[2]
        exported[2].encode("utf-8")
    assert parse_import(to_json(imported))[0].name == "bad\ufffdname"


def test_system_messages_are_imported_as_they_are_and_kept(tmp_path: Path) -> None:
    """Decided: a system message in an imported file is kept (the tutorial's files have them)."""
    data = _v1(
        {
            "name": "With a system prompt",
            "messages": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": "hi"},
            ],
        }
    )
    store = ConversationStore(tmp_path / "conversations.json")
    [stored] = store.import_conversations(parse_import(data))
    loaded = ConversationStore(tmp_path / "conversations.json").load(stored.id)
    assert loaded is not None and [(m.role, m.content) for m in loaded.messages] == [
        ("system", "You are a pirate."),
        ("user", "hi"),
    ]
    assert "**System**:\n\nYou are a pirate." in to_markdown(loaded)


def test_markdown_names_the_model_of_each_answer() -> None:
    conv = Conversation(
        "Models", (Message("user", "q"), Message("assistant", "a", model="big"), Message("assistant", "b"))
    )
    text = to_markdown(conv)
    assert "**Assistant** (big):\n\na" in text
    assert "**Assistant**:\n\nb" in text
