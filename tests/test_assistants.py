"""Issue 9, assistants: the store (assistants.json) and the controller the pages use, on real
files under tmp_path and, for concurrent edits, real processes."""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import pytest

import settings
from controller.assistant_fields import AssistantError, FieldError
from controller.assistants import AssistantsController, shared_assistant_store
from model.assistant import Assistant
from model.assistant_store import AssistantStore
from model.message import Conversation, Message
from model.store import ConversationStore, StoreCorrupted

MP = multiprocessing.get_context("spawn") if sys.platform == "win32" else multiprocessing.get_context("fork")
SETTING = "You are bnaGPT, a helpful assistant."


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "assistants.json"


@pytest.fixture
def config() -> settings.Settings:
    """This test's settings: its data folder (stored files, indexes) is tmp_path."""
    return settings.get_settings()


@pytest.fixture
def assistants(path: Path) -> AssistantsController:
    return AssistantsController(AssistantStore(path), SETTING)


def fresh(path: Path) -> AssistantsController:
    """Another tab's or process's view of the same file."""
    return AssistantsController(AssistantStore(path), SETTING)


def writer(assistants: AssistantsController) -> Assistant:
    return assistants.create(
        name="  Writer ",
        description="Edits prose",
        instructions="You edit prose. Keep the author's voice.",
        model="groq:llama-3.1-8b-instant",
        temperature="0.7",
        starters="Tighten this paragraph\n\n  Suggest a title  \n",
        response_format="json",
        tools=["web_search", "documents"],
    )


# --- round trip ---


def test_an_assistant_round_trips_through_the_file(path: Path, assistants: AssistantsController) -> None:
    made = writer(assistants)
    assert made.name == "Writer" and made.temperature == 0.7
    assert made.starters == ("Tighten this paragraph", "Suggest a title")
    assert made.tools == ("documents", "web_search")  # in the tools' own order
    [read] = fresh(path).list()
    assert read == made
    document = json.loads(path.read_text("utf-8"))
    assert document["version"] == 1 and document["default_instructions"] is None
    assert document["assistants"][made.id]["response_format"] == "json"
    assert document["assistants"][made.id]["starters"] == ["Tighten this paragraph", "Suggest a title"]


def test_list_is_by_name_in_any_case(assistants: AssistantsController) -> None:
    for name in ("beta", "Alpha", "gamma", "Beta 2"):
        assistants.create(name=name)
    assert [a.name for a in assistants.list()] == ["Alpha", "beta", "Beta 2", "gamma"]


def test_defaults_mean_the_chat_decides(assistants: AssistantsController) -> None:
    made = assistants.create(name="Plain", temperature="  ")
    assert (made.model, made.temperature, made.starters, made.response_format, made.tools) == ("", None, (), "text", ())


