"""Chat turns: with memory (an OpenAIAgent over the conversation so far) and without."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

from controller.agent import count_tokens, memory_token_limit, newest_that_fit, rebuild_memory, stream_agent_reply
from model.message import Message
from utils.errors import ModelUnavailable, ProviderError, RateLimited, translate

LLMFactory = Callable[[], OpenAI]


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


# A 429 asking for at most this many seconds is retried once without bothering the user.
AUTO_RETRY_MAX_WAIT = 5.0


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
    ) -> None:
        self._llm_factory = llm_factory
        self._served_models = served_models
        self.provider = provider
        self.model = model
        self.system_prompt = system_prompt
        self._sleep = sleep

    def stream_reply(self, history: Sequence[Message], text: str) -> Iterator[str]:
        """The answer to `text`, seeing every earlier turn in `history` that fits the window."""
        return self._guarded(
            lambda llm: stream_agent_reply(llm, rebuild_memory(history, llm), self.system_prompt, text)
        )

    def stream_simple_reply(self, text: str) -> Iterator[str]:
        """The answer to `text` alone: no memory of earlier turns."""

        def ask(llm: OpenAI) -> Iterator[str]:
            messages = [
                ChatMessage(role="system", content=self.system_prompt),
                Message("user", text).to_llamaindex(),
            ]
            for chunk in llm.stream_chat(messages):
                if chunk.delta:
                    yield chunk.delta

        return self._guarded(ask)

    def context_usage(self, history: Sequence[Message]) -> ContextUsage:
        """How much of the model's window the history fills, and how much of it is still seen."""
        llm = self._llm_factory()
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

    def _guarded(self, ask: Callable[[OpenAI], Iterator[str]]) -> Iterator[str]:
        received: list[str] = []
        for attempt in (1, 2):
            try:
                for delta in ask(self._llm_factory()):
                    received.append(delta)
                    yield delta
                return
            except Exception as error:  # noqa: BLE001 - every failure becomes a ProviderError for the view
                problem: ProviderError = translate(error, self.provider, self.model, "".join(received))
                if isinstance(problem, RateLimited) and attempt == 1 and not received:
                    wait = problem.retry_after if problem.retry_after is not None else 1.0
                    if wait <= AUTO_RETRY_MAX_WAIT:
                        self._sleep(wait)
                        continue
                if isinstance(problem, ModelUnavailable):
                    problem = self._with_served_models(problem)
                raise problem from error

    def _with_served_models(self, problem: ModelUnavailable) -> ModelUnavailable:
        served = tuple(sorted(self._served_models()))
        if not served:
            return problem
        shown = ", ".join(served[:12]) + (f" and {len(served) - 12} more" if len(served) > 12 else "")
        return ModelUnavailable(f"{problem} It serves: {shown}.", available=served)
