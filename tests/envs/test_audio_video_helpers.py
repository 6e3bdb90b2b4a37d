import hashlib
import io
import math
import random
import time
import wave
from array import array

import pytest
from PIL import Image

from gymbus.envs.builtin.audio import (
    DTMF_HIGH,
    DTMF_KEYS,
    DTMF_LOW,
    FULL_SCALE,
    SAMPLE_RATE,
    WAV,
    DetectedKey,
    Pcm,
    Tone,
    audio_question,
    decode_dtmf,
    dtmf_frequencies,
    first_audio,
    goertzel_power,
    read_wav,
    synthesize,
    write_wav,
)
from gymbus.envs.builtin.images import RGB, Canvas
from gymbus.envs.builtin.video import (
    GIF,
    Frame,
    changes_direction,
    decode_gif,
    direction_label,
    direction_of,
    encode_gif,
    first_video,
    track,
    video_question,
)
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AudioPart, TextPart, UserMessage, VideoPart
from gymbus.runtime.transcript import Transcript

WHITE: RGB = (255, 255, 255)
RED: RGB = (220, 40, 40)
BLUE: RGB = (40, 90, 220)
MS = SAMPLE_RATE // 1000

# sha256 of the WAV bytes of `keypad_clip("159#")`: `wave` writes a fixed header and the
# samples are rounded from the same floats, so this changes only on purpose.
GOLDEN_WAV = "5867178ce88a9eca7df1db954be9f0d0ad781ec99de8b339917f107f0f2ea553"


def press(key: str, start_ms: int, tone_ms: int = 80, level: float = 0.4) -> Tone:
    low, high = dtmf_frequencies(key)
    return Tone(start_ms * MS, tone_ms * MS, ((low, level), (high, level)))


def keypad_clip(keys: str, tone_ms: int = 80, gap_ms: int = 60, noise: float = 0.0) -> bytes:
    tones = [press(k, 50 + i * (tone_ms + gap_ms), tone_ms) for i, k in enumerate(keys)]
    length = (50 + len(keys) * (tone_ms + gap_ms) + 50) * MS
    return write_wav(synthesize(length, tones, noise=noise, rng=random.Random(7)))


def keys_of(wav: bytes) -> str:
    return "".join(p.key for p in decode_dtmf(read_wav(wav)))


# --- audio: synthesis and WAV ---------------------------------------------------------------


def test_the_keypad_maps_keys_to_a_row_and_a_column_frequency() -> None:
    assert dtmf_frequencies("1") == (697, 1209)
    assert dtmf_frequencies("5") == (770, 1336)
    assert dtmf_frequencies("0") == (941, 1336)
    assert dtmf_frequencies("*") == (941, 1209)
    assert dtmf_frequencies("#") == (941, 1477)
    assert dtmf_frequencies("D") == (941, 1633)
    pairs = {dtmf_frequencies(k) for k in DTMF_KEYS}
    assert pairs == {(lo, hi) for lo in DTMF_LOW for hi in DTMF_HIGH}
    for bad in ("E", "12", ""):
        with pytest.raises(ValueError, match="not a DTMF key"):
            dtmf_frequencies(bad)


def test_wav_is_16_bit_mono_8khz_and_round_trips() -> None:
    samples = array("h", [0, 1, -1, FULL_SCALE, -FULL_SCALE, 1234])
    data = write_wav(samples)
    with wave.open(io.BytesIO(data), "rb") as clip:
        assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 2, 8000)
        assert clip.readframes(2) == b"\x00\x00\x01\x00"  # little-endian
    pcm = read_wav(data)
    assert pcm == Pcm(SAMPLE_RATE, samples)
    assert pcm.duration_s == pytest.approx(6 / 8000)
    with pytest.raises(ValueError, match="16-bit"):
        write_wav(array("i", [1, 2]))


def test_wav_bytes_are_deterministic() -> None:
    first = keypad_clip("159#", noise=0.05)
    assert first == keypad_clip("159#", noise=0.05)
    assert first != keypad_clip("159#", noise=0.04)
    assert hashlib.sha256(keypad_clip("159#")).hexdigest() == GOLDEN_WAV


def test_only_16_bit_mono_wav_is_read() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00" * 8)
    with pytest.raises(ValueError, match="16-bit mono"):
        read_wav(buffer.getvalue())
    with pytest.raises(ValueError, match="not a readable WAV"):
        read_wav(b"RIFF....WAVEnope")