# --- validation ---


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "   "}, "name", "Give the assistant a name."),
        ({"name": "n" * 101}, "name", "A name can be at most 100 characters; this has 101."),
        ({"description": "d" * 501}, "description", "A description can be at most 500 characters; this has 501."),
        (
            {"instructions": "x" * 102_400},
            "instructions",
            "Instructions can be at most 20,000 characters; this has 102,400.",
        ),
        ({"model": "gpt-4o"}, "model", "Pick a model from the list, or leave it empty to use the chat's model."),
        ({"model": "cloud:thing"}, "model", "Pick a model from the list"),
        ({"temperature": "abc"}, "temperature", "Temperature must be a number between 0 and 2, like 0.7."),
        ({"temperature": 2.5}, "temperature", "Temperature must be a number between 0 and 2"),
        ({"temperature": "-0.1"}, "temperature", "Temperature must be a number between 0 and 2"),
        ({"temperature": "nan"}, "temperature", "Temperature must be a number between 0 and 2"),
        (
            {"starters": "\n".join(f"s{i}" for i in range(7))},
            "starters",
            "Give at most 6 conversation starters; this has 7.",
        ),
        (
            {"starters": ["ok", "s" * 301]},
            "starters",
            "Conversation starter 2 can be at most 300 characters; it has 301.",
        ),
        ({"response_format": "xml"}, "response_format", 'The response format must be "text" or "json".'),
        ({"tools": ["documents", "telepathy"]}, "tools", "There is no tool 'telepathy'"),
        ({"tools": "documents"}, "tools", "Tools must be a list of names"),
    ],
)
def test_a_bad_field_is_named_with_what_to_do(
    path: Path, assistants: AssistantsController, fields: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(FieldError) as raised:
        assistants.create(**{"name": "Valid", **fields})  # type: ignore[arg-type]
    assert raised.value.field == field and str(raised.value).startswith(message)
    assert not path.exists()  # nothing was written


def test_the_limits_themselves_are_allowed(assistants: AssistantsController) -> None:
    made = assistants.create(
        name="n" * 100,
        description="d" * 500,
        instructions="i" * 20_000,
        temperature=2,
        starters=[f"{i}" * 300 for i in range(6)],
    )
    assert made.temperature == 2.0 and len(made.starters) == 6


def test_a_taken_name_is_a_name_field_error_in_any_case_and_spacing(assistants: AssistantsController) -> None:
    assistants.create(name="Writer")
    with pytest.raises(FieldError, match="already exists") as raised:
        assistants.create(name="  wRITER ")
    assert raised.value.field == "name" and len(assistants.list()) == 1


# --- update, duplicate, delete ---


def test_update_changes_only_the_fields_given(path: Path, assistants: AssistantsController) -> None:
    made = writer(assistants)
    updated = assistants.update(made.id, description="Edits prose, gently", temperature=None)
    assert updated.description == "Edits prose, gently" and updated.temperature is None
    assert updated.instructions == made.instructions and updated.starters == made.starters
    assert updated.created_at == made.created_at and fresh(path).get(made.id) == updated


def test_edits_of_different_fields_in_two_tabs_are_both_kept(path: Path, assistants: AssistantsController) -> None:
    made = writer(assistants)
    other_tab = fresh(path)
    assert other_tab.get(made.id) == made  # it has read the file
    assistants.update(made.id, description="from tab one")
    other_tab.update(made.id, name="Renamed in tab two")
    final = fresh(path).get(made.id)
    assert final is not None and (final.name, final.description) == ("Renamed in tab two", "from tab one")


def test_update_of_an_assistant_deleted_meanwhile_says_so(path: Path, assistants: AssistantsController) -> None:
    made = writer(assistants)
    assert fresh(path).delete(made.id)
    with pytest.raises(AssistantError, match="no longer exists"):
        assistants.update(made.id, description="too late")
    assert assistants.list() == []  # not re-created


def test_renaming_onto_another_name_is_refused(assistants: AssistantsController) -> None:
    first, second = assistants.create(name="First"), assistants.create(name="Second")
    with pytest.raises(FieldError) as raised:
        assistants.update(second.id, name="first ")
    assert raised.value.field == "name"
    assert assistants.update(first.id, name="FIRST").name == "FIRST"  # its own name in another case is fine


def test_duplicate_gives_copy_names_and_new_ids(assistants: AssistantsController) -> None:
    made = writer(assistants)
    copy, copy2 = assistants.duplicate(made.id), assistants.duplicate(made.id)
    assert (copy.name, copy2.name) == ("Writer (copy)", "Writer (copy 2)")
    assert len({made.id, copy.id, copy2.id}) == 3
    assert copy.instructions == made.instructions and copy.starters == made.starters
    long = assistants.create(name="L" * 100)
    assert assistants.duplicate(long.id).name == "L" * 93 + " (copy)"
    with pytest.raises(AssistantError, match="no longer exists"):
        assistants.duplicate("no-such-id")


def test_delete(path: Path, assistants: AssistantsController) -> None:
    made, kept = writer(assistants), assistants.create(name="Kept")
    assert assistants.delete(made.id) is True
    assert assistants.delete(made.id) is False
    assert [a.id for a in fresh(path).list()] == [kept.id]
    assert made.id not in path.read_text("utf-8")


# --- export and import ---


def test_export_then_import_round_trips_and_a_second_import_gets_numbered_names(
    tmp_path: Path, assistants: AssistantsController, config: settings.Settings
) -> None:
    made, other = writer(assistants), assistants.create(name="Other")
    exported = assistants.export(settings=config)
    document = json.loads(exported)
    assert document["type"] == "bnagpt-assistants" and document["version"] == 1
    assert [a["name"] for a in document["assistants"]] == ["Other", "Writer"]
    assert "files" not in document  # no knowledge, nothing to carry
    assert json.loads(assistants.export([made.id, "gone"], settings=config))["assistants"] == [made.to_dict()]

    elsewhere = AssistantsController(AssistantStore(tmp_path / "other.json"), SETTING)
    imported = elsewhere.import_file(exported, settings=config)
    added = imported.assistants
    assert [a.name for a in added] == ["Other", "Writer"] and imported.missing == []
    copied = next(a for a in added if a.name == "Writer")
    assert copied.id != made.id
    assert (copied.instructions, copied.model, copied.temperature, copied.starters) == (
        made.instructions,
        made.model,
        made.temperature,
        made.starters,
    )
    assert (copied.response_format, copied.tools) == (made.response_format, made.tools)
    again = assistants.import_file(exported, settings=config).assistants
    assert sorted(a.name for a in again) == ["Other (2)", "Writer (2)"]
    assert len(assistants.list()) == 4 and other in assistants.list()


def test_a_single_assistant_object_is_imported_and_unknown_tools_left_out(
    assistants: AssistantsController, config: settings.Settings
) -> None:
    data = json.dumps({"name": "Solo", "instructions": "Hi", "tools": ["run_code", "teleport"], "colour": "blue"})
    [added] = assistants.import_file(data.encode(), settings=config).assistants
    assert (added.name, added.instructions, added.tools) == ("Solo", "Hi", ("run_code",))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00garbage", "not text"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "not an assistants export"),
        (b'{"type": "bnagpt-conversations", "version": 1}', "not an assistants export"),
        (b'{"type": "bnagpt-assistants", "version": 2, "assistants": []}', "newer bnaGPT (version 2)"),
        (b'{"type": "bnagpt-assistants", "version": 1, "assistants": {}}', "'assistants' is not a list"),
        (b'{"type": "bnagpt-assistants", "version": 1, "assistants": []}', "holds no assistants"),
        (b'{"type": "bnagpt-assistants", "version": 1, "assistants": [{"name": "A"}, 7]}', "Assistant 2 in this file"),
        (
            b'{"type": "bnagpt-assistants", "version": 1, "assistants": [{"name": "A"}, {"name": "Hot", "temperature": 9}]}',
            "Assistant 2 (“Hot”): Temperature must be a number between 0 and 2",
        ),
        (
            b'{"type": "bnagpt-assistants", "version": 1, "assistants": [{"name": "A", "description": 5}]}',
            "Assistant 1 (“A”): The description must be text",
        ),
        (b'{"type": "bnagpt-assistants", "version": 1, "assistants": [{"name": " "}]}', "Give the assistant a name."),
        (b'{"a": 1, "a": 2}', "appears twice"),
    ],
)
def test_a_bad_import_file_is_refused_whole_with_a_sentence(
    path: Path, assistants: AssistantsController, config: settings.Settings, data: bytes, message: str
) -> None:
    assistants.create(name="A")
    before = path.read_bytes()
    with pytest.raises(AssistantError, match=message.replace("(", r"\(").replace(")", r"\)")):
        assistants.import_file(data, settings=config)
    assert path.read_bytes() == before


