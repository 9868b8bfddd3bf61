"""Indexes follow their owners: deleting a conversation or an assistant deletes the search index
of its files, unless another saved conversation or assistant still uses those files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import settings
from controller.cleanup import files_in_use, forget_unused_indexes
from controller.knowledge import add_files
from controller.runtime import Runtime
from controller.tools import index_for
from model.message import Conversation, Message


def aged(folder: Path) -> None:
    """As if built an hour ago (indexes changed in the last minutes are always kept)."""
    past = time.time() - 3600
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (past, past))


def test_deleting_a_conversation_deletes_only_the_index_nobody_else_uses() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    store = runtime.conversations().store
    mine = add_files((), [("mine.md", b"# Mine\n\nOnly this conversation has this file.\n")], config).files
    shared = add_files((), [("shared.md", b"# Shared\n\nTwo owners have this file.\n")], config).files
    gone = store.save(Conversation("Gone", (Message("user", "read", attachments=mine),)))
    store.save(Conversation("Kept", (Message("user", "read", attachments=shared),)))
    expert = runtime.assistants().create(name="Expert", knowledge=shared)
    store.save(Conversation("Also shared", (Message("user", "hi"),), assistant_id=expert.id))
    mine_index, shared_index = index_for(list(mine), config).folder, index_for(list(shared), config).folder
    aged(config.data_dir / "indexes")

    store.delete(gone.id)
    forget_unused_indexes(runtime).join(timeout=30)

    assert not mine_index.exists()
    assert shared_index.exists()
    assert index_for(list(shared), config).retrieve("owners")  # still searchable


def test_an_assistants_knowledge_counts_for_its_conversations_and_itself() -> None:
    config = settings.get_settings()
    runtime = Runtime(config)
    knowledge = add_files((), [("k.md", b"# K\n\nKnowledge.\n")], config).files
    expert = runtime.assistants().create(name="Expert", knowledge=knowledge)
    chat = Conversation("Chat", (Message("user", "x"),), assistant_id=expert.id)
    owners = files_in_use([chat], [expert])
    assert owners == [frozenset({knowledge[0].sha256}), frozenset({knowledge[0].sha256})]
    assert files_in_use([Conversation("Bare", (Message("user", "x"),))], []) == []
