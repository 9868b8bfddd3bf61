"""The chat pages: history, the input box, streamed answers with Stop, Continue and Retry.

A turn is answered in the run that received it: no extra script run between Enter and the
answer. The input stays enabled while an answer streams. Any click or a new message during an
answer makes Streamlit stop this run; the answer so far is then kept, marked "stopped", before
the next run begins (see `_stream`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence

import streamlit as st

from controller.chat import ChatController, Turn
from controller.media import ForModel
from controller.runtime import Runtime, warm_up
from controller.tools import (
    Findings,
    agent_tools,
    attach,
    budget_chars,
    combine,
    found_tokens,
    index_for,
    search_documents,
    search_the_web,
)
from model.assistant import Assistant
from model.message import Conversation, Message, as_path, merge, new_message_id, utc_now
from model.parts import Attachment
from model.store import StoreError
from utils.documents import DOCUMENT_TYPES, DocumentError
from utils.errors import LocalModelFailed, ProviderError
from utils.text import as_text, inert_markdown
from view import resources
from view.chat_state import Action, Failure, InFlight
from view.choices import ChoicesMixin
from view.media_view import MediaMixin, picture_types
from view.messages import SHOWN_CHARS as SHOWN_CHARS
from view.messages import MessagesMixin
from view.notices import naming

# While an answer streams the page is redrawn at most this often (the first words at once).
REDRAW_EVERY = 0.05
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


# Titles the model suggested for new chats (chat id → title), asked for after the first answer in
# a thread of their own; the Save form offers one when it is there.
_titles: dict[str, str] = {}
_titles_lock = threading.Lock()
TITLES_KEPT = 1_000


def ask_for_title(chat_id: str, controller: ChatController, messages: list[Message]) -> None:
    """Ask the model for a title off the answering path (the answer is already on screen)."""

    def ask() -> None:
        title = controller.suggest_title(messages)  # "" when the model fails: the first-message name stays
        if title:
            with _titles_lock:
                if len(_titles) >= TITLES_KEPT:
                    _titles.pop(next(iter(_titles)))
                _titles[chat_id] = title

    threading.Thread(target=ask, name="bnagpt-title", daemon=True).start()


def suggested_title(chat_id: str) -> str:
    """The model's title for this chat, or "" (not asked, not there yet, or nothing usable)."""
    with _titles_lock:
        return _titles.get(chat_id, "")


def sandbox_missing() -> str:
    """Why code cannot run here ("" when the sandbox works)."""
    from utils.sandbox import available

    return available() or ""


