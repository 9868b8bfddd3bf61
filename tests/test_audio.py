"""Recordings checked before anything hears them: real speech made by the local voice (Piper), re-encoded
by FFmpeg (PyAV) into every accepted format and rate, and the bad days: silence, hiss, a tone, ten
minutes, a damaged file, an empty one."""

from __future__ import annotations

import io
import re
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import settings
from utils import speech
from utils.audio import AUDIO_TYPES, RATE, AudioError, check, wav_bytes

SAID = "Please remind me to buy milk and bread on the way home tomorrow."
LIMIT = 300


def one_sentence(message: str) -> bool:
    """One sentence: ends like one and has no sentence break outside what an endpoint said in brackets."""
    outside = re.sub(r"\([^)]*\)", "", message)
    return message.endswith((".", "?")) and not re.search(r"[.!?]\s+[A-Z]", outside)


@pytest.fixture(scope="module")
def speech_samples(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """SAID spoken by the real local voice, as 16 kHz mono float32."""
    local = settings.from_environ({}, dotenv_path=tmp_path_factory.mktemp("env") / "none")
    spoken = speech.speak(SAID, local)
    return check(spoken.data, "said.wav", LIMIT).samples


def at_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz samples at another rate (linear interpolation; going down, pairs are averaged first)."""
    if rate == 8000:
        even = samples[: len(samples) // 2 * 2]
        return even.reshape(-1, 2).mean(axis=1)
    count = int(len(samples) * rate / RATE)
    return np.interp(np.arange(count) * RATE / rate, np.arange(len(samples)), samples).astype(np.float32)


def encoded(samples: np.ndarray, container: str, codec: str, rate: int, channels: int = 1) -> bytes:
    """16 kHz samples encoded by FFmpeg as a phone or a browser would send them."""
    source = at_rate(samples, rate)
    buffer = io.BytesIO()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)  # type: ignore[call-overload]
        pcm = (np.clip(source, -1, 1) * 32767).astype(np.int16)
        planar = np.repeat(pcm[np.newaxis, :], channels, axis=0).reshape(1, -1) if channels > 1 else pcm[np.newaxis]
        frame = av.AudioFrame.from_ndarray(planar, format="s16", layout=layout)
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        resampler = av.AudioResampler(format=stream.format, layout=layout, rate=rate, frame_size=stream.frame_size)
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(part):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def test_a_microphone_wav_at_48_khz_becomes_16_khz_mono(speech_samples: np.ndarray) -> None:
    data = wav_bytes(at_rate(speech_samples, 48000), 48000)  # what st.audio_input sends
    checked = check(data, "audio.wav", LIMIT)
    assert checked.samples.dtype == np.float32 and checked.samples.ndim == 1
    assert checked.source_rate == 48000
    assert checked.seconds == pytest.approx(len(speech_samples) / RATE, abs=0.05)
    assert np.corrcoef(checked.samples[: len(speech_samples)], speech_samples[: len(checked.samples)])[0, 1] > 0.95
    assert checked.notes == ()


def test_an_8_khz_wav_is_read_and_said_to_be_telephone_quality(speech_samples: np.ndarray) -> None:
    checked = check(wav_bytes(at_rate(speech_samples, 8000), 8000), "call.WAV", LIMIT)
    assert checked.source_rate == 8000
    assert checked.seconds == pytest.approx(len(speech_samples) / RATE, abs=0.05)
    assert checked.notes == ("The recording is telephone quality (8 kHz), so some words may be misheard.",)


@pytest.mark.parametrize(
    ("extension", "container", "codec", "rate", "channels"),
    [
        ("mp3", "mp3", "libmp3lame", 44100, 2),
        ("flac", "flac", "flac", 22050, 1),
        ("ogg", "ogg", "libopus", 48000, 1),
        ("webm", "webm", "libopus", 48000, 2),  # what a browser's MediaRecorder makes
        ("m4a", "ipod", "aac", 44100, 1),  # a phone's voice memo
    ],
)
def test_each_accepted_format_is_decoded(
    speech_samples: np.ndarray, extension: str, container: str, codec: str, rate: int, channels: int
) -> None:
    data = encoded(speech_samples, container, codec, rate, channels)
    checked = check(data, f"note.{extension}", LIMIT)
    assert extension in AUDIO_TYPES
    assert checked.source_rate == rate
    # encoders pad the start (priming samples) and the end, by a few tens of milliseconds
    assert checked.seconds == pytest.approx(len(speech_samples) / RATE, abs=0.15)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(3 * RATE, np.float32),
        np.random.default_rng(1).normal(0, 0.001, 3 * RATE).astype(np.float32),  # a muted microphone's hiss
        np.random.default_rng(2).normal(0, 0.05, 3 * RATE).astype(np.float32),  # a loud fan: only the VAD knows
        (0.3 * np.sin(2 * np.pi * 220 * np.arange(3 * RATE) / RATE)).astype(np.float32),  # a hum
    ],
    ids=["zeros", "low-noise", "loud-noise", "tone"],
)
def test_silence_noise_and_a_tone_are_heard_as_nothing(samples: np.ndarray) -> None:
    with pytest.raises(AudioError) as caught:
        check(wav_bytes(samples), "quiet.wav", LIMIT)
    assert str(caught.value).startswith("I heard nothing in the recording")
    assert one_sentence(str(caught.value))


def test_ten_minutes_are_refused_with_the_limit_and_the_length() -> None:
    data = wav_bytes(np.zeros(600 * 8000, np.float32), 8000)  # 9.6 MB; refused before the silence is noticed
    with pytest.raises(AudioError) as caught:
        check(data, "long.wav", LIMIT)
    message = str(caught.value)
    assert "5 min at most (AUDIO_MAX_SECONDS)" in message and "is 10 min long" in message
    assert one_sentence(message)


def test_a_streamed_wav_whose_header_claims_hours_is_measured_by_its_samples(speech_samples: np.ndarray) -> None:
    """espeak-ng and other streaming writers leave 0x7fffffff frames in the header."""
    data = bytearray(wav_bytes(speech_samples))
    data[40:44] = (0x7FFFFFFF).to_bytes(4, "little")  # the data chunk's size
    checked = check(bytes(data), "stream.wav", LIMIT)
    assert checked.seconds == pytest.approx(len(speech_samples) / RATE, abs=0.01)


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (np.random.default_rng(3).bytes(20_000), "random.wav"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "cut-in-the-header.wav"),
        (b"Dear diary, today I recorded nothing.\n" * 40, "letter.mp3"),
        (Path(__file__).read_bytes(), "code.ogg"),
    ],
    ids=["random", "truncated-header", "text-named-mp3", "python-named-ogg"],
)
def test_a_damaged_or_disguised_file_gets_a_sentence(data: bytes, filename: str) -> None:
    with pytest.raises(AudioError) as caught:
        check(data, filename, LIMIT)
    assert str(caught.value).startswith("The file could not be read as audio")
    assert one_sentence(str(caught.value))


def test_an_empty_file_and_a_foreign_extension_get_a_sentence(speech_samples: np.ndarray) -> None:
    with pytest.raises(AudioError, match=r"empty \(0 bytes\)") as empty:
        check(b"", "audio.wav", LIMIT)
    with pytest.raises(AudioError, match=r"not \.txt files") as foreign:
        check(wav_bytes(speech_samples), "notes.txt", LIMIT)
    with pytest.raises(AudioError, match="without an extension"):
        check(wav_bytes(speech_samples), "recording", LIMIT)
    assert one_sentence(str(empty.value)) and one_sentence(str(foreign.value))


def test_a_faint_voice_is_read_with_a_note(speech_samples: np.ndarray) -> None:
    faint = speech_samples / np.max(np.abs(speech_samples)) * 0.02  # about -34 dBFS at its loudest
    checked = check(wav_bytes(faint), "faint.wav", LIMIT)
    assert any("very quiet" in note for note in checked.notes)


def test_wav_bytes_writes_16_bit_mono() -> None:
    data = wav_bytes(np.array([0.0, 0.5, -0.5, 2.0], np.float32), 22050)
    with wave.open(io.BytesIO(data)) as read:
        assert (read.getnchannels(), read.getsampwidth(), read.getframerate(), read.getnframes()) == (1, 2, 22050, 4)
        assert np.frombuffer(read.readframes(4), "<i2").tolist() == [0, 16383, -16383, 32767]
