"""The Assistants page: assistants (custom "GPTs": instructions, model, temperature, starters,
files it knows, response format, searching the web, running code) to create, edit, duplicate,
export, import and delete, and the Default assistant's custom instructions (the SYSTEM_PROMPT
setting's text until edited).

One form serves New and Edit (view.assistant_form); one panel (the form, or a delete
confirmation) is open at a time (view.assistant_panels). Callbacks only change session state;
what they have to say is shown on the next draw.

Widget keys, for tests (labels in quotes):
    asst:new                    "New assistant"           opens the form above the list
    asst:name … asst:save, asst:cancel                    the form (view.assistant_form)
    asst:filter                 "Filter assistants"       only past FILTER_AFTER assistants
    asst:<id>:use               "Use in chat"             opens the chat page with it
    asst:<id>:menu              "⋯"                       Edit, Duplicate, Export, Delete: drawn only
                                                          while it is open (session state True)
    asst:<id>:edit, asst:<id>:duplicate, asst:<id>:export, asst:<id>:delete
    asst:<id>:confirm-delete    "Confirm Delete"
    asst:<id>:cancel-delete     "Cancel"
    asst:default:text           "Custom instructions"
    asst:default:save           "Save instructions"
    asst:default:reset          "Use the setting's text"
    asst:import:<n>             "Import assistants"       a fresh uploader after each import
    asst:export-all             "Export all"
"""

from __future__ import annotations

import re
from functools import partial

import streamlit as st

from controller.assistant_fields import AssistantError
from controller.assistants import MAX_IMPORT_BYTES, AssistantsController
from controller.runtime import Runtime
from model.assistant import Assistant
from model.store import StoreError
from utils.text import as_text
from view import assistant_knowledge as knowledge
from view import resources
from view.assistant_form import SWITCHES, AssistantForm, fill_form
from view.assistant_panels import PANEL, close_panel, notices, say

CHAT_PAGE = "pages/2_Chatbot_With_Memory.py"
CHAT_ASSISTANT = "memory:assistant"  # session state: the assistant the chat page starts with
FILTER_AFTER = 10  # a filter box appears when there are more assistants than this
SHOWN = 20  # at most this many rows (drawn on every run); the filter finds the others
DESCRIPTION_CHARS = 200  # longer descriptions are cut in the list (the form shows them whole)

IMPORTS = "asst:imports"  # session state: how many imports so far (a fresh uploader for each)
DEFAULT_TEXT = "asst:default:text"
GONE = "That assistant was deleted in another tab."

INTRO = (
    "An assistant is a chat made for one job: the instructions the model follows, the model that "
    "answers, files it looks things up in and questions to start with. Press **Use in chat** to talk to one; chats without an "
    "assistant follow the Default assistant's instructions, at the bottom of this page."
)


