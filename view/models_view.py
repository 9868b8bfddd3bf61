"""The Models page: which model answers, and ways to a better one (download, a file, Ollama, Groq)."""

from __future__ import annotations

import time

import streamlit as st

from controller.models import DownloadFailed, ModelChoiceError, ModelFileError, ModelOption, ModelsController
from model.preferences import PreferencesError
from settings import Settings
from utils.gguf import Recommended
from utils.text import as_text
from view import resources

CHOICE_KEY = "models:choice"
FLASH_KEY = "models:flash"  # (kind, sentence) to show once, from a callback or before a rerun
PROGRESS_EVERY = 0.1  # seconds between progress bar updates

WHERE = {
    "local": "on this machine, by the embedded llama.cpp server",
    "ollama": "by Ollama",
    "groq": "by Groq, over the internet",
    "openai": "by the OpenAI-compatible server",
}

EXPECTATIONS = (
    "The bundled model, SmolLM2-135M, is a tiny demo: it answers in a blink on any CPU, but it often gets "
    "facts wrong, loses the thread of longer questions and cannot do sums. For answers you can rely on, use "
    "a bigger model: download one below (0.4–2 GB; the 1–2 GB ones are clearly better and still run on a "
    "laptop CPU), use [Ollama](https://ollama.com) if it runs on this machine, or "
    "[Groq](https://console.groq.com/keys) (a free key; large models, answers leave your machine)."
)


