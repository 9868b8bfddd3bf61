"""The settings and the runtime of this Streamlit process, for the views."""

from __future__ import annotations

import streamlit as st

from controller.runtime import Runtime
from settings import Settings, SettingsError, get_settings


def load_settings() -> Settings:
    """The settings, or a clear message on the page (and nothing else) if one is unusable."""
    try:
        return get_settings()
    except SettingsError as error:
        st.error(str(error))
        st.stop()


def runtime() -> Runtime:
    """The runtime for this process's settings (the settings stop the page if unusable)."""
    return Runtime(load_settings())


def file_store():  # type: ignore[no-untyped-def]
    """The stored files (attachments, pictures, what tools made) of this process's data folder."""
    from model.files import FileStore

    return FileStore(runtime().configured.files_dir)
