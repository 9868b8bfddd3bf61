"""The wiring of one configuration: which model answers, the embedded model server, the store.

Views ask a `Runtime` for controllers and never build providers themselves. Nothing heavy is
imported here: LlamaIndex loads when the first answer is asked for, so Home starts fast.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from controller.conversations import ConversationController
from model.store import ConversationStore
from settings import Settings
from utils.local_server import LocalModelServer
from utils.providers import ProviderInfo, StreamWatch, build_llm, describe, served_models

if TYPE_CHECKING:
    from controller.chat import ChatController


@lru_cache(maxsize=4)
def shared_server(model_path: str, context_window: int, parallel: int, threads: int) -> LocalModelServer:
    """One embedded model server per process and configuration; it starts lazily."""
    return LocalModelServer(model_path, context_window, parallel, threads)


@lru_cache(maxsize=8)
def shared_store(path: str) -> ConversationStore:
    """One store per file and process, shared by sessions: its cache spares re-reading the file."""
    return ConversationStore(path)


class Runtime:
    """Everything a page needs for one configuration; cheap to make, safe to share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def local(self) -> LocalModelServer | None:
        """The embedded model server, when the embedded model answers."""
        s = self.settings
        if s.llm_provider != "local":
            return None
        return shared_server(s.local_model_path, s.local_context_window, s.local_parallel, s.local_threads)

    def provider(self) -> ProviderInfo:
        """Which provider and model answer; no network calls."""
        return describe(self.settings, self.local)

    def chat(self) -> ChatController:
        """A chat controller for the model that answers now."""
        from controller.chat import ChatController  # LlamaIndex: only once someone chats

        settings, local, info = self.settings, self.local, self.provider()

        def llm(watch: StreamWatch | None):  # type: ignore[no-untyped-def]
            if local is not None:
                local.start()  # at once when ready; the page shows progress on the first message
            return build_llm(settings, local, watch)

        return ChatController(
            llm,
            provider=info.provider,
            model=info.model,
            system_prompt=settings.system_prompt,
            served_models=lambda: served_models(settings),
            timeout=settings.request_timeout,
        )

    def conversations(self) -> ConversationController:
        return ConversationController(shared_store(str(self.settings.conversations_file)))
