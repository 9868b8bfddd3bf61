"""The Assistants page's form, for New and Edit: its fields filled from an assistant (or a new
one), drawn inside the open panel, and saved by Create / Save changes. Its Knowledge files are
view.assistant_knowledge's; the open panel and the notices are view.assistant_panels'.

Widget keys, for tests (labels in quotes):
    asst:name, asst:description, asst:instructions, asst:model, asst:temperature,
    asst:starters, asst:response_format                   the form's fields
    asst:knowledge:<n>, asst:knowledge:<sha256>:remove    its files (view.assistant_knowledge)
    asst:web_search             "Search the web"          the form's switches, one per tool in SWITCHES
    asst:run_code               "Run code"
    asst:save                   "Create" or "Save changes"
    asst:cancel                 "Cancel"
"""

from __future__ import annotations

from functools import cached_property, partial
from pathlib import Path

import streamlit as st

from controller.assistant_fields import MAX_INSTRUCTIONS, MAX_STARTERS, AssistantError, FieldError
from controller.assistants import AssistantsController
from controller.models import ModelOption
from controller.runtime import Runtime
from model.assistant import Assistant
from model.store import StoreError
from utils.text import as_text
from view import assistant_knowledge as knowledge
from view.assistant_panels import FIELD_ERROR, PANEL, Panel, close_panel, notices, say

FIELDS = ("name", "description", "instructions", "model", "temperature", "starters", "response_format")
FORMATS = {"text": "Text", "json": "JSON"}
# The tools the form switches on and off: (label, help, the list row's word). "documents" is not
# a switch: an assistant's own files (Knowledge files) are searched whenever it has some; one
# already in the file is kept as it is.
SWITCHES = {
    "web_search": (
        "Search the web",
        "Every answer of this assistant searches the web first and cites what it found.",
        "searches the web",
    ),
    "run_code": (
        "Run code",
        "The model may run Python in a sandbox; needs a model that calls tools (Groq or an "
        "OpenAI-compatible server); the embedded model cannot.",
        "runs code",
    ),
}
SAME_AS_CHAT = ""


def fill_form(assistant: Assistant | None) -> None:
    """Put `assistant`'s values (or a new one's) in the form's fields before it is drawn."""
    shown = assistant or Assistant(name="")
    values = {
        "name": shown.name,
        "description": shown.description,
        "instructions": shown.instructions,
        "model": shown.model,
        "temperature": "" if shown.temperature is None else f"{shown.temperature:g}",
        "starters": "\n".join(shown.starters),
        "response_format": shown.response_format,
    }
    for field, value in values.items():
        st.session_state[f"asst:{field}"] = value
    for tool in SWITCHES:
        st.session_state[f"asst:{tool}"] = tool in shown.tools
    knowledge.fill(assistant)


