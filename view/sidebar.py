"""The "Chatbot With Memory" sidebar: save, the saved conversations, load/rename/delete/export, import."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from controller.conversations import ConversationController
from model.message import Conversation, Message
from model.store import NameTaken, StoreError
from model.transfer import ImportFailed
from utils.text import as_text

FILTER_AFTER = 10  # a filter box appears when there are more conversations than this
OPEN_KEY = "memory:open"  # session state: (id, name) of the saved conversation on screen


class ConversationSidebar:
    """Draws into `st.sidebar`; `on_open` receives a loaded conversation to put on screen."""

    def __init__(
        self,
        controller: ConversationController,
        messages: list[Message],
        model: str,
        open_id: str | None,
        on_open: Callable[[Conversation], None],
    ) -> None:
        self.controller = controller
        self.messages = messages
        self.model = model
        self.open_id = open_id
        self.on_open = on_open

    def __call__(self) -> None:
        with st.sidebar:
            problem = self.controller.problem
            if problem is not None:
                st.error(
                    f"The conversations file could not be read ({problem.reason}). It was kept as "
                    f"{problem.moved_to or problem.path}; new conversations are saved to a fresh file."
                )
            self.save_section()
            st.header("Saved Conversations")
            self.list_section()
            self.import_section()

    # save -------------------------------------------------------------------
    def save_section(self) -> None:
        if self.open_id is not None:
            st.caption("Every turn is saved automatically.")
        if st.button("Save", key="conv:save", width="stretch", disabled=not self.messages):
            st.session_state["conv:saving"] = True
        if not st.session_state.get("conv:saving"):
            return
        name = st.text_input(
            "Conversation name", value=self.controller.suggest_name(self.messages), key="conv:name", max_chars=100
        )
        overwrite = st.session_state.get("conv:overwrite") == name.strip()
        if overwrite:
            st.warning(f"A conversation named “{as_text(name)}” exists. Replace it with this chat?")
        label = "Confirm Overwrite" if overwrite else "Confirm Save"
        if st.button(label, key="conv:confirm-save", type="primary"):
            self.save(name, overwrite)

    def save(self, name: str, overwrite: bool) -> None:
        try:
            saved = self.controller.save(name, self.messages, self.model, overwrite=overwrite)
        except NameTaken:
            st.session_state["conv:overwrite"] = name.strip()
            st.rerun()
        except StoreError as error:
            st.error(f"Not saved: {error}")
            return
        for key in ("conv:saving", "conv:overwrite", "conv:name"):
            st.session_state.pop(key, None)
        self.on_open(saved)
        st.toast(f"Saved as “{as_text(saved.name)}”.")
        st.rerun()

    # the list ---------------------------------------------------------------
    def list_section(self) -> None:
        query = ""
        if self.controller.count() > FILTER_AFTER:
            query = st.text_input("Filter conversations", key="conv:filter", placeholder="Type part of a name")
        listing = self.controller.listing(query)
        if listing.total == 0:
            st.caption("Nothing saved yet. Chat, then press Save.")
        for summary in listing.shown:
            marker = "▸ " if summary.id == self.open_id else ""
            with st.expander(marker + as_text(summary.name)):
                self.entry(summary.id, summary.name)
        if listing.matching > len(listing.shown):
            st.caption(f"Showing {len(listing.shown)} of {listing.matching}. Type in the filter to find the others.")
        elif query and not listing.matching:
            st.caption("No conversation name contains that.")

    def entry(self, conversation_id: str, name: str) -> None:
        key = f"conv:{conversation_id}"
        left, right = st.columns(2)
        if left.button("Load", key=f"{key}:load", width="stretch"):
            conversation = self.controller.load(conversation_id)
            if conversation is None:
                st.error("That conversation is gone (deleted in another tab?).")
            else:
                self.on_open(conversation)
                st.rerun()
        if right.button("Export", key=f"{key}:export", width="stretch"):
            st.session_state["conv:exporting"] = conversation_id
        left, right = st.columns(2)
        if left.button("Rename", key=f"{key}:rename", width="stretch"):
            st.session_state["conv:renaming"] = conversation_id
        if right.button("Delete", key=f"{key}:delete", width="stretch"):
            st.session_state["conv:deleting"] = conversation_id
        if st.session_state.get("conv:exporting") == conversation_id:
            self.export(conversation_id)
        if st.session_state.get("conv:renaming") == conversation_id:
            self.rename(conversation_id, name)
        if st.session_state.get("conv:deleting") == conversation_id:
            st.warning("Delete this conversation? This cannot be undone.")
            if st.button("Confirm Delete", key=f"{key}:confirm-delete", type="primary"):
                self.controller.delete(conversation_id)
                st.session_state.pop("conv:deleting", None)
                if conversation_id == self.open_id:
                    st.session_state.pop(OPEN_KEY, None)
                st.toast("Deleted.")
                st.rerun()

    def export(self, conversation_id: str) -> None:
        for kind, label in (("markdown", "Download Markdown"), ("json", "Download JSON")):
            exported = self.controller.export(conversation_id, kind)
            if exported is not None:
                file_name, mime, text = exported
                st.download_button(label, text, file_name=file_name, mime=mime, key=f"conv:{conversation_id}:{kind}")

    def rename(self, conversation_id: str, name: str) -> None:
        new_name = st.text_input("New name", value=name, key=f"conv:{conversation_id}:new-name", max_chars=100)
        if st.button("Confirm Rename", key=f"conv:{conversation_id}:confirm-rename"):
            try:
                renamed = self.controller.rename(conversation_id, new_name)
            except NameTaken:
                st.error(f"Another conversation is already named “{as_text(new_name)}”. Choose another name.")
                return
            except StoreError as error:
                st.error(f"Not renamed: {error}")
                return
            st.session_state.pop("conv:renaming", None)
            if conversation_id == self.open_id:
                st.session_state[OPEN_KEY] = (conversation_id, renamed.name)
            st.rerun()

    # import -----------------------------------------------------------------
    def import_section(self) -> None:
        upload = st.file_uploader(
            "Import",
            type=["json"],
            key=f"conv:import:{st.session_state.get('conv:imports', 0)}",
            help="A JSON export, or a whole conversations file (either format).",
        )
        if upload is None:
            return
        try:
            added = self.controller.import_data(upload.getvalue())
        except ImportFailed as error:
            st.error(f"Nothing was imported: {error}")
            return
        except StoreError as error:
            st.error(f"Nothing was imported: {error}")
            return
        st.session_state["conv:imports"] = st.session_state.get("conv:imports", 0) + 1  # a fresh, empty uploader
        st.toast(f"Imported {len(added)} conversation{'s' if len(added) != 1 else ''}.")
        st.rerun()
