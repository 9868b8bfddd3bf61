"""The chat pages: history, the input box, streamed answers, failures with a Retry button."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from controller.chat import ChatController
from model.message import Conversation, Message
from model.store import StoreError
from settings import Settings
from utils.errors import LocalModelFailed, ProviderError
from utils.text import as_text, inert_markdown, inert_stream
from view import resources
from view.sidebar import OPEN_KEY, ConversationSidebar


@dataclass(frozen=True)
class Failure:
    """A turn that did not complete: the question is kept, with whatever had arrived."""

    message: str
    partial: str = ""
    retryable: bool = True


# Messages drawn at first; "Show earlier messages" adds as many again.
SHOWN_MESSAGES = 60


class ChatView:
    title = "Chat"
    caption = ""
    remember = True
    key = "chat"

    def __call__(self) -> None:
        # The input is pinned to the bottom wherever it is called; reading it first lets a new
        # message go straight to the answering run instead of drawing the whole page once more.
        # While an answer streams it is disabled, so a new message cannot cut the answer off.
        prompt = st.chat_input("Message bnaGPT", key=f"{self.key}:input", disabled=self.pending)
        if prompt and prompt.strip():
            self.failure = None
            self.messages = [*self.messages, Message("user", prompt)]
            self.pending = True
            st.rerun()
        st.title(self.title)
        settings = resources.load_settings()
        info = resources.provider_info(settings)
        st.caption(f"{self.caption} Model: **{info.model}** via {info.label}.")
        if info.problem:
            st.error(info.problem)
        self.sidebar(settings)
        self.draw_history()
        self.draw_failure()
        if prompt is not None:
            st.toast("Type a message first.")
        elif self.pending:
            self.answer(settings)
            self.pending = False
            st.rerun()
        else:
            self.draw_usage(settings)

    # state ------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        return st.session_state.setdefault(f"{self.key}:messages", [])

    @messages.setter
    def messages(self, value: list[Message]) -> None:
        st.session_state[f"{self.key}:messages"] = value

    @property
    def pending(self) -> bool:
        """True while the last user message waits for its answer."""
        return bool(st.session_state.get(f"{self.key}:pending")) and bool(self.messages)

    @pending.setter
    def pending(self, value: bool) -> None:
        st.session_state[f"{self.key}:pending"] = value

    @property
    def failure(self) -> Failure | None:
        return st.session_state.get(f"{self.key}:failure")

    @failure.setter
    def failure(self, value: Failure | None) -> None:
        st.session_state[f"{self.key}:failure"] = value

    # drawing ----------------------------------------------------------------
    def sidebar(self, settings: Settings) -> None:
        with st.sidebar:
            if st.button("New chat", key=f"{self.key}:new", width="stretch"):
                self.messages = []
                self.failure = None
                self.pending = False
                st.session_state.pop(f"{self.key}:open", None)
                st.session_state.pop(f"{self.key}:shown", None)

    def draw_history(self) -> None:
        """The newest messages; older ones on request, so a 500-turn conversation opens at once."""
        shown = st.session_state.get(f"{self.key}:shown", SHOWN_MESSAGES)
        hidden = max(0, len(self.messages) - shown)
        if hidden:
            st.button(
                f"Show {min(hidden, SHOWN_MESSAGES)} earlier messages ({hidden} not shown)",
                key=f"{self.key}:earlier",
                on_click=lambda: st.session_state.update({f"{self.key}:shown": shown + SHOWN_MESSAGES}),
            )
        for message in self.messages[hidden:]:
            with st.chat_message(message.role):
                st.markdown(inert_markdown(message.content))

    def draw_usage(self, settings: Settings) -> None:
        """Tokens of the last answer, how full the window is, and what has left the model's view."""
        local = resources.local_for(settings)
        if not self.remember or not self.messages or (local is not None and local.state != "ready"):
            return
        try:
            usage = resources.chat_controller(settings).context_usage(self.messages)
        except ProviderError:
            return
        share = 100 * usage.tokens_in_view / usage.context_window
        text = (
            f"Last answer: {usage.last_answer_tokens:,} tokens · context window: "
            f"{usage.tokens_in_view:,} of {usage.context_window:,} tokens ({share:.0f}%)"
        )
        st.caption(text)
        if usage.messages_out_of_view:
            st.warning(
                f"The {usage.messages_out_of_view:,} oldest messages no longer fit in the model's context window: "
                "it answers from the newest ones only.",
                icon="📜",
            )

    def draw_failure(self) -> None:
        """Show the last failed turn, with a Retry button when asking again can help."""
        failure = self.failure
        if failure is None:
            return
        with st.chat_message("assistant"):
            if failure.partial:
                st.markdown(inert_markdown(failure.partial))
                st.caption("⚠️ Interrupted: this answer is incomplete and was not saved.")
            st.error(failure.message)
            if failure.retryable and self.messages and self.messages[-1].role == "user":
                st.button("Retry", key=f"{self.key}:retry-button", on_click=self._request_retry)

    def _request_retry(self) -> None:
        self.failure = None
        self.pending = True

    # a turn -----------------------------------------------------------------
    def answer(self, settings: Settings) -> None:
        """Answer the last user message in the history."""
        *history, question = self.messages
        self.failure = None
        controller = resources.chat_controller(settings)
        with st.chat_message("assistant"):
            if not self.ensure_model(settings):
                self.after_turn()  # the question is kept even though nothing could answer it
                return
            partial: list[str] = []
            stream = self.stream(controller, history, question.content)
            try:
                st.write_stream(inert_stream(_recording(stream, partial)))
            except ProviderError as error:
                self.failure = Failure(str(error), "".join(partial), error.retryable)
                self.after_turn()  # keeps the question; the broken answer is not saved
                return
        self.messages = [*self.messages, Message("assistant", "".join(partial))]
        self.after_turn()

    def stream(self, controller: ChatController, history: list[Message], text: str):  # type: ignore[no-untyped-def]
        if self.remember:
            return controller.stream_reply(history, text)
        return controller.stream_simple_reply(text)

    def ensure_model(self, settings: Settings) -> bool:
        """Start the embedded model if it is the provider (with progress); False if it failed."""
        local = resources.local_for(settings)
        if local is None or local.state == "ready":
            return True
        try:
            with st.spinner("Loading the embedded model… (first message only)"):
                local.start()
        except LocalModelFailed as error:
            self.failure = Failure(str(error), retryable=False)
            return False
        return True

    def after_turn(self) -> None:
        """Hook for pages that keep the messages after each turn, answered or not."""