def test_a_huge_import_file_is_refused_before_it_is_read(
    assistants: AssistantsController, config: settings.Settings
) -> None:
    huge = b'{"type": "bnagpt-assistants", "version": 1, "assistants": [' + b" " * (41 * 2**20) + b"]}"
    with pytest.raises(AssistantError, match=r"This file is 41\.0 MB; an assistants file can be at most 40 MB"):
        assistants.import_file(huge, settings=config)


# --- the file: corrupt, newer, unreadable, kept fields ---


def test_a_corrupt_file_is_moved_aside_and_conversations_are_untouched(tmp_path: Path, path: Path) -> None:
    conversations = tmp_path / "conversations.json"
    ConversationStore(conversations).save(Conversation(name="Chat", messages=(Message("user", "hi"),)))
    conversations_before = conversations.read_bytes()
    path.write_text('{"version": 1, "assistants": {"x": {"name": ', "utf-8")
    assistants = fresh(path)
    assert assistants.list() == []
    problem = assistants.problem
    assert problem is not None and "was moved to" in problem and "your conversations are not affected" in problem
    [moved] = tmp_path.glob("assistants.json.corrupt-*")
    assert moved.read_text("utf-8") == '{"version": 1, "assistants": {"x": {"name": '
    assistants.create(name="After")  # the store works again, on a new file
    assert [a.name for a in fresh(path).list()] == ["After"]
    assert conversations.read_bytes() == conversations_before


