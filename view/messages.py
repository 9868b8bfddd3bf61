"""How a chat's messages are drawn: the history, one message with its files, sources and code
runs, its actions (Copy, Edit, Regenerate, Continue) and the ‹ 2 / 3 › switch between versions."""

from __future__ import annotations

import json
from urllib.parse import quote

import streamlit as st

from controller.json_mode import read_json_answer
from controller.media import is_picture
from model.message import Message, branch_end
from utils.text import as_text, inert_markdown
from view import resources
from view.chat_state import Action, Failure
from view.copy_button import copy_button
from view.media_view import draw_made_pictures, draw_pictures, draw_read_aloud, draw_read_aloud_button

# Answers with a Copy button ready (each costs the browser on every run; see view/copy_button.py).
COPY_BUTTONS = 4
# Messages drawn at first; "Show earlier messages" adds as many again. Every message on screen is
# sent to the browser again on every run: in a 62-message conversation the first words of a turn
# came after 605-689 ms with 60 drawn, 372-408 ms with 30 (turn_split --open --messages 60).
SHOWN_MESSAGES = 30
# What one message may cost the page: longer ones (a pasted or imported book) show their start.
SHOWN_CHARS = 20_000
STATUS_TEXT = {
    "stopped": ":material/stop_circle: Stopped: you ended this answer here.",
    "repeating": ":material/repeat: stopped: the answer was repeating itself.",
    "length": ":material/content_cut: The answer reached its length limit.",
}
TOOL_NAMES = {
    "web_search": "Searched the web for",
    "documents": "Searched your files for",
    "run_code": "Ran code",
}


def link(url: str) -> str:
    """An http(s) address as a Markdown link target that cannot break out of the link."""
    return quote(url, safe=":/?#@!$&'*+,;=%~-._")


def draw_code_runs(message: Message) -> None:
    """The code an answer ran, what it printed and the images it saved, folded away."""
    for number, run in enumerate(r for r in message.tool_runs if r.tool == "run_code"):
        label = "Ran code" if run.ok else "Ran code (it failed)"
        with st.expander(label, icon=":material/code:", expanded=number == 0 and bool(run.images)):
            st.code(run.input, language="python")
            st.code(run.output or "(no output)", language="text", wrap_lines=True)
            for image in run.images:
                try:
                    st.image(resources.file_store().get(image))
                except (OSError, LookupError):
                    st.caption("An image this code saved is no longer stored.")


def draw_sources(message: Message) -> None:
    """The sources an answer cites, each with its passage on click, and what the tools did."""
    draw_code_runs(message)
    for run in message.tool_runs:
        if run.tool == "read_image":  # said openly: the answer comes from the text, not the picture
            found = "no text was found in it" if run.output == "no text found" else "it was given the text read from it"
            st.caption(
                f":material/image: The model cannot see pictures: {found if run.ok else 'it could not be read'} "
                f"(“{as_text(run.input[:200])}”)."
            )
    searches = [r for r in message.tool_runs if r.tool not in ("run_code", "read_image", "generate_image")]
    if not message.sources and not searches:
        return
    with st.expander(
        f"Sources ({len(message.sources)})" if message.sources else "Searches", icon=":material/menu_book:"
    ):
        for run in searches:
            verb = TOOL_NAMES.get(run.tool, run.tool)
            st.caption(
                f"{as_text(verb)} “{as_text(run.input[:200])}”" + ("" if run.ok else f": {as_text(run.output[:300])}")
            )
        for source in message.sources:
            title = as_text(source.title or source.location)
            if source.kind == "web" and source.url.startswith(("http://", "https://")):
                st.markdown(f"**[{source.number}]** [{title}]({link(source.url)})")
            else:
                st.markdown(f"**[{source.number}]** {as_text(source.location)}")
            if source.excerpt:
                st.caption(as_text(source.excerpt))


