"""Issue 8, "Hardening, round two": the store on hostile files and folders, on real files under
tmp_path. Where a test needs the disk to refuse, the refusal is real (a folder in the way, a
read-only mount, a file size limit), never a fake object in our code."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from controller.conversations import ConversationController
from model.message import Conversation, Message
from model.store import (
    ConversationNotFound,
    ConversationStore,
    StoreCorrupted,
    StoreError,
    StoreUnavailable,
)
from tests.openai_server import FakeOpenAI

FORK = multiprocessing.get_context("fork")
ROOT = Path(__file__).resolve().parent.parent


def chat(name: str, *contents: str) -> Conversation:
    return Conversation(name=name, messages=tuple(Message("user", text) for text in contents), model="m")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "conversations.json"


# --- 1. lone surrogates in the conversations file ---


def test_lone_surrogates_in_the_file_are_read_as_valid_text(path: Path) -> None:
    path.write_text(
        r'{"version": 1, "conversations": {"a\ud800": {"name": "bad\ud800name", "model": "m\udfff",'
        r' "messages": [{"role": "user", "content": "x\udc00y"}]}}}',
        "ascii",
    )
    store = ConversationStore(path)
    [summary] = store.list()
    assert store.problem is None and summary.name == "bad\ufffdname" and summary.id == "a\ufffd"
    conv = store.load(summary.id)
    assert conv is not None and conv.messages[0].content == "x\ufffdy" and conv.model == "m\ufffd"
    store.save(chat("after", "hi"))  # the rewrite is plain UTF-8, no \ud800 escapes left
    assert "\ufffd" in path.read_bytes().decode("utf-8") and "\\ud800" not in path.read_text("utf-8")
    assert ConversationStore(path).load(summary.id) == conv


# --- 2. files json.loads cannot take: too deep, a huge number; 5. a key twice ---


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ('{"version": 1, "conversations": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}", "nested too deeply"),
        ('{"version": ' + "1" * 5000 + ', "conversations": {}}', "a number 5,000 digits long"),
        ('{"version": 1.0, "conversations": {}}', "version must be the whole number 1 or 2, not 1.0"),
        (
            '{"version": 1, "conversations": {"a": {"name": "one", "messages": []},'
            ' "a": {"name": "two", "messages": []}}}',
            "the key 'a' appears twice",
        ),
    ],
)
def test_a_file_the_parser_refuses_is_moved_aside_and_the_store_works(path: Path, content: str, reason: str) -> None:
    path.write_text(content, "utf-8")
    store = ConversationStore(path)
    assert store.list() == []
    problem = store.problem
    assert isinstance(problem, StoreCorrupted) and reason in problem.reason and len(str(problem)) < 400
    assert problem.moved_to is not None and problem.moved_to.name.startswith("conversations.json.corrupt-")
    assert problem.moved_to.read_text("utf-8") == content and not path.exists()
    conv = store.save(chat("after", "hi"))
    assert ConversationStore(path).load(conv.id) == conv


# --- 3. folders and files in the way, read-only folders ---


def test_a_folder_in_place_of_the_file_is_reported_not_raised(path: Path) -> None:
    path.mkdir()
    (path / "keep.txt").write_text("the user's")
    store = ConversationStore(path)
    assert store.list() == [] and store.load("x") is None  # the page still loads
    problem = store.problem
    assert isinstance(problem, StoreCorrupted) and problem.moved_to is None
    assert "it is a folder, not a file" in str(problem) and "CONVERSATIONS_FILE" in str(problem)
    with pytest.raises(StoreError, match="saving is off"):
        store.save(chat("a", "hi"))
    assert (path / "keep.txt").read_text() == "the user's"  # left alone

    shutil.rmtree(path)  # fixed while the app runs: no restart needed
    assert store.problem is None
    conv = store.save(chat("a", "hi"))
    assert ConversationStore(path).load(conv.id) == conv


def test_a_folder_at_the_lock_path_makes_a_save_fail_with_what_to_do(path: Path) -> None:
    store = ConversationStore(path)
    conv = store.save(chat("kept", "hi"))
    (path.parent / "conversations.json.lock").unlink()
    (path.parent / "conversations.json.lock").mkdir()
    store = ConversationStore(path)
    assert [s.id for s in store.list()] == [conv.id] and store.problem is None  # reading needs no lock
    with pytest.raises(StoreUnavailable) as caught:
        store.save(chat("new", "hi"))
    assert str(caught.value) == (
        f"bnaGPT cannot lock {path}.lock: it is a folder, not a file. "
        "Move that folder away, or set CONVERSATIONS_FILE to another place."
    )
    assert ConversationStore(path).load(conv.id) == conv


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    path = tmp_path / "data" / "conversations.json"
    store = ConversationStore(path)
    assert store.list() == []
    assert store.problem is not None and "part of the path is a file, not a folder" in str(store.problem)
    with pytest.raises(StoreError, match="CONVERSATIONS_FILE"):
        store.save(chat("a"))
    nested = ConversationStore(tmp_path / "data" / "deeper" / "conversations.json")
    with pytest.raises(StoreError, match="part of the path is a file"):
        nested.save(chat("a"))


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Callable[[bytes], Path]]:
    """Makes a folder holding a conversations file with the given bytes, which this process cannot
    write to. Root writes through any mode, so as root the folder is a read-only tmpfs mount."""
    mounts: list[Path] = []

    def make(content: bytes) -> Path:
        folder = tmp_path / f"read-only-{len(mounts)}"
        folder.mkdir()
        if os.geteuid() == 0:
            if (
                not shutil.which("mount")
                or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", folder]).returncode
            ):
                pytest.skip("running as root, and no tmpfs can be mounted to make a folder read-only")
            mounts.append(folder)
        ConversationStore(folder / "conversations.json").save(chat("existing", "hi"))  # the lock file exists too
        if content:
            (folder / "conversations.json").write_bytes(content)
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
        else:
            folder.chmod(0o500)
        return folder

    yield make
    for folder in mounts:
        subprocess.run(["umount", "--lazy", folder], check=False)  # lazy: a store may still hold its file open
    if os.geteuid() != 0:
        for folder in tmp_path.glob("read-only-*"):
            folder.chmod(0o700)  # so pytest can remove it


def test_a_read_only_folder_can_be_read_and_a_save_says_what_to_do(
    read_only_folder: Callable[[bytes], Path],
) -> None:
    folder = read_only_folder(b"")
    store = ConversationStore(folder / "conversations.json")
    assert [s.name for s in store.list()] == ["existing"] and store.problem is None
    for write in (lambda: store.save(chat("new")), lambda: store.delete(store.list()[0].id)):
        with pytest.raises(StoreUnavailable) as caught:
            write()
        message = str(caught.value)
        assert message.startswith("bnaGPT cannot ") and str(folder) in message
        assert ("read-only" in message or "permission denied" in message) and "CONVERSATIONS_FILE" in message
    assert [s.name for s in ConversationStore(folder / "conversations.json").list()] == ["existing"]


def test_a_corrupt_file_in_a_read_only_folder_is_left_in_place_and_reported(
    read_only_folder: Callable[[bytes], Path],
) -> None:
    folder = read_only_folder(b"{not json")
    store = ConversationStore(folder / "conversations.json")
    assert store.list() == []
    problem = store.problem
    assert isinstance(problem, StoreCorrupted) and problem.moved_to is None
    assert "moving it aside failed" in problem.reason and "CONVERSATIONS_FILE" in str(problem)
    with pytest.raises(StoreError, match="CONVERSATIONS_FILE"):
        store.save(chat("a"))
    assert (folder / "conversations.json").read_bytes() == b"{not json"


def test_the_memory_page_loads_with_a_folder_in_place_of_the_file(use_fake_openai: FakeOpenAI) -> None:
    Path(os.environ["CONVERSATIONS_FILE"]).mkdir()
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.switch_page("pages/2_Chatbot_With_Memory.py").run()
    assert not at.exception
    shown = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]  # as read: markdown escapes undone
    assert any("folder, not a file" in text for text in shown), shown


# --- 4. symlinks and the user's mode ---


def test_a_symlinked_file_stays_a_symlink_and_its_target_is_written(tmp_path: Path) -> None:
    (tmp_path / "synced").mkdir()
    target = tmp_path / "synced" / "chats.json"
    first = ConversationStore(target).save(chat("first", "hi"))
    target.chmod(0o644)
    link = tmp_path / "conversations.json"
    link.symlink_to(Path("synced") / "chats.json")  # relative, as `ln -s` makes them
    store = ConversationStore(link)
    second = store.save(chat("second", "hi"))
    assert link.is_symlink() and os.readlink(link) == str(Path("synced") / "chats.json")
    assert {c["name"] for c in json.loads(target.read_text("utf-8"))["conversations"].values()} == {"first", "second"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".conversations.json.*")) and not list(target.parent.glob("*.tmp"))
    assert ConversationStore(target).load(second.id) == second and store.load(first.id) == first


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o400])
def test_a_mode_the_user_set_is_kept(path: Path, mode: int) -> None:
    ConversationStore(path).save(chat("a"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a new file is private
    path.chmod(mode)
    ConversationStore(path).save(chat("b"))
    assert stat.S_IMODE(path.stat().st_mode) == mode and len(ConversationStore(path).list()) == 2


# --- 5. a full disk while the legacy file is backed up ---


def _save_with_a_file_size_limit(path: str, limit: int) -> None:
    """In a child process: save with the file size limit at `limit` bytes; the exit code says how it went."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        ConversationStore(path).save(chat("new", "hi"))
    except StoreUnavailable as exc:
        Path(path + ".said").write_text(str(exc))  # small enough: this file is not over the limit
        os._exit(3)
    os._exit(0)


