"""The row at the top of both chat pages: the model and assistant pickers and the JSON, Web and
Code switches. They hold for this tab's chat (another tab's choice never moves them)."""

from __future__ import annotations

from contextlib import suppress

import streamlit as st

from controller.models import ModelChoiceError
from controller.runtime import Runtime
from model.assistant import Assistant
from model.preferences import PreferencesError
from utils.text import as_text


class ChoicesMixin:
    """Part of ChatView: `key` names the page's state."""

    key: str
    remember: bool

    def draw_choices(self, runtime: Runtime) -> tuple[Runtime, Assistant | None]:
        """The model and assistant pickers and the JSON switch; they hold for this tab's chat."""
        assistants = runtime.assistants()
        chosen = st.session_state.get(f"{self.key}:assistant", "")
        assistant = assistants.get(chosen) if chosen else None
        if chosen and assistant is None:
            st.session_state[f"{self.key}:assistant"] = ""
            st.session_state[f"{self.key}:notice"] = (
                "The assistant of this chat was deleted; the default assistant answers from now on."
            )
        model_key = f"{self.key}:model"
        if model_key not in st.session_state:  # fixed for this tab: another tab's choice never moves it
            st.session_state[model_key] = runtime.active.id
        runtime = runtime.choosing(st.session_state[model_key])
        active = runtime.active
        labels = {option.id: option.label for option in runtime.models().options()}
        labels.setdefault(active.id, active.label)
        everyone = {a.id: a for a in assistants.list()}
        if assistant is not None:
            everyone.setdefault(assistant.id, assistant)
        left, middle, switches = st.columns([4, 3, 5], vertical_alignment="bottom")
        row = switches.container(horizontal=True, vertical_alignment="center", gap="small")
        picker = f"{self.key}:model-picker"
        st.session_state[picker] = active.id
        left.selectbox(
            "Model",
            list(labels),
            format_func=lambda option_id: labels.get(option_id, option_id),
            key=picker,
            on_change=self._picked_model,
            args=(runtime,),
        )
        picker = f"{self.key}:assistant-picker"
        st.session_state[picker] = assistant.id if assistant else ""
        middle.selectbox(
            "Assistant",
            ["", *everyone],
            format_func=lambda assistant_id: everyone[assistant_id].name if assistant_id else "Default",
            key=picker,
            on_change=self._picked_assistant,
            args=(runtime,),
            help="Assistants are made on the Assistants page: instructions, model, starters, JSON answers.",
        )
        forced = assistant is not None and assistant.response_format == "json"
        self._switch(
            row,
            "JSON",
            "json",
            on=True if forced else None,
            disabled=forced,
            help="This assistant always answers in JSON." if forced else None,
        )
        self._switch(row, "Web", "web")
        can_run = runtime.calls_tools and self.remember
        self._switch(
            row,
            "Code",
            "code",
            on=False if not can_run else None,
            disabled=not can_run,
            help=None
            if can_run
            else "Running code needs a model that calls tools (Groq, or an OpenAI-compatible server) "
            "and Chatbot With Memory; the embedded model cannot.",
        )
        picture = self._switch(
            row,
            "Image",
            "image",
            help="Answer with a picture made from your message (needs an image endpoint: IMAGE_API_BASE).",
        )
        if picture:
            from utils.image_generation import NOT_CONFIGURED, available

            if available(runtime.configured):
                st.caption(":material/image: Your next message is a description of the picture to make.")
            else:
                st.info(NOT_CONFIGURED, icon=":material/image:")
        if assistant is not None and assistant.description:
            st.caption(as_text(assistant.description))
        return runtime, assistant

    def _switch(
        self, row, label: str, name: str, on: bool | None = None, disabled: bool = False, help: str | None = None
    ) -> bool:  # type: ignore[no-untyped-def]
        """A toggle whose value is kept under `<key>:<name>` for the tab (its widget's own state is
        dropped when the page is left); `on` forces what it shows. Returns whether it is on."""
        kept, widget = f"{self.key}:{name}", f"{self.key}:{name}-switch"
        shown = bool(st.session_state.get(kept, False)) if on is None else on
        st.session_state[widget] = shown
        row.toggle(
            label,
            key=widget,
            disabled=disabled,
            on_change=lambda: st.session_state.update({kept: st.session_state[widget]}),
            help=help,
        )
        return shown

    def _picked_model(self, runtime: Runtime) -> None:
        option_id = st.session_state[f"{self.key}:model-picker"]
        st.session_state[f"{self.key}:model"] = option_id
        with suppress(ModelChoiceError, PreferencesError):
            runtime.models().choose(option_id)  # also the model of new tabs, as on the Models page

    def _picked_assistant(self, runtime: Runtime) -> None:
        assistant_id = st.session_state[f"{self.key}:assistant-picker"]
        st.session_state[f"{self.key}:assistant"] = assistant_id
        assistant = runtime.assistants().get(assistant_id) if assistant_id else None
        if assistant is not None and assistant.model:
            if runtime.models().option(assistant.model) is not None:
                st.session_state[f"{self.key}:model"] = assistant.model
            else:
                st.session_state[f"{self.key}:notice"] = (
                    f"{as_text(assistant.name)}'s model is not available now; the model picked above answers."
                )

    def json_mode(self, assistant: Assistant | None) -> bool:
        return bool(st.session_state.get(f"{self.key}:json")) or (
            assistant is not None and assistant.response_format == "json"
        )
