"""The Assistants page through AppTest: real script runs on a real assistants file under tmp_path."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import settings
from controller.assistants import AssistantsController
from controller.knowledge import add_files, knowledge_index
from controller.runtime import Runtime
from model.parts import Attachment
from tests.openai_server import FakeOpenAI
from tests.test_documents import make_pdf

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/4_Assistants.py"
MEMORY_PAGE = "pages/2_Chatbot_With_Memory.py"


@pytest.fixture(autouse=True)
def no_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing answers where Ollama would be: the model list is the bundled model (and no wait)."""
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    settings.get_settings.cache_clear()


def controller() -> AssistantsController:
    return Runtime(settings.get_settings()).assistants()


def assistants_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Assistants"
    return at


def click(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, at.exception


def fill(at: AppTest, **values: str) -> None:
    """Type into the open form's fields (text inputs and text areas, by field name)."""
    for field, value in values.items():
        key = f"asst:{field}"
        widget = at.text_area(key=key) if field in ("instructions", "starters") else at.text_input(key=key)
        widget.set_value(value)


def choose(at: AppTest, assistant_id: str, item: str) -> None:
    """Open the assistant's ⋯ menu (its items are drawn only while it is open) and click `item`."""
    at.session_state[f"asst:{assistant_id}:menu"] = True
    at.run()
    click(at, f"asst:{assistant_id}:{item}")


def listed(at: AppTest) -> list[str]:
    """The list's rows, as their markdown (name first)."""
    return [m.value for m in at.markdown if m.value.startswith("**")]


def next_to(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    """The element drawn right after the widget `key`, in reading order."""
    leaves = []

    def walk(node):  # type: ignore[no-untyped-def]
        children = getattr(node, "children", None)
        if children is None:
            leaves.append(node)
        else:
            for child in children.values():
                walk(child)

    walk(at._tree)
    [where] = [i for i, leaf in enumerate(leaves) if getattr(leaf, "key", None) == key]
    return leaves[where + 1]


def test_a_new_assistant_is_created_from_the_form_and_listed() -> None:
    at = assistants_page()
    assert any("No assistants yet" in c.value for c in at.caption)
    click(at, "asst:new")
    assert at.button(key="asst:save").label == "Create"
    fill(
        at,
        name="Trip planner",
        description="Plans weekends away",
        instructions="You plan trips. Ask for the budget first.",
        temperature="0.4",
        starters="Plan a weekend in Lisbon\n\nWhat should I pack?\n",
    )
    at.radio(key="asst:response_format").set_value("json")
    click(at, "asst:save")
    assert not at.error and any(t.value == "Created “Trip planner”." for t in at.toast)
    [made] = controller().list()
    assert (made.name, made.description, made.instructions) == (
        "Trip planner",
        "Plans weekends away",
        "You plan trips. Ask for the budget first.",
    )
    assert made.temperature == 0.4 and made.model == "" and made.response_format == "json"
    assert made.starters == ("Plan a weekend in Lisbon", "What should I pack?")
    assert listed(at) == ["**Trip planner**  \nPlans weekends away  \n:gray[Same model as the chat · answers in JSON]"]
    assert not [w for w in at.text_input if w.key == "asst:name"]  # the form closed


@pytest.mark.parametrize(
    ("typed", "field", "sentence"),
    [
        ({"name": "   "}, "name", "Give the assistant a name."),
        ({"instructions": "x" * 100_000}, "instructions", "Instructions can be at most 20,000 characters"),
        ({"temperature": "abc"}, "temperature", "Temperature must be a number between 0 and 2"),
    ],
)
def test_a_field_error_shows_under_its_field_and_keeps_what_was_typed(
    typed: dict[str, str], field: str, sentence: str
) -> None:
    at = assistants_page()
    click(at, "asst:new")
    values = {
        "name": "Reviewer",
        "description": "Reads drafts",
        "instructions": "Be kind.",
        "temperature": "1",
        "starters": "Read this\nShorter, please",
    } | typed
    fill(at, **values)
    click(at, "asst:save")
    [error] = at.error
    assert error.value.replace("\\", "").startswith(sentence)
    assert next_to(at, f"asst:{field}") == error  # right under the field it is about
    for name, value in values.items():  # nothing typed is lost
        widget = (
            at.text_area(key=f"asst:{name}")
            if name in ("instructions", "starters")
            else at.text_input(key=f"asst:{name}")
        )
        assert widget.value == value
    assert controller().list() == []
    fill(at, **{field: {"name": "Reviewer", "instructions": "Be kind.", "temperature": "1"}[field]})
    click(at, "asst:save")  # corrected: saved, and the error is gone
    assert not at.error and [a.name for a in controller().list()] == ["Reviewer"]


def test_a_name_already_taken_is_a_field_error_on_the_name() -> None:
    controller().create(name="Editor")
    at = assistants_page()
    click(at, "asst:new")
    fill(at, name="editor ")
    click(at, "asst:save")
    assert "already exists" in next_to(at, "asst:name").value
    assert len(controller().list()) == 1


def test_edit_fills_the_form_and_saves_changes_in_place() -> None:
    made = controller().create(
        name="Coach", description="Running plans", temperature=0.7, starters=["A 10 km plan"], tools=["documents"]
    )
    at = assistants_page()
    choose(at, made.id, "edit")
    assert at.button(key="asst:save").label == "Save changes"
    assert at.text_input(key="asst:name").value == "Coach"
    assert at.text_input(key="asst:temperature").value == "0.7"
    assert at.text_area(key="asst:starters").value == "A 10 km plan"
    fill(at, name="Running coach", temperature="", starters="A 10 km plan\nA marathon plan")
    click(at, "asst:save")
    [edited] = controller().list()
    assert edited.id == made.id and edited.name == "Running coach" and edited.temperature is None
    assert edited.starters == ("A 10 km plan", "A marathon plan")
    assert edited.tools == ("documents",)  # not on the form, so left as it was
    assert any(t.value == "Saved “Running coach”." for t in at.toast)
    choose(at, made.id, "edit")
    click(at, "asst:cancel")  # Cancel closes the form and changes nothing
    assert not [w for w in at.text_input if w.key == "asst:name"] and controller().get(made.id) == edited


def test_the_web_and_code_switches_are_saved_listed_and_edited() -> None:
    at = assistants_page()
    click(at, "asst:new")
    assert not at.toggle(key="asst:web_search").value and not at.toggle(key="asst:run_code").value
    assert "the embedded model cannot" in at.toggle(key="asst:run_code").help
    assert not [t for t in at.toggle if "document" in t.label.casefold()]  # not landed: not offered
    fill(at, name="Analyst")
    at.toggle(key="asst:web_search").set_value(True)
    at.toggle(key="asst:run_code").set_value(True)
    click(at, "asst:save")
    [made] = controller().list()
    assert made.tools == ("web_search", "run_code")
    assert listed(at) == ["**Analyst**  \n:gray[Same model as the chat · searches the web · runs code]"]
    choose(at, made.id, "edit")
    assert at.toggle(key="asst:web_search").value and at.toggle(key="asst:run_code").value
    at.toggle(key="asst:web_search").set_value(False)
    click(at, "asst:save")
    assert controller().get(made.id).tools == ("run_code",)  # type: ignore[union-attr]
    assert listed(at) == ["**Analyst**  \n:gray[Same model as the chat · runs code]"]
    choose(at, made.id, "duplicate")  # the copy can do what the original does
    assert [a.tools for a in controller().list()] == [("run_code",), ("run_code",)]


def test_a_tool_the_form_does_not_show_is_kept_when_the_switches_change() -> None:
    made = controller().create(name="Librarian", tools=["documents", "web_search"])
    at = assistants_page()
    assert listed(at) == ["**Librarian**  \n:gray[Same model as the chat · searches the web]"]
    choose(at, made.id, "edit")
    at.toggle(key="asst:web_search").set_value(False)
    at.toggle(key="asst:run_code").set_value(True)
    click(at, "asst:save")
    assert controller().get(made.id).tools == ("documents", "run_code")  # type: ignore[union-attr]


def test_duplicate_then_delete_with_a_confirmation() -> None:
    made = controller().create(name="Translator", instructions="Translate into French.")
    at = assistants_page()
    choose(at, made.id, "duplicate")
    assert any(t.value == "Duplicated as “Translator \\(copy\\)”." for t in at.toast)
    copy = next(a for a in controller().list() if a.id != made.id)
    assert copy.name == "Translator (copy)" and copy.instructions == "Translate into French."
    assert [row.split("  \n")[0] for row in listed(at)] == ["**Translator**", "**Translator \\(copy\\)**"]
    choose(at, copy.id, "delete")
    [warning] = at.warning
    assert "Delete “Translator \\(copy\\)”?" in warning.value and "Conversations that used it stay readable" in (
        warning.value
    )
    assert controller().get(copy.id) is not None  # asked, not deleted
    click(at, f"asst:{copy.id}:cancel-delete")
    assert not at.warning and controller().get(copy.id) is not None
    choose(at, copy.id, "delete")
    click(at, f"asst:{copy.id}:confirm-delete")
    assert [a.id for a in controller().list()] == [made.id]
    assert any(t.value == "Deleted “Translator \\(copy\\)”." for t in at.toast)


def test_custom_instructions_are_saved_and_the_setting_comes_back() -> None:
    at = assistants_page()
    box = at.text_area(key="asst:default:text")
    assert box.value == settings.DEFAULT_SYSTEM_PROMPT
    assert at.button(key="asst:default:reset").disabled  # nothing to go back from yet
    box.set_value("Answer like a pirate.")
    click(at, "asst:default:save")
    assert controller().instructions() == "Answer like a pirate." and controller().is_custom_instructions()
    assert not at.button(key="asst:default:reset").disabled
    fresh = assistants_page()  # another session sees them
    assert fresh.text_area(key="asst:default:text").value == "Answer like a pirate."
    click(fresh, "asst:default:reset")
    assert not controller().is_custom_instructions()
    assert fresh.text_area(key="asst:default:text").value == settings.DEFAULT_SYSTEM_PROMPT
    assert [t.value for t in fresh.toast] == ["The Default assistant follows the `SYSTEM_PROMPT` setting's text again."]


def test_a_corrupt_assistants_file_is_reported_and_the_page_still_works(tmp_path: Path) -> None:
    (tmp_path / "assistants.json").write_text("{ this is not json")
    at = assistants_page()
    [warning] = at.warning
    told = warning.value.replace("\\", "")
    assert "assistants.json could not be read" in told and "Assistants start again from none" in told
    assert any(p.name.startswith("assistants.json.corrupt-") for p in tmp_path.iterdir())
    click(at, "asst:new")
    fill(at, name="After the fall")
    click(at, "asst:save")
    assert [a.name for a in controller().list()] == ["After the fall"]


def test_a_model_no_longer_available_is_shown_and_kept() -> None:
    made = controller().create(name="Big brain", model="ollama:gone-model")
    at = assistants_page()
    assert listed(at) == ["**Big brain**  \n:gray[gone\\-model \\(not available\\)]"]
    choose(at, made.id, "edit")
    box = at.selectbox(key="asst:model")
    assert box.value == "ollama:gone-model" and "Same as the chat" in box.options
    assert "gone\\-model \\(not available\\)" in box.options or "gone-model (not available)" in box.options
    fill(at, description="Still there")
    click(at, "asst:save")
    assert controller().get(made.id).model == "ollama:gone-model"  # type: ignore[union-attr]


def test_import_says_what_it_added_and_refuses_a_bad_file() -> None:
    source = controller()
    source.create(name="Poet", instructions="Write haiku.", tools=["web_search"])
    exported = source.export(settings=settings.get_settings())
    source.delete(source.list()[0].id)
    at = assistants_page()
    at.file_uploader[0].upload("assistants.json", exported, "application/json").run()
    assert not at.exception
    assert any(s.value == "Imported 1 assistant: “Poet”." for s in at.success)
    assert [(a.name, a.instructions, a.tools) for a in controller().list()] == [
        ("Poet", "Write haiku.", ("web_search",))
    ]
    at.file_uploader[0].upload("bad.json", b'{"type": "something else"}', "application/json").run()
    [error] = at.error
    assert error.value.startswith("Nothing was imported: This file is not an assistants export")
    assert len(controller().list()) == 1


def test_the_menu_is_drawn_only_while_open_and_offers_export() -> None:
    made = controller().create(name="Chef")
    at = assistants_page()
    assert [d.key for d in at.download_button] == ["asst:export-all"]  # a closed menu costs nothing
    assert not [b for b in at.button if b.key == f"asst:{made.id}:edit"]
    at.session_state[f"asst:{made.id}:menu"] = True
    at.run()
    assert [d.key for d in at.download_button] == [f"asst:{made.id}:export", "asst:export-all"]
    assert {f"asst:{made.id}:{item}" for item in ("edit", "duplicate", "delete")} <= {b.key for b in at.button}
    exported = json.loads(controller().export([made.id], settings=settings.get_settings()))
    assert [a["name"] for a in exported["assistants"]] == ["Chef"]


def test_use_in_chat_opens_the_chat_page_with_the_assistant(use_fake_openai: FakeOpenAI) -> None:
    made = controller().create(name="Helper")
    at = assistants_page()
    click(at, f"asst:{made.id}:use")
    assert at.session_state["memory:assistant"] == made.id
    assert at.title[0].value == "Chatbot With Memory"


def test_many_assistants_get_a_filter_and_a_bounded_list() -> None:
    store = controller()
    for i in range(60):
        store.create(name=f"Assistant {i:03d}", description="even" if i % 2 == 0 else "odd")
    at = assistants_page()
    assert len(listed(at)) == 20 and any("Showing 20 of 60" in c.value for c in at.caption)
    at.text_input(key="asst:filter").set_value("007").run()
    assert [row.split("  \n")[0] for row in listed(at)] == ["**Assistant 007**"]
    at.text_input(key="asst:filter").set_value("ODD").run()
    assert len(listed(at)) == 20 and any("Showing 20 of 30" in c.value for c in at.caption)
    at.text_input(key="asst:filter").set_value("nothing like it").run()
    assert not listed(at) and any("contains that" in c.value for c in at.caption)


def test_names_and_descriptions_are_shown_as_text() -> None:
    controller().create(name="![x](http://127.0.0.1:9/p.png) **bold**", description="<img src=x onerror=alert(1)>")
    at = assistants_page()
    [row] = listed(at)
    assert "\\!\\[x\\]" in row and "\\*\\*bold\\*\\*" in row and "\\<img" in row


def test_model_servers_are_asked_only_when_a_row_or_the_form_needs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.ollama_server import FakeOllama

    with FakeOllama() as ollama:
        monkeypatch.setenv("OLLAMA_HOST", ollama.host)
        settings.get_settings.cache_clear()
        plain = controller().create(name="Plain")  # uses the chat's model
        at = assistants_page()
        assert not ollama.tag_requests  # nothing to look up for the list
        choose(at, plain.id, "edit")
        assert ollama.tag_requests  # the form offers every model
        box = at.selectbox(key="asst:model")
        assert box.options[0] == "Same as the chat" and any(o.startswith("qwen2.5:1.5b (Ollama") for o in box.options)


# --- knowledge files (issue 11) ---

PDF_MANUAL = make_pdf([["Pump manual.", "The pressure valve opens at 4 bar."]])
PDF_MANUAL_SIZE = f"{len(PDF_MANUAL):,} bytes"
NOT_A_PDF = b"MZ\x90\x00 a program named like a PDF"


def upload(at: AppTest, *files: tuple[str, bytes]) -> None:
    """Choose files in the form's knowledge uploader (the newest one)."""
    [uploader] = [u for u in at.file_uploader if u.key.startswith("asst:knowledge:")]
    uploader.set_value([(name, data, "application/octet-stream") for name, data in files])


def files_listed(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith(":material/description:")]


def ready(files: tuple[Attachment, ...]) -> bool:
    """Whether the index of `files` is built: building it again reports nothing to do."""
    reported: list[str] = []
    knowledge_index(files, settings.get_settings(), lambda _, text: reported.append(text))
    return not reported


def test_knowledge_files_are_stored_indexed_at_save_and_listed() -> None:
    at = assistants_page()
    click(at, "asst:new")
    [uploader] = [u for u in at.file_uploader if u.key == "asst:knowledge:0"]
    assert uploader.label == "Knowledge files" and uploader.accept_multiple_files
    assert {".pdf", ".docx", ".md", ".txt", ".html", ".csv"} <= set(uploader.allowed_type)
    assert "text/*" not in uploader.allowed_type  # not any text file: a .py would only be refused at Save
    fill(at, name="Pump helper")
    upload(at, ("manual.pdf", PDF_MANUAL), ("warranty.md", b"# Warranty\n\nThree years.\n"))
    click(at, "asst:save")
    assert not at.error and [t.value for t in at.toast] == ["Created “Pump helper”."]
    [made] = controller().list()
    assert [(f.name, f.kind) for f in made.knowledge] == [("manual.pdf", "pdf"), ("warranty.md", "markdown")]
    assert ready(made.knowledge)  # indexed at save: the first chat does not wait
    assert listed(at) == ["**Pump helper**  \n:gray[Same model as the chat · knows 2 files]"]

    choose(at, made.id, "edit")  # a fresh look at the form lists them, each with a Remove
    assert files_listed(at) == [
        f":material/description: manual\\.pdf :gray[pdf · {PDF_MANUAL_SIZE}]",
        ":material/description: warranty\\.md :gray[markdown · 25 bytes]",
    ]
    assert at.button(key=f"asst:knowledge:{made.knowledge[0].sha256}:remove").label == "Remove"
    assert not [u for u in at.file_uploader if u.key.startswith("asst:knowledge:") and u.value]  # an empty uploader


def test_a_refused_file_is_named_under_the_field_and_the_rest_is_saved() -> None:
    at = assistants_page()
    click(at, "asst:new")
    fill(at, name="Pump helper")
    upload(at, ("broken.pdf", NOT_A_PDF), ("manual.pdf", PDF_MANUAL))
    click(at, "asst:save")
    [made] = controller().list()
    assert [f.name for f in made.knowledge] == ["manual.pdf"]
    [error] = at.error
    assert error.value.startswith("“broken\\.pdf” is really a Windows program\\, not a PDF")
    [uploader] = [u for u in at.file_uploader if u.key.startswith("asst:knowledge:")]
    assert uploader.key == "asst:knowledge:1" and not uploader.value  # a fresh uploader…
    assert [t.value for t in at.toast] == ["Created “Pump helper” without 1 file."]
    assert at.button(key="asst:save").label == "Save changes"  # …and the form stays open on the saved assistant
    assert files_listed(at) == [f":material/description: manual\\.pdf :gray[pdf · {PDF_MANUAL_SIZE}]"]
    fill(at, description="Answers from the manual")
    click(at, "asst:save")  # saving again changes it, creates no second one
    assert [(a.name, a.description, len(a.knowledge)) for a in controller().list()] == [
        ("Pump helper", "Answers from the manual", 1)
    ]
    assert not at.error and not [w for w in at.text_input if w.key == "asst:name"]  # closed


def test_remove_takes_effect_on_save_and_cancel_forgets_it() -> None:
    files = add_files((), [("manual.pdf", PDF_MANUAL), ("notes.txt", b"Rinse weekly.")], settings.get_settings()).files
    made = controller().create(name="Pump helper", knowledge=files)
    at = assistants_page()
    choose(at, made.id, "edit")
    click(at, f"asst:knowledge:{files[0].sha256}:remove")
    assert [m.split(" :gray")[0] for m in files_listed(at)] == [":material/description: notes\\.txt"]
    click(at, "asst:cancel")
    assert controller().get(made.id).knowledge == files  # type: ignore[union-attr]
    choose(at, made.id, "edit")
    assert len(files_listed(at)) == 2  # the form starts again from what is saved
    click(at, f"asst:knowledge:{files[0].sha256}:remove")
    click(at, "asst:save")
    assert controller().get(made.id).knowledge == files[1:]  # type: ignore[union-attr]


def test_files_uploaded_before_a_field_error_wait_in_the_list_and_are_saved_after() -> None:
    at = assistants_page()
    click(at, "asst:new")
    upload(at, ("manual.pdf", PDF_MANUAL))
    click(at, "asst:save")  # no name
    assert [e.value for e in at.error] == ["Give the assistant a name\\."] and controller().list() == []
    assert len(files_listed(at)) == 1  # stored and listed; not read again on the next Save
    assert not [u for u in at.file_uploader if u.key.startswith("asst:knowledge:") and u.value]
    fill(at, name="Pump helper")
    click(at, "asst:save")
    [made] = controller().list()
    assert [f.name for f in made.knowledge] == ["manual.pdf"] and ready(made.knowledge)


def test_drawing_the_page_and_the_form_reads_no_file_and_builds_no_index(tmp_path: Path) -> None:
    """Files named in assistants.json but not stored here (an import of a bare assistants file):
    the list and the form draw from the names alone."""
    missing = Attachment("e" * 64, "elsewhere.pdf", "pdf", 2_048)
    made = controller().create(name="Far away", knowledge=[missing])
    at = assistants_page()
    assert listed(at) == ["**Far away**  \n:gray[Same model as the chat · knows 1 file]"]
    choose(at, made.id, "edit")
    assert files_listed(at) == [":material/description: elsewhere\\.pdf :gray[pdf · 2.0 KB]"]
    assert not (tmp_path / "indexes").exists() and not (tmp_path / "files").exists()


def test_an_index_that_cannot_be_built_at_save_is_said_and_the_assistant_is_saved(tmp_path: Path) -> None:
    missing = Attachment("e" * 64, "elsewhere.pdf", "pdf", 2_048)
    made = controller().create(name="Far away", knowledge=[missing])
    at = assistants_page()
    choose(at, made.id, "edit")
    fill(at, description="Still saved")
    click(at, "asst:save")
    assert controller().get(made.id).description == "Still saved"  # type: ignore[union-attr]
    [warning] = at.warning
    assert warning.value.startswith("Far away's files could not be indexed now (The file eeeeeeeeeeee… is no longer")
    assert warning.value.endswith("the first chat with it will try again.")


def test_an_import_names_the_files_it_came_without(tmp_path: Path) -> None:
    files = add_files((), [("manual.pdf", PDF_MANUAL)], settings.get_settings()).files
    source = controller()
    source.create(name="Pump helper", knowledge=files)
    document = json.loads(source.export(settings=settings.get_settings()))
    source.delete(source.list()[0].id)
    del document["files"]  # as when it did not fit the export
    shutil.rmtree(tmp_path / "files")  # and this machine never had it
    at = assistants_page()
    at.file_uploader(key="asst:import:0").set_value(
        ("pump.json", json.dumps(document).encode(), "application/json")
    ).run()
    assert not at.exception, at.exception
    [warning] = at.warning
    assert warning.value.startswith("Imported 1 assistant: “Pump helper”.")
    assert "manual\\.pdf is not in the file nor on this machine" in warning.value
    assert controller().list()[0].knowledge == ()


def ask_the_pump_expert(api: FakeOpenAI, arguments: dict[str, Any]) -> AppTest:
    """A chat with an assistant whose knowledge is a pump manual, asked about it; the stand-in
    model calls search_files with `arguments` first."""
    manual = make_pdf([["Pump manual.", "The pressure valve of the pump opens at 4 bar."]])
    added = add_files((), [("pump-manual.pdf", manual)], settings.get_settings())
    made = controller().create(name="Pump expert", knowledge=added.files)
    api.script.tool_calls = [("search_files", arguments)]
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.switch_page(MEMORY_PAGE).run()
    at.session_state["memory:assistant"] = made.id
    at.run()
    at.chat_input[0].set_value("At what pressure does the valve open?").run()
    assert not at.exception, at.exception
    return at


def test_a_chat_searches_the_assistants_knowledge_with_its_own_files(use_fake_openai: FakeOpenAI) -> None:
    at = ask_the_pump_expert(use_fake_openai, {"query": "pressure valve opens"})
    given = "\n".join(
        m.get("content") or "" for m in use_fake_openai.answer_requests[-1].messages if m.get("role") == "tool"
    )
    assert "4 bar" in given and "pump-manual.pdf" in given  # the assistant's file was searched
    answer = at.session_state["memory:messages"][-1]
    assert [s.title for s in answer.sources] == ["pump-manual.pdf"]
    # the footer counts what the search handed the model, not only the conversation
    [usage] = [c.value for c in at.caption if "context window:" in c.value]
    found = re.search(r"window: ([\d,]+) of [\d,]+ tokens \(\d+%\), ([\d,]+) of them found in files", usage)
    assert found, usage
    in_window, handed = (int(n.replace(",", "")) for n in found.groups())
    assert 0 < handed < in_window


@pytest.mark.parametrize(
    ("arguments", "given"),
    [
        ({"query": ["pressure", "valve"]}, "4 bar"),  # keywords as a list, as some models send them
        ({"query": 4}, "4 bar"),  # a number where the schema says a string
        ({"query": "  "}, "The query was empty: call search_files again with the words to look for."),
        ({"q": "valve"}, "unexpected keyword argument 'q'"),  # LlamaIndex's sentence: the model can retry
    ],
)
def test_a_search_called_with_odd_arguments_gets_words_or_a_sentence_not_a_python_error(
    use_fake_openai: FakeOpenAI, arguments: dict[str, object], given: str
) -> None:
    at = ask_the_pump_expert(use_fake_openai, arguments)
    [tool] = [m["content"] for m in use_fake_openai.answer_requests[-1].messages if m.get("role") == "tool"]
    assert given in tool
    assert "casefold" not in tool and "object at 0x" not in tool
    assert at.session_state["memory:messages"][-1].content.startswith("Echo:")  # the answer still came


def test_two_indexes_are_searched_as_one_ranked_by_both() -> None:
    from controller.documents import Indexes
    from controller.tools import index_for

    config = settings.get_settings()
    chat_files = add_files((), [("notes.md", b"# Notes\n\nThe ferry to the island leaves at nine.\n")], config)
    knowledge = add_files((), [("guide.md", b"# Guide\n\nThe island ferry costs four euros.\n")], config)
    both = Indexes(index_for(list(chat_files.files), config), index_for(list(knowledge.files), config))
    found = both.find("island ferry", top_k=4)
    assert {p.file_name for p in found.passages} == {"notes.md", "guide.md"}
    assert [p.file_name for p in both.find("costs euros", top_k=4).passages][0] == "guide.md"
