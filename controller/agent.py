"""The one place that knows about LlamaIndex's OpenAIAgent.

llama-index 0.12.x is the last line with OpenAIAgent; moving to FunctionAgent later
touches only this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from queue import Empty

from llama_index.agent.openai import OpenAIAgent
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import BaseTool
from llama_index.core.utils import get_tokenizer
from llama_index.llms.openai import OpenAI

from model.message import Message

# Tool calls one answer may make before it must answer (a model that keeps calling is stopped).
MAX_TOOL_CALLS = 4
# Room kept free in the window for the system prompt and the answer's own tokens.
SYSTEM_PROMPT_ALLOWANCE = 256


# Past this many characters a text is far beyond any model's window (~250k tokens): it is not
# tokenized (seconds for a pasted book), only estimated, generously, at a token per 3 characters.
COUNT_EXACTLY_UP_TO = 1_000_000


Pictures = Mapping[str, Sequence[tuple[bytes, str]]]  # message id → (bytes, MIME) for a model that sees


@lru_cache(maxsize=20_000)
def count_tokens(text: str) -> int:
    """Tokens as the memory counts them (tiktoken's cl100k: close enough for every model here).
    Cached: a long conversation's messages are counted once, not on every turn."""
    if len(text) > COUNT_EXACTLY_UP_TO:
        return len(text) // 3
    return len(get_tokenizer()(text))


def memory_token_limit(llm: OpenAI, system_prompt: str = "") -> int:
    """How many tokens of history fit beside the system prompt (with any sources put in it) and the answer."""
    reserve = (llm.max_tokens or 0) + max(SYSTEM_PROMPT_ALLOWANCE, count_tokens(system_prompt) + 32)
    return max(256, llm.metadata.context_window - reserve)


def newest_that_fit(
    messages: Sequence[Message], limit: int, count: Callable[[str], int] = count_tokens
) -> list[Message]:
    """The newest messages whose tokens add up to at most `limit`, never starting with an answer.

    ChatMemoryBuffer.get() finds the same cut by dropping one message at a time and
    re-counting everything left, which is quadratic: seconds at 500 turns. Counting each
    message once, newest first, stops as soon as the window is full.
    """
    kept: list[Message] = []
    used = 0
    for message in reversed(messages):
        used += count(message.content) + 1
        if used > limit:
            break
        kept.append(message)
    kept.reverse()
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return kept


def rebuild_memory(
    messages: Sequence[Message], llm: OpenAI, system_prompt: str = "", pictures: Pictures | None = None
) -> ChatMemoryBuffer:
    """A fresh ChatMemoryBuffer holding the newest `messages` that fit the model's real window,
    with their `pictures` (by message id) for a model that sees."""
    limit = memory_token_limit(llm, system_prompt)
    pictures = pictures or {}
    return ChatMemoryBuffer.from_defaults(
        chat_history=[m.to_llamaindex(pictures.get(m.id, ())) for m in newest_that_fit(messages, limit)],
        token_limit=limit,
        # Already cut to fit, each message counted once (and cached): the buffer would otherwise
        # tokenize the whole history again, joined into one string, on every get().
        tokenizer_fn=_already_counted,
    )


def _already_counted(text: str) -> list[int]:
    return []


def stream_llm_reply(
    llm: OpenAI, messages: Sequence[Message], system_prompt: str, pictures: Pictures | None = None
) -> Iterator[str]:
    """Ask the model directly (no agent, no tools) with these messages; yield the text as it arrives."""
    pictures = pictures or {}
    chat = [
        Message("system", system_prompt).to_llamaindex(),
        *(m.to_llamaindex(pictures.get(m.id, ())) for m in messages),
    ]
    for chunk in llm.stream_chat(chat):
        if chunk.delta:
            yield chunk.delta


def stream_agent_reply(
    llm: OpenAI,
    history: Sequence[Message],
    system_prompt: str,
    text: str,
    tools: Sequence[BaseTool] = (),
    pictures: Pictures | None = None,
    question_pictures: Sequence[tuple[bytes, str]] = (),
) -> Iterator[str]:
    """Ask an OpenAIAgent whose memory is `history` (what fits), with `tools` it may call (run
    code, search); yield the answer's text as it arrives, after any tool calls. For a model that
    sees, `pictures` go with their messages and `question_pictures` with the question."""
    memory = rebuild_memory(history, llm, system_prompt, pictures)
    if question_pictures:
        # The agent takes the question as text: its pictures come in the user message just before it.
        carrier = Message("user", f"(The {len(question_pictures)} picture(s) sent with my next message.)")
        memory.put(carrier.to_llamaindex(question_pictures))
    agent = OpenAIAgent.from_tools(
        tools=list(tools), llm=llm, memory=memory, system_prompt=system_prompt, max_function_calls=MAX_TOOL_CALLS
    )
    response = agent.stream_chat(text)
    # LlamaIndex's own response_gen polls its queue with sleep(0) and keeps a core busy
    # for the whole answer; a blocking get with a short timeout waits without spinning.
    while True:
        if response.exception is not None:
            raise response.exception
        try:
            delta = response.queue.get(timeout=0.005)  # the end of the answer is only seen on a timeout
        except Empty:
            if response.is_done and response.queue.empty():
                break
            continue
        if delta:
            yield delta
    if response.exception is not None:
        raise response.exception
