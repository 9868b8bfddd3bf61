"""Home: what bnaGPT is, which model answers and whether it is ready, and the way in."""

from __future__ import annotations

import streamlit as st

from controller.runtime import AFTER_THE_PAGE
from utils.local_server import LocalModelServer
from view import resources

STATE_TEXT = {
    "idle": "starting…",
    "loading": "loading…",
    "ready": "ready",
}


class HomeView:
    def __call__(self) -> None:
        st.title("bnaGPT")
        st.write(
            "A ChatGPT-style assistant that runs on your machine. Chat with a large model on Groq, "
            "or with no key at all with a small model embedded in the app, and keep your conversations."
        )
        runtime = resources.runtime()
        info = runtime.provider()
        local = runtime.local
        st.subheader("Model")
        st.write(f"**{info.label}** — `{info.model or 'not set'}`")
        if info.problem:
            st.error(info.problem)
        elif local is not None:
            self.model_state(local)
        else:
            st.success(f"Answers come from {info.api_base}.")
        st.subheader("Start chatting")
        st.page_link("pages/1_Simple_Chatbot.py", label="Simple Chatbot", icon="💬")
        st.page_link("pages/2_Chatbot_With_Memory.py", label="Chatbot With Memory", icon="🧠")
        st.page_link("pages/3_Models.py", label="Models: choose or download a capable model", icon="🧩")
        if local is not None and not info.problem:
            # Last, and a moment after the page is sent: loading the model holds Python's lock for
            # most of a second, which would hold up this page (and every other session).
            local.start_in_background(after=AFTER_THE_PAGE)  # Home never waits for the model

    def model_state(self, local: LocalModelServer) -> None:
        """The embedded model's state, redrawn alone every second until it is ready or failed."""
        waiting = local.state in ("idle", "loading")
        st.fragment(run_every=1.0 if waiting else None)(self._model_state)(local, waiting)

    @staticmethod
    def _model_state(local: LocalModelServer, waiting: bool) -> None:
        if waiting and local.state in ("ready", "failed"):
            st.rerun()  # the whole page once more, which ends this fragment's timer
        if problem := local.problem():
            st.error(problem)
            st.caption("Saved conversations stay available in Chatbot With Memory.")
            return
        st.success(f"Embedded model: {STATE_TEXT[local.state]}")
        st.caption(
            "It is a tiny demo model (SmolLM2, 135M parameters): quick and offline, but often wrong and "
            "forgetful. For good answers use a capable model: Ollama, a downloaded model on the Models "
            "page, or Groq (set GROQ_API_KEY in .env)."
        )