def test_synthesis_sums_partials_clips_and_needs_a_seed_for_noise() -> None:
    loud = synthesize(80, [Tone(0, 80, ((1000, 0.8), (1000, 0.8)))])
    assert max(loud) == FULL_SCALE
    assert min(loud) == -FULL_SCALE
    tone = synthesize(16, [Tone(4, 8, ((2000, 0.5),))])  # a quarter of the rate: 0, 1, 0, -1
    assert list(tone[:4]) == [0, 0, 0, 0]
    assert list(tone[4:8]) == [0, round(0.5 * FULL_SCALE), 0, -round(0.5 * FULL_SCALE)]
    assert list(tone[12:]) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="seeded rng"):
        synthesize(10, [], noise=0.1)
    noise = synthesize(4000, [], noise=0.1, rng=random.Random(1))
    assert max(abs(s) for s in noise) <= 0.1 * FULL_SCALE + 1
    assert noise == synthesize(4000, [], noise=0.1, rng=random.Random(1))


# --- audio: analysis ------------------------------------------------------------------------


def test_goertzel_measures_one_frequency() -> None:
    n, amplitude = 160, 1000.0
    window = [amplitude * math.sin(2 * math.pi * 770 * i / SAMPLE_RATE) for i in range(n)]
    on = goertzel_power(window, 770)
    assert on == pytest.approx((amplitude * n / 2) ** 2, rel=0.05)
    for other in (697, 852, 941, 1209):
        assert goertzel_power(window, other) < on / 20
    assert goertzel_power([0.0] * n, 770) == 0.0


def test_every_key_decodes() -> None:
    assert keys_of(keypad_clip(DTMF_KEYS)) == DTMF_KEYS


def test_presses_are_located_in_time() -> None:
    (one, two) = decode_dtmf(read_wav(keypad_clip("47", tone_ms=100, gap_ms=100)))
    assert (one.key, two.key) == ("4", "7")
    assert 40 * MS <= one.start <= 60 * MS
    assert 140 * MS <= one.end <= 160 * MS
    assert 240 * MS <= two.start <= 260 * MS
    assert one == DetectedKey("4", one.start, one.end)


def test_a_key_pressed_twice_needs_a_gap() -> None:
    assert keys_of(keypad_clip("55", gap_ms=45)) == "55"
    held = write_wav(synthesize(300 * MS, [press("5", 20, 120), press("5", 140, 120)]))
    assert keys_of(held) == "5"  # no silence between: one long press


def test_short_tones_quiet_tones_and_noise() -> None:
    assert keys_of(keypad_clip("*0#", tone_ms=45, gap_ms=45, noise=0.08)) == "*0#"
    quiet = [press("8", 20, 80, level=0.02), press("9", 160, 80, level=0.45)]
    assert keys_of(write_wav(synthesize(300 * MS, quiet))) == "89"  # loudness-normalised
    assert keys_of(write_wav(synthesize(300 * MS, [press("3", 100, 5)]))) == ""  # a click
    assert keys_of(write_wav(synthesize(800 * MS, [], noise=0.2, rng=random.Random(3)))) == ""
    assert keys_of(write_wav(synthesize(800 * MS, []))) == ""


def test_one_frequency_alone_is_not_a_key() -> None:
    lone = Tone(0, 200 * MS, ((941, 0.5),))
    assert keys_of(write_wav(synthesize(300 * MS, [lone]))) == ""


def test_decoding_a_long_noisy_clip_is_fast() -> None:
    pcm = read_wav(keypad_clip("*12345678#90", tone_ms=50, gap_ms=50, noise=0.05))
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        assert "".join(p.key for p in decode_dtmf(pcm)) == "*12345678#90"
        best = min(best, time.perf_counter() - started)
    assert best < 0.1


def test_audio_question_round_trips_through_the_store() -> None:
    media = MediaStore()
    wav = keypad_clip("1")
    system, user = audio_question(media, "Which key?", wav)
    assert system.role == "system"
    assert user.author == "environment"
    text, audio = user.content
    assert isinstance(text, TextPart)
    assert text.text == "Which key?"
    assert isinstance(audio, AudioPart)
    assert audio.media is not None
    assert audio.media.mime_type == WAV
    assert first_audio(Transcript([system, user]), media) == (user, wav)
    assert first_audio(Transcript([user]), MediaStore()) is None  # another store
    by_url = UserMessage(content=(AudioPart(url="https://example.com/a.wav"),))
    assert first_audio(Transcript([by_url]), media) is None
    assert first_audio(Transcript([by_url, user]), media) == (user, wav)


# --- video ----------------------------------------------------------------------------------


def film(steps: list[tuple[int, int]], size: int = 10) -> list[Image.Image]:
    """A red square at each (x, y) in turn, and a blue square that stays put."""
    frames = []
    for x, y in steps:
        canvas = Canvas(64, 64, [WHITE, RED, BLUE])
        canvas.shape("square", x, y, size, 1)
        canvas.shape("circle", 50, 50, 10, 2)
        frames.append(canvas.image)
    return frames


