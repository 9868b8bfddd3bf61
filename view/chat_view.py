"""The chat pages: history, the input box, streamed answers with Stop, Continue and Retry.

A turn is answered in the run that received it: no extra script run between Enter and the
answer. The input stays enabled while an answer streams. Any click or a new message during an
answer makes Streamlit stop this run; the answer so far is then kept, marked "stopped", before
the next run begins (see `_stream`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

import streamlit as st

from controller.chat import ChatController, Turn
from controller.runtime import Runtime, warm_up
from model.message import Conversation, Message
from model.store import StoreError
from utils.errors import LocalModelFailed, ProviderError
from utils.text import as_text, inert_markdown
from view import resources


@dataclass(frozen=True)
class Failure:
    """A turn that did not complete: the question is kept, with whatever had arrived."""

    message: str
    partial: str = ""
    retryable: bool = True


@dataclass(frozen=True)
class Action:
    """What the user asked for in this run: a new question, Retry of the last, or Continue."""

    kind: Literal["ask", "retry", "continue"]
    text: str = ""


@dataclass(frozen=True)
class InFlight:
    """The chat an answer belongs to, fixed when it starts: where the answer is kept and
    saved, even if a click swaps the chat on screen before the answer is finished."""

    chat_id: str
    messages: list[Message]  # everything before the answer
    open: tuple[str, str] | None  # the saved conversation (id, name), if any
    continued: Message | None = None  # the answer being continued, if any
    started: float = field(default_factory=time.monotonic)


# Messages drawn at first; "Show earlier messages" adds as many again.
SHOWN_MESSAGES = 60
# What one message may cost the page: longer ones (a pasted or imported book) show their start.
SHOWN_CHARS = 20_000
# While an answer streams the page is redrawn at most this often (the first words at once).
REDRAW_EVERY = 0.05
STATUS_TEXT = {
    "stopped": ":material/stop_circle: Stopped: you ended this answer here.",
    "repeating": ":material/repeat: stopped: the answer was repeating itself.",
    "length": ":material/content_cut: The answer reached its length limit.",
}
GREETING = "Hi! I'm bnaGPT. Ask me anything, or start with one of these:"
STARTERS = (
    "Write a haiku about autumn leaves",
    "Explain what a black hole is in two sentences",
    "Give me three ideas for a rainy Sunday",
    "My name is Sam and I love hiking. What should I pack for a day hike?",
)
TINY_MODEL_NOTE = (
    "The built-in model is a tiny demo model (135M parameters): fast and offline, but it often gets "
    "things wrong and forgets. For good answers, choose a capable model on the **Models** page "
    "(Ollama, a downloaded model, or Groq)."
)


class ChatView:
    title = "Chat"
    caption = ""
    remember = True
    key = "chat"

    def __call__(self) -> None:
        runtime = resources.runtime()
        # The input is pinned to the bottom wherever it is called; reading it first lets the new
        # message be answered in this very run.
        prompt = st.chat_input("Message bnaGPT", key=f"{self.key}:input")
        action = st.session_state.pop(f"{self.key}:action", None)
        if prompt is not None:
            if prompt.strip():
                action = Action("ask", prompt)
            else:
                st.toast("Type a message first.")
        st.title(self.title)
        info = runtime.provider()
        st.caption(f"{self.caption} Model: **{as_text(info.model)}** via {info.label}.")
        if info.provider == "local":
            st.caption(TINY_MODEL_NOTE)
        if info.problem:
            st.error(info.problem)
        self.draw_notice()
        if action is not None:
            self.failure = None
        if action is not None and action.kind == "ask":
            self.messages = [*self.messages, Message("user", action.text)]
        continuing = action is not None and action.kind == "continue" and self._can_continue()
        self.draw_history(hide_last=continuing)
        if action is not None and (action.kind != "continue" or continuing):
            self.answer(runtime, continuing)
        else:
            self.draw_failure()
            if not self.messages:
                self.draw_starters()
        if problem := st.session_state.get(f"{self.key}:save-problem"):
            st.error(problem, icon=":material/save:")
        self.draw_usage(runtime)
        self.sidebar(runtime)
        warm_up()  # once per process, after the page is drawn

    # state ------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        return st.session_state.setdefault(f"{self.key}:messages", [])

    @messages.setter
    def messages(self, value: list[Message]) -> None:
        st.session_state[f"{self.key}:messages"] = value

    @property
    def chat_id(self) -> str:
        """Changes whenever another chat is put on screen (New chat, opening a conversation)."""
        return st.session_state.setdefault(f"{self.key}:chat-id", uuid.uuid4().hex)

    @property
    def failure(self) -> Failure | None:
        return st.session_state.get(f"{self.key}:failure")

    @failure.setter
    def failure(self, value: Failure | None) -> None:
        st.session_state[f"{self.key}:failure"] = value

    def put_on_screen(self, messages: list[Message]) -> None:
        """Replace the chat on screen (a new chat, or a conversation opened)."""
        self.messages = messages
        self.failure = None
        st.session_state[f"{self.key}:chat-id"] = uuid.uuid4().hex
        st.session_state.pop(f"{self.key}:shown", None)
        for state in ("notice", "action", "save-problem"):
            st.session_state.pop(f"{self.key}:{state}", None)

    def request(self, action: Action) -> None:
        """For buttons' on_click: the next run performs `action`."""
        st.session_state[f"{self.key}:action"] = action

    def _can_continue(self) -> bool:
        return bool(self.messages) and self.messages[-1].role == "assistant" and self.messages[-1].status == "length"

    # drawing ----------------------------------------------------------------
    def sidebar(self, runtime: Runtime) -> None:
        with st.sidebar:
            st.button("New chat", key=f"{self.key}:new", width="stretch", on_click=self.put_on_screen, args=([],))

    def draw_notice(self) -> None:
        if notice := st.session_state.get(f"{self.key}:notice"):
            st.info(notice, icon=":material/info:")

    def draw_starters(self) -> None:
        """An empty chat: a greeting and example prompts to start from."""
        with st.chat_message("assistant"):
            st.markdown(GREETING)
            columns = st.columns(2)
            for number, starter in enumerate(STARTERS):
                columns[number % 2].button(
                    starter,
                    key=f"{self.key}:starter:{number}",
                    width="stretch",
                    on_click=self.request,
                    args=(Action("ask", starter),),
                )

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
        for number, message in enumerate(messages[hidden:], hidden):
            with st.chat_message(message.role):
                self.draw_message(message, last=number == last and not hide_last)

    def draw_message(self, message: Message, last: bool = False) -> None:
        """One message, in a single container (see `answer`), with how it ended and Continue."""
        with st.container():
            content = message.content
            if message.role == "system":
                st.caption(
                    ":material/info: Instructions for the model, from an imported file: the model follows them "
                    "in this conversation."
                )
            st.markdown(inert_markdown(content[:SHOWN_CHARS]) if content else "*(no text)*")
            if len(content) > SHOWN_CHARS:
                st.caption(
                    f"Showing the first {SHOWN_CHARS:,} of {len(content):,} characters. The whole message is "
                    "kept: export the conversation to read all of it."
                )
            if message.status in STATUS_TEXT:
                st.caption(STATUS_TEXT[message.status])
            if last and message.status == "length":
                st.button(
                    "Continue",
                    key=f"{self.key}:continue",
                    icon=":material/play_arrow:",
                    on_click=self.request,
                    args=(Action("continue"),),
                )

    def draw_usage(self, runtime: Runtime) -> None:
        """Tokens of the last answer, how full the window is, and what has left the model's view."""
        local = runtime.local
        if not self.remember or not self.messages or (local is not None and local.state != "ready"):
            return
        try:
            usage = runtime.chat().context_usage(self.messages)
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
                icon=":material/history:",
            )

    def draw_failure(self) -> None:
        """Show the last failed turn, with a Retry button when asking again can help."""
        if self.failure is not None:
            with st.chat_message("assistant"):
                self.draw_failure_body(self.failure)

    def draw_failure_body(self, failure: Failure) -> None:
        """What arrived, the sentence and Retry, in one container like any message."""
        with st.container():
            if failure.partial:
                st.markdown(inert_markdown(failure.partial))
                st.caption(":material/warning: Interrupted: this answer is incomplete and was not saved.")
            st.error(failure.message)
            if failure.retryable and self.messages and self.messages[-1].role == "user":
                st.button("Retry", key=f"{self.key}:retry-button", on_click=self.request, args=(Action("retry"),))

    # a turn -----------------------------------------------------------------
    def answer(self, runtime: Runtime, continuing: bool) -> None:
        """Answer the last user message (or continue the last answer), streaming it with a Stop button."""
        if not self.messages:
            return
        *before, last = self.messages
        if not continuing and last.role != "user":
            return  # nothing to answer (a stale Retry)
        if continuing:
            flight = InFlight(self.chat_id, before, self.open_conversation, continued=last)
        else:
            flight = InFlight(self.chat_id, list(self.messages), self.open_conversation)
        with st.chat_message("assistant"):
            if not self.ensure_model(runtime):
                self.finish(flight, None)  # the question is kept (and saved) though nothing could answer
                return
            controller = runtime.chat()
            turn = self.turn(controller, flight)
            # The body first and Stop after it: the same layout as a drawn message (one container
            # at the top), so the next run redraws this answer in place instead of beside it.
            body = st.empty()
            stop = st.empty()
            stop.button("Stop", key=f"{self.key}:stop", icon=":material/stop_circle:")
            try:
                self._stream(turn, body)
            except ProviderError as error:
                stop.empty()
                self.failure = Failure(str(error), turn.text, error.retryable)
                self.finish(flight, None)  # the question is kept; a broken answer is not saved
                with body:
                    self.draw_failure_body(self.failure)
                return
            except BaseException:
                # Streamlit stops this run for a click or a new message (or the session ends):
                # keep the answer so far, marked stopped, before the next run begins.
                turn.stop()
                self.finish(flight, turn)
                raise
            stop.empty()
            answer = self.finish(flight, turn)
            with body:
                self.draw_message(answer, last=True)

    def turn(self, controller: ChatController, flight: InFlight) -> Turn:
        if flight.continued is not None:
            return controller.continue_reply(flight.messages, flight.continued)
        *history, question = flight.messages
        if self.remember:
            return controller.reply(history, question.content)
        return controller.simple_reply(question.content)

    @staticmethod
    def _stream(turn: Turn, body) -> None:  # type: ignore[no-untyped-def]
        """Draw the answer as it arrives: the first words at once, then at most every REDRAW_EVERY."""
        body.markdown(inert_markdown(turn.prefix) + " ▍" if turn.prefix else "▍")
        drawn = 0.0
        for _ in turn:
            now = time.monotonic()
            if now - drawn >= REDRAW_EVERY:
                body.markdown(inert_markdown(turn.text) + " ▍")
                drawn = now

    def finish(self, flight: InFlight, turn: Turn | None) -> Message:
        """Keep the answer with the chat it belongs to; save it if that chat is saved."""
        answer = Message("assistant", turn.text, status=turn.status or "stopped") if turn else None
        if answer is not None and flight.continued is not None:
            answer = Message("assistant", answer.content, flight.continued.created_at, answer.status)
        kept = answer or flight.continued  # a failed Continue keeps the answer it was continuing
        messages = flight.messages + ([kept] if kept is not None else [])
        if flight.chat_id == self.chat_id:
            self.messages = messages
        self.save(flight.open, messages)
        return answer if answer is not None else flight.messages[-1]

    def ensure_model(self, runtime: Runtime) -> bool:
        """Start the embedded model if it is the provider (with progress); False if it failed."""
        local = runtime.local
        if local is None or local.state == "ready":
            return True
        try:
            with st.spinner("Loading the embedded model… (first message only)"):
                local.start()
        except LocalModelFailed as error:
            self.failure = Failure(str(error), retryable=False)
            self.draw_failure_body(self.failure)
            return False
        return True

    @property
    def open_conversation(self) -> tuple[str, str] | None:
        """(id, name) of the saved conversation on screen, if any (only the memory page saves)."""
        return None

    def save(self, conversation: tuple[str, str] | None, messages: list[Message]) -> None:
        """Pages that keep conversations write each turn back (see MemoryChatView)."""


