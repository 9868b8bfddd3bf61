"""Issue 11, an assistant's knowledge files: stored once by SHA-256 like a chat's attachments,
kept in assistants.json, duplicated, indexed at save, carried by an export (bytes up to a limit)
and stored again by an import on another machine. Real files, real store, real index."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

import settings
from controller import knowledge
from controller.assistant_fields import FieldError
from controller.assistants import AssistantsController
from controller.knowledge import MAX_FILES, add_files, knowledge_index, knowledge_of
from model.assistant_store import AssistantStore
from model.files import FileStore
from model.parts import Attachment
from tests.test_documents import make_docx, make_pdf

SETTING = "You are bnaGPT, a helpful assistant."
MANUAL = make_pdf([["Pump manual.", "The pressure valve opens at 4 bar."], ["Cleaning: rinse the filter weekly."]])
READS = "bnaGPT reads PDF, Word (DOCX), Markdown, plain text, HTML or CSV."
NOTES = b"# Warranty\n\nThe pump is under warranty for three years.\n"


@pytest.fixture
def config() -> settings.Settings:
    """This test's settings: its data folder (stored files, indexes) is tmp_path."""
    return settings.get_settings()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "assistants.json"


@pytest.fixture
def assistants(path: Path) -> AssistantsController:
    return AssistantsController(AssistantStore(path), SETTING)


def stored(config: settings.Settings, *uploads: tuple[str, bytes]) -> tuple[Attachment, ...]:
    added = add_files((), list(uploads), config)
    assert not added.refused, added.refused
    return added.files


def progress_of(files: tuple[Attachment, ...], config: settings.Settings) -> list[str]:
    """What building the index of `files` reports now: nothing when it is ready."""
    reported: list[str] = []
    knowledge_index(files, config, lambda _, text: reported.append(text))
    return reported


# --- the value and the file ---


def test_knowledge_round_trips_through_the_file(
    path: Path, assistants: AssistantsController, config: settings.Settings
) -> None:
    files = stored(config, ("manual.pdf", MANUAL), ("notes.md", NOTES), ("guide.docx", make_docx()))
    made = assistants.create(name="Pump helper", knowledge=files)
    assert [(f.name, f.kind) for f in made.knowledge] == [
        ("manual.pdf", "pdf"),
        ("notes.md", "markdown"),
        ("guide.docx", "docx"),
    ]
    assert made.knowledge[0].sha256 == hashlib.sha256(MANUAL).hexdigest() and made.knowledge[0].size == len(MANUAL)
    [read] = AssistantsController(AssistantStore(path), SETTING).list()
    assert read == made
    entry = json.loads(path.read_text("utf-8"))["assistants"][made.id]["knowledge"][1]
    assert entry == {
        "sha256": hashlib.sha256(NOTES).hexdigest(),
        "name": "notes.md",
        "kind": "markdown",
        "size": len(NOTES),
    }
    assert FileStore(config.data_dir / "files").get(made.knowledge[1].sha256) == NOTES  # the bytes, once, by SHA-256


def test_an_older_file_reads_with_no_knowledge_and_malformed_entries_are_left_out(path: Path) -> None:
    good = {"sha256": "a" * 64, "name": "kept.pdf", "kind": "pdf", "size": 10}
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "default_instructions": None,
                "assistants": {
                    "old": {"name": "From before knowledge"},
                    "odd": {
                        "name": "Hand edited",
                        "knowledge": [
                            "sha256:abc",
                            {"name": "no hash.pdf"},
                            {"sha256": "../../etc/passwd", "name": "escape"},
                            {"sha256": "A" * 64, "name": "upper case is not how files are stored"},
                            good,
                            {**good, "name": "the same file again"},
                            {"sha256": "b" * 64, "name": 5, "size": "big"},
                        ],
                    },
                    "broken": {"name": "Not a list", "knowledge": {"sha256": "c" * 64}},
                },
            }
        ),
        "utf-8",
    )
    store = AssistantStore(path)
    assert store.get("old").knowledge == ()  # type: ignore[union-attr]
    assert store.get("broken").knowledge == ()  # type: ignore[union-attr]
    assert store.get("odd").knowledge == (  # type: ignore[union-attr]
        Attachment("a" * 64, "kept.pdf", "pdf", 10),
        Attachment("b" * 64, "bbbbbbbbbbbb…", "", 0),
    )
    AssistantsController(store, SETTING).update("old", description="rewritten")
    on_disk = json.loads(path.read_text("utf-8"))["assistants"]
    assert on_disk["old"]["knowledge"] == [] and [f["name"] for f in on_disk["odd"]["knowledge"]] == [
        "kept.pdf",
        "bbbbbbbbbbbb…",
    ]


def test_knowledge_of_is_what_the_chat_searches(assistants: AssistantsController, config: settings.Settings) -> None:
    files = stored(config, ("manual.pdf", MANUAL))
    assert knowledge_of(None) == [] and knowledge_of(assistants.create(name="Plain")) == []
    assert knowledge_of(assistants.create(name="Knows", knowledge=files)) == list(files)


# --- adding files ---


def test_readable_files_are_kept_and_each_refused_one_is_named(config: settings.Settings) -> None:
    [manual] = stored(config, ("manual.pdf", MANUAL))
    added = add_files(
        [manual],
        [
            ("fake.pdf", b"MZ\x90\x00 this is a program, not a PDF"),
            ("notes.md", NOTES),
            ("again.pdf", MANUAL),
            ("empty.txt", b""),
        ],
        config,
    )
    assert [f.name for f in added.files] == ["manual.pdf", "notes.md"]
    assert [name for name, _ in added.refused] == ["fake.pdf", "empty.txt"]
    assert all(sentence.endswith(".") and "\n" not in sentence for _, sentence in added.refused)
    assert added.notes == (("again.pdf", "The assistant already has this file."),)
    assert not FileStore(config.data_dir / "files").exists(
        hashlib.sha256(b"MZ\x90\x00 this is a program, not a PDF").hexdigest()
    )


