"""What a chat page keeps between runs: the action asked for, a failed turn, an answer in flight."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from model.message import Message


@dataclass(frozen=True)
class Failure:
    """A turn that did not complete: the question is kept, with whatever had arrived."""

    message: str
    partial: str = ""
    retryable: bool = True


@dataclass(frozen=True)
class Action:
    """What the user asked for in this run: a new question, Retry of the last, Continue, a new
    answer to the last question (Regenerate), or an edited question (its number in the chat)."""

    kind: Literal["ask", "retry", "continue", "regenerate", "edit"]
    text: str = ""
    index: int = -1
    files: tuple[tuple[str, bytes], ...] = ()  # (name, bytes) of files sent with a question


@dataclass(frozen=True)
class InFlight:
    """The chat an answer belongs to, fixed when it starts: where the answer is kept and
    saved, even if a click swaps the chat on screen before the answer is finished."""

    chat_id: str
    messages: list[Message]  # everything before the answer
    open: tuple[str, str] | None  # the saved conversation (id, name), if any
    tree: tuple[Message, ...] = ()  # every branch of the chat, saved with the answer
    assistant_id: str = ""  # the assistant answering ("" = the default one)
    continued: Message | None = None  # the answer being continued, if any
    started: float = field(default_factory=time.monotonic)
