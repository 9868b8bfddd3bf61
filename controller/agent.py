"""The one place that knows about LlamaIndex's OpenAIAgent.

llama-index 0.12.x is the last line with OpenAIAgent; moving to FunctionAgent later
touches only this file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from queue import Empty

from llama_index.agent.openai import OpenAIAgent
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.llms.openai import OpenAI

from model.message import Message

# Room kept free in the window for the system prompt and the answer's own tokens.
SYSTEM_PROMPT_ALLOWANCE = 256


def rebuild_memory(messages: Sequence[Message], llm: OpenAI) -> ChatMemoryBuffer:
    """A fresh ChatMemoryBuffer holding `messages`, sized to the model's real context window."""
    window = llm.metadata.context_window
    reserve = (llm.max_tokens or 0) + SYSTEM_PROMPT_ALLOWANCE
    return ChatMemoryBuffer.from_defaults(
        chat_history=[m.to_llamaindex() for m in messages],
        token_limit=max(256, window - reserve),
    )


def stream_agent_reply(llm: OpenAI, memory: ChatMemoryBuffer, system_prompt: str, text: str) -> Iterator[str]:
    """Ask an OpenAIAgent with this memory; yield the answer's text as it arrives."""
    agent = OpenAIAgent.from_tools(tools=[], llm=llm, memory=memory, system_prompt=system_prompt)
    response = agent.stream_chat(text)
    # LlamaIndex's own response_gen polls its queue with sleep(0) and keeps a core busy
    # for the whole answer; a blocking get with a short timeout waits without spinning.
    while True:
        if response.exception is not None:
            raise response.exception
        try:
            delta = response.queue.get(timeout=0.05)
        except Empty:
            if response.is_done and response.queue.empty():
                break
            continue
        if delta:
            yield delta
    if response.exception is not None:
        raise response.exception
