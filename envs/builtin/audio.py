"""Audio for the listening environments: WAV synthesis and analysis in pure Python.

Clips are 16-bit mono PCM written with the standard library's :mod:`wave` (fixed header,
little-endian samples), so the same tones and noise give byte-identical WAV bytes. Tones
are sums of sinusoids; noise is uniform, drawn from a seeded ``random.Random``.

Analysis is the Goertzel algorithm: the power of a window of samples at one frequency,
computed by a two-term recurrence (one multiply-add per sample), so a DTMF decoder only
evaluates the eight keypad frequencies instead of a full spectrum. Windows are normalised
by their energy, so loud and quiet key presses read the same.

Audio travels by reference: :func:`audio_question` puts the WAV in a
:class:`~gymbus.runtime.media.MediaStore` and :func:`first_audio` reads it back, which is
how a reference solver hears it.
"""

from __future__ import annotations

import io
import math
import random
import sys
import wave
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import mul

from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AudioPart, SystemMessage, TextPart, UserMessage
from gymbus.runtime.transcript import Transcript

__all__ = [
    "DTMF_HIGH",
    "DTMF_KEYS",
    "DTMF_LOW",
    "FULL_SCALE",
    "SAMPLE_RATE",
    "WAV",
    "DetectedKey",
    "Pcm",
    "Tone",
    "audio_question",
    "decode_dtmf",
    "dtmf_frequencies",
    "first_audio",
    "goertzel_power",
    "read_wav",
    "synthesize",
    "write_wav",
]

WAV = "audio/wav"
SAMPLE_RATE = 8000  # Hz: telephone quality
FULL_SCALE = 32767  # the largest 16-bit sample

# The DTMF keypad: a key sounds its row's low frequency and its column's high frequency.
DTMF_LOW: tuple[int, ...] = (697, 770, 852, 941)
DTMF_HIGH: tuple[int, ...] = (1209, 1336, 1477, 1633)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_KEYS = "".join(_KEYPAD)


def dtmf_frequencies(key: str) -> tuple[int, int]:
    """The (low, high) frequency pair of a keypad key (``0-9``, ``*``, ``#``, ``A-D``)."""
    for row, keys in enumerate(_KEYPAD):
        column = keys.find(key) if len(key) == 1 else -1
        if column >= 0:
            return DTMF_LOW[row], DTMF_HIGH[column]
    raise ValueError(f"{key!r} is not a DTMF key; keys are {DTMF_KEYS}")


# --- synthesis -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tone:
    """A burst of summed sinusoids: ``length`` samples from sample ``start``; each partial
    is (frequency in Hz, peak amplitude as a fraction of full scale)."""

    start: int
    length: int
    partials: tuple[tuple[float, float], ...]


def synthesize(
    length: int,
    tones: Iterable[Tone],
    *,
    noise: float = 0.0,
    rng: random.Random | None = None,
    rate: int = SAMPLE_RATE,
) -> array[int]:
    """``length`` samples of 16-bit PCM: the tones (phase 0 at each tone's start) plus
    uniform noise of peak ``noise`` (fraction of full scale) drawn from ``rng``; clipped."""
    signal = [0.0] * length
    for tone in tones:
        end = min(length, tone.start + tone.length)
        for frequency, amplitude in tone.partials:
            step = 2.0 * math.pi * frequency / rate
            for i in range(max(0, tone.start), end):
                signal[i] += amplitude * math.sin(step * (i - tone.start))
    if noise > 0.0:
        if rng is None:
            raise ValueError("noise needs a seeded rng (determinism)")
        uniform = rng.uniform
        signal = [x + uniform(-noise, noise) for x in signal]
    return array("h", (max(-FULL_SCALE, min(FULL_SCALE, round(x * FULL_SCALE))) for x in signal))


def write_wav(samples: array[int], rate: int = SAMPLE_RATE) -> bytes:
    """16-bit mono PCM as WAV bytes (deterministic: the same samples give the same bytes)."""
    if samples.typecode != "h":
        raise ValueError(f"samples must be 16-bit ('h'), got typecode {samples.typecode!r}")
    little = array("h", samples)
    if sys.byteorder == "big":
        little.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(little.tobytes())
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Pcm:
    """Decoded audio: the sample rate and 16-bit mono samples."""

    rate: int
    samples: array[int]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


