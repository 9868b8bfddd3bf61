"""ConversationController on the real store in a real file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.conversations import ConversationController
from model.message import Conversation, Message
from model.store import ConversationStore
from model.transfer import ImportFailed


@pytest.fixture
def controller(tmp_path: Path) -> ConversationController:
    return ConversationController(ConversationStore(tmp_path / "conversations.json"))


def test_listing_filters_by_name_and_draws_a_bounded_number(controller: ConversationController) -> None:
    for i in range(30):
        controller.save(f"Trip {i:02d}" if i % 2 else f"Recipe {i:02d}", [Message("user", "x")], "m")
    everything = controller.listing()
    assert (len(everything.shown), everything.matching, everything.total) == (20, 30, 30)
    stamps = [c.updated_at for c in everything.shown]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    trips = controller.listing("  tRiP ")
    assert trips.matching == 15 and all(c.name.startswith("Trip") for c in trips.shown)
    assert controller.count() == 30


def test_export_markdown_and_json_carry_the_conversation(controller: ConversationController) -> None:
    saved = controller.save("Plans / ideas", [Message("user", "Where to?"), Message("assistant", "Lisbon.")], "m")
    markdown = controller.export(saved.id, "markdown")
    assert markdown is not None and (markdown.file_name, markdown.mime) == ("Plans _ ideas.md", "text/markdown")
    assert all(words in markdown.text() for words in ("Where to?", "Lisbon.", "Plans / ideas"))
    exported = controller.export(saved.id, "json")
    assert exported is not None and exported.file_name.endswith(".json") and exported.mime == "application/json"
    assert [m["content"] for m in json.loads(exported.text())["conversation"]["messages"]] == ["Where to?", "Lisbon."]
    assert controller.export("no-such-id", "json") is None


def test_exported_json_imports_back_as_a_copy(controller: ConversationController) -> None:
    saved = controller.save("Notes", [Message("user", "a")], "m")
    exported = controller.export(saved.id, "json")
    assert exported is not None
    [copy] = controller.import_data(exported.text().encode())
    assert copy.id != saved.id and copy.name == "Notes (2)"
    with pytest.raises(ImportFailed):
        controller.import_data(b"not json")
    assert controller.count() == 2


def test_autosave_writes_the_turns_under_the_open_conversation(controller: ConversationController) -> None:
    saved = controller.save("Open", [Message("user", "a")], "m")
    controller.store.rename(saved.id, "Renamed in another tab")
    after = controller.autosave(saved.id, "Open", [*saved.messages, Message("assistant", "b")], "m2")
    loaded = controller.load(saved.id)
    assert loaded == after and loaded is not None
    assert (loaded.name, len(loaded.messages), loaded.model) == ("Renamed in another tab", 2, "m2")
    assert isinstance(controller.load(saved.id), Conversation)