def test_gif_round_trips_frame_by_frame() -> None:
    images = film([(2 + 4 * i, 5) for i in range(6)])
    data = encode_gif(images, 100)
    assert data.startswith(b"GIF89a")
    assert data == encode_gif(film([(2 + 4 * i, 5) for i in range(6)]), 100)
    frames = decode_gif(data)
    assert len(frames) == 6
    for frame, image in zip(frames, images, strict=True):
        assert frame.rgb == image.convert("RGB").tobytes()
    with Image.open(io.BytesIO(data)) as video:
        assert video.info["duration"] == 100
    with pytest.raises(ValueError, match="at least one frame"):
        encode_gif([], 100)


def test_centroids_and_tracks_follow_exact_colours() -> None:
    frames = decode_gif(encode_gif(film([(2, 5), (6, 5), (10, 9)]), 100))
    assert frames[0].centroid(RED) == (6.5, 9.5)  # a 10 px square from (2, 5)
    assert track(frames, RED) == [(6.5, 9.5), (10.5, 9.5), (14.5, 13.5)]
    blue = track(frames, BLUE)
    assert blue is not None
    assert len(set(blue)) == 1
    assert frames[0].centroid((221, 40, 40)) is None  # near is not equal
    assert track(frames, (0, 0, 0)) is None


def test_centroid_ignores_colour_bytes_across_pixels() -> None:
    # pixels (1, 2, 3) (4, 5, 6): the bytes 2, 3, 4 span two pixels and are no pixel
    frame = Frame(2, 1, bytes([1, 2, 3, 4, 5, 6]))
    assert frame.centroid((2, 3, 4)) is None
    assert frame.centroid((4, 5, 6)) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("dx", "dy", "label"),
    [
        (-30, 0, "left"),
        (30, 0.5, "right"),
        (0, -30, "up"),
        (0, 30, "down"),
        (-20, -20, "up-left"),
        (20, -20, "up-right"),
        (-20, 20, "down-left"),
        (20, 20, "down-right"),
        (0.5, -0.5, None),
    ],
)
def test_direction_of(dx: float, dy: float, label: str | None) -> None:
    assert direction_of(dx, dy) == label
    if label is not None:
        assert direction_label(label) == label


def test_changes_direction() -> None:
    assert not changes_direction([(0, 0), (3, 0), (6, 0), (9, 0)])
    assert not changes_direction([(0, 0), (0, 0), (0, 0)])
    assert changes_direction([(0, 0), (3, 0), (6, 0), (3, 0)])  # turned back
    assert changes_direction([(0, 0), (2, 2), (4, 4), (6, 2)])  # bounced off a "wall"
    assert not changes_direction([(0, 0), (2.2, 0), (4.0, 0.3), (6.1, 0)])  # jitter


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("left", "left"),
        ("It moved to the LEFT.", "left"),
        ("leftwards", "left"),
        ("Upward", "up"),
        ("towards the bottom", "down"),
        ("east", "right"),
        ("up-left", "up-left"),
        ("Up left", "up-left"),
        ("to the upper right", "up-right"),
        ("down and to the left", "down-left"),
        ("diagonally, left and up", "up-left"),
        ("north-west", "up-left"),
        ("southeast", "down-right"),
        ("right-down", "down-right"),
        ("down-right (diagonally down-right)", "down-right"),
        ("left or up", None),
        ("left, not right", None),
        ("up-left or down-right", None),
        ("it went up, then left", None),
        ("I can't help with that.", None),
        ("sideways", None),
        ("uplifting", None),
    ],
)
def test_direction_label(text: str, label: str | None) -> None:
    assert direction_label(text) == label


def test_video_question_round_trips_through_the_store() -> None:
    media = MediaStore()
    gif = encode_gif(film([(2, 5), (6, 5)]), 100)
    system, user = video_question(media, "Where did it go?", gif)
    assert system.role == "system"
    assert user.author == "environment"
    text, video = user.content
    assert isinstance(text, TextPart)
    assert text.text == "Where did it go?"
    assert isinstance(video, VideoPart)
    assert video.media is not None
    assert video.media.mime_type == GIF
    assert first_video(Transcript([system, user]), media) == (user, gif)
    assert first_video(Transcript([user]), MediaStore()) is None  # another store
    by_url = UserMessage(content=(VideoPart(url="https://example.com/a.gif"),))
    assert first_video(Transcript([by_url, user]), media) == (user, gif)
    assert first_video(Transcript([by_url]), media) is None
