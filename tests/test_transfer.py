"""Export as Markdown / JSON and import of the three file shapes, including every bad input;
the files a JSON export carries, taken to a fresh data folder."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import controller.conversations
import model.transfer
from controller.conversations import ConversationController
from model.files import FileStore, StoredFile
from model.message import Conversation, Message
from model.parts import Attachment, ToolRun
from model.store import ConversationStore
from model.transfer import MAX_IMPORT_BYTES, ImportFailed, parse_import, to_json, to_markdown
from tests.test_documents import make_pdf

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
        assert exported is not None and "\ufffd" in exported.text()
        exported.text().encode("utf-8")
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


# --- the files a JSON export carries ---

PDF = make_pdf([["Quarterly report", "Sales rose 12%."]])


def picture(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, "PNG")
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def machine(folder: Path) -> ConversationController:
    """One data folder's conversations and stored files, wired as Runtime.conversations() wires them."""
    return ConversationController(ConversationStore(folder / "conversations.json"), files=FileStore(folder / "files"))


def save_report(here: ConversationController, attached: dict[str, bytes] | None = None) -> Conversation:
    """A question attaching the report (or `attached`), and two answers to it (two branches): each
    ran code that made a picture. The first answer is the one shown."""
    assert here.files is not None
    files = [here.files.put(data, name) for name, data in (attached or {"report.pdf": PDF}).items()]
    question = Message(
        "user",
        "Chart the report",
        id="q",
        parent_id="",
        attachments=tuple(Attachment(f.sha256, f.name, f.kind, f.size) for f in files),
    )
    answers = [
        Message(
            "assistant",
            f"Chart {n}",
            id=f"a{n}",
            parent_id="q",
            tool_runs=(
                ToolRun("run_code", "plot()", "", images=(here.files.put(picture(colour), "chart.png").sha256,)),
            ),
        )
        for n, colour in enumerate(("orange", "teal"), 1)
    ]
    return here.save("Report", [question, *answers], "m", current="a1")


def exported(here: ConversationController, conversation: Conversation) -> dict[str, Any]:
    found = here.export(conversation.id, "json")
    assert found is not None
    document: dict[str, Any] = json.loads(found.text())
    return document