def test_at_most_max_files_the_rest_named(assistants: AssistantsController, config: settings.Settings) -> None:
    texts = [(f"note {i}.txt", f"Note number {i}.".encode()) for i in range(MAX_FILES + 2)]
    added = add_files((), texts, config)
    assert len(added.files) == MAX_FILES
    assert [name for name, _ in added.refused] == [f"note {MAX_FILES}.txt", f"note {MAX_FILES + 1}.txt"]
    assert f"at most {MAX_FILES} files" in added.refused[0][1]
    assert len(assistants.create(name="Full", knowledge=added.files).knowledge) == MAX_FILES
    extra = stored(config, ("one more.txt", b"One more note."))
    with pytest.raises(FieldError, match=f"at most {MAX_FILES} files; this one has {MAX_FILES + 1}") as raised:
        assistants.create(name="Too many", knowledge=[*added.files, *extra])
    assert raised.value.field == "knowledge" and [a.name for a in assistants.list()] == ["Full"]


def test_update_replaces_the_files_and_duplicate_keeps_them(
    assistants: AssistantsController, config: settings.Settings
) -> None:
    manual, notes = stored(config, ("manual.pdf", MANUAL), ("notes.md", NOTES))
    made = assistants.create(name="Pump helper", knowledge=[manual, notes, manual])
    assert made.knowledge == (manual, notes)  # each file once
    assert assistants.update(made.id, description="now described").knowledge == (manual, notes)  # kept when not given
    assert assistants.update(made.id, knowledge=[notes]).knowledge == (notes,)
    copy = assistants.duplicate(made.id)
    assert copy.name == "Pump helper (copy)" and copy.knowledge == (notes,)


def test_the_index_is_built_once_and_then_ready(config: settings.Settings) -> None:
    files = stored(config, ("manual.pdf", MANUAL), ("notes.md", NOTES))
    assert knowledge_index((), config) is None
    first = progress_of(files, config)
    assert first and "manual.pdf" in " ".join(first)
    assert progress_of(files, config) == []  # the first chat finds it ready
    index = knowledge_index(files, config)
    assert "4 bar" in index.retrieve("pressure valve opens", top_k=1)[0].text  # type: ignore[union-attr]


# --- export and import ---


def test_an_export_carries_the_files_and_another_machine_stores_them(
    tmp_path: Path, assistants: AssistantsController, config: settings.Settings
) -> None:
    files = stored(config, ("manual.pdf", MANUAL), ("notes.md", NOTES))
    made = assistants.create(name="Pump helper", knowledge=files)
    assistants.duplicate(made.id)
    exported = assistants.export(settings=config)
    document = json.loads(exported)
    assert sorted(document["files"]) == sorted(f.sha256 for f in files)  # each file once for both assistants
    assert base64.b64decode(document["files"][files[0].sha256]["data"]) == MANUAL

    other = replace(config, data_dir=tmp_path / "laptop")
    laptop = AssistantsController(AssistantStore(other.data_dir / "assistants.json"), SETTING)
    imported = laptop.import_file(exported, settings=other)
    assert imported.missing == [] and [a.name for a in imported.assistants] == ["Pump helper", "Pump helper (copy)"]
    assert all(a.knowledge == files for a in imported.assistants)
    assert FileStore(other.data_dir / "files").get(files[1].sha256) == NOTES
    assert progress_of(files, other)  # indexed from the laptop's own copies


def test_files_neither_carried_nor_stored_here_are_named_and_left_out(
    tmp_path: Path, assistants: AssistantsController, config: settings.Settings
) -> None:
    manual, notes = stored(config, ("manual.pdf", MANUAL), ("notes.md", NOTES))
    assistants.create(name="Pump helper", knowledge=[manual, notes])
    document = json.loads(assistants.export(settings=config))
    del document["files"][manual.sha256]  # as when it did not fit
    document["files"][notes.sha256]["data"] = base64.b64encode(b"MZ\x90\x00 a program").decode()
    shrunk = json.dumps(document).encode()

    again_here = assistants.import_file(shrunk, settings=config)  # this machine has both files
    assert again_here.missing == [] and again_here.assistants[0].knowledge == (manual, notes)

    other = replace(config, data_dir=tmp_path / "laptop")
    laptop = AssistantsController(AssistantStore(other.data_dir / "assistants.json"), SETTING)
    imported = laptop.import_file(shrunk, settings=other)
    [assistant] = imported.assistants
    assert assistant.name == "Pump helper" and assistant.knowledge == ()
    first, second = imported.missing
    assert first == (
        "“Pump helper”: manual.pdf is not in the file nor on this machine; add it again on the assistant's form."
    )
    assert second == "“Pump helper”: “notes.md” is really a Windows program, not Markdown; " + READS  # refused
    assert not (other.data_dir / "files").exists()  # nothing stored


def test_an_export_carries_files_only_up_to_its_limit(
    monkeypatch: pytest.MonkeyPatch, assistants: AssistantsController, config: settings.Settings
) -> None:
    files = stored(config, ("manual.pdf", MANUAL), ("notes.md", NOTES))
    assistants.create(name="Pump helper", knowledge=files)
    monkeypatch.setattr(knowledge, "EXPORT_FILES_BYTES", len(MANUAL) + len(NOTES) - 1)
    document = json.loads(assistants.export(settings=config))
    assert list(document["files"]) == [files[0].sha256]  # the second would pass the limit
    assert [f["name"] for f in document["assistants"][0]["knowledge"]] == ["manual.pdf", "notes.md"]  # still named
