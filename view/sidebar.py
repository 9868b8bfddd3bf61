"""The "Chatbot With Memory" sidebar: Save, the saved conversations (one click opens one; a "⋯"
menu beside each pins, renames, archives, exports or deletes it), search, and Import.

The list shows pinned conversations first, then the others, newest first; archived ones are in an
"Archived (n)" section at the bottom. Typing in the search box narrows the list to the names that
hold its words (archived ones too, marked) and lists, under "In messages", the conversations whose
messages hold them, each with a snippet of the best message; a click opens it at that message.
Later runs (the one that answers a turn among them) show those hits again without searching: the
index is only touched when the query changes or the sidebar changed a conversation.

The view owns what is on screen; the sidebar tells it through callbacks, which it calls from
widget callbacks (before the page is drawn, so they only change session state):
    on_open(conversation)   a conversation was saved or opened: put it on screen
    on_renamed(conversation) a conversation was renamed (maybe the open one)
    on_deleted(id)          a conversation was deleted (maybe the open one: the chat is no longer saved)
    on_open_at(conversation, message id)  a search hit was clicked: show the branch holding that
                            message (without it, on_open)

Widget keys, for tests (labels in quotes; every confirm has a Cancel; panels close after use):
    conv:save                       "Save"                      opens the save panel
    conv:name                       "Conversation name"         prefilled; Enter saves
    conv:confirm-save               "Confirm Save", after a name clash "Confirm Overwrite"
    conv:cancel-save                "Cancel"
    conv:filter                     "Search conversations"      once something is saved
    conv:<id>:open                  the conversation's name     one click opens it; primary when open
    conv:<id>:menu                  "⋯"                         holds Pin, Rename, Export, Archive, Delete
    conv:<id>:pin                   "Pin" / "Unpin"
    conv:<id>:archive               "Archive" / "Unarchive"
    conv:<id>:rename                "Rename"                    opens the rename panel
    conv:<id>:new-name              "New name"                  Enter renames
    conv:<id>:confirm-rename        "Confirm Rename"
    conv:<id>:cancel-rename         "Cancel"
    conv:<id>:export                "Export"                    opens the export panel
    conv:<id>:markdown, conv:<id>:json   "Download Markdown", "Download JSON"
    conv:<id>:cancel-export         "Close"
    conv:<id>:delete                "Delete"                    opens the delete panel
    conv:<id>:confirm-delete        "Confirm Delete"
    conv:<id>:cancel-delete         "Cancel"
    conv:hit:<id>:<message id>      the snippet                 a search hit; one click opens it there
    conv:import:<n>                 "Import"                    a fresh uploader after each import
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from controller.conversations import ConversationController
from model.message import Conversation, Message
from model.search import SearchHit, SearchUnavailable
from model.store import ConversationNotFound, ConversationSummary, NameTaken, StoreError
from model.transfer import ImportFailed
from utils.text import as_text
from view import notices as pending
from view import resources

LABEL_CHARS = 48  # longer names are cut on their button (the whole name is its tooltip)

PANEL = "conv:panel"  # session state: the one open panel, (kind, conversation id) or ("save", "")
NOTICE = "conv:notice"  # session state: (level, markdown, panel or None) to show on the next draw
OVERWRITE = "conv:overwrite"  # session state: the name the user was asked to confirm replacing
IMPORTS = "conv:imports"  # session state: how many imports so far (a fresh uploader for each)
HITS = "conv:hits"  # session state: (query, hits) of the last search, shown until the query or a conversation changes
GONE = "That conversation was deleted in another tab."
WHO = {"user": "You", "assistant": "Assistant", "system": "Instructions"}  # who wrote a search hit's message

Panel = pending.Panel


class ConversationSidebar:
    """Draws into `st.sidebar`. See the module docstring for the callbacks and widget keys."""

    def __init__(
        self,
        controller: ConversationController,
        messages: list[Message],
        model: str,
        open_id: str | None,
        on_open: Callable[[Conversation], None],
        on_renamed: Callable[[Conversation], None],
        on_deleted: Callable[[str], None],
        assistant_id: str = "",
        on_open_at: Callable[[Conversation, str], None] | None = None,
        tree: Sequence[Message] = (),
        suggested_name: str = "",
    ) -> None:
        self.controller = controller
        self.tree = tree or messages  # every branch of the chat on screen, saved with it
        self.suggested_name = suggested_name  # the model's title for the chat, if it gave one
        self.assistant_id = assistant_id  # the assistant of the chat on screen, saved with it
        self.messages = messages
        self.model = model
        self.open_id = open_id
        self.on_open = on_open
        self.on_renamed = on_renamed
        self.on_deleted = on_deleted
        self.on_open_at = on_open_at  # a search hit was clicked: open the conversation at that message

    def __call__(self) -> None:
        with st.sidebar:
            top = st.container()
            problem = self.controller.problem
            if problem is not None:
                if problem.moved_to is not None:
                    top.error(
                        f"The conversations file could not be read ({as_text(problem.reason)}). It was kept as "
                        f"{as_text(str(problem.moved_to))}; new conversations are saved to a fresh file."
                    )
                else:
                    top.error(as_text(str(problem)))
            self.save_section()
            st.header("Saved Conversations")
            self.list_section()
            self.import_section()
            with top:
                self.notices(None, leftover=True)  # also one whose panel was not drawn

    # panels and notices -------------------------------------------------------------------
    def show_panel(self, kind: str, conversation_id: str = "") -> None:
        self.close_panel()
        st.session_state[PANEL] = (kind, conversation_id)
        if conversation_id:
            st.session_state[f"conv:{conversation_id}:menu"] = False  # close the ⋯ menu it was chosen in

    def close_panel(self) -> None:
        st.session_state.pop(HITS, None)  # closed after a save, rename, delete: search again
        panel = st.session_state.pop(PANEL, None)
        for key in (OVERWRITE, "conv:name", f"conv:{panel[1] if panel else ''}:new-name"):
            st.session_state.pop(key, None)  # the next panel starts afresh

    def say(self, level: str, markdown: str, panel: Panel | None = None) -> None:
        """Show `markdown` (already safe: names through as_text) on the next draw, in `panel` if open."""
        pending.say(NOTICE, level, markdown, panel)

    def notices(self, where: Panel | None, leftover: bool = False) -> None:
        """Show the notice meant for `where` (None: the top of the sidebar)."""
        pending.show(NOTICE, where, leftover)

    # save ---------------------------------------------------------------------------------
    def save_section(self) -> None:
        if self.open_id is not None:
            st.caption("Every turn is saved automatically.")
        st.button(
            "Save",
            key="conv:save",
            width="stretch",
            disabled=not self.messages,
            on_click=self.show_panel,
            args=("save",),
        )
        if st.session_state.get(PANEL) != ("save", ""):
            return
        with st.form("conv:save-form", border=False):
            name = st.text_input(
                "Conversation name",
                value=self.suggested_name or self.controller.suggest_name(self.messages),
                key="conv:name",
                max_chars=100,
            )
            overwrite = st.session_state.get(OVERWRITE) == name.strip()
            if overwrite:
                st.warning(f"A conversation named “{as_text(name)}” exists. Replace it with this chat?")
            self.notices(("save", ""))
            left, right = st.columns(2)
            left.form_submit_button(
                "Confirm Overwrite" if overwrite else "Confirm Save",
                key="conv:confirm-save",
                type="primary",
                width="stretch",
                on_click=self.save,
            )
            right.form_submit_button("Cancel", key="conv:cancel-save", width="stretch", on_click=self.close_panel)

    def save(self) -> None:
        name = st.session_state.get("conv:name", "")
        overwrite = st.session_state.get(OVERWRITE) == name.strip()
        try:
            saved = self.controller.save(
                name,
                self.tree,
                self.model,
                overwrite=overwrite,
                assistant_id=self.assistant_id,
                current=self.messages[-1].id if self.messages else "",
            )
        except NameTaken:
            st.session_state[OVERWRITE] = name.strip()
            return
        except StoreError as error:
            self.say("error", f"Not saved: {as_text(str(error))}", ("save", ""))
            return
        self.close_panel()
        self.on_open(saved)
        self.say("toast", f"Saved as “{as_text(saved.name)}”.")

    # the list -----------------------------------------------------------------------------
    def list_section(self) -> None:
        try:
            query = ""
            if self.controller.count():
                query = st.text_input(
                    "Search conversations", key="conv:filter", placeholder="Words in names and messages"
                )
            listing = self.controller.listing(query)
        except StoreError as error:
            st.error(f"The saved conversations cannot be shown: {as_text(str(error))}")
            return
        if listing.total == 0:
            st.caption("Nothing saved yet. Chat, then press Save.")
        for summary in listing.shown:
            self.entry(summary)
        if listing.matching > len(listing.shown):
            st.caption(
                f"Showing {len(listing.shown)} of {listing.matching}. Type in the search box to find the others."
            )
        elif query.strip() and not listing.matching:
            st.caption("No conversation name contains that.")
        if query.strip():
            self.search_section(query)
        elif listing.archived:
            self.archived_section(listing.archived)

    def entry(self, summary: ConversationSummary) -> None:
        key, is_open = f"conv:{summary.id}", summary.id == self.open_id
        # Only the open conversation's entry has the ⋯ menu (open another to act on it): 20 entries
        # each with its menu cost every turn ~35 ms with 5,000 saved (turn_split, A/B), the issue's
        # whole budget for them; a plain button each costs a few.
        name = menu = st.container(horizontal=True, gap="small", vertical_alignment="center") if is_open else st
        short = summary.name if len(summary.name) <= LABEL_CHARS else summary.name[: LABEL_CHARS - 1] + "…"
        icon, tip = None, as_text(summary.name) if short != summary.name else None
        if is_open:
            icon = ":material/chat:"
        elif summary.archived:
            icon, tip = ":material/inventory_2:", f"Archived: {as_text(summary.name)}"
        elif summary.pinned:
            icon = ":material/push_pin:"
        name.button(
            as_text(short),
            key=f"{key}:open",
            type="primary" if is_open else "tertiary",
            icon=icon,
            help=tip,
            width="stretch",
            on_click=self.open,
            args=(summary.id,),
        )
        # The help differs with the flags, and so does the menu's widget id (help is part of it): Pin and
        # Archive move the entry, and the browser would open the menu again where it lands.
        pin, archive = ("Unpin" if summary.pinned else "Pin"), ("Unarchive" if summary.archived else "Archive")
        tip = f"{pin}, rename, {archive.lower()}, export or delete"
        if is_open:  # its items are drawn only while the menu is open
            popover = menu.popover("⋯", key=f"{key}:menu", help=tip, on_change="rerun")
            if popover.open:
                with popover:
                    self.menu_items(summary)
        panel = st.session_state.get(PANEL)
        if panel is None or panel[1] != summary.id:
            return
        {"rename": self.rename_panel, "export": self.export_panel, "delete": self.delete_panel}[panel[0]](summary)

    def menu_items(self, summary: ConversationSummary) -> None:
        key = f"conv:{summary.id}"
        pin, archive = ("Unpin" if summary.pinned else "Pin"), ("Unarchive" if summary.archived else "Archive")
        st.button(
            pin,
            key=f"{key}:pin",
            icon=":material/keep_off:" if summary.pinned else ":material/keep:",
            width="stretch",
            on_click=self.set_flag,
            args=(summary.id, "pinned", not summary.pinned),
        )
        for kind, icon in (("rename", ":material/edit:"), ("export", ":material/download:")):
            st.button(
                kind.title(),
                key=f"{key}:{kind}",
                icon=icon,
                width="stretch",
                on_click=self.show_panel,
                args=(kind, summary.id),
            )
        st.button(
            archive,
            key=f"{key}:archive",
            icon=":material/unarchive:" if summary.archived else ":material/archive:",
            width="stretch",
            on_click=self.set_flag,
            args=(summary.id, "archived", not summary.archived),
        )
        st.button(
            "Delete",
            key=f"{key}:delete",
            icon=":material/delete:",
            width="stretch",
            on_click=self.show_panel,
            args=("delete", summary.id),
        )

    def archived_section(self, count: int) -> None:
        with st.expander(f"Archived ({count})", icon=":material/inventory_2:"):
            try:
                shown, count = self.controller.archived()
            except StoreError as error:
                st.error(f"The archived conversations cannot be shown: {as_text(str(error))}")
                return
            for summary in shown:
                self.entry(summary)
            if count > len(shown):
                st.caption(f"Showing {len(shown)} of {count}. Search finds the others.")

    def open(self, conversation_id: str, message_id: str | None = None) -> None:
        try:
            conversation = self.controller.load(conversation_id)
        except StoreError as error:
            self.say("error", f"Not opened: {as_text(str(error))}")
            return
        if conversation is None:
            self.say("error", GONE)
            return
        self.close_panel()
        if message_id is not None and self.on_open_at is not None:
            self.on_open_at(conversation, message_id)
        else:
            self.on_open(conversation)

    def set_flag(self, conversation_id: str, flag: str, value: bool) -> None:
        st.session_state[f"conv:{conversation_id}:menu"] = False  # close the ⋯ menu it was chosen in
        st.session_state.pop(HITS, None)  # a hit may show the flag
        try:
            if flag == "pinned":
                changed = self.controller.pin(conversation_id, value)
            else:
                changed = self.controller.archive(conversation_id, value)
        except ConversationNotFound:
            self.say("error", GONE)
            return
        except StoreError as error:
            self.say("error", f"Not changed: {as_text(str(error))}")
            return
        done = {("pinned", True): "Pinned", ("pinned", False): "Unpinned", ("archived", True): "Archived"}
        self.say("toast", f"{done.get((flag, value), 'Unarchived')} “{as_text(changed.name)}”.")

    # search -------------------------------------------------------------------------------
    def search_section(self, query: str) -> None:
        st.caption("**In messages**")
        searched = st.session_state.get(HITS)
        if searched is not None and searched[0] == query:
            hits = searched[1]  # a rerun, maybe the one that answered a turn: no search in it
        else:
            try:
                with st.spinner("Searching… (the first search indexes every message, which can take a few seconds)"):
                    hits = self.controller.search(query, names=False)
            except (StoreError, SearchUnavailable) as error:
                st.error(f"Search is not available: {as_text(str(error))}")
                return
            st.session_state[HITS] = (query, hits)
        if not hits:
            st.caption("No message holds every word of that.")
        for hit in hits:
            self.hit(hit)

    def hit(self, hit: SearchHit) -> None:
        """The conversation's name, which opens it at the message, right over the snippet (as a search
        engine shows a page)."""
        name = hit.conversation_name
        more = f" · {hit.matches} messages match" if hit.matches > 1 else ""
        with st.container(gap=None):
            st.button(
                as_text(name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"),
                key=f"conv:hit:{hit.conversation_id}:{hit.message_id}",
                type="tertiary",
                icon=":material/inventory_2:" if hit.archived else ":material/subdirectory_arrow_right:",
                help="Archived. Open it at this message" if hit.archived else "Open it at this message",
                on_click=self.open,
                args=(hit.conversation_id, hit.message_id),
            )
            st.caption(f"{WHO.get(hit.role, as_text(hit.role))}: {highlighted(hit)}{more}")

    # rename, export, delete ---------------------------------------------------------------
    def rename_panel(self, summary: ConversationSummary) -> None:
        key = f"conv:{summary.id}"
        with st.form(f"{key}:rename-form", border=True):
            st.text_input("New name", value=summary.name, key=f"{key}:new-name", max_chars=100)
            self.notices(("rename", summary.id))
            left, right = st.columns(2)
            left.form_submit_button(
                "Confirm Rename",
                key=f"{key}:confirm-rename",
                type="primary",
                width="stretch",
                on_click=self.rename,
                args=(summary.id,),
            )
            right.form_submit_button("Cancel", key=f"{key}:cancel-rename", width="stretch", on_click=self.close_panel)

    def rename(self, conversation_id: str) -> None:
        new_name = st.session_state.get(f"conv:{conversation_id}:new-name", "")
        panel = ("rename", conversation_id)
        try:
            renamed = self.controller.rename(conversation_id, new_name)
        except ConversationNotFound:
            self.close_panel()
            self.say("error", GONE)
            return
        except NameTaken:
            self.say(
                "error", f"Another conversation is already named “{as_text(new_name)}”. Choose another name.", panel
            )
            return
        except StoreError as error:
            self.say("error", f"Not renamed: {as_text(str(error))}", panel)
            return
        self.close_panel()
        self.on_renamed(renamed)
        self.say("toast", f"Renamed to “{as_text(renamed.name)}”.")

    def export_panel(self, summary: ConversationSummary) -> None:
        key = f"conv:{summary.id}"
        with st.container(border=True):
            for kind, label in (("markdown", "Download Markdown"), ("json", "Download JSON")):
                try:
                    exported = self.controller.export(summary.id, kind)
                except StoreError as error:
                    st.error(f"Not exported: {as_text(str(error))}")
                    break
                if exported is None:
                    st.error(GONE)
                    break
                st.download_button(
                    label,
                    exported.data,
                    file_name=exported.file_name,
                    mime=exported.mime,
                    key=f"{key}:{kind}",
                    width="stretch",
                    # No rerun: a rerun that no longer draws the button (the panel closed) drops the
                    # JSON's deferred data, and a download racing it then fails. Close closes the panel.
                    on_click="ignore",
                )
                for sentence in exported.left_out:
                    st.caption(as_text(sentence))
            st.button("Close", key=f"{key}:cancel-export", width="stretch", on_click=self.close_panel)

    def delete_panel(self, summary: ConversationSummary) -> None:
        key = f"conv:{summary.id}"
        with st.container(border=True):
            st.warning(f"Delete “{as_text(summary.name)}”? This cannot be undone.")
            self.notices(("delete", summary.id))
            left, right = st.columns(2)
            left.button(
                "Confirm Delete",
                key=f"{key}:confirm-delete",
                type="primary",
                width="stretch",
                on_click=self.delete,
                args=(summary.id,),
            )
            right.button("Cancel", key=f"{key}:cancel-delete", width="stretch", on_click=self.close_panel)

    def delete(self, conversation_id: str) -> None:
        try:
            deleted = self.controller.delete(conversation_id)
        except StoreError as error:
            self.say("error", f"Not deleted: {as_text(str(error))}", ("delete", conversation_id))
            return
        self.close_panel()
        self.on_deleted(conversation_id)
        self.say("toast", "Deleted." if deleted else GONE)
        if deleted:
            from controller.cleanup import forget_unused_indexes

            forget_unused_indexes(resources.runtime())  # its files' index, unless another uses it

    # import -------------------------------------------------------------------------------
    def import_section(self) -> None:
        key = f"conv:import:{st.session_state.get(IMPORTS, 0)}"
        st.file_uploader(
            "Import",
            type=["json", "zip"],
            key=key,
            help="ChatGPT's Export data (the .zip as downloaded, or its conversations.json), an Open WebUI "
            "chat export, a bnaGPT export, or a whole conversations file.",
            on_change=self.import_file,
            args=(key,),
        )
        self.notices(("import", ""))

    def import_file(self, key: str) -> None:
        upload = st.session_state.get(key)
        if upload is None:
            return
        st.session_state[IMPORTS] = st.session_state.get(IMPORTS, 0) + 1  # a fresh, empty uploader
        st.session_state.pop(HITS, None)
        try:
            report = self.controller.import_file(upload.getvalue(), upload.name)
        except (ImportFailed, StoreError) as error:
            self.say("error", f"Nothing was imported: {as_text(str(error))}", ("import", ""))
            return
        lines = [as_text(report.summary), *(f"- {as_text(reason)}" for reason in report.skipped[:20])]
        self.say("info", "\n".join(lines), ("import", ""))


def highlighted(hit: SearchHit) -> str:
    """The hit's snippet as markdown: its text escaped, the matches highlighted by us."""
    out = []
    for text, match in hit.parts():
        escaped = as_text(text)  # the text is untrusted: every markdown character escaped
        if match:
            out.append(f":orange-background[**{escaped}**]")
        else:  # as_text trims; the spaces around a match must stay
            out.append((" " if text[:1].isspace() else "") + escaped + (" " if text[-1:].isspace() else ""))
    return "".join(out)