@pytest.mark.parametrize(
    "content",
    [
        '{"Writer": [{"role": "user", "content": "hi"}]}',  # a conversations file in the wrong place
        '{"version": 1, "assistants": []}',
        '{"version": "1", "assistants": {}}',
        '{"version": 1, "assistants": {"a": {"name": "A", "temperature": "hot"}}}',
        '["not", "an", "object"]',
    ],
)
def test_a_file_of_another_shape_is_moved_aside(tmp_path: Path, path: Path, content: str) -> None:
    path.write_text(content, "utf-8")
    store = AssistantStore(path)
    problem = store.problem
    assert isinstance(problem, StoreCorrupted) and problem.moved_to is not None
    assert problem.moved_to.read_text("utf-8") == content and not path.exists()


def test_a_file_from_a_newer_version_is_left_in_place_and_saving_is_off(path: Path) -> None:
    newer = '{"version": 2, "assistants": {"a": {"title": "A future shape"}}}'
    path.write_text(newer, "utf-8")
    assistants = fresh(path)
    problem = assistants.problem
    assert problem is not None and "format version 2" in problem and "Update bnaGPT" in problem
    assert "ASSISTANTS_FILE" in problem and "your conversations are not affected" in problem.casefold()
    assert assistants.list() == [] and assistants.instructions() == SETTING
    with pytest.raises(StoreCorrupted):
        assistants.create(name="Would overwrite")
    with pytest.raises(StoreCorrupted):
        assistants.set_instructions("Would overwrite too")
    assert path.read_text("utf-8") == newer and list(path.parent.glob("*.corrupt-*")) == []
    path.write_text('{"version": 1, "assistants": {"b": {"name": "Back"}}}', "utf-8")  # e.g. restored by hand
    assert assistants.problem is None and [a.name for a in assistants.list()] == ["Back"]


def test_a_folder_in_place_of_the_file_names_the_assistants_setting(path: Path) -> None:
    path.mkdir()
    assistants = fresh(path)
    problem = assistants.problem
    assert problem is not None and "it is a folder, not a file" in problem and "ASSISTANTS_FILE" in problem
    assert "CONVERSATIONS_FILE" not in problem and assistants.list() == []


def test_fields_from_a_newer_version_are_kept_when_the_file_is_rewritten(path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "default_instructions": None,
                "sync": {"peer": "laptop"},
                "assistants": {
                    "a": {"name": "Kept", "memory": ["sha256:abc"], "voice": "calm"},
                    "b": {"name": "Edited", "memory": ["sha256:def"]},
                },
            }
        ),
        "utf-8",
    )
    assistants = fresh(path)
    assistants.update("b", description="now described")
    assistants.create(name="New")
    document = json.loads(path.read_text("utf-8"))
    assert document["sync"] == {"peer": "laptop"}
    assert document["assistants"]["a"]["memory"] == ["sha256:abc"] and document["assistants"]["a"]["voice"] == "calm"
    assert document["assistants"]["b"]["memory"] == ["sha256:def"]
    assert document["assistants"]["b"]["description"] == "now described"
    assert "memory" not in next(a for a in document["assistants"].values() if a["name"] == "New")