class ChatView(ChoicesMixin, MessagesMixin, MediaMixin):
    title = "Chat"
    caption = ""
    remember = True
    key = "chat"

    def __call__(self) -> None:
        runtime = resources.runtime()
        # The input is pinned to the bottom wherever it is called; reading it first lets the new
        # message be answered in this very run.
        settings = runtime.configured
        prompt = st.chat_input(
            "Message bnaGPT",
            key=f"{self.key}:input",
            accept_file="multiple",
            file_type=[*DOCUMENT_TYPES, *picture_types()],
            max_upload_size=max(settings.document_max_mb, settings.image_max_mb),
            accept_audio=True,
        )
        action = st.session_state.pop(f"{self.key}:action", None)
        if prompt is not None:
            self.forget_voice_note()
            text = prompt if isinstance(prompt, str) else prompt.text
            files = () if isinstance(prompt, str) else tuple((f.name, f.getvalue()) for f in prompt.files)
            audio = None if isinstance(prompt, str) else prompt.audio
            if audio is not None:
                self.take_voice_note(audio.getvalue(), text, files)  # shown for review, sent by the user
            elif text.strip() or files:
                action = Action("ask", text, files=files)
            else:
                st.toast("Type a message first.")
        st.title(self.title)
        runtime, assistant = self.draw_choices(runtime)
        info = runtime.provider()
        st.caption(f"{self.caption} Model: **{as_text(info.model)}** via {info.label}.")
        if info.provider == "local":
            st.caption(TINY_MODEL_NOTE)
        if info.problem:
            st.error(info.problem)
        self.draw_notice()
        if action is not None:
            self.failure = None
            action = self.apply(action)  # says now what became of files sent with a question
        else:
            self.draw_file_notes()  # and goes on saying it until the next question
        continuing = action is not None and action.kind == "continue" and self._can_continue()
        self.draw_history(hide_last=continuing)
        if action is not None and (action.kind != "continue" or continuing):
            self.answer(runtime, assistant, continuing)
        else:
            self.draw_failure()
            self.draw_voice_note()
            if not self.messages and st.session_state.get(f"{self.key}:voice") is None:
                self.draw_starters(assistant)
        if problem := st.session_state.get(f"{self.key}:save-problem"):
            st.error(problem, icon=":material/save:")
        self.draw_usage(runtime, assistant)
        self.sidebar(runtime)
        warm_up()  # once per process, after the page is drawn

    def apply(self, action: Action) -> Action | None:
        """Change the chat as `action` asks before it is answered; None for a stale action."""
        st.session_state.pop(f"{self.key}:editing", None)
        messages = self.messages
        if action.kind == "ask":
            st.session_state[f"{self.key}:file-notes"] = []
            attachments = self.store_files(action.files)
            if not action.text.strip() and not attachments:
                return None  # every file was refused (each said why), and there is no text
            text = (
                action.text if action.text.strip() else "Here are my files: " + ", ".join(a.name for a in attachments)
            )
            self.messages = [*messages, Message("user", text, attachments=tuple(attachments))]
        elif action.kind == "edit":
            # the edited question starts a new branch; the old one stays in the tree
            if not (0 <= action.index < len(messages) and messages[action.index].role == "user"):
                return None  # the chat changed under the editor (another chat was opened)
            self.messages = [*messages[: action.index], Message("user", action.text)]
        elif action.kind == "regenerate":
            if not messages or messages[-1].role != "assistant":
                return None
            self.messages = messages[:-1]  # the new answer becomes another version of the last one
        return action

    # the model, the assistant, JSON -------------------------------------------
    def store_files(self, files: tuple[tuple[str, bytes], ...]) -> list[Attachment]:
        """Check and store the files sent with a question; a file that cannot be read is named in
        one sentence and left out, the others go on."""
        from utils.images import sniff

        runtime = resources.runtime()
        settings = runtime.configured
        kept: list[Attachment] = []
        for name, data in files:
            if sniff(data) is not None:  # by its bytes: a PDF named .png is read as the PDF it is
                if (picture := self.store_picture(name, data, self.sees_pictures(runtime))) is not None:
                    kept.append(picture)
                continue
            claimed = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if data and claimed in picture_types():  # named as a picture, but its bytes are not one
                self.file_note(
                    "info", f"{as_text(name)} is not a picture: it is read as a document.", ":material/attach_file:"
                )
            try:
                attachment, notes = attach(data, name, settings)
            except (DocumentError, OSError) as error:
                self.file_note("error", as_text(naming(name, str(error))), ":material/attach_file:")
                continue
            for note in notes:
                self.file_note("info", as_text(naming(name, note)), ":material/attach_file:")
            kept.append(attachment)
        return kept

    def gather(
        self, runtime: Runtime, controller: ChatController, question: str, assistant: Assistant | None
    ) -> tuple[Findings, list[object]]:
        """The tools for this answer. A model that calls tools gets them (search its files, the
        web, run code) and decides; for one that cannot, the chat's files (always) and the web
        (when switched on) are searched for `question` before it answers."""
        from controller.agent import count_tokens
        from controller.knowledge import knowledge_of
        from controller.media import is_picture

        attachments = [a for m in self.messages for a in m.attachments if not is_picture(a)]
        knowledge = knowledge_of(assistant)
        tools = () if assistant is None else assistant.tools
        web = bool(st.session_state.get(f"{self.key}:web")) or "web_search" in tools
        # the Simple page asks the model directly, without the agent: it gets what was found before
        calls_tools = controller.calls_tools and self.remember
        code = calls_tools and (bool(st.session_state.get(f"{self.key}:code")) or "run_code" in tools)
        draws = calls_tools and self.image_endpoint(runtime)
        if not attachments and not knowledge and not web and not code and not draws:
            return Findings(), []
        window = controller.context_window()
        embedded = runtime.local is not None  # reads prompts slowly: given less
        index, problems = None, []
        if attachments or knowledge:
            index, problems = self.indexes(attachments, knowledge, runtime)
        if code and (missing := sandbox_missing()):
            problems.append(missing)
            code = False
        if calls_tools:
            findings = Findings(problems=problems)
            given = agent_tools(
                findings,
                settings=runtime.settings,
                budget=budget_chars(window, embedded),
                web=web,
                code=code,
                attachments=attachments,
                index=index,
                count_tokens=count_tokens,
            )
            if draws:
                from controller.images import image_tool

                given.append(image_tool(runtime.settings, findings.runs.append))
            return findings, given
        found = [Findings(problems=problems)]
        if index is not None:
            found.append(search_documents(question, index, found_tokens(window, embedded), count_tokens))
        if web:
            with st.status("Searching the web…"):
                found.append(search_the_web(question, runtime.settings, budget_chars(window, embedded)))
        return combine(*found), []

    @staticmethod
    def indexes(attachments: list[Attachment], knowledge: list[Attachment], runtime: Runtime):  # type: ignore[no-untyped-def]
        """The chat's own files and the assistant's knowledge, searchable as one (each its own
        index: the assistant's is built once, at its Save, and shared by all its chats)."""
        from controller.documents import Indexes

        found, problems = [], []
        for files, label, what in (
            (attachments, "Reading your files…", "Your files"),
            (knowledge, "Reading the assistant's files…", "The assistant's files"),
        ):
            if not files:
                continue
            with st.status(label) as status:
                try:
                    found.append(index_for(files, runtime.configured, lambda _, text: status.update(label=text)))
                except (DocumentError, OSError, LookupError, RuntimeError) as error:
                    problems.append(f"{what} could not be searched: {error}")
        return (Indexes(*found) if found else None), problems

    # state ------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        """The chat on screen: the path through its tree that the model remembers."""
        return st.session_state.setdefault(f"{self.key}:messages", [])

    @messages.setter
    def messages(self, value: list[Message]) -> None:
        """Show `value`; it joins the tree, where the branches it replaces stay (Edit, Regenerate)."""
        path = as_path(value)
        st.session_state[f"{self.key}:messages"] = path
        st.session_state[f"{self.key}:tree"] = merge(self.tree, path)

    @property
    def found_for(self) -> tuple[str, int]:
        """The last answer's id and the tokens of found text its model was given (sources, tool results)."""
        return st.session_state.get(f"{self.key}:found-tokens", ("", 0))

    @found_for.setter
    def found_for(self, value: tuple[str, int]) -> None:
        st.session_state[f"{self.key}:found-tokens"] = value

    @property
    def tree(self) -> tuple[Message, ...]:
        """Every message of the chat, every branch, oldest first."""
        return st.session_state.get(f"{self.key}:tree", ())

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

    def put_on_screen(self, messages: list[Message], tree: tuple[Message, ...] = ()) -> None:
        """Replace the chat on screen (a new chat, or a conversation opened with its tree)."""
        st.session_state[f"{self.key}:tree"] = tree
        self.messages = messages
        self.failure = None
        st.session_state[f"{self.key}:chat-id"] = uuid.uuid4().hex
        st.session_state.pop(f"{self.key}:shown", None)
        for state in ("notice", "action", "save-problem", "file-notes"):
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

    def draw_starters(self, assistant: Assistant | None) -> None:
        """An empty chat: a greeting and prompts to start from (an assistant's own, if it has any)."""
        with st.chat_message("assistant"):
            if assistant is None:
                st.markdown(GREETING)
                starters: tuple[str, ...] = STARTERS
            else:
                starters = assistant.starters
                hello = f"Hi! I'm **{as_text(assistant.name)}**."
                st.markdown(hello + (" Start with one of these, or ask anything:" if starters else " Ask away."))
            columns = st.columns(2)
            for number, starter in enumerate(starters):
                columns[number % 2].button(
                    starter,
                    key=f"{self.key}:starter:{number}",
                    width="stretch",
                    on_click=self.request,
                    args=(Action("ask", starter),),
                )

    def draw_usage(self, runtime: Runtime, assistant: Assistant | None) -> None:
        """Tokens of the last answer, how full the window is, and what has left the model's view."""
        local = runtime.local
        if not self.remember or not self.messages or (local is not None and local.state != "ready"):
            return
        try:
            usage = runtime.chat(assistant).context_usage(self.messages)
        except ProviderError:
            return
        answer_id, found = self.found_for
        found = found if self.messages[-1].id == answer_id else 0  # known only for this session's last answer
        share = 100 * (usage.tokens_in_view + found) / usage.context_window
        text = (
            f"Last answer: {usage.last_answer_tokens:,} tokens · context window: "
            f"{usage.tokens_in_view + found:,} of {usage.context_window:,} tokens ({share:.0f}%)"
        )
        if found:
            text += f", {found:,} of them found in files or on the web for that answer"
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
    def answer(self, runtime: Runtime, assistant: Assistant | None, continuing: bool) -> None:
        """Answer the last user message (or continue the last answer), streaming it with a Stop button."""
        if not self.messages:
            return
        *before, last = self.messages
        if not continuing and last.role != "user":
            return  # nothing to answer (a stale Retry)
        helper = assistant.id if assistant else ""
        if continuing:
            flight = InFlight(self.chat_id, before, self.open_conversation, self.tree, helper, continued=last)
        else:
            flight = InFlight(self.chat_id, list(self.messages), self.open_conversation, self.tree, helper)
        with st.chat_message("assistant"):
            if not continuing and self.picture_mode():
                self.answer_with_picture(flight)
                return
            if not self.ensure_model(runtime):
                self.finish(flight, None)  # the question is kept (and saved) though nothing could answer
                return
            controller = runtime.chat(assistant, self.json_mode(assistant))
            # The body first and Stop after it: the same layout as a drawn message (one container
            # at the top), so the next run redraws this answer in place instead of beside it.
            body = st.empty()
            stop = st.empty()
            findings: Findings | None = None
            tools: list[object] = []
            media: ForModel | None = None
            if not continuing:
                with body.container():
                    findings, tools = self.gather(runtime, controller, flight.messages[-1].content, assistant)
                    media = self.for_model(flight.messages, controller)
                    findings.runs.extend(media.runs)  # "read the text in the picture": kept with the answer
                    for problem in [*findings.problems, *media.problems]:
                        st.warning(as_text(problem), icon=":material/travel_explore:")
            turn = self.turn(controller, flight, findings, tools, media)
            stop.button("Stop", key=f"{self.key}:stop", icon=":material/stop_circle:")
            try:
                self._stream(turn, body, controller.json_mode)
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
                self.finish(flight, turn, controller)
                raise
            stop.empty()
            answer = self.finish(flight, turn, controller)
            from controller.agent import count_tokens

            self.found_for = (answer.id, turn.findings.given_tokens(count_tokens))
            self._branches = self.branches()  # the answer may be a new version of an earlier one
            if self.remember and answer.status == "complete" and len(self.messages) == 2:
                ask_for_title(flight.chat_id, controller, self.messages)
            with body:
                self.draw_message(answer, len(self.messages) - 1, last=True)

    def turn(
        self,
        controller: ChatController,
        flight: InFlight,
        findings: Findings | None = None,
        tools: Sequence[object] = (),
        media: ForModel | None = None,
    ) -> Turn:
        if flight.continued is not None:
            return controller.continue_reply(flight.messages, flight.continued)
        *history, question = media.messages if media is not None else flight.messages
        pictures = media.pictures if media is not None else {}
        if self.remember:
            return controller.reply(history, question.content, findings, tools, pictures, pictures.get(question.id, ()))
        return controller.simple_reply(question.content, findings, pictures.get(question.id, ()))

    def for_model(self, messages: list[Message], controller: ChatController) -> ForModel:
        """The chat as the model is sent it: pictures for one that sees, their text for one that
        cannot (read now if it was not yet: seconds, with a spinner)."""
        from controller.media import for_model, is_picture

        settings = resources.runtime().configured
        if controller.sees_pictures or not any(is_picture(a) for m in messages for a in m.attachments):
            return for_model(messages, controller.sees_pictures, settings)
        with st.spinner("Reading the text in the pictures…"):
            return for_model(messages, False, settings)

    def picture_mode(self) -> bool:
        return bool(st.session_state.get(f"{self.key}:image"))

    def answer_with_picture(self, flight: InFlight) -> None:
        """Answer the question with a picture made from it (the Image switch is on)."""
        run, problem = self.make_picture(flight.messages[-1].content)
        if run is None:
            from utils.image_generation import NOT_CONFIGURED

            self.failure = Failure(problem, retryable=problem != NOT_CONFIGURED)
            self.finish(flight, None)  # the question is kept
            self.draw_failure_body(self.failure)
            return
        settings = resources.runtime().configured
        said = "Here is the picture."
        if run.output:
            said += f" The image service drew it from this prompt: {run.output}"
        made = Message("assistant", said, model=settings.image_model or "image endpoint", tool_runs=(run,))
        answer = self.finish(flight, None, made=made)
        self.draw_message(answer, len(self.messages) - 1, last=True)

    def sees_pictures(self, runtime: Runtime) -> bool:
        return runtime.sees_pictures

    @staticmethod
    def image_endpoint(runtime: Runtime) -> bool:
        from utils.image_generation import available

        return available(runtime.configured)

    @staticmethod
    def _stream(turn: Turn, body, json_mode: bool = False) -> None:  # type: ignore[no-untyped-def]
        """Draw the answer as it arrives: the first words at once, then at most every REDRAW_EVERY."""
        if json_mode:  # JSON as it arrives, unformatted, in a code block

            def draw(text: str) -> None:
                body.code(text + " ▍", language="json", wrap_lines=True)
        else:

            def draw(text: str) -> None:
                body.markdown(inert_markdown(text) + " ▍")

        draw(turn.prefix)
        drawn = 0.0
        for _ in turn:
            now = time.monotonic()
            if now - drawn >= REDRAW_EVERY:
                draw(turn.text)
                drawn = now

    def finish(
        self,
        flight: InFlight,
        turn: Turn | None,
        controller: ChatController | None = None,
        made: Message | None = None,
    ) -> Message:
        """Keep the answer (`turn`'s, or one `made` without a model) with the chat it belongs to;
        save it if that chat is saved."""
        answer = made
        if turn is not None:
            answer = Message(
                "assistant",
                turn.text,
                flight.continued.created_at if flight.continued is not None else utc_now(),
                turn.status or "stopped",
                id=flight.continued.id if flight.continued is not None else new_message_id(),
                model=controller.model if controller is not None else "",
                format="json" if controller is not None and controller.json_mode else "text",
                sources=tuple(turn.findings.sources),
                tool_runs=tuple(turn.findings.runs),
            )
        kept = answer or flight.continued  # a failed Continue keeps the answer it was continuing
        messages = as_path(flight.messages + ([kept] if kept is not None else []))
        if flight.chat_id == self.chat_id:
            self.messages = messages
        self.save(flight.open, [*flight.tree, *messages], flight.assistant_id)
        return messages[-1] if answer is not None else flight.messages[-1]  # as placed in the tree

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

    def save(self, conversation: tuple[str, str] | None, messages: list[Message], assistant_id: str = "") -> None:
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

    def put_on_screen(self, messages: list[Message], tree: tuple[Message, ...] = ()) -> None:
        super().put_on_screen(messages, tree)
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
            st.session_state.get(f"{self.key}:assistant", ""),
            on_open_at=self.show_at,
            tree=self.tree,
            suggested_name=suggested_title(self.chat_id),
        )()

    def show_at(self, conversation: Conversation, message_id: str) -> None:
        """Open a conversation on the branch that holds `message_id` (a search hit)."""
        self.show(conversation, conversation.leaf_under(message_id))

    def show(self, conversation: Conversation, leaf: str | None = None) -> None:
        """Put a saved conversation on screen (the branch ending at `leaf`, else the one shown last),
        with its assistant; the next answer's memory is rebuilt from it."""
        self.put_on_screen(list(conversation.path(leaf)), conversation.messages)
        st.session_state[OPEN_KEY] = (conversation.id, conversation.name)
        helper = conversation.assistant_id
        if helper and resources.runtime().assistants().get(helper) is None:
            st.session_state[f"{self.key}:notice"] = (
                "This conversation's assistant was deleted; the default assistant answers from now on."
            )
            helper = ""
        st.session_state[f"{self.key}:assistant"] = helper

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

    def save(self, conversation: tuple[str, str] | None, messages: list[Message], assistant_id: str = "") -> None:
        """Once saved or loaded, every turn is written back: closing the tab loses nothing."""
        if conversation is None:
            return
        runtime = resources.runtime().choosing(st.session_state.get(f"{self.key}:model", ""))
        try:
            saved = runtime.conversations().autosave(
                conversation[0], conversation[1], messages, runtime.provider().model, assistant_id
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