def read_wav(data: bytes) -> Pcm:
    """Decode a 16-bit mono PCM WAV. Raises ``ValueError`` for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as clip:
            channels, width, rate = clip.getnchannels(), clip.getsampwidth(), clip.getframerate()
            frames = clip.readframes(clip.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV file: {exc}") from None
    if channels != 1 or width != 2:
        raise ValueError(
            f"expected 16-bit mono audio, got {channels} channel(s) of {width} byte(s)"
        )
    samples = array("h")
    samples.frombytes(frames[: len(frames) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return Pcm(rate, samples)


# --- analysis ------------------------------------------------------------------------------


def _goertzel(window: Sequence[float], coeff: float) -> float:
    s1 = s2 = 0.0
    for x in window:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def goertzel_power(window: Sequence[float], frequency: float, rate: int = SAMPLE_RATE) -> float:
    """``|X(f)|²`` of ``window`` at ``frequency`` (any frequency, not only DFT bins): a
    sinusoid of amplitude ``a`` filling ``n`` samples gives about ``(a * n / 2)²``."""
    return _goertzel(window, 2.0 * math.cos(2.0 * math.pi * frequency / rate))


@dataclass(frozen=True, slots=True)
class DetectedKey:
    """A key press heard in samples ``start <= i < end`` (whole analysis windows)."""

    key: str
    start: int
    end: int


# A window holds a key when its best row and column frequencies carry enough of the
# window's energy (a pure two-tone window gives 0.5 in total; noise alone ~2/n per bin)
# and each clearly beats the runner-up of its group (no ambiguity between neighbours).
_MIN_SHARE_EACH = 0.08
_MIN_SHARE_BOTH = 0.3
_MIN_DOMINANCE = 4.0


def _window_key(window: Sequence[float], low: Sequence[float], high: Sequence[float]) -> str | None:
    energy = sum(map(mul, window, window))
    if energy <= 0:
        return None
    norm = len(window) * energy
    picks: list[int] = []
    shares: list[float] = []
    for coeffs in (low, high):
        powers = [_goertzel(window, c) for c in coeffs]
        order = sorted(range(len(powers)), key=powers.__getitem__, reverse=True)
        best, second = powers[order[0]], powers[order[1]]
        if best / norm < _MIN_SHARE_EACH or best < _MIN_DOMINANCE * second:
            return None
        picks.append(order[0])
        shares.append(best / norm)
    if sum(shares) < _MIN_SHARE_BOTH:
        return None
    return _KEYPAD[picks[0]][picks[1]]


def decode_dtmf(pcm: Pcm, window_ms: int = 20) -> list[DetectedKey]:
    """The key presses in ``pcm``, in order: each window of ``window_ms`` (back to back) is
    classified as one key or none, and a run of windows of the same key is one press; a
    window without a key ends the press. A press that fills a whole window is always
    heard, a click of a quarter window never; a key pressed twice is heard twice when the
    gap between the presses holds a whole window (two windows long is always enough)."""
    n = pcm.rate * window_ms // 1000
    low = [2.0 * math.cos(2.0 * math.pi * f / pcm.rate) for f in DTMF_LOW]
    high = [2.0 * math.cos(2.0 * math.pi * f / pcm.rate) for f in DTMF_HIGH]
    samples = pcm.samples
    presses: list[DetectedKey] = []
    current: DetectedKey | None = None
    for start in range(0, len(samples) - n + 1, n):
        key = _window_key(samples[start : start + n], low, high)
        if current is not None and key == current.key:
            current = DetectedKey(key, current.start, start + n)
            continue
        if current is not None:
            presses.append(current)
        current = DetectedKey(key, start, start + n) if key is not None else None
    if current is not None:
        presses.append(current)
    return presses


# --- audio in conversations ----------------------------------------------------------------


_SYSTEM_PROMPT = (
    "You answer questions about the audio clip you are given. Listen to it carefully; the "
    "answer is in the audio. Reply with the answer only."
)


def audio_question(media: MediaStore, text: str, wav: bytes) -> tuple[SystemMessage, UserMessage]:
    """The opening messages of an audio question: ``wav`` goes into ``media`` (the store
    adapters inline it from) and the user message carries the text, then the audio."""
    audio = AudioPart(media=media.put(wav, WAV))
    question = UserMessage(content=(TextPart(text=text), audio), author="environment")
    return SystemMessage(content=_SYSTEM_PROMPT), question


def first_audio(conversation: Transcript, media: MediaStore) -> tuple[UserMessage, bytes] | None:
    """The first user message that carries stored audio, and that audio's bytes (read from
    ``media``, the store the environment put it in); ``None`` when there is none."""
    for message in conversation:
        if isinstance(message, UserMessage):
            for part in message.content:
                if isinstance(part, AudioPart) and part.media is not None:
                    if part.media not in media:
                        return None
                    return message, media.get(part.media)
    return None