def test_lone_surrogates_and_clashing_names_in_a_hand_edited_file_are_repaired(path: Path) -> None:
    path.write_text(
        r'{"version": 1, "assistants": {"a": {"name": "Bad\ud800", "x": "\udfff"}, "b": {"name": "bad\ufffd"}}}',
        "ascii",
    )
    assistants = fresh(path)
    assert sorted(a.name for a in assistants.list()) == ["Bad\ufffd", "bad\ufffd (2)"]
    assistants.create(name="Rewrite")
    document = json.loads(path.read_text("utf-8"))
    assert document["assistants"]["a"]["x"] == "\udfff"  # a field kept as it was, escape and all
    assert len(fresh(path).list()) == 3


# --- the default assistant's instructions ---


def test_the_default_instructions_follow_the_setting_until_edited(path: Path, assistants: AssistantsController) -> None:
    assert assistants.instructions() == SETTING and not assistants.is_custom_instructions()
    assistants.set_instructions("  Answer in French.  ")
    assert fresh(path).instructions() == "Answer in French." and fresh(path).is_custom_instructions()
    assert json.loads(path.read_text("utf-8"))["default_instructions"] == "Answer in French."
    assistants.set_instructions(SETTING + "\n")  # the setting's own text: back to following it
    assert not fresh(path).is_custom_instructions()
    assistants.set_instructions("Custom again")
    assistants.set_instructions("")
    assert fresh(path).instructions() == SETTING and not fresh(path).is_custom_instructions()
    with pytest.raises(FieldError) as raised:
        assistants.set_instructions("x" * 20_001)
    assert raised.value.field == "instructions" and "this has 20,001" in str(raised.value)


# --- many processes, many assistants ---


def _create_many(path: str, prefix: str, count: int) -> None:
    assistants = AssistantsController(AssistantStore(path), SETTING)
    for i in range(count):
        assistants.create(name=f"{prefix}-{i}", instructions=f"instructions {prefix} {i}")


def test_creates_from_several_processes_lose_nothing(path: Path) -> None:
    processes = [MP.Process(target=_create_many, args=(str(path), f"p{p}", 15)) for p in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    names = {a.name for a in fresh(path).list()}
    assert names == {f"p{p}-{i}" for p in range(4) for i in range(15)}


def test_two_hundred_assistants_are_read_once_and_again_only_after_a_change(path: Path) -> None:
    body = {
        f"id{i:03d}": Assistant(name=f"Assistant {i}", instructions="x" * 2_000, id=f"id{i:03d}").to_dict()
        for i in range(200)
    }
    path.write_text(json.dumps({"version": 1, "default_instructions": None, "assistants": body}), "utf-8")
    store = AssistantStore(path)
    assistants = AssistantsController(store, SETTING)
    for i in range(50):
        assert len(assistants.list()) == 200
        assert assistants.get(f"id{i:03d}") is not None
        assert assistants.instructions() == SETTING
    assert store.parse_count == 1
    assistants.create(name="Two hundred and one")  # our own write: no re-read
    assert len(assistants.list()) == 201 and store.parse_count == 1
    fresh(path).delete("id000")  # another process's write: read once more
    assert len(assistants.list()) == 200 and len(assistants.list()) == 200
    assert store.parse_count == 2


def test_one_store_per_file_per_process(tmp_path: Path) -> None:
    first = shared_assistant_store(str(tmp_path / "a.json"))
    assert shared_assistant_store(str(tmp_path / "a.json")) is first
    assert shared_assistant_store(str(tmp_path / "b.json")) is not first
