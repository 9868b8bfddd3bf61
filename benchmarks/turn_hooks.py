"""Timing hooks put into a `streamlit run` process from outside the app, for benchmarks/turn_split.py.

Loaded by a `sitecustomize.py` that turn_split.py writes into a temporary folder on PYTHONPATH:
nothing in the app's code changes. `install(path)` appends one JSON line per event to `path`,
`{"t": <time.time()>, "e": <event>, ...}`, on the wall clock, which the browser's
performance.timeOrigin shares. Functions are wrapped right after their module is first imported,
so modules that import them by name get the wrapped ones too.
"""

from __future__ import annotations

import functools
import gc
import importlib.abc
import importlib.machinery
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

_lock = threading.RLock()
_out: Any = None
_pending: list[str] = []  # lines from the garbage collector's callback, written by the next log()
# FakeOpenAI's answers begin "Echo:": while ChatView._stream runs (after the history is drawn), the
# first ForwardMsg holding it carries this turn's first words.
MARKER = b"Echo:"
_streaming = threading.Event()


def log(event: str, **extra: Any) -> None:
    line = json.dumps({"t": time.time(), "e": event, "th": threading.current_thread().name, **extra}) + "\n"
    with _lock:
        while _pending:
            _out.write(_pending.pop(0))
        _out.write(line)
        _out.flush()


