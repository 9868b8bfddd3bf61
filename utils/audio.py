"""A voice recording from outside, checked once: decoded, measured, refused with a sentence if unusable.

`check(data, filename, max_seconds)` turns the bytes of a recording (Streamlit's microphone gives a
16-bit WAV at 44.1 or 48 kHz; an upload may be any of AUDIO_TYPES, at any rate, mono or stereo) into
16 kHz mono float32 samples, what Whisper reads, or raises `AudioError`, whose text is one sentence
for the user: empty, unreadable, longer than the limit (refused, never cut: a cut transcript would
lose the end of what was said without showing where), or silent.

Silence is found in two steps: the loudest 20 ms of the recording below -50 dBFS (a muted microphone,
zeros, a faint hiss), then Silero's voice detector (shipped inside faster-whisper, run by
onnxruntime) finding no speech in what is louder (a hum, a tone, a fan). Decoding is FFmpeg's, through
PyAV (pulled by faster-whisper), so every format and rate goes through one path and one resampler.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

AUDIO_TYPES = ("wav", "mp3", "m4a", "ogg", "webm", "flac")
RATE = 16_000  # what Whisper reads
SILENCE_DBFS = -50.0  # the loudest 20 ms below this: nothing was said
QUIET_DBFS = -35.0  # the loudest 20 ms below this: said, but faint
LOW_RATE = 8_000  # telephone quality and below


class AudioError(ValueError):
    """A recording cannot be used; `str(error)` is one sentence for the user that says what to do."""


@dataclass(frozen=True)
class CheckedAudio:
    samples: np.ndarray  # float32, mono, 16 kHz, in [-1, 1]
    seconds: float
    notes: tuple[str, ...] = ()  # things the user may want to know (a low rate, a faint voice)
    source_rate: int = RATE  # the recording's own sample rate


def check(data: bytes, filename: str, max_seconds: int) -> CheckedAudio:
    """Decode and check a recording; raise AudioError with a sentence when it cannot be used."""
    extension = PurePath(filename or "").suffix.lower().lstrip(".")
    if extension not in AUDIO_TYPES:
        shown = f".{extension} files" if extension else "files without an extension"
        raise AudioError(f"bnaGPT reads voice notes as {', '.join(AUDIO_TYPES)}, not {shown}; choose another file.")
    if not data:
        raise AudioError("The recording is empty (0 bytes); record again, or choose another file.")
    samples, source_rate = _decode(data, max_seconds)
    seconds = len(samples) / RATE
    if seconds < 0.1:
        raise AudioError("The recording holds no sound; record again, a little longer this time.")
    loudest = _loudest_dbfs(samples)
    if loudest < SILENCE_DBFS or not _has_speech(samples):
        raise AudioError(
            "I heard nothing in the recording; check that the right microphone is on and not muted, then record again."
        )
    notes = []
    if source_rate <= LOW_RATE:
        notes.append(f"The recording is telephone quality ({source_rate / 1000:g} kHz), so some words may be misheard.")
    if loudest < QUIET_DBFS:
        notes.append("The recording is very quiet; if words are missing, speak closer to the microphone.")
    return CheckedAudio(samples, seconds, tuple(notes), source_rate)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """Float samples in [-1, 1] as a mono 16-bit WAV file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return pcm16_wav(pcm, rate)


def pcm16_wav(pcm: bytes, rate: int) -> bytes:
    """Raw mono 16-bit little-endian samples as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def duration_text(seconds: float) -> str:
    """90 → '1 min 30 s', 300 → '5 min', 42.4 → '42 s'."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _decode(data: bytes, max_seconds: int) -> tuple[np.ndarray, int]:
    """16 kHz mono float32 and the source's rate. Stops as soon as the limit is passed, so a long
    file costs no more than the limit to refuse (a header's length can lie: a streamed WAV says 13 h)."""
    import av  # FFmpeg's libraries: loaded with the first recording, not when a page starts

    limit = int((max_seconds + 0.05) * RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("The file holds no sound track; choose a voice recording instead.")
            stream = container.streams.audio[0]
            source_rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            said = container.duration / 1_000_000 if container.duration else None
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in container.decode(stream):
                frame.pts = None  # the resampler keeps its own clock; gaps in a stream's stamps confuse it
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if total > limit:
                    length = f"is {duration_text(said)} long" if said and said > max_seconds else "is longer than that"
                    raise AudioError(
                        f"Voice notes can be {duration_text(max_seconds)} at most (AUDIO_MAX_SECONDS) and this one "
                        f"{length}; record a shorter one, or split it."
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        raise AudioError(
            "The file could not be read as audio (it may be damaged or not what its name says); "
            "record again, or choose another file."
        ) from None
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return samples, source_rate


def _loudest_dbfs(samples: np.ndarray) -> float:
    """The level of the loudest 20 ms, in dB below full scale."""
    frame = RATE // 50
    usable = len(samples) - len(samples) % frame
    if usable == 0:
        power = float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
    else:
        power = float(np.max(np.mean(np.square(samples[:usable].reshape(-1, frame), dtype=np.float64), axis=1)))
    return 10 * np.log10(power) if power > 0 else -200.0


def _has_speech(samples: np.ndarray) -> bool:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(samples, VadOptions(min_speech_duration_ms=120)))
