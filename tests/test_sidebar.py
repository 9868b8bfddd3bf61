"""The conversation sidebar through AppTest, on the real store in a real file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from streamlit.testing.v1 import AppTest

from model.message import Conversation, Message
from model.store import ConversationStore
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


def click(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, at.exception


def save_as(at: AppTest, name: str | None = None) -> None:
    click(at, "conv:save")
    if name is not None:
        at.text_input(key="conv:name").set_value(name)
    click(at, "conv:confirm-save")


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
    assert at.expander[0].label.endswith("Ada")
    click(at, f"conv:{kept.id}:load")
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
    click(at, f"conv:{kept.id}:load")
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
    label = at.expander[0].label
    assert "\\*\\*bold\\*\\*" in label and "\\<img" in label  # escaped: shown as text, not markup


def test_many_conversations_draw_a_bounded_list_with_a_filter(use_fake_openai: FakeOpenAI) -> None:
    seed(60)
    at = memory_page()
    assert len(at.expander) == 20
    assert any("Showing 20 of 60" in c.value for c in at.caption)
    at.text_input(key="conv:filter").set_value("0007").run()
    assert [e.label for e in at.expander] == ["Conversation 0007"]


def test_export_downloads_markdown_and_json(use_fake_openai: FakeOpenAI) -> None:
    kept = store().save(Conversation("Notes", (Message("user", "hi"), Message("assistant", "hello"))))
    at = memory_page()
    click(at, f"conv:{kept.id}:export")
    downloads = at.get("download_button")
    assert len(downloads) == 2


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