class AssistantForm:
    """The form, drawn by calling it with the assistant to edit (None: a new one)."""

    def __init__(self, controller: AssistantsController, runtime: Runtime) -> None:
        self.controller = controller
        self.runtime = runtime

    @cached_property
    def models(self) -> dict[str, ModelOption]:
        """The models that can answer now, by id; asked only when a row or the form needs them
        (Ollama's and a remote server's lists may take a moment when they are not cached)."""
        return {option.id: option for option in self.runtime.models().options()}

    def model_label(self, model_id: str) -> str:
        """What the Model field (and a row of the list) shows for `model_id`."""
        if model_id == SAME_AS_CHAT:
            return "Same model as the chat"
        option = self.models.get(model_id)
        if option is not None:
            return option.label
        kind, _, name = model_id.partition(":")
        return f"{Path(name).name if kind == 'local' else name or model_id} (not available)"

    def __call__(self, assistant: Assistant | None) -> None:
        where: Panel = ("edit", assistant.id) if assistant else ("new", "")
        with st.form("asst:form", border=False, enter_to_submit=False):
            st.text_input("Name", key="asst:name", placeholder="Trip planner")
            self.field_error("name")
            st.text_input("Description", key="asst:description", placeholder="What it is for, in a few words")
            self.field_error("description")
            st.text_area(
                "Instructions",
                key="asst:instructions",
                height=160,
                placeholder="How it should answer: its role, its tone, what to ask first, what to avoid.",
                help=f"What the model reads before every conversation with this assistant (its system prompt); "
                f"at most {MAX_INSTRUCTIONS:,} characters.",
            )
            self.field_error("instructions")
            model, temperature = st.columns([3, 1])
            with model:
                chosen = st.session_state.get("asst:model", SAME_AS_CHAT)
                choices = [SAME_AS_CHAT, *self.models]
                if chosen not in choices:
                    choices.append(chosen)  # saved earlier, not available now: kept, not lost
                st.selectbox(
                    "Model",
                    choices,
                    key="asst:model",
                    format_func=lambda c: "Same as the chat" if c == SAME_AS_CHAT else self.model_label(c),
                    help="The model this assistant always uses, or the one chosen on the Models page.",
                )
            with temperature:
                st.text_input(
                    "Temperature",
                    key="asst:temperature",
                    placeholder="Default",
                    help="From 0 (the most predictable answers) to 2 (the most varied). Empty: the model's default.",
                )
            for field in ("model", "temperature"):  # under the pair, where a sentence has room
                self.field_error(field)
            st.text_area(
                "Conversation starters",
                key="asst:starters",
                height=110,
                placeholder="One per line, e.g.\nPlan a weekend in Lisbon\nWhat should I pack for hiking?",
                help=f"Up to {MAX_STARTERS}, shown as buttons on an empty chat with this assistant.",
            )
            self.field_error("starters")
            knowledge.field(self.runtime.configured)
            self.field_error("knowledge")
            st.radio(
                "Response format",
                list(FORMATS),
                key="asst:response_format",
                format_func=FORMATS.__getitem__,
                horizontal=True,
                help="JSON: the model is asked to answer with a JSON object only.",
            )
            self.field_error("response_format")
            for column, (tool, (label, explained, _)) in zip(st.columns(len(SWITCHES)), SWITCHES.items(), strict=True):
                column.toggle(label, key=f"asst:{tool}", help=explained)
            notices(where)
            save, cancel, _ = st.columns([1, 1, 2])
            save.form_submit_button(
                "Save changes" if assistant else "Create",
                key="asst:save",
                type="primary",
                width="stretch",
                on_click=self.save,
                args=(assistant.id if assistant else None,),
            )
            cancel.form_submit_button("Cancel", key="asst:cancel", width="stretch", on_click=close_panel)

    @staticmethod
    def field_error(field: str) -> None:
        error = st.session_state.get(FIELD_ERROR)
        if error is not None and error[0] == field:
            st.error(as_text(error[1]))

    def save(self, assistant_id: str | None) -> None:
        where: Panel = ("edit", assistant_id) if assistant_id else ("new", "")
        value = {field: st.session_state.get(f"asst:{field}") or "" for field in FIELDS}
        st.session_state.pop(FIELD_ERROR, None)
        write = self.controller.create if assistant_id is None else partial(self.controller.update, assistant_id)
        switched = [tool for tool in SWITCHES if st.session_state.get(f"asst:{tool}")]
        try:
            # the files uploaded are checked and stored first; one left out is named under the field
            added = knowledge.take_uploads(self.runtime.configured)
            # a tool the form does not show ("documents") stays as it is in the file now
            current = self.controller.get(assistant_id) if assistant_id else None
            kept = [tool for tool in current.tools if tool not in SWITCHES] if current else []
            saved = write(
                name=value["name"],
                description=value["description"],
                instructions=value["instructions"],
                model=value["model"],
                temperature=value["temperature"].strip() or None,
                starters=value["starters"],
                response_format=value["response_format"],
                tools=[*switched, *kept],
                knowledge=added.files,
            )
        except FieldError as error:
            if error.field in (*FIELDS, "knowledge"):
                st.session_state[FIELD_ERROR] = (error.field, str(error))  # shown under the field
            else:
                say("error", as_text(str(error)), where)
            return
        except (AssistantError, StoreError) as error:
            say("error", f"Not saved: {as_text(str(error))}", where)
            return
        knowledge.index_later(saved)
        done = f"{'Saved' if assistant_id else 'Created'} “{as_text(saved.name)}”"
        if missed := knowledge.left_out():
            # the form stays open on the saved assistant, with each file left out named under the field
            st.session_state[PANEL] = ("edit", saved.id)
            say("toast", f"{done} without {missed} file{'s' if missed != 1 else ''}.")
            return
        close_panel()
        say("toast", f"{done}.")