def save_with_a_file_size_limit(path: Path, limit: int) -> str:
    """What a save said when only `limit` bytes could be written to any file."""
    child = FORK.Process(target=_save_with_a_file_size_limit, args=(str(path), limit))
    child.start()
    child.join(60)
    assert child.exitcode == 3, f"the save should fail with StoreUnavailable (exit code {child.exitcode})"
    said = Path(f"{path}.said")
    text = said.read_text()
    said.unlink()
    return text


def test_a_backup_cut_short_by_a_full_disk_is_removed(path: Path) -> None:
    legacy = json.dumps({f"chat {i}": [{"role": "user", "content": "x" * 1000}] for i in range(200)}).encode()
    path.write_bytes(legacy)  # 200 KB, and only 64 KB can be written
    said = save_with_a_file_size_limit(path, 64 * 1024)
    assert said.startswith("bnaGPT cannot back up the old file to ")
    assert "the disk is full" in said and "Free some space" in said
    assert not list(path.parent.glob("*.bak")) and not list(path.parent.glob("*.tmp"))
    assert path.read_bytes() == legacy and len(ConversationStore(path).list()) == 200
    ConversationStore(path).save(chat("new", "hi"))  # with room again, the upgrade backs up in full
    [backup] = path.parent.glob("conversations.json.legacy-*.bak")
    assert backup.read_bytes() == legacy


