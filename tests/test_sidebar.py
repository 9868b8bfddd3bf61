"""The conversation sidebar through AppTest, on the real store in a real file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import controller.conversations
from controller.conversations import ConversationController
from model.files import FileStore
from model.message import Conversation, Message
from model.parts import Attachment
from model.store import ConversationStore
from model.transfer import to_json
from tests.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
MEMORY_PAGE = "pages/2_Chatbot_With_Memory.py"


def memory_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.switch_page(MEMORY_PAGE).run()
    assert not at.exception
    return at


def store() -> ConversationStore:
    return ConversationStore(os.environ["CONVERSATIONS_FILE"])


def texts(at: AppTest) -> list[str]:
    return [m.markdown[0].value for m in at.chat_message if len(m.markdown)]


def send(at: AppTest, text: str) -> None:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception


MENU_ITEMS = ("pin", "rename", "export", "archive", "delete")


def click(at: AppTest, key: str) -> None:
    entry, _, item = key.rpartition(":")
    if entry.startswith("conv:") and item in MENU_ITEMS:
        open_menu(at, entry)
    at.button(key=key).click().run()
    assert not at.exception, at.exception


def open_menu(at: AppTest, entry: str) -> None:
    """Open an entry's ⋯ menu (only the open conversation has one: open it first); its items are
    drawn only while the menu is open."""
    if at.button(key=f"{entry}:open").proto.type != "primary":
        at.button(key=f"{entry}:open").click().run()
        assert not at.exception, at.exception
    at.session_state[f"{entry}:menu"] = True
    at.run()
    assert not at.exception, at.exception


def save_as(at: AppTest, name: str | None = None) -> None:
    click(at, "conv:save")
    if name is not None:
        at.text_input(key="conv:name").set_value(name)
    click(at, "conv:confirm-save")


def open_buttons(at: AppTest) -> list:  # type: ignore[type-arg]
    return [b for b in at.button if str(b.key).endswith(":open")]


def seed(count: int) -> list[Conversation]:
    s = store()
    return [
        s.save(Conversation(f"Conversation {i:04d}", (Message("user", f"q{i}"), Message("assistant", f"a{i}"))))
        for i in range(count)
    ]


def test_save_suggests_a_name_and_autosaves_every_later_turn(use_fake_openai: FakeOpenAI) -> None:
    at = memory_page()
    send(at, "Plan a trip to Lisbon")
    click(at, "conv:save")
    assert at.text_input(key="conv:name").value == "Plan a trip to Lisbon"
    click(at, "conv:confirm-save")
    [saved] = store().list()
    assert saved.name == "Plan a trip to Lisbon" and saved.message_count == 2
    assert any("Plan a trip to Lisbon" in i.value for i in at.info)  # the page shows what is open
    send(at, "And Porto?")
    conversation = store().load(saved.id)
    assert conversation is not None
    assert [m.content for m in conversation.messages] == texts(at)
    assert len(conversation.messages) == 4
    assert conversation.model == "test-model"


def test_load_in_a_fresh_session_rebuilds_memory(use_fake_openai: FakeOpenAI) -> None:
    [kept] = [
        store().save(Conversation("Ada", (Message("user", "My name is Ada."), Message("assistant", "Hello Ada."))))
    ]
    at = memory_page()
    assert at.button(key=f"conv:{kept.id}:open").label == "Ada"
    click(at, f"conv:{kept.id}:open")
    assert texts(at) == ["My name is Ada.", "Hello Ada."]
    send(at, "What is my name?")
    sent = use_fake_openai.chat_requests[-1].messages
    assert [m["content"] for m in sent[1:]] == ["My name is Ada.", "Hello Ada.", "What is my name?"]
    assert len(store().load(kept.id).messages) == 4  # type: ignore[union-attr]


def test_duplicate_name_asks_before_overwriting(use_fake_openai: FakeOpenAI) -> None:
    original = store().save(Conversation("Same", (Message("user", "old"),)))
    at = memory_page()
    send(at, "new words")
    save_as(at, "Same")
    assert any("exists" in w.value for w in at.warning)
    assert store().load(original.id) is not None  # nothing replaced yet
    click(at, "conv:confirm-save")  # now labelled Confirm Overwrite
    [only] = store().list()
    assert only.name == "Same" and store().load(only.id).messages[0].content == "new words"  # type: ignore[union-attr]


def test_rename_and_delete_with_confirmation(use_fake_openai: FakeOpenAI) -> None:
    kept = store().save(Conversation("Before", (Message("user", "x"),)))
    other = store().save(Conversation("Taken", (Message("user", "y"),)))
    at = memory_page()
    click(at, f"conv:{kept.id}:rename")
    at.text_input(key=f"conv:{kept.id}:new-name").set_value("Taken")
    click(at, f"conv:{kept.id}:confirm-rename")
    assert any("already named" in e.value for e in at.error)
    at.text_input(key=f"conv:{kept.id}:new-name").set_value("  After  ")
    click(at, f"conv:{kept.id}:confirm-rename")
    assert store().load(kept.id).name == "After"  # type: ignore[union-attr]
    click(at, f"conv:{kept.id}:open")
    click(at, f"conv:{kept.id}:rename")
    at.text_input(key=f"conv:{kept.id}:new-name").set_value("After all")
    click(at, f"conv:{kept.id}:confirm-rename")
    assert any(i.value == "Conversation: After all" for i in at.info)  # the open conversation's name follows
    click(at, f"conv:{other.id}:delete")
    assert store().load(other.id) is not None  # asked, not deleted
    click(at, f"conv:{other.id}:confirm-delete")
    assert store().load(other.id) is None and [c.name for c in store().list()] == ["After all"]


def test_hostile_names_are_text_and_bad_names_are_refused(use_fake_openai: FakeOpenAI) -> None:
    at = memory_page()
    send(at, "hello")
    save_as(at, "   ")
    assert at.error and not store().list()
    save_as(at, "<img src=x onerror=alert(1)> **bold** / 🚀")
    [saved] = store().list()
    assert saved.name == "<img src=x onerror=alert(1)> **bold** / 🚀"
    label = at.button(key=f"conv:{saved.id}:open").label
    assert "\\*\\*bold\\*\\*" in label and "\\<img" in label  # escaped: shown as text, not markup


def test_many_conversations_draw_a_bounded_list_with_a_filter(use_fake_openai: FakeOpenAI) -> None:
    seed(60)
    at = memory_page()
    assert len(open_buttons(at)) == 20
    assert any("Showing 20 of 60" in c.value for c in at.caption)
    at.text_input(key="conv:filter").set_value("0007").run()
    assert [b.label for b in open_buttons(at)] == ["Conversation 0007"]


def test_export_downloads_markdown_and_json(use_fake_openai: FakeOpenAI) -> None:
    kept = store().save(Conversation("Notes", (Message("user", "hi"), Message("assistant", "hello"))))
    at = memory_page()
    click(at, f"conv:{kept.id}:export")
    downloads = at.get("download_button")
    assert len(downloads) == 2


def test_export_names_a_file_too_large_to_carry_and_an_import_says_what_was_damaged(
    use_fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = FileStore(Path(os.environ["CONVERSATIONS_FILE"]).parent / "files")  # the page's data folder
    small, large = files.put(b"small notes", "notes.txt"), files.put(b"x" * 5000, "scan.pdf")
    attached = tuple(Attachment(f.sha256, f.name, f.kind, f.size) for f in (small, large))
    kept = store().save(Conversation("Files", (Message("user", "see", attachments=attached),)))
    monkeypatch.setattr(controller.conversations, "EXPORT_FILES_BYTES", 1000)
    at = memory_page()
    click(at, f"conv:{kept.id}:export")
    assert any("scan" in c.value and "was too large to include" in c.value for c in at.caption)
    exported = ConversationController(store(), files=files).export(kept.id, "json")
    assert exported is not None
    document = json.loads(exported.text())
    assert list(document["files"]) == [small.sha256]
    at.download_button(key=f"conv:{kept.id}:json").click().run()
    assert len(at.download_button) == 2 and not at.exception  # a download keeps the panel (no rerun drops its data)
    click(at, f"conv:{kept.id}:cancel-export")
    assert not at.download_button

    (files.folder / small.sha256[:2] / small.sha256).unlink()  # as on a machine without it
    document["files"][small.sha256]["data"] = "bm90IHRoZSBub3Rlcw=="  # "not the notes"
    at.file_uploader[0].upload("Files.json", json.dumps(document).encode(), "application/json").run()
    assert not at.exception and not files.exists(small.sha256)
    said = [t.value.replace("\\", "") for t in at.toast]  # shown as text: every markdown character escaped
    assert "Imported 1 conversation. 1 attached file in the export was damaged and was not imported." in said


def test_corrupt_file_is_reported_and_kept(use_fake_openai: FakeOpenAI) -> None:
    path = Path(os.environ["CONVERSATIONS_FILE"])
    path.write_text("{ this is not json")
    at = memory_page()
    assert any("could not be read" in e.value for e in at.error)
    kept = list(path.parent.glob(path.name + ".corrupt-*"))
    assert kept and kept[0].read_text() == "{ this is not json"
    send(at, "still works")
    save_as(at, "Fresh")
    assert json.loads(path.read_text())["conversations"]


# The sidebar alone: a ConversationSidebar on the real store in a tmp file, wired as the chat view
# wires it, with every callback recorded in session state. -----------------------------------------
def sidebar_app(path: str) -> None:
    import streamlit as st

    from controller.conversations import ConversationController
    from model.message import Message
    from model.store import ConversationStore
    from view.sidebar import ConversationSidebar

    calls = st.session_state.setdefault("calls", [])
    messages = st.session_state.setdefault("messages", [Message("user", "Plan a trip"), Message("assistant", "Sure")])
    shown = st.session_state.get("open")

    def on_open(conversation):  # type: ignore[no-untyped-def]
        calls.append(("open", conversation.id, conversation.name))
        st.session_state["open"] = (conversation.id, conversation.name)

    def on_renamed(conversation):  # type: ignore[no-untyped-def]
        calls.append(("renamed", conversation.id, conversation.name))
        if shown and shown[0] == conversation.id:
            st.session_state["open"] = (conversation.id, conversation.name)

    def on_deleted(conversation_id):  # type: ignore[no-untyped-def]
        calls.append(("deleted", conversation_id))
        if shown and shown[0] == conversation_id:
            del st.session_state["open"]
            st.session_state["notice"] = "The chat on screen is no longer saved."

    def on_open_at(conversation, message_id):  # type: ignore[no-untyped-def]
        calls.append(("open at", conversation.id, message_id))
        st.session_state["open"] = (conversation.id, conversation.name)

    controller = ConversationController(ConversationStore(path))
    ConversationSidebar(
        controller,
        messages,
        "test-model",
        shown[0] if shown else None,
        on_open,
        on_renamed,
        on_deleted,
        on_open_at=on_open_at,
    )()


def sidebar(tmp_path: Path) -> AppTest:
    at = AppTest.from_function(sidebar_app, args=(str(tmp_path / "conversations.json"),), default_timeout=30)
    at.run()
    assert not at.exception
    return at


def calls(at: AppTest) -> list[tuple[str, ...]]:
    return list(at.session_state["calls"])


def acted(at: AppTest) -> list[tuple[str, ...]]:
    """What the sidebar did besides opening conversations (the ⋯ menu is the open one's)."""
    return [call for call in calls(at) if call[0] != "open"]


def panel_inputs(at: AppTest) -> list[str]:
    """The keys of the text boxes other than the search box."""
    return [str(t.key) for t in at.text_input if t.key != "conv:filter"]


def sentences(at: AppTest) -> list[str]:
    return [e.value for e in at.error] + [t.value for t in at.toast]


def test_save_is_one_panel_with_the_name_prefilled_and_closes_after_use(tmp_path: Path) -> None:
    at = sidebar(tmp_path)
    click(at, "conv:save")
    assert at.text_input(key="conv:name").value == "Plan a trip"
    click(at, "conv:confirm-save")
    [saved] = ConversationStore(tmp_path / "conversations.json").list()
    assert calls(at) == [("open", saved.id, "Plan a trip")]
    assert at.button(key=f"conv:{saved.id}:open").proto.type == "primary"  # the open one is marked
    assert not panel_inputs(at) and any("Saved as" in t.value for t in at.toast)  # the panel is gone
    click(at, "conv:save")
    click(at, "conv:cancel-save")
    assert not panel_inputs(at) and len(calls(at)) == 1


def test_a_name_clash_asks_before_overwriting_and_cancel_keeps_both(tmp_path: Path) -> None:
    kept = ConversationStore(tmp_path / "conversations.json").save(
        Conversation("Plan a trip", (Message("user", "old"),))
    )
    at = sidebar(tmp_path)
    click(at, "conv:save")
    click(at, "conv:confirm-save")
    assert any("exists" in w.value for w in at.warning)
    assert at.button(key="conv:confirm-save").label == "Confirm Overwrite"
    click(at, "conv:cancel-save")
    assert not at.warning and calls(at) == []
    click(at, "conv:save")
    click(at, "conv:confirm-save")
    click(at, "conv:confirm-save")  # Confirm Overwrite
    [only] = ConversationStore(tmp_path / "conversations.json").list()
    assert only.message_count == 2 and calls(at) == [("open", only.id, "Plan a trip")]
    assert ConversationStore(tmp_path / "conversations.json").load(kept.id) is None or only.id == kept.id


def test_one_click_opens_a_conversation(tmp_path: Path) -> None:
    ada = ConversationStore(tmp_path / "conversations.json").save(Conversation("Ada", (Message("user", "hi"),)))
    at = sidebar(tmp_path)
    assert at.button(key=f"conv:{ada.id}:open").proto.type == "tertiary"
    click(at, f"conv:{ada.id}:open")
    assert calls(at) == [("open", ada.id, "Ada")]
    assert at.button(key=f"conv:{ada.id}:open").proto.type == "primary"


def test_rename_confirms_on_enter_says_why_it_cannot_and_cancels(tmp_path: Path) -> None:
    store_ = ConversationStore(tmp_path / "conversations.json")
    kept = store_.save(Conversation("Before", (Message("user", "x"),)))
    store_.save(Conversation("Taken", (Message("user", "y"),)))
    at = sidebar(tmp_path)
    click(at, f"conv:{kept.id}:rename")
    at.text_input(key=f"conv:{kept.id}:new-name").set_value("Taken")
    click(at, f"conv:{kept.id}:confirm-rename")
    assert any("already named" in e.value for e in at.error)
    at.text_input(key=f"conv:{kept.id}:new-name").set_value("   ")
    click(at, f"conv:{kept.id}:confirm-rename")
    assert any("Not renamed" in e.value for e in at.error)
    click(at, f"conv:{kept.id}:cancel-rename")
    assert not panel_inputs(at) and not at.error and acted(at) == []
    click(at, f"conv:{kept.id}:rename")
    at.text_input(key=f"conv:{kept.id}:new-name").set_value("  After  ")  # in a form: Enter submits it
    click(at, f"conv:{kept.id}:confirm-rename")
    assert acted(at) == [("renamed", kept.id, "After")]
    assert not panel_inputs(at) and at.button(key=f"conv:{kept.id}:open").label == "After"


def test_rename_of_a_conversation_deleted_in_another_tab_says_so(tmp_path: Path) -> None:
    kept = ConversationStore(tmp_path / "conversations.json").save(Conversation("Gone soon", (Message("user", "x"),)))
    at = sidebar(tmp_path)
    click(at, f"conv:{kept.id}:rename")
    ConversationStore(tmp_path / "conversations.json").delete(kept.id)  # the other tab
    click(at, f"conv:{kept.id}:confirm-rename")
    assert "That conversation was deleted in another tab." in sentences(at)
    assert acted(at) == []


def test_deleting_the_open_conversation_tells_the_view(tmp_path: Path) -> None:
    store_ = ConversationStore(tmp_path / "conversations.json")
    first = store_.save(Conversation("First", (Message("user", "x"),)))
    other = store_.save(Conversation("Other", (Message("user", "y"),)))
    at = sidebar(tmp_path)
    click(at, f"conv:{first.id}:open")
    click(at, f"conv:{other.id}:delete")
    click(at, f"conv:{other.id}:cancel-delete")
    assert store_.load(other.id) is not None and not at.warning
    click(at, f"conv:{first.id}:delete")
    assert any("cannot be undone" in w.value for w in at.warning)
    click(at, f"conv:{first.id}:confirm-delete")
    assert calls(at)[-1] == ("deleted", first.id) and store_.load(first.id) is None
    assert at.session_state["notice"] == "The chat on screen is no longer saved."
    assert not at.warning and not any(str(b.key).startswith(f"conv:{first.id}") for b in at.button)


def test_a_store_that_fails_gives_sentences_never_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    kept = ConversationStore(path).save(Conversation("Kept", (Message("user", "x"),)))
    at = sidebar(tmp_path)
    click(at, "conv:save")
    click(at, f"conv:{kept.id}:delete")  # opens the delete panel (and closes the save panel)
    path.unlink()
    path.mkdir()  # the file is now a folder: every read and write fails
    click(at, f"conv:{kept.id}:confirm-delete")
    assert at.error and not at.exception
    at = sidebar(tmp_path)
    assert any("could not be read" in e.value for e in at.error) and not at.exception


def test_export_offers_both_formats_and_close(tmp_path: Path) -> None:
    kept = ConversationStore(tmp_path / "conversations.json").save(Conversation("Notes", (Message("user", "hi"),)))
    at = sidebar(tmp_path)
    click(at, f"conv:{kept.id}:export")
    assert [d.label for d in at.download_button] == ["Download Markdown", "Download JSON"]
    at.download_button(key=f"conv:{kept.id}:json").click().run()
    assert len(at.download_button) == 2 and not at.exception  # a download keeps the panel (no rerun drops its data)
    click(at, f"conv:{kept.id}:cancel-export")
    assert not at.download_button


def test_import_names_are_text_in_the_summary_and_errors(tmp_path: Path) -> None:
    at = sidebar(tmp_path)
    payload = to_json(Conversation("**bold** ![x](http://127.0.0.1:9/p.png)", (Message("user", "hi"),)))
    at.file_uploader[0].upload("c.json", payload.encode(), "application/json").run()
    assert not at.exception and any("Imported 1 conversation" in t.value for t in at.toast)
    [imported] = ConversationStore(tmp_path / "conversations.json").list()
    label = at.button(key=f"conv:{imported.id}:open").label
    assert "\\*\\*bold\\*\\*" in label and "\\!\\[x\\]" in label
    at.file_uploader[0].upload("bad.json", b'{"name": "![x](u)", "messages": [{"role": "wizard"}]}').run()
    assert at.error and "![x]" not in at.error[0].value and not at.exception


def test_past_ten_a_filter_and_at_most_twenty_drawn(tmp_path: Path) -> None:
    store_ = ConversationStore(tmp_path / "conversations.json")
    for i in range(25):
        store_.save(Conversation(f"Conversation {i:04d}", (Message("user", f"q{i}"),)))
    at = sidebar(tmp_path)
    assert len(open_buttons(at)) == 20 and any("Showing 20 of 25" in c.value for c in at.caption)
    at.text_input(key="conv:filter").set_value("0007").run()
    assert [b.label for b in open_buttons(at)] == ["Conversation 0007"]
    at.text_input(key="conv:filter").set_value("nothing like it").run()
    assert not open_buttons(at) and any("No conversation name contains that." in c.value for c in at.caption)


def test_pin_moves_a_conversation_to_the_top_and_unpin_back(tmp_path: Path) -> None:
    store_ = ConversationStore(tmp_path / "conversations.json")
    # saved a minute apart: three saves in one millisecond would tie on the time the list is sorted by
    oldest, _, newest = [
        store_.save(Conversation(name, (Message("user", "hi"),), updated_at=f"2026-01-01T00:0{n}:00.000Z"))
        for n, name in enumerate(("Old", "Mid", "New"))
    ]
    at = sidebar(tmp_path)
    assert [b.label for b in open_buttons(at)] == ["New", "Mid", "Old"]
    open_menu(at, f"conv:{oldest.id}")
    assert at.button(key=f"conv:{oldest.id}:pin").label == "Pin"
    click(at, f"conv:{oldest.id}:pin")
    assert [b.label for b in open_buttons(at)] == ["Old", "New", "Mid"]
    assert any("Pinned “Old”." in t.value for t in at.toast) and store_.list()[-1].pinned
    click(at, f"conv:{newest.id}:pin")  # pinned ones: newest first too
    assert [b.label for b in open_buttons(at)] == ["New", "Old", "Mid"]
    assert at.button(key=f"conv:{oldest.id}:open").proto.icon == ":material/push_pin:"  # not the open one
    click(at, f"conv:{oldest.id}:pin")  # now "Unpin"
    assert [b.label for b in open_buttons(at)] == ["New", "Mid", "Old"] and acted(at) == []


def test_archive_hides_a_conversation_and_unarchive_brings_it_back(tmp_path: Path) -> None:
    store_ = ConversationStore(tmp_path / "conversations.json")
    kept, gone = [store_.save(Conversation(name, (Message("user", "hi"),))) for name in ("Kept", "Gone")]
    at = sidebar(tmp_path)
    click(at, f"conv:{gone.id}:archive")
    assert any("Archived “Gone”." in t.value for t in at.toast)
    [expander] = at.expander
    assert expander.label == "Archived (1)"
    assert [b.label for b in expander.button if str(b.key).endswith(":open")] == ["Gone"]
    assert [b.label for b in open_buttons(at)] == ["Kept", "Gone"]  # the list, then the archived section
    open_menu(at, f"conv:{gone.id}")
    assert at.button(key=f"conv:{gone.id}:archive").label == "Unarchive"
    click(at, f"conv:{kept.id}:open")  # so that Gone is not the open one, whose icon says so
    at.text_input(key="conv:filter").set_value("gon").run()  # the filter finds archived ones, marked
    assert [b.label for b in open_buttons(at)] == ["Gone"] and not at.expander
    assert at.button(key=f"conv:{gone.id}:open").proto.icon == ":material/inventory_2:"
    at.text_input(key="conv:filter").set_value("").run()
    click(at, f"conv:{gone.id}:archive")  # Unarchive
    assert not at.expander and [b.label for b in open_buttons(at)] == ["Gone", "Kept"]
    assert not store_.list()[0].archived and acted(at) == []
    assert kept.id in {s.id for s in store_.list()}


def test_search_shows_hits_and_a_click_opens_the_conversation_at_the_message(tmp_path: Path) -> None:
    store_ = ConversationStore(tmp_path / "conversations.json")
    question = Message("user", "Name a bird", id="q1", parent_id="")
    shown, other = (
        Message("assistant", "A sparrow", id="a1", parent_id="q1"),
        Message("assistant", "A <b>flamingo</b> **stands** on one leg", id="a2", parent_id="q1"),
    )
    birds = store_.save(Conversation("Birds", (question, other, shown), current="a1"))
    store_.save(Conversation("Fish", (Message("user", "A salmon swims"),)))
    flamingos = store_.save(Conversation("Flamingo facts", (Message("user", "pink"),)))
    at = sidebar(tmp_path)
    at.text_input(key="conv:filter").set_value("FLAMINGO").run()
    assert not at.exception
    assert [b.label for b in open_buttons(at)] == ["Flamingo facts"]  # by name, with its ⋯ menu
    [hit] = [b for b in at.button if str(b.key).startswith("conv:hit:")]
    assert hit.key == f"conv:hit:{birds.id}:a2"
    assert hit.label == "Birds"
    [snippet] = [c.value for c in at.caption if c.value.startswith("Assistant: ")]
    assert snippet == r"Assistant: A \<b\>:orange-background[**flamingo**]\<\/b\> \*\*stands\*\* on one leg"
    hit.click().run()
    assert not at.exception and calls(at) == [("open at", birds.id, "a2")]
    at.text_input(key="conv:filter").set_value("ostrich").run()
    assert any("No message holds every word of that." in c.value for c in at.caption)
    assert flamingos.id != birds.id


def test_a_rerun_shows_the_last_hits_without_searching_again(tmp_path: Path) -> None:
    from controller.conversations import shared_index

    path = tmp_path / "conversations.json"
    store_ = ConversationStore(path)
    first = store_.save(Conversation("Kestrels", (Message("user", "a kestrel hovers"),)))
    at = sidebar(tmp_path)
    at.text_input(key="conv:filter").set_value("kestrel").run()
    index = shared_index(str(path))
    assert index.indexed == 1 and [b.key for b in at.button if str(b.key).startswith("conv:hit:")] == [
        f"conv:hit:{first.id}:{first.messages[0].id}"
    ]
    store_.update_messages(first.id, [*first.path(), Message("assistant", "kestrels eat voles")], "m", "Kestrels")
    at.run()  # as the run that answers a turn: the hits stay, the index is not touched
    assert not at.exception and index.indexed == 1 and len([b for b in at.button if "conv:hit:" in str(b.key)]) == 1
    at.text_input(key="conv:filter").set_value("kestrels").run()  # a search: the changed conversation is indexed
    assert index.indexed == 2 and any("voles" in c.value for c in at.caption)
    click(at, f"conv:{first.id}:pin")  # a change made in the sidebar searches again
    assert index.indexed == 2 and any("voles" in c.value for c in at.caption)