def _recording(stream, into: list[str]):  # type: ignore[no-untyped-def]
    """Pass deltas through, keeping them, so a broken stream's text is not lost."""
    for delta in stream:
        into.append(delta)
        yield delta


class SimpleChatView(ChatView):
    title = "Simple Chatbot"
    caption = "Each answer sees only your current message."
    remember = False
    key = "simple"


class MemoryChatView(ChatView):
    title = "Chatbot With Memory"
    caption = "Every answer sees the whole conversation so far."
    remember = True
    key = "memory"

    @property
    def open_conversation(self) -> tuple[str, str] | None:
        """(id, name) of the saved conversation on screen, if any."""
        return st.session_state.get(OPEN_KEY)

    def sidebar(self, settings: Settings) -> None:
        super().sidebar(settings)
        opened = self.open_conversation
        if opened is not None:
            st.info(f"Conversation: {as_text(opened[1])}", icon="💾")
        ConversationSidebar(
            resources.conversations(settings),
            self.messages,
            resources.provider_info(settings).model,
            opened[0] if opened else None,
            self.show,
        )()

    def show(self, conversation: Conversation) -> None:
        """Put a saved conversation on screen; the next answer's memory is rebuilt from it."""
        self.messages = list(conversation.messages)
        self.failure = None
        self.pending = False
        st.session_state.pop(f"{self.key}:shown", None)
        st.session_state[OPEN_KEY] = (conversation.id, conversation.name)

    def after_turn(self) -> None:
        """Once saved or loaded, every turn is written back: closing the tab loses nothing."""
        opened = self.open_conversation
        if opened is None:
            return
        settings = resources.load_settings()
        try:
            saved = resources.conversations(settings).autosave(
                opened[0], opened[1], self.messages, resources.provider_info(settings).model
            )
        except StoreError as error:
            self.failure = Failure(
                f"This turn could not be saved ({error}). Press Save to keep the conversation.", retryable=False
            )
            return
        st.session_state[OPEN_KEY] = (saved.id, saved.name)