class MessagesMixin:
    """Part of ChatView: `key` names the page's state; `messages`, `tree`, `failure` and `request`
    are the chat's (see ChatView)."""

    key: str
    messages: list[Message]
    failure: Failure | None

    @property
    def tree(self) -> tuple[Message, ...]:
        raise NotImplementedError

    def request(self, action: Action) -> None:
        raise NotImplementedError

    def draw_history(self, hide_last: bool = False) -> None:
        """The newest messages; older ones on request, so a 500-turn conversation opens at once."""
        messages = self.messages[:-1] if hide_last else self.messages
        shown = st.session_state.get(f"{self.key}:shown", SHOWN_MESSAGES)
        hidden = max(0, len(messages) - shown)
        if hidden:
            st.button(
                f"Show {min(hidden, SHOWN_MESSAGES)} earlier messages ({hidden} not shown)",
                key=f"{self.key}:earlier",
                on_click=lambda: st.session_state.update({f"{self.key}:shown": shown + SHOWN_MESSAGES}),
            )
        last = len(messages) - 1
        answers = [n for n, m in enumerate(messages) if m.role == "assistant"]
        ready = COPY_BUTTONS - (messages[-1].role == "user" if messages else 0)  # an answer comes after a question
        self._copy_from = answers[-ready] if ready and len(answers) >= ready else 0
        self._branches = self.branches()
        for number, message in enumerate(messages[hidden:], hidden):
            with st.chat_message(message.role):
                self.draw_message(message, number, last=number == last and not hide_last)

    def branches(self) -> dict[str, list[str]]:
        """The ids of the replies to each message ("" for the roots), oldest first."""
        replies: dict[str, list[str]] = {}
        for message in self.tree:
            replies.setdefault(message.parent_id or "", []).append(message.id)
        return replies

    def draw_branch_switch(self, message: Message, number: int) -> None:
        """‹ 2 / 3 › for a message with other versions (an edited question, a regenerated answer)."""
        versions = getattr(self, "_branches", {}).get(message.parent_id or "", [])
        if len(versions) < 2 or message.id not in versions:
            return
        at = versions.index(message.id)
        key = f"{self.key}:branch:{number}"
        st.button(
            "‹",
            key=f"{key}:back",
            type="tertiary",
            disabled=at == 0,
            help="The previous version",
            on_click=self.switch_branch,
            args=(number, versions[at - 1]),
        )
        st.caption(f"{at + 1} / {len(versions)}", width="content")
        st.button(
            "›",
            key=f"{key}:next",
            type="tertiary",
            disabled=at == len(versions) - 1,
            help="The next version",
            on_click=self.switch_branch,
            args=(number, versions[min(at + 1, len(versions) - 1)]),
        )

    def switch_branch(self, number: int, version: str) -> None:
        """Show another version of message `number`, and the newest branch below it: what the chat
        shows is what the model remembers."""
        self.messages = [*self.messages[:number], *branch_end(self.tree, version)]
        self.failure = None
        st.session_state.pop(f"{self.key}:editing", None)

    def draw_message(self, message: Message, number: int, last: bool = False) -> None:
        """One message, in a single container (see `answer`): its text, how it ended, its actions."""
        with st.container():
            if message.role == "user" and st.session_state.get(f"{self.key}:editing") == number:
                self.draw_editor(message, number)
                return
            content = message.content
            if message.role == "system":
                st.caption(
                    ":material/info: Instructions for the model, from an imported file: the model follows them "
                    "in this conversation."
                )
            problem = self.draw_content(message)
            if len(content) > SHOWN_CHARS:
                st.caption(
                    f"Showing the first {SHOWN_CHARS:,} of {len(content):,} characters. The whole message is "
                    "kept: export the conversation to read all of it."
                )
            files = [a for a in message.attachments if not is_picture(a)]
            if files:
                st.caption(
                    "  ·  ".join(f":material/attach_file: {as_text(a.name)} ({a.size / 1024:,.0f} KB)" for a in files)
                )
            draw_pictures(message.attachments)
            draw_made_pictures(message)
            if message.status in STATUS_TEXT:
                st.caption(STATUS_TEXT[message.status])
            if message.sources or message.tool_runs:
                draw_sources(message)
            if message.role == "assistant":
                self.draw_answer_actions(message, number, last, problem)
            elif message.role == "user":
                with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                    st.button(
                        "Edit",
                        key=f"{self.key}:edit:{number}",
                        icon=":material/edit:",
                        type="tertiary",
                        help="Edit this message and ask again (the old version stays: switch back with ‹ ›).",
                        on_click=lambda: st.session_state.update({f"{self.key}:editing": number}),
                    )
                    self.draw_branch_switch(message, number)

    def draw_content(self, message: Message) -> str:
        """The message's text; a JSON answer as a formatted JSON block. Returns why a JSON answer
        does not parse ("" if it does, or is text)."""
        content = message.content
        if message.format == "json" and message.role == "assistant":
            parsed = read_json_answer(content)
            if not parsed.problem:
                shown = json.dumps(parsed.value, indent=2, ensure_ascii=False)
                st.code(shown[:SHOWN_CHARS], language="json", wrap_lines=True)
                return ""
            st.markdown(inert_markdown(content[:SHOWN_CHARS]) if content else "*(no text)*")
            return parsed.problem
        st.markdown(inert_markdown(content[:SHOWN_CHARS]) if content else "*(no text)*")
        return ""

    def draw_answer_actions(self, message: Message, number: int, last: bool, problem: str) -> None:
        """Copy, Regenerate (the last answer), Continue (an answer cut by the token cap), the model."""
        if problem:
            st.error(problem + (" Press Retry to ask again." if last else ""), icon=":material/data_object:")
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            self.draw_branch_switch(message, number)
            self.draw_copy(message, number)
            if last and message.status == "length":
                st.button(
                    "Continue",
                    key=f"{self.key}:continue",
                    icon=":material/play_arrow:",
                    on_click=self.request,
                    args=(Action("continue"),),
                )
            if last:
                st.button(
                    "Retry" if problem else "Regenerate",
                    key=f"{self.key}:regenerate",
                    icon=":material/refresh:",
                    help="A new answer to the same message (this one stays: switch back with ‹ ›).",
                    on_click=self.request,
                    args=(Action("regenerate"),),
                )
            if message.content.strip() and message.format != "json":
                draw_read_aloud_button(self.key, message)
            if message.model:
                st.caption(f":material/smart_toy: {as_text(message.model)}", help="The model that wrote this answer")
        draw_read_aloud(self.key, message)

    def draw_copy(self, message: Message, number: int) -> None:
        """Copy, for the newest answers; an older one's plain button brings it (and copies at once
        where the browser allows): a page of 30 answers would otherwise pay for 30 of them."""
        key = f"{self.key}:copy:{number}"
        asked = st.session_state.get(f"{self.key}:copy-asked") == number
        if number >= getattr(self, "_copy_from", 0) or asked:
            copy_button(message.content, key=key, now=asked)
            return
        st.button(
            "Copy",
            key=f"{key}:ask",
            icon=":material/content_copy:",
            type="tertiary",
            on_click=lambda: st.session_state.update({f"{self.key}:copy-asked": number}),
        )

    def draw_editor(self, message: Message, number: int) -> None:
        """A user message being edited: Send asks it again in place of the original."""
        field_key = f"{self.key}:edit-text"

        def send() -> None:
            text = st.session_state.get(field_key, "")
            if not text.strip():
                st.toast("Type a message first.")
                return
            self.request(Action("edit", text, number))

        with st.form(f"{self.key}:edit-form", border=False):
            st.text_area("Edit your message", value=message.content, key=field_key, height=120)
            with st.container(horizontal=True, gap="small"):
                st.form_submit_button("Send", icon=":material/send:", type="primary", on_click=send)
                st.form_submit_button("Cancel", on_click=lambda: st.session_state.pop(f"{self.key}:editing", None))