def test_a_full_disk_on_save_keeps_the_old_file_and_leaves_no_temp(path: Path) -> None:
    ConversationStore(path).save(chat("kept", "x" * 2000))
    before = path.read_bytes()
    assert "the disk is full" in save_with_a_file_size_limit(path, len(before) + 10)
    assert path.read_bytes() == before and not list(path.parent.glob("*.tmp"))


# --- 7. conversations.json is not in git: the first save makes it ---


def test_the_first_save_creates_the_folder_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "deeper" / "conversations.json"
    store = ConversationStore(path)
    assert store.list() == [] and store.problem is None and not (tmp_path / "data").exists()
    conv = store.save(chat("first", "hi"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and ConversationStore(path).load(conv.id) == conv


# --- 8. the sidebar's verbs on a conversation another tab deleted ---


def test_rename_of_a_conversation_deleted_elsewhere_raises_not_found(path: Path) -> None:
    mine, theirs = ConversationController(ConversationStore(path)), ConversationController(ConversationStore(path))
    conv = mine.save("Notes", [Message("user", "hi")], "m")
    assert mine.listing().total == 1  # my sidebar shows it
    assert theirs.delete(conv.id) is True
    with pytest.raises(ConversationNotFound) as caught:
        mine.rename(conv.id, "New name")
    assert "no longer exists" in str(caught.value) and caught.value.conversation_id == conv.id
    assert mine.delete(conv.id) is False and theirs.delete(conv.id) is False
    assert mine.listing().total == 0 and not ConversationStore(path).list()
