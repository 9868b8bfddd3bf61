"""Chat turns: with memory (an OpenAIAgent over the conversation so far), without, and Continue.

A turn is a `Turn`: iterate it for the answer's text as it arrives; afterwards `status` says how
it ended. `stop()` ends it early from the page. Every provider gets the same guards: the
repetition guard, the token cap reported as "length", and a stream that ends without saying it
is finished reported as interrupted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.agent import (
    Pictures,
    count_tokens,
    memory_token_limit,
    newest_that_fit,
    stream_agent_reply,
    stream_llm_reply,
)
from controller.guards import loop_start
from controller.json_mode import JSON_INSTRUCTION, JsonAnswer, read_json_answer
from controller.tools import Findings
from model.message import Message, Status, valid_text
from utils.errors import ModelUnavailable, ProviderError, RateLimited, StreamInterrupted, is_provider_failure, translate
from utils.providers import StreamWatch

if TYPE_CHECKING:
    from llama_index.llms.openai_like import OpenAILike

LLMFactory = Callable[[StreamWatch | None], "OpenAILike"]
Ask = Callable[["OpenAILike"], Iterator[str]]

# A 429 asking for at most this many seconds is retried once without bothering the user.
AUTO_RETRY_MAX_WAIT = 5.0


TITLE_TOKENS = 24
TITLE_INSTRUCTIONS = (
    "You name conversations. Reply with a title of 2 to 6 words for the conversation below: "
    "no quotes, no full stop, nothing else."
)


def clean_title(reply: str, limit: int = 60) -> str:
    """The model's title made fit for the sidebar: its first line, without quotes, a "Title:"
    prefix, markdown marks or a full stop; "" if nothing usable is left."""
    line = next((part for part in valid_text(reply).splitlines() if part.strip()), "")
    line = re.sub(r"^\s*(title|conversation title)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'“”‘’`*#_ ").rstrip(".").strip()
    line = " ".join(line.split())
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + "…"
    return line if len(line) >= 2 else ""


@dataclass(frozen=True)
class ContextUsage:
    messages_in_view: int
    messages_total: int
    tokens_in_view: int
    context_window: int
    last_answer_tokens: int

    @property
    def messages_out_of_view(self) -> int:
        return self.messages_total - self.messages_in_view


class Turn:
    """One answer on its way. Iterate once for its text; then read `text` and `status`.

    `prefix` is an earlier part of the same answer (Continue): the guards see it, the
    iteration yields only what is new, and `text` is the whole answer.
    """

    def __init__(
        self, controller: ChatController, ask: Ask, prefix: str = "", findings: Findings | None = None
    ) -> None:
        self._controller = controller
        self._ask = ask
        self.prefix = prefix
        self.findings = findings or Findings()  # what the tools found for it: its sources
        self.received: list[str] = []
        self.status: Status | None = None  # None until the turn has ended
        self._watch: StreamWatch | None = None

    @property
    def text(self) -> str:
        """The answer so far (cut after one copy when it was stopped for repeating itself)."""
        return self.prefix + "".join(self.received)

    def stop(self) -> None:
        """End the answer now; what has arrived stays, marked "stopped"."""
        if self.status is None:
            self.status = "stopped"
        if self._watch is not None:
            self._watch.cancel()

    def __iter__(self) -> Iterator[str]:
        for attempt in (1, 2):
            self._watch = self._controller.new_watch()
            try:
                yield from self._stream(self._controller.build_llm(self._watch))
                return
            except Exception as error:
                if not is_provider_failure(error):
                    raise  # a bug of ours surfaces as one, not as "press Retry"
                problem = translate(error, self._controller.provider, self._controller.model, bool(self.received))
                if isinstance(problem, RateLimited) and attempt == 1 and not self.received:
                    wait = problem.retry_after if problem.retry_after is not None else 1.0
                    if wait <= AUTO_RETRY_MAX_WAIT:
                        self._controller.sleep(wait)
                        continue
                if isinstance(problem, ModelUnavailable):
                    problem = self._controller.with_served_models(problem)
                raise problem from error
            finally:
                self._watch.cancel()  # a consumer that stops early (a rerun) ends the stream too
                self._watch.close()

    def _stream(self, llm: OpenAILike) -> Iterator[str]:
        for delta in self._ask(llm):
            if self.status is not None:  # stopped meanwhile
                return
            delta = valid_text(delta)
            self.received.append(delta)
            if (cut := loop_start(self.text)) is not None:
                self._cut(cut)
                self.status = "repeating"
                return
            yield delta
        if self.status is not None:
            return
        if self._watch is not None and self._watch.error is not None:
            raise self._watch.error
        reason = self._watch.finish_reason if self._watch else None
        if reason == "length":
            self.status = "length"
        elif reason is None:
            raise StreamInterrupted(
                "The answer broke off before it was complete (the stream ended without saying it was finished). "
                "Press Retry to ask again."
            )
        else:
            self.status = "complete"

    def _cut(self, at: int) -> None:
        """Keep the answer up to `at` (one copy of a loop), dropping what repeated."""
        kept = max(0, at - len(self.prefix))
        self.received = ["".join(self.received)[:kept].rstrip()]


class ChatController:
    """One chat page's verbs. It holds no conversation: the page passes the history in."""

    def __init__(
        self,
        llm_factory: LLMFactory,
        *,
        provider: str,
        model: str,
        system_prompt: str,
        served_models: Callable[[], list[str]] = list,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
        json_mode: bool = False,
        calls_tools: bool = False,
        sees_pictures: bool = False,
    ) -> None:
        self._llm_factory = llm_factory
        self._served_models = served_models
        self.provider = provider
        self.model = model
        self.system_prompt = system_prompt
        self.sleep = sleep
        self.timeout = timeout
        self.json_mode = json_mode  # answers are asked to be one JSON object (see read_json_answer)
        self.calls_tools = calls_tools  # the model can be given tools (else they run before it answers)
        self.sees_pictures = sees_pictures  # the model takes pictures (else it is given the text read from them)

    def reply(
        self,
        history: Sequence[Message],
        text: str,
        findings: Findings | None = None,
        tools: Sequence[object] = (),
        pictures: Pictures | None = None,
        question_pictures: Sequence[tuple[bytes, str]] = (),
    ) -> Turn:
        """The answer to `text`, seeing every earlier turn in `history` that fits the window, what
        the tools found before (numbered sources to cite) in its instructions, and `tools` (LlamaIndex
        tools, for a model that calls them) whose runs and sources go into `findings`. A model that
        sees gets `pictures` (by message id) and `question_pictures` (see controller.media)."""
        system = findings.instructions(self.system_prompt) if findings else self.system_prompt
        return Turn(
            self,
            lambda llm: stream_agent_reply(
                llm,
                history,
                system,
                text,
                tools,  # type: ignore[arg-type]
                pictures,
                question_pictures,
            ),
            findings=findings,
        )

    def simple_reply(
        self, text: str, findings: Findings | None = None, question_pictures: Sequence[tuple[bytes, str]] = ()
    ) -> Turn:
        """The answer to `text` alone: no memory of earlier turns."""
        system = findings.instructions(self.system_prompt) if findings else self.system_prompt
        question = Message("user", text)
        pictures = {question.id: tuple(question_pictures)}
        return Turn(self, lambda llm: stream_llm_reply(llm, [question], system, pictures), findings=findings)

    def context_window(self) -> int:
        """The model's window in tokens (asked of the endpoint once, then remembered)."""
        return int(self._llm_factory(None).metadata.context_window)

    def continue_reply(self, history: Sequence[Message], answer: Message) -> Turn:
        """More of `answer`, the last message of the chat, which was cut by the token cap.

        The answer goes last in the request, so the model carries on from its last word
        (llama.cpp and Groq continue a trailing assistant message).
        """
        messages = [*history, answer]
        return Turn(self, lambda llm: stream_llm_reply(llm, messages, self.system_prompt), prefix=answer.content)

    def stream_reply(self, history: Sequence[Message], text: str) -> Iterator[str]:
        """The answer's text alone, for callers that need no status (benchmarks, scripts)."""
        return iter(self.reply(history, text))

    def context_usage(self, history: Sequence[Message]) -> ContextUsage:
        """How much of the model's window the history fills, and how much of it is still seen."""
        llm = self._llm_factory(None)
        limit = memory_token_limit(llm)
        in_view = newest_that_fit(history, limit)
        last_answer = next((m.content for m in reversed(history) if m.role == "assistant"), "")
        return ContextUsage(
            messages_in_view=len(in_view),
            messages_total=len(history),
            tokens_in_view=sum(count_tokens(m.content) + 1 for m in in_view),
            context_window=llm.metadata.context_window,
            last_answer_tokens=count_tokens(last_answer),
        )

    def suggest_title(self, messages: Sequence[Message]) -> str:
        """A short title for a conversation from its first exchange, asked of the model in one
        small call (no stream, a few tokens); "" when the model gives nothing usable or fails."""
        question = next((m.content for m in messages if m.role == "user"), "")
        answer = next((m.content for m in messages if m.role == "assistant"), "")
        if not question.strip():
            return ""
        llm = self._llm_factory(None)
        llm.max_tokens = TITLE_TOKENS
        prompt = [
            Message("system", TITLE_INSTRUCTIONS),
            Message("user", f"User: {question[:600]}\nAssistant: {answer[:600]}\n\nTitle:"),
        ]
        try:
            reply = llm.chat([m.to_llamaindex() for m in prompt]).message.content or ""
        except Exception as error:  # noqa: BLE001 - a title is a nicety: any failure falls back
            if not is_provider_failure(error):
                raise
            return ""
        return clean_title(reply)

    # used by Turn ---------------------------------------------------------------
    def new_watch(self) -> StreamWatch:
        return StreamWatch(self.timeout)

    def build_llm(self, watch: StreamWatch) -> OpenAILike:
        return self._llm_factory(watch)

    def with_served_models(self, problem: ModelUnavailable) -> ModelUnavailable:
        served = tuple(sorted(self._served_models()))
        if not served:
            return problem
        shown = ", ".join(served[:12]) + (f" and {len(served) - 12} more" if len(served) > 12 else "")
        return ModelUnavailable(f"{problem} It serves: {shown}.", available=served)


__all__ = [
    "JSON_INSTRUCTION",
    "ChatController",
    "ContextUsage",
    "JsonAnswer",
    "ProviderError",
    "Turn",
    "read_json_answer",
]