def test_a_json_export_carries_every_file_into_a_fresh_data_folder(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    saved = save_report(here)
    document = exported(here, saved)
    # what older readers read is unchanged: the version, the conversation, and a key they ignore
    assert document["version"] == 2 and document["conversation"] == saved.to_dict()
    assert parse_import(json.dumps(document)) == [saved]
    pictures = [picture("orange"), picture("teal")]  # the second is on the branch not shown
    assert set(document["files"]) == {sha(PDF), *map(sha, pictures)}
    assert document["files"][sha(PDF)] == {"name": "report.pdf", "kind": "pdf", "data": base64.b64encode(PDF).decode()}

    report = there.import_file(json.dumps(document).encode(), "Report.json")
    assert report.summary == "Imported 1 conversation (1 with several branches)."
    [imported] = report.imported
    assert imported.messages == saved.messages  # the same SHA-256s…
    store = FileStore(tmp_path / "there" / "files")
    for data in (PDF, *pictures):  # … and this machine now has their bytes
        assert store.get(sha(data)) == data
    assert store.info(sha(PDF)) == StoredFile(sha(PDF), "report.pdf", "pdf", len(PDF))


def test_import_data_brings_the_files_too(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    text = json.dumps(exported(here, save_report(here)))
    [imported] = there.import_data(text.encode())
    assert there.files is not None and there.files.get(imported.messages[0].attachments[0].sha256) == PDF


def test_an_export_from_before_files_were_carried_still_imports(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    saved = save_report(here)
    old = to_json(saved)  # what bnaGPT wrote before: no "files"
    assert "files" not in json.loads(old)
    report = there.import_file(old.encode(), "Report.json")
    assert report.summary == "Imported 1 conversation (1 with several branches)."
    assert not FileStore(tmp_path / "there" / "files").exists(sha(PDF))  # shown as missing, as before


def test_a_controller_without_a_file_store_exports_and_imports_as_before(tmp_path: Path) -> None:
    here = machine(tmp_path / "here")
    saved = save_report(here)
    bare = ConversationController(here.store)
    found = bare.export(saved.id, "json")
    assert found is not None and found.text() == to_json(saved) and found.left_out == ()
    copied = json.dumps(exported(here, saved))
    there = ConversationController(ConversationStore(tmp_path / "there" / "conversations.json"))
    assert there.import_file(copied.encode(), "r.json").summary.startswith("Imported 1 conversation")
    assert not (tmp_path / "there" / "files").exists()


def test_bytes_that_do_not_match_their_sha256_are_refused_and_the_conversation_imports(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    document = exported(here, save_report(here))
    forged = b"%PDF-1.4 something else entirely"
    document["files"][sha(PDF)]["data"] = base64.b64encode(forged).decode()
    report = there.import_file(json.dumps(document).encode(), "Report.json")
    assert report.summary == (
        "Imported 1 conversation (1 with several branches). "
        "1 attached file in the export was damaged and was not imported."
    )
    store = FileStore(tmp_path / "there" / "files")
    assert not store.exists(sha(PDF)) and not store.exists(sha(forged))  # never kept, under any name
    assert store.get(sha(picture("orange"))) == picture("orange")  # the good files are


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "report.pdf", "kind": "pdf", "data": "this is not base64!"},
        {"name": "report.pdf", "kind": "pdf", "data": "JVBERi0xLjQ=é"},  # a character outside ASCII
        {"name": "report.pdf", "kind": "pdf"},  # no data
        {"name": "report.pdf", "kind": "pdf", "data": 12},
        {"name": ["report.pdf"], "kind": "pdf", "data": base64.b64encode(PDF).decode()},
        {"name": "report.pdf", "kind": {"pdf": 1}, "data": base64.b64encode(PDF).decode()},
        "JVBERi0xLjQ=",
        [1, 2],
    ],
)
def test_a_damaged_file_entry_is_skipped_with_a_sentence(tmp_path: Path, entry: object) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    document = exported(here, save_report(here))
    document["files"][sha(PDF)] = entry
    report = there.import_file(json.dumps(document).encode(), "Report.json")
    assert report.summary.endswith(" 1 attached file in the export was damaged and was not imported.")
    assert len(report.imported) == 1 and not FileStore(tmp_path / "there" / "files").exists(sha(PDF))


def test_two_damaged_files_are_one_sentence(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    document = exported(here, save_report(here))
    for picture_sha in (sha(picture("orange")), sha(picture("teal"))):
        document["files"][picture_sha]["data"] = base64.b64encode(b"not the picture").decode()
    summary = there.import_file(json.dumps(document).encode(), "Report.json").summary
    assert summary.endswith(". 2 attached files in the export were damaged and were not imported.")


@pytest.mark.parametrize("files", [[], "files", 7, True])
def test_files_of_the_wrong_type_get_a_sentence_and_the_conversation_imports(tmp_path: Path, files: object) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    document = exported(here, save_report(here))
    document["files"] = files
    report = there.import_file(json.dumps(document).encode(), "Report.json")
    assert report.summary.endswith(" The attached files in the export could not be read, so they were not imported.")
    assert len(report.imported) == 1


def test_hostile_keys_are_never_looked_at(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    assert here.files is not None
    stored = here.files.put(PDF, "report.pdf")
    # a conversation may name anything as a file: only a real SHA-256 is looked up, in the store or the export
    attached = (Attachment(stored.sha256, "report.pdf", "pdf", len(PDF)), Attachment("../../x", "odd.txt", "text", 3))
    saved = here.save("Odd", [Message("user", "see", attachments=attached)], "m")
    document = exported(here, saved)
    assert set(document["files"]) == {sha(PDF)}
    document["files"].update({"x" * 100_000: {"data": "AA=="}, "../../x": {"data": "AA=="}, "": 1})
    report = there.import_file(json.dumps(document).encode(), "Odd.json")
    assert report.summary == "Imported 1 conversation."
    assert FileStore(tmp_path / "there" / "files").get(sha(PDF)) == PDF
    assert [p.name for p in (tmp_path / "there" / "files").iterdir()] == [sha(PDF)[:2]]  # and nothing else


def test_a_file_already_here_is_not_read_from_the_export(tmp_path: Path) -> None:
    here = machine(tmp_path / "here")
    document = exported(here, save_report(here))
    document["files"][sha(PDF)]["data"] = "damaged, but not needed"
    assert here.import_file(json.dumps(document).encode(), "Report.json").summary == (
        "Imported 1 conversation (1 with several branches)."
    )


def test_a_file_no_longer_stored_is_left_out_of_the_export(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    saved = save_report(here)
    (tmp_path / "here" / "files" / sha(PDF)[:2] / sha(PDF)).unlink()
    found = here.export(saved.id, "json")
    assert found is not None and found.left_out == ()
    document = json.loads(found.text())
    assert set(document["files"]) == {sha(picture("orange")), sha(picture("teal"))}
    assert there.import_file(found.text().encode(), "Report.json").imported


def test_a_file_gone_between_the_menu_and_the_download_is_left_out(tmp_path: Path) -> None:
    here = machine(tmp_path / "here")
    saved = save_report(here)
    found = here.export(saved.id, "json")
    assert found is not None and callable(found.data)  # made when downloaded
    (tmp_path / "here" / "files" / sha(PDF)[:2] / sha(PDF)).write_bytes(b"changed on disk")
    assert set(json.loads(found.text())["files"]) == {sha(picture("orange")), sha(picture("teal"))}


def test_past_the_budget_the_largest_file_is_left_out_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    big = bytes(range(256)) * 40
    saved = save_report(here, {"report.pdf": PDF, "scan.pdf": big})
    pictures = len(picture("orange")) + len(picture("teal"))
    monkeypatch.setattr(controller.conversations, "EXPORT_FILES_BYTES", len(PDF) + pictures + len(big) - 1)
    found = here.export(saved.id, "json")
    assert found is not None
    assert found.left_out == ("“scan.pdf” (0.0 MB) was too large to include; copy it over separately.",)
    document = json.loads(found.text())
    assert set(document["files"]) == {sha(PDF), sha(picture("orange")), sha(picture("teal"))}
    assert there.import_file(json.dumps(document).encode(), "Report.json").summary == (
        "Imported 1 conversation (1 with several branches)."
    )


def test_an_import_past_the_budget_leaves_out_the_rest_with_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    document = exported(here, save_report(here))
    monkeypatch.setattr(model.transfer, "EXPORT_FILES_BYTES", len(PDF))  # the report fits; the pictures do not
    report = there.import_file(json.dumps(document).encode(), "Report.json")
    assert report.summary.endswith(
        " 2 attached files in the export were over the 0 MB an export carries and were not imported."
    )
    store = FileStore(tmp_path / "there" / "files")
    assert store.get(sha(PDF)) == PDF and not store.exists(sha(picture("orange")))


def test_when_a_carried_file_cannot_be_stored_nothing_is_imported(tmp_path: Path) -> None:
    here, there = machine(tmp_path / "here"), machine(tmp_path / "there")
    document = exported(here, save_report(here))
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "files").write_text("a file where the folder should be")
    with pytest.raises(ImportFailed, match="attached files could not be stored"):
        there.import_file(json.dumps(document).encode(), "Report.json")
    assert there.store.list() == []
