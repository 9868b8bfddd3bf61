"""Chat turns: with memory (an OpenAIAgent over the conversation so far) and without."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

from controller.agent import rebuild_memory, stream_agent_reply
from model.message import Message
from utils.errors import ProviderError, RateLimited, translate

LLMFactory = Callable[[], OpenAI]

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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._llm_factory = llm_factory
        self.provider = provider
        self.model = model
        self.system_prompt = system_prompt
        self._sleep = sleep

    def stream_reply(self, history: Sequence[Message], text: str) -> Iterator[str]:
        """The answer to `text`, seeing every earlier turn in `history` that fits the window."""
        return self._guarded(lambda llm: stream_agent_reply(llm, rebuild_memory(history, llm), self.system_prompt, text))

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

    def messages_in_view(self, history: Sequence[Message]) -> int:
        """How many of the newest messages in `history` the model will still see."""
        return len(rebuild_memory(history, self._llm_factory()).get())

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
                short_wait = isinstance(problem, RateLimited) and (problem.retry_after or 0) <= AUTO_RETRY_MAX_WAIT
                if attempt == 1 and not received and short_wait:
                    self._sleep(problem.retry_after or 1.0)
                    continue
                raise problem from error
