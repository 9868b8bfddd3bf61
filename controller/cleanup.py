"""After a conversation or an assistant is deleted: the search indexes nothing saved uses any more
are deleted too, in the background (reading every conversation's files takes a moment at 5,000).

The stored files themselves stay: they are shared by SHA-256 between conversations, assistants
and the text read from pictures, and are small beside an index."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from controller.runtime import Runtime
from model.assistant import Assistant
from model.message import Conversation

_running = threading.Lock()


def files_in_use(conversations: Iterable[Conversation], assistants: Iterable[Assistant]) -> list[frozenset[str]]:
    """Each owner's files: a conversation's attachments on every branch, with its assistant's
    knowledge; each assistant's knowledge."""
    knowledge = {a.id: frozenset(k.sha256 for k in a.knowledge) for a in assistants}
    owners = [
        frozenset(a.sha256 for m in c.messages for a in m.attachments)
        | knowledge.get(c.assistant_id or "", frozenset())
        for c in conversations
    ]
    return [files for files in (*owners, *knowledge.values()) if files]


def forget_unused_indexes(runtime: Runtime) -> threading.Thread:
    """Delete, in a thread of its own, the indexes no saved conversation or assistant can use."""
    from controller.tools import prune_indexes

    def prune() -> None:
        if not _running.acquire(blocking=False):
            return  # one prune at a time is enough: it looks at everything
        try:
            _, conversations = runtime.conversations().store.contents()
            assistants = runtime.assistants().list()
            prune_indexes(runtime.configured, files_in_use(conversations.values(), assistants))
        except (OSError, RuntimeError):
            pass  # an index left behind costs only disk; the next delete tries again
        finally:
            _running.release()

    thread = threading.Thread(target=prune, name="bnagpt-prune-indexes", daemon=True)
    thread.start()
    return thread