class SimpleChatView(ChatView):
    title = "Simple Chatbot"
    caption = "Each answer sees only your current message."
    remember = False
    key = "simple"


OPEN_KEY = "memory:open"  # session state: (id, name) of the saved conversation on screen


class MemoryChatView(ChatView):
    title = "Chatbot With Memory"
    caption = "Every answer sees the whole conversation so far."
    remember = True
    key = "memory"

    @property
    def open_conversation(self) -> tuple[str, str] | None:
        return st.session_state.get(OPEN_KEY)

    def put_on_screen(self, messages: list[Message]) -> None:
        super().put_on_screen(messages)
        st.session_state.pop(OPEN_KEY, None)

    def sidebar(self, runtime: Runtime) -> None:
        from view.sidebar import ConversationSidebar  # the sidebar only exists on this page

        super().sidebar(runtime)
        opened = self.open_conversation
        with st.sidebar:
            if opened is not None:
                st.info(f"Conversation: {as_text(opened[1])}", icon=":material/save:")
        ConversationSidebar(
            runtime.conversations(),
            self.messages,
            runtime.provider().model,
            opened[0] if opened else None,
            self.show,
            self.renamed,
            self.deleted,
        )()

    def show(self, conversation: Conversation) -> None:
        """Put a saved conversation on screen; the next answer's memory is rebuilt from it."""
        self.put_on_screen(list(conversation.messages))
        st.session_state[OPEN_KEY] = (conversation.id, conversation.name)

    def renamed(self, conversation: Conversation) -> None:
        opened = self.open_conversation
        if opened is not None and opened[0] == conversation.id:
            st.session_state[OPEN_KEY] = (conversation.id, conversation.name)

    def deleted(self, conversation_id: str) -> None:
        opened = self.open_conversation
        if opened is not None and opened[0] == conversation_id:
            st.session_state.pop(OPEN_KEY, None)
            st.session_state[f"{self.key}:notice"] = (
                "The conversation on screen was deleted. The chat stays here but is no longer saved: "
                "press Save to keep it."
            )

    def save(self, conversation: tuple[str, str] | None, messages: list[Message]) -> None:
        """Once saved or loaded, every turn is written back: closing the tab loses nothing."""
        if conversation is None:
            return
        runtime = resources.runtime()
        try:
            saved = runtime.conversations().autosave(
                conversation[0], conversation[1], messages, runtime.provider().model
            )
        except StoreError as error:
            # shown under the chat until a save works again; the chat on screen is kept meanwhile
            st.session_state[f"{self.key}:save-problem"] = (
                f"This turn could not be saved: {as_text(str(error))} The chat stays on screen; it is saved "
                "with the next turn once that is fixed."
            )
            return
        st.session_state.pop(f"{self.key}:save-problem", None)
        if self.open_conversation is not None and self.open_conversation[0] == saved.id:
            st.session_state[OPEN_KEY] = (saved.id, saved.name)