class ModelsView:
    def __call__(self) -> None:
        st.title("Models")
        settings = resources.load_settings()
        controller = ModelsController(settings)
        st.write(EXPECTATIONS)
        self.flash()
        self.choice_section(controller)
        self.ollama_section(controller, settings)
        self.local_section(controller)
        self.add_section(controller)
        self.download_section(controller)
        self.recommended_section(controller)

    def flash(self) -> None:
        kind, text = st.session_state.pop(FLASH_KEY, ("", ""))
        if kind == "success":
            st.success(as_text(text))
        elif kind == "error":
            st.error(as_text(text))

    # which model answers ----------------------------------------------------
    def choice_section(self, controller: ModelsController) -> None:
        st.subheader("Answering now")
        options = controller.options()
        active = controller.active()
        if controller.preferences.problem:
            st.warning(controller.preferences.problem)
        by_id = {o.id: o for o in options}
        if active.id not in by_id:  # the settings' default, even when it cannot answer as it is
            by_id = {active.id: active, **by_id}
        st.session_state[CHOICE_KEY] = active.id  # follow choices made in other tabs
        st.selectbox(
            "Model that answers",
            list(by_id),
            format_func=lambda option_id: by_id[option_id].label,
            key=CHOICE_KEY,
            on_change=self.choose,
            args=(controller,),
            help="Every chat page uses it from the next message on; it is remembered after a restart.",
        )
        st.caption(f"Answers come {WHERE[active.kind]}.")
        saved = controller.saved_choice()
        if saved and saved != active.id:
            st.warning(
                "The model chosen earlier is not available now (file removed, or Ollama stopped), so the default answers."
            )

    @staticmethod
    def choose(controller: ModelsController) -> None:
        try:
            option = controller.choose(st.session_state[CHOICE_KEY])
        except (ModelChoiceError, PreferencesError) as error:
            st.session_state[FLASH_KEY] = ("error", str(error))
            return
        st.session_state[FLASH_KEY] = ("success", f"{option.label} answers from now on.")

    # Ollama and Groq --------------------------------------------------------
    def ollama_section(self, controller: ModelsController, settings: Settings) -> None:
        st.subheader("Ollama and Groq")
        models = controller.ollama_models()
        if models is None:
            st.caption(
                f"No Ollama answers at {settings.ollama_host}. With Ollama running there (ollama.com), its "
                "models are listed here; set OLLAMA_HOST for another address."
            )
        elif not models:
            st.caption(f"Ollama runs at {settings.ollama_host} but has no models yet: try `ollama pull qwen2.5:1.5b`.")
        else:
            st.caption(f"Ollama at {settings.ollama_host} has {len(models)} model{'s' if len(models) != 1 else ''}.")
        if st.button("Look for Ollama again", key="models:ollama-refresh"):
            controller.look_for_ollama_again()
            st.rerun()
        if not settings.groq_api_key:
            st.caption("Groq: put a key on the GROQ_API_KEY line of .env (free at console.groq.com) and restart.")

    # files on this machine --------------------------------------------------
    def local_section(self, controller: ModelsController) -> None:
        st.subheader("Models on this machine")
        st.markdown("\n".join(f"- {as_text(o.label)}" for o in controller.local_options()) or "None yet.")
        for name, size in controller.unfinished():
            left, right = st.columns([4, 1])
            left.caption(
                f"{as_text(name)}: {size / 1e6:,.0f} MB of an unfinished download. Download it again to resume."
            )
            if right.button("Discard", key=f"models:discard:{name}"):
                controller.discard(name)
                st.rerun()

    def add_section(self, controller: ModelsController) -> None:
        st.subheader("Add a model file")
        path = st.text_input("Path to a .gguf file", key="models:path", placeholder="/home/me/models/model.gguf")
        if st.button("Add", key="models:add"):
            try:
                option = controller.add_path(path)
            except (ModelFileError, PreferencesError) as error:
                st.error(as_text(str(error)))  # the sentence names the path: shown as typed
                return
            st.session_state[FLASH_KEY] = ("success", f"Added {option.label}. Choose it under “Model that answers”.")
            st.rerun()

    # downloads --------------------------------------------------------------
    def download_section(self, controller: ModelsController) -> None:
        st.subheader("Download a model")
        url = st.text_input(
            "Link to a .gguf file",
            key="models:url",
            placeholder="https://huggingface.co/<org>/<repo>/resolve/main/<file>.gguf",
        )
        if st.button("Download", key="models:download"):
            self.download(controller, url)

    def recommended_section(self, controller: ModelsController) -> None:
        st.subheader("Recommended small models")
        st.caption("Instruct models in GGUF format that run well on a CPU; sizes as Hugging Face lists them.")
        for model in controller.recommended():
            self.recommended_entry(controller, model)

    def recommended_entry(self, controller: ModelsController, model: Recommended) -> None:
        left, right = st.columns([4, 1])
        left.markdown(
            f"**{as_text(model.name)}** · {model.params} parameters · {model.size_mb / 1000:.1f} GB · "
            f"[{as_text(model.licence)}]({model.licence_url})  \n{as_text(model.note)}"
        )
        done = controller.downloaded(model)
        clicked = right.button(
            "Downloaded" if done else "Download", key=f"models:get:{model.file}", disabled=done, width="stretch"
        )
        if clicked:
            self.download(controller, model.url)

    def download(self, controller: ModelsController, url: str) -> None:
        bar = st.progress(0.0, text="Connecting…")
        shown = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - shown[0] < PROGRESS_EVERY and done != total:
                return
            shown[0] = now
            so_far = f"{done / 1e6:,.0f} MB"
            if total:
                bar.progress(min(done / total, 1.0), text=f"{so_far} of {total / 1e6:,.0f} MB")
            else:
                bar.progress(0.0, text=so_far)

        try:
            option = controller.download(url, progress)
        except DownloadFailed as error:
            bar.empty()
            st.error(as_text(str(error)))
            return
        st.session_state[FLASH_KEY] = ("success", self.downloaded_text(controller, option))
        st.rerun()

    @staticmethod
    def downloaded_text(controller: ModelsController, option: ModelOption) -> str:
        done = controller.last_download
        if done is None:
            return f"Downloaded {option.model}."  # shown through as_text, like every flash
        resumed = f", resumed after {done.resumed_from / 1e6:,.0f} MB" if done.resumed_from else ""
        return (
            f"Downloaded {option.model}: {done.size:,} bytes ({done.size / 1e9:.2f} GB) in "
            f"{done.seconds:.1f} s{resumed}. SHA-256: {done.sha256}. Choose it under “Model that answers”."
        )
