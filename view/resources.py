"""What the pages share within one Streamlit process, built once: the embedded model server."""

from __future__ import annotations

import streamlit as st

from controller.chat import ChatController
from controller.conversations import ConversationController
from model.store import ConversationStore
from settings import Settings, SettingsError, get_settings
from utils.local_server import LocalModelServer
from utils.providers import ProviderInfo, build_llm, describe, served_models


@st.cache_resource(show_spinner=False)
def local_server(model_path: str, context_window: int, parallel: int, threads: int) -> LocalModelServer:
    """One embedded model server per process and configuration; it starts lazily."""
    return LocalModelServer(model_path, context_window, parallel, threads)


def load_settings() -> Settings:
    """The settings, or a clear message on the page (and nothing else) if one is unusable."""
    try:
        return get_settings()
    except SettingsError as error:
        st.error(str(error))
        st.stop()


def local_for(settings: Settings) -> LocalModelServer | None:
    if settings.llm_provider != "local":
        return None
    return local_server(
        settings.local_model_path, settings.local_context_window, settings.local_parallel, settings.local_threads
    )


def provider_info(settings: Settings) -> ProviderInfo:
    return describe(settings, local_for(settings))


def chat_controller(settings: Settings) -> ChatController:
    """A controller for this run; cheap to build, so nothing mutable outlives a session."""
    local = local_for(settings)
    info = describe(settings, local)
    return ChatController(
        lambda: build_llm(settings, local),
        provider=info.provider,
        model=info.model,
        system_prompt=settings.system_prompt,
        served_models=lambda: served_models(settings),
    )


@st.cache_resource(show_spinner=False)
def conversation_store(path: str) -> ConversationStore:
    """One store per file and process, shared by sessions: its cache spares re-reading the file."""
    return ConversationStore(path)


def conversations(settings: Settings) -> ConversationController:
    return ConversationController(conversation_store(str(settings.conversations_file)))
