"""The wiring of one configuration: which model answers, the embedded model server, the store.

Views ask a `Runtime` for controllers and never build providers themselves. Nothing heavy is
imported here: LlamaIndex loads when the first answer is asked for, so Home starts fast.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from controller.conversations import ConversationController
from controller.json_mode import JSON_INSTRUCTION
from controller.models import ModelOption, ModelsController
from model.files import FileStore
from model.store import ConversationStore
from settings import Settings
from utils.local_server import LocalModelServer
from utils.providers import ProviderInfo, StreamWatch, build_llm, describe, served_models

if TYPE_CHECKING:
    from controller.assistants import AssistantsController
    from controller.chat import ChatController
    from model.assistant import Assistant


_servers: dict[tuple[str, int, int, int], LocalModelServer] = {}
_servers_lock = threading.Lock()


def shared_server(model_path: str, context_window: int, parallel: int, threads: int) -> LocalModelServer:
    """The embedded model server of this process, for this model file; it starts lazily.

    One model is kept loaded at a time: choosing another lets the previous one go (a turn
    still streaming from it keeps it alive until it ends), so switching needs no restart.
    """
    key = (model_path, context_window, parallel, threads)
    with _servers_lock:
        if key not in _servers:
            _servers.clear()
            _servers[key] = LocalModelServer(model_path, context_window, parallel, threads)
        return _servers[key]


_warmed = threading.Event()
AFTER_THE_PAGE = 0.3  # seconds between a page's run and work started behind it


def warm_up() -> None:
    """Import what the first answer needs (LlamaIndex, the tokenizer) in the background, once per
    process: the first message of a process then waits 0.2-0.3 s, not 1.2-1.6 s. Called by the
    chat pages once drawn (not by Home, whose idle memory stays small)."""
    if _warmed.is_set():
        return
    _warmed.set()

    def load() -> None:
        from llama_index.core.utils import get_tokenizer

        import controller.chat  # noqa: F401 - LlamaIndex, the agent, the OpenAI SDK

        get_tokenizer()
        gc.freeze()  # LlamaIndex's modules live as long as the process: no collection needs to walk them

    # a moment later, so the page's last elements reach the browser before the imports take the GIL
    timer = threading.Timer(AFTER_THE_PAGE, load)
    timer.daemon = True
    timer.start()


@lru_cache(maxsize=8)
def shared_store(path: str) -> ConversationStore:
    """One store per file and process, shared by sessions: its cache spares re-reading the file."""
    return ConversationStore(path)


class Runtime:
    """Everything a page needs for one configuration; cheap to make, safe to share."""

    def __init__(self, settings: Settings, choice: str = "") -> None:
        self.configured = settings
        self.choice = choice  # a ModelOption id picked in this session; "" = the saved one

    def choosing(self, option_id: str) -> Runtime:
        """This configuration with the model `option_id` answering (a chat page's picker)."""
        return self if option_id == self.choice else Runtime(self.configured, option_id)

    def models(self) -> ModelsController:
        return ModelsController(self.configured)

    @cached_property
    def active(self) -> ModelOption:
        """The model that answers: picked in this session if still available, else the one chosen
        on the Models page, else what the settings say."""
        models = self.models()
        if self.choice and (picked := models.option(self.choice)) is not None:
            return picked
        return models.active()

    @cached_property
    def settings(self) -> Settings:
        """The settings with the active model in them, so every provider path reads one place."""
        option, s = self.active, self.configured
        if option.kind == "local":
            bundled = option.path and option.path == str(_bundled())
            return replace(s, llm_provider="local", local_model_path="" if bundled else option.path)
        if option.kind == "groq":
            return replace(s, llm_provider="groq", groq_model=option.model)
        if option.kind == "ollama":
            # never send the OpenAI-compatible server's key to Ollama
            return replace(
                s, llm_provider="openai", openai_api_base=option.api_base, openai_model=option.model, openai_api_key=""
            )
        return replace(s, llm_provider="openai", openai_model=option.model, openai_api_base=option.api_base)

    @property
    def local(self) -> LocalModelServer | None:
        """The embedded model server, when the embedded model answers."""
        s = self.settings
        if s.llm_provider != "local":
            return None
        return shared_server(s.local_model_path, s.local_context_window, s.local_parallel, s.local_threads)

    def provider(self) -> ProviderInfo:
        """Which provider and model answer; no network calls."""
        info = describe(self.settings, self.local)
        if self.active.kind == "ollama":
            return replace(info, provider="ollama", label="Ollama", problem="")
        return info

    def chat(self, assistant: Assistant | None = None, json_mode: bool = False) -> ChatController:
        """A chat controller for the model that answers now, following `assistant` (None: the
        default assistant, whose instructions are SYSTEM_PROMPT or the custom ones saved)."""
        from controller.chat import ChatController  # LlamaIndex: only once someone chats

        settings, local, info = self.settings, self.local, self.provider()
        instructions = assistant.instructions if assistant and assistant.instructions.strip() else None
        if instructions is None:
            instructions = self.assistants().instructions()
        json_mode = json_mode or (assistant is not None and assistant.response_format == "json")
        if json_mode:  # JSON mode wants the word JSON in the request (OpenAI, Groq); small models need telling
            instructions = f"{instructions}\n\n{JSON_INSTRUCTION}"
        temperature = assistant.temperature if assistant else None

        def llm(watch: StreamWatch | None):  # type: ignore[no-untyped-def]
            if local is not None:
                local.start()  # at once when ready; the page shows progress on the first message
            return build_llm(settings, local, watch, temperature=temperature, json_mode=json_mode)

        return ChatController(
            llm,
            provider=info.provider,
            model=info.model,
            system_prompt=instructions,
            served_models=lambda: served_models(settings),
            timeout=settings.request_timeout,
            json_mode=json_mode,
            calls_tools=self.calls_tools,
            sees_pictures=self.sees_pictures,
        )

    @property
    def sees_pictures(self) -> bool:
        """Whether the model answering takes pictures; the embedded one cannot (it gets their text)."""
        from controller.media import sees_pictures

        info = self.provider()
        return info.provider != "local" and sees_pictures(info.model)

    @property
    def calls_tools(self) -> bool:
        """Whether the model that answers can be given tools: Groq's and OpenAI-compatible
        servers' can; the embedded model cannot, and Ollama refuses tools for some models."""
        return self.provider().provider in ("groq", "openai") and self.active.kind != "ollama"

    def assistants(self) -> AssistantsController:
        """Assistants and the default assistant's instructions (SYSTEM_PROMPT until edited)."""
        from controller.assistants import AssistantsController, shared_assistant_store

        store = shared_assistant_store(str(self.configured.assistants_file))
        return AssistantsController(store, self.configured.system_prompt)

    def conversations(self) -> ConversationController:
        files = FileStore(self.configured.files_dir)  # exports carry the attached files; imports bring them back
        return ConversationController(shared_store(str(self.configured.conversations_file)), files=files)


def _bundled():  # type: ignore[no-untyped-def]
    from utils.local_server import find_bundled_model

    found = find_bundled_model()
    return found.resolve() if found else None