def timed(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Log `name:in` and `name:out` around each call."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            log(name + ":in")
            try:
                return fn(*args, **kwargs)
            finally:
                log(name + ":out")

        return inner

    return wrap


def first_item(name: str) -> Callable[[Callable[..., Iterator[Any]]], Callable[..., Iterator[Any]]]:
    """For a function returning an iterator: log `name:in` when it is first iterated, `name:first` at its
    first item and `name:end` when it is exhausted."""

    def wrap(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Iterator[Any]:
            log(name + ":in")
            first = True
            for item in fn(*args, **kwargs):
                if first:
                    log(name + ":first")
                    first = False
                yield item
            log(name + ":end")

        return inner

    return wrap


def patch(owner: Any, attribute: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Wrap `owner.attribute`, keeping it a staticmethod or classmethod if it was one. A name the app
    no longer has is logged as `missing:<name>` and left alone: the app must still run."""
    raw = owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute, None)
    if raw is None:
        log(f"missing:{getattr(owner, '__name__', owner)}.{attribute}")
        return
    if isinstance(raw, staticmethod):
        setattr(owner, attribute, staticmethod(wrapper(raw.__func__)))
    elif isinstance(raw, classmethod):
        setattr(owner, attribute, classmethod(wrapper(raw.__func__)))
    else:
        setattr(owner, attribute, wrapper(raw))


# --- what is wrapped, by module ------------------------------------------------------------


def _streamlit_runtime(module: Any) -> None:
    original = module.Runtime.handle_backmsg

    def handle_backmsg(self: Any, session_id: str, msg: Any, *args: Any, **kwargs: Any) -> Any:
        log("backmsg", kind=msg.WhichOneof("type"))
        return original(self, session_id, msg, *args, **kwargs)

    module.Runtime.handle_backmsg = handle_backmsg


def _script_runner(module: Any) -> None:
    _script_runner_enqueue(module)
    # A rerun asked for while the runner's thread is still alive (its full GC after a run) runs in
    # the same _run_script loop: each iteration begins by installing the event loop.
    original = module.ScriptRunner._install_event_loop

    def install_event_loop(self: Any) -> None:
        log("run")
        original(self)

    module.ScriptRunner._install_event_loop = install_event_loop
    patch(module.ScriptRunner, "_on_script_finished", timed("finished"))


def _page_config(module: Any) -> None:
    patch(module, "set_page_config", timed("page_code"))


def _chat(module: Any) -> None:
    original = module.ChatMixin.chat_input

    @functools.wraps(original)
    def chat_input(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        log("chat_input", asked=value is not None)
        return value

    module.ChatMixin.chat_input = chat_input


def _words(msg: Any) -> bool:
    return _streaming.is_set() and msg.WhichOneof("type") == "delta" and MARKER in msg.SerializeToString()


_word_path: list[tuple[int, ...] | None] = [None]  # where the first words go, until written to the websocket
_word_queued = [False]


def _script_runner_enqueue(module: Any) -> None:
    """The script thread hands each ForwardMsg on here (to the event loop, which queues it)."""
    original = module.ScriptRunner._enqueue_forward_msg

    def enqueue(self: Any, msg: Any) -> None:
        if _word_path[0] is None and _words(msg):
            _word_path[0], _word_queued[0] = tuple(msg.metadata.delta_path), False
            log("words_out")
        original(self, msg)

    module.ScriptRunner._enqueue_forward_msg = enqueue


def _app_session(module: Any) -> None:
    original = module.AppSession._enqueue_forward_msg

    def enqueue(self: Any, msg: Any) -> None:
        kind = msg.WhichOneof("type")
        if kind == "script_finished":
            log("enqueue_finished")
        elif not _word_queued[0] and kind == "delta" and _word_path[0] == tuple(msg.metadata.delta_path):
            _word_queued[0] = True
            log("enqueue_words")
        original(self, msg)

    module.AppSession._enqueue_forward_msg = enqueue


def _websocket(module: Any) -> None:
    original = module.StarletteSessionClient.write_forward_msg

    def write(self: Any, msg: Any) -> None:
        kind = msg.WhichOneof("type")
        original(self, msg)
        if kind == "script_finished":
            log("ws_finished")
        elif kind == "delta" and _word_path[0] == tuple(msg.metadata.delta_path):
            _word_path[0] = ()  # the same element may have been redrawn in the queue: the first write counts
            log("ws_words")

    module.StarletteSessionClient.write_forward_msg = write


def _httpx(module: Any) -> None:
    original = module.Client.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        chat = str(request.url).endswith("/chat/completions")
        if chat:
            log("http:in")
        try:
            return original(self, request, *args, **kwargs)
        finally:
            if chat:
                log("http:headers")

    module.Client.send = send


def _agent_runner(module: Any) -> None:
    patch(module.AgentRunner, "stream_chat", timed("agent_stream_chat"))


def _openai_agent(module: Any) -> None:
    patch(module.OpenAIAgent, "from_tools", timed("agent_build"))


def _chat_view(module: Any) -> None:
    patch(module.ChatView, "answer", timed("answer"))
    patch(module.ChatView, "draw_history", timed("history"))
    patch(module.ChatView, "finish", timed("finish"))
    patch(module.ChatView, "draw_usage", timed("usage"))
    patch(module.MemoryChatView, "sidebar", timed("sidebar"))
    original = module.ChatView._stream

    def stream(turn: Any, body: Any, *args: Any, **kwargs: Any) -> None:
        log("stream:in")
        _word_path[0] = None
        _streaming.set()
        try:
            original(turn, body, *args, **kwargs)
        finally:
            log("stream:out")
            _streaming.clear()

    module.ChatView._stream = staticmethod(stream)


def _resources(module: Any) -> None:
    patch(module, "runtime", timed("runtime"))


def _runtime(module: Any) -> None:
    patch(module.Runtime, "chat", timed("controller"))
    patch(module.Runtime, "provider", timed("provider"))


def _controller(module: Any) -> None:
    patch(module.ChatController, "new_watch", timed("http_client"))
    patch(module.ChatController, "build_llm", timed("llm"))
    patch(module.ChatController, "context_usage", timed("context_usage"))


def _agent(module: Any) -> None:
    patch(module, "rebuild_memory", timed("memory"))
    patch(module, "newest_that_fit", timed("count_tokens"))
    patch(module, "stream_agent_reply", first_item("agent_reply"))


def _providers(module: Any) -> None:
    patch(module.StreamWatch, "wrap", first_item("chunks"))


def _store(module: Any) -> None:
    for name in ("list", "load", "update_messages", "save"):
        patch(module.ConversationStore, name, timed(f"store_{name}"))


HOOKS: dict[str, Callable[[Any], None]] = {
    "streamlit.runtime.runtime": _streamlit_runtime,
    "streamlit.runtime.scriptrunner.script_runner": _script_runner,
    "streamlit.commands.page_config": _page_config,
    "streamlit.elements.widgets.chat": _chat,
    "streamlit.runtime.app_session": _app_session,
    "streamlit.web.server.starlette.starlette_websocket": _websocket,
    "httpx._client": _httpx,
    "llama_index.core.agent.runner.base": _agent_runner,
    "llama_index.agent.openai.base": _openai_agent,
    "view.chat_view": _chat_view,
    "view.resources": _resources,
    "controller.runtime": _runtime,
    "controller.chat": _controller,
    "controller.agent": _agent,
    "utils.providers": _providers,
    "model.store": _store,
}


# Modules whose import is timed (`import:<name>:in` / `:out`, including what they import in turn).
TIMED_IMPORTS = {
    "streamlit",
    "streamlit.web.bootstrap",
    "view.home_view",
    "view.chat_view",
    "view.resources",
    "controller.runtime",
    "controller.models",
    "controller.chat",
    "model.store",
    "utils.providers",
    "utils.local_server",
    "settings",
    "httpx",
    "llama_index.core",
    "llama_index.llms.openai_like",
    "transformers",
    "xllamacpp",
}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs HOOKS[name] right after module `name` has executed; times the imports in TIMED_IMPORTS."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in HOOKS and name not in TIMED_IMPORTS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        loader, hook = spec.loader, HOOKS.get(name)
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            log(f"import:{name}:in")
            try:
                original(module)
            finally:
                log(f"import:{name}:out")
            if hook is not None:
                try:
                    hook(module)
                except AttributeError as error:  # the app or Streamlit changed: time less, never break it
                    log(f"missing:{name}", error=str(error))

        loader.exec_module = exec_module
        return spec


def _on_gc(phase: str, info: dict[str, int]) -> None:
    """Collections of the older generations (the young one runs too often to log), as pending lines:
    a collection can start inside log() itself."""
    if info["generation"] == 0:
        return
    if phase == "start":
        _gc_start[threading.get_ident()] = time.time()
    elif (began := _gc_start.pop(threading.get_ident(), None)) is not None:
        now = time.time()
        _pending.append(f'{{"t": {began}, "e": "gc{info["generation"]}", "ms": {1000 * (now - began):.3f}}}\n')


_gc_start: dict[int, float] = {}


def install(path: str) -> None:
    global _out
    _out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the life of the process
    sys.meta_path.insert(0, _AfterImport())
    gc.callbacks.append(_on_gc)
    log("installed")
