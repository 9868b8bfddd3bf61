"""Home: what bnaGPT is, which model is active and whether it is ready, and the way in."""

from __future__ import annotations

import streamlit as st

from view import resources

STATE_TEXT = {
    "idle": "loads when you send the first message",
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
        settings = resources.load_settings()
        info = resources.provider_info(settings)
        local = resources.local_for(settings)
        st.subheader("Model")
        st.write(f"**{info.label}** — `{info.model or 'not set'}`")
        if info.problem:
            st.error(info.problem)
        elif local is not None:
            local.start_in_background()  # Home never waits for the model
            if problem := local.problem():
                st.error(problem)
                st.caption("Saved conversations stay available in Chatbot With Memory.")
            else:
                st.success(f"Embedded model: {STATE_TEXT[local.state]}.")
                st.caption("Set GROQ_API_KEY in .env to chat with a large hosted model instead.")
        else:
            st.success(f"Answers come from {info.api_base}.")
        st.subheader("Start chatting")
        st.page_link("pages/1_Simple_Chatbot.py", label="Simple Chatbot", icon="💬")
        st.page_link("pages/2_Chatbot_With_Memory.py", label="Chatbot With Memory", icon="🧠")