class AssistantsView:
    """The whole page. See the module docstring for the widget keys."""

    controller: AssistantsController
    runtime: Runtime
    form: AssistantForm

    def __call__(self) -> None:
        st.title("Assistants")
        st.write(INTRO)
        self.runtime = resources.runtime()
        self.controller = self.runtime.assistants()
        self.form = AssistantForm(self.controller, self.runtime)
        if self.controller.problem:
            st.warning(as_text(self.controller.problem))
        top = st.container()
        assistants = self.assistants_section()
        self.default_section()
        self.transfer_section(assistants)
        with top:
            notices(None, leftover=True)  # also one whose panel was not drawn
            knowledge.index_saved(self.runtime.configured)  # last: the page is there while it runs

    # panels -------------------------------------------------------------------------------
    def show_panel(self, kind: str, assistant_id: str = "") -> None:
        close_panel()
        if assistant_id:
            st.session_state[f"asst:{assistant_id}:menu"] = False  # close the ⋯ menu it was chosen in
        if kind == "new":
            fill_form(None)
        elif kind == "edit":
            assistant = self.controller.get(assistant_id)
            if assistant is None:
                say("error", GONE)
                return
            fill_form(assistant)
        st.session_state[PANEL] = (kind, assistant_id)

    # the list -----------------------------------------------------------------------------
    def assistants_section(self) -> list[Assistant]:
        st.button(
            "New assistant",
            key="asst:new",
            type="primary",
            icon=":material/add:",
            on_click=self.show_panel,
            args=("new",),
        )
        if st.session_state.get(PANEL) == ("new", ""):
            with st.container(border=True):
                self.form(None)
        try:
            assistants = self.controller.list()
        except StoreError as error:
            st.error(f"The assistants cannot be shown: {as_text(str(error))}")
            return []
        if not assistants:
            st.caption("No assistants yet. Press New assistant, or import a file below.")
            return assistants
        query = ""
        if len(assistants) > FILTER_AFTER:
            query = st.text_input(
                "Filter assistants", key="asst:filter", placeholder="Type part of a name or description"
            )
        wanted = query.strip().casefold()
        matching = [a for a in assistants if wanted in f"{a.name}\n{a.description}".casefold()]
        for assistant in matching[:SHOWN]:
            self.entry(assistant)
        if len(matching) > SHOWN:
            st.caption(f"Showing {SHOWN} of {len(matching)}. Type in the filter to find the others.")
        elif wanted and not matching:
            st.caption("No assistant's name or description contains that.")
        return assistants

    def entry(self, assistant: Assistant) -> None:
        # One block per row, and the menu's items only while it is open: every nested block or
        # widget costs the browser time to lay out, and a page of rows is drawn on every run.
        key = f"asst:{assistant.id}"
        with st.container(border=True, horizontal=True, vertical_alignment="center", gap="small"):
            st.markdown(self.summary(assistant), width="stretch")
            if st.button("Use in chat", key=f"{key}:use", icon=":material/chat:"):
                st.session_state[CHAT_ASSISTANT] = assistant.id
                st.switch_page(CHAT_PAGE)
            menu = st.popover("⋯", key=f"{key}:menu", help="Edit, duplicate, export or delete", on_change="rerun")
            if menu.open:
                with menu:
                    self.menu_items(assistant)
        panel = st.session_state.get(PANEL)
        if panel == ("edit", assistant.id):
            with st.container(border=True):
                self.form(assistant)
        elif panel == ("delete", assistant.id):
            with st.container(border=True):
                self.delete_panel(assistant)

    def menu_items(self, assistant: Assistant) -> None:
        key = f"asst:{assistant.id}"
        item = partial(st.button, width="stretch")
        item("Edit", key=f"{key}:edit", icon=":material/edit:", on_click=self.show_panel, args=("edit", assistant.id))
        item(
            "Duplicate",
            key=f"{key}:duplicate",
            icon=":material/content_copy:",
            on_click=self.duplicate,
            args=(assistant.id,),
        )
        st.download_button(
            "Export",
            partial(self.controller.export, [assistant.id], settings=self.runtime.configured),  # made only when clicked
            file_name=f"{file_stem(assistant.name)}.json",
            mime="application/json",
            key=f"{key}:export",
            icon=":material/download:",
            width="stretch",
            on_click="ignore",
        )
        item(
            "Delete",
            key=f"{key}:delete",
            icon=":material/delete:",
            on_click=self.show_panel,
            args=("delete", assistant.id),
        )

    def summary(self, assistant: Assistant) -> str:
        description = assistant.description
        if len(description) > DESCRIPTION_CHARS:
            description = description[: DESCRIPTION_CHARS - 1] + "…"
        model = self.form.model_label(assistant.model)
        if assistant.response_format == "json":
            model += " · answers in JSON"
        model += "".join(f" · {word}" for tool, (_, _, word) in SWITCHES.items() if tool in assistant.tools)
        if count := len(assistant.knowledge):
            model += f" · knows {count} file{'s' if count != 1 else ''}"
        lines = [f"**{as_text(assistant.name)}**", as_text(description), f":gray[{as_text(model)}]"]
        return "  \n".join(line for line in lines if line)

    # duplicate and delete -----------------------------------------------------------------
    def duplicate(self, assistant_id: str) -> None:
        close_panel()
        st.session_state[f"asst:{assistant_id}:menu"] = False
        try:
            copy = self.controller.duplicate(assistant_id)
        except (AssistantError, StoreError) as error:
            say("error", f"Not duplicated: {as_text(str(error))}")
            return
        say("toast", f"Duplicated as “{as_text(copy.name)}”.")

    def delete_panel(self, assistant: Assistant) -> None:
        key = f"asst:{assistant.id}"
        st.warning(
            f"Delete “{as_text(assistant.name)}”? This cannot be undone. "
            "Conversations that used it stay readable in Chatbot With Memory."
        )
        notices(("delete", assistant.id))
        left, right, _ = st.columns([1, 1, 2])
        left.button(
            "Confirm Delete",
            key=f"{key}:confirm-delete",
            type="primary",
            width="stretch",
            on_click=self.delete,
            args=(assistant.id, assistant.name),
        )
        right.button("Cancel", key=f"{key}:cancel-delete", width="stretch", on_click=close_panel)

    def delete(self, assistant_id: str, name: str) -> None:
        try:
            deleted = self.controller.delete(assistant_id)
        except StoreError as error:
            say("error", f"Not deleted: {as_text(str(error))}", ("delete", assistant_id))
            return
        close_panel()
        say("toast", f"Deleted “{as_text(name)}”." if deleted else GONE)
        if deleted:
            from controller.cleanup import forget_unused_indexes

            forget_unused_indexes(resources.runtime())  # its knowledge's index, unless another uses it

    # the Default assistant ----------------------------------------------------------------
    def default_section(self) -> None:
        st.subheader("Default assistant")
        try:
            custom = self.controller.is_custom_instructions()
            if DEFAULT_TEXT not in st.session_state:
                st.session_state[DEFAULT_TEXT] = self.controller.instructions()
        except StoreError as error:
            st.error(f"The custom instructions cannot be shown: {as_text(str(error))}")
            return
        st.caption(
            "Chats without an assistant follow these instructions. "
            + (
                "They are yours; the `SYSTEM_PROMPT` setting's text is one click away."
                if custom
                else "They are the `SYSTEM_PROMPT` setting's text until you save your own."
            )
        )
        with st.form("asst:default-form", border=False, enter_to_submit=False):
            st.text_area("Custom instructions", key=DEFAULT_TEXT, height=120)
            notices(("default", ""))
            save, reset, _ = st.columns([1, 1, 1])
            save.form_submit_button(
                "Save instructions",
                key="asst:default:save",
                type="primary",
                width="stretch",
                on_click=self.save_instructions,
            )
            reset.form_submit_button(
                "Use the setting's text",
                key="asst:default:reset",
                width="stretch",
                disabled=not custom,
                on_click=self.reset_instructions,
            )

    def save_instructions(self) -> None:
        try:
            self.controller.set_instructions(st.session_state.get(DEFAULT_TEXT) or "")
        except (AssistantError, StoreError) as error:
            say("error", f"Not saved: {as_text(str(error))}", ("default", ""))
            return
        st.session_state[DEFAULT_TEXT] = self.controller.instructions()
        say("toast", "Custom instructions saved: new chats without an assistant follow them.")

    def reset_instructions(self) -> None:
        try:
            self.controller.set_instructions("")
        except (AssistantError, StoreError) as error:
            say("error", f"Not reset: {as_text(str(error))}", ("default", ""))
            return
        st.session_state[DEFAULT_TEXT] = self.controller.instructions()
        say("toast", "The Default assistant follows the `SYSTEM_PROMPT` setting's text again.")

    # import and export --------------------------------------------------------------------
    def transfer_section(self, assistants: list[Assistant]) -> None:
        st.subheader("Import and export")
        key = f"asst:import:{st.session_state.get(IMPORTS, 0)}"
        st.file_uploader(
            "Import assistants",
            type=["json"],
            key=key,
            help="A file exported from this page, holding one assistant or several.",
            max_upload_size=MAX_IMPORT_BYTES // 2**20,
            on_change=self.import_file,
            args=(key,),
        )
        notices(("import", ""))
        st.download_button(
            "Export all",
            partial(self.controller.export, settings=self.runtime.configured),  # made only when clicked
            file_name="assistants.json",
            mime="application/json",
            key="asst:export-all",
            icon=":material/download:",
            disabled=not assistants,
            on_click="ignore",
        )

    def import_file(self, key: str) -> None:
        upload = st.session_state.get(key)
        if upload is None:
            return
        st.session_state[IMPORTS] = st.session_state.get(IMPORTS, 0) + 1  # a fresh, empty uploader
        try:
            imported = self.controller.import_file(upload.getvalue(), settings=self.runtime.configured)
        except (AssistantError, StoreError) as error:
            say("error", f"Nothing was imported: {as_text(str(error))}", ("import", ""))
            return
        text = imported_text(imported.assistants)
        if imported.missing:  # imported, but without some of their files
            text += "  \n" + "  \n".join(f":material/attach_file: {as_text(m)}" for m in imported.missing)
        say("success" if not imported.missing else "warning", text, ("import", ""))


def imported_text(added: list[Assistant]) -> str:
    """One sentence on what an import added, names through as_text."""
    if not added:
        return "The file holds no assistants: nothing was imported."
    names = [f"“{as_text(a.name)}”" for a in added[:5]]
    if len(added) > 5:
        names.append(f"{len(added) - 5} more")
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Imported {len(added)} assistant{'s' if len(added) != 1 else ''}: {listed}."


def file_stem(name: str) -> str:
    """A file name for an assistant's export: its name in plain letters, digits and dashes."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60] or "assistant"
