from __future__ import annotations

import io
import struct
import wave

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gymbus.runtime.errors import BadMediaError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.media_sniff import JPEG, KINDS, WAV, check_intact, media_type, sniff
from tests.runtime.strategies import (
    FLAC_HEAD,
    ID3_HEAD,
    MAGIC_HEADS,
    MKV_HEAD,
    MOV_HEAD,
    MP3_HEAD,
    MP4_HEAD,
    OGG_HEAD,
    PILLOW_FORMATS,
    WEBM_HEAD,
    animated_bytes,
    image_bytes,
    media_bytes,
    wav_bytes,
)

SAMPLES = [
    ("PNG", image_bytes("image/png"), "image/png"),
    ("APNG", animated_bytes([(1, 0, 0), (2, 0, 0)], "image/png"), "image/png"),
    ("JPEG", image_bytes("image/jpeg"), "image/jpeg"),
    ("GIF", image_bytes("image/gif"), "image/gif"),
    ("WebP", image_bytes("image/webp"), "image/webp"),
    ("WAV", wav_bytes(), "audio/wav"),
    ("MP3 frame", MP3_HEAD + bytes(60), "audio/mpeg"),
    ("MP3 ID3", ID3_HEAD + MP3_HEAD, "audio/mpeg"),
    ("OGG", OGG_HEAD + b"\x01vorbis", "audio/ogg"),
    ("FLAC", FLAC_HEAD + bytes(34), "audio/flac"),
    ("MP4", MP4_HEAD + bytes(8), "video/mp4"),
    ("MOV", MOV_HEAD + bytes(8), "video/quicktime"),
    ("WebM", WEBM_HEAD + bytes(8), "video/webm"),
    ("MKV", MKV_HEAD + bytes(8), "video/x-matroska"),
]


@pytest.mark.parametrize(("name", "data", "mime"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_each_format_is_detected(name: str, data: bytes, mime: str) -> None:
    found = sniff(data)
    assert found is not None
    assert found[1] == mime
    ref = MediaStore().put(data)
    assert ref.mime_type == mime
    assert MediaStore().put(data, mime) == ref


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (wav_bytes(), "audio/x-wav"),
        (wav_bytes(), "Audio/WAV"),
        (MP3_HEAD + bytes(4), "audio/mp3"),
        (animated_bytes([(1, 0, 0), (2, 0, 0)], "image/png"), "image/apng"),
        (MOV_HEAD, "video/mp4"),
        (MP4_HEAD, "audio/mp4"),
        (WEBM_HEAD, "audio/webm"),
        (OGG_HEAD, "video/ogg"),
        (image_bytes("image/jpeg"), "image/jpg"),
        (image_bytes("image/png"), "application/octet-stream"),
    ],
)
def test_aliases_of_the_detected_kind_are_kept_as_declared(data: bytes, declared: str) -> None:
    assert MediaStore().put(data, declared).mime_type == declared


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (image_bytes("image/png"), "image/jpeg", "declared as image/jpeg but its bytes are PNG"),
        (image_bytes("image/jpeg"), "image/webp", "declared as image/webp but its bytes are JPEG"),
        (image_bytes("image/webp"), "audio/wav", r"bytes are WebP \(image/webp\)"),
        (wav_bytes(), "image/webp", r"declared as image/webp but its bytes are WAV \(audio/wav\)"),
        (MP4_HEAD, "video/webm", r"declared as video/webm but its bytes are MP4/MOV"),
        (WEBM_HEAD, "video/mp4", "declared as video/mp4 but its bytes are WebM/MKV"),
        (FLAC_HEAD, "audio/ogg", "declared as audio/ogg but its bytes are FLAC"),
        (image_bytes("image/gif"), "image/svg+xml", "declared as image/svg[+]xml but its bytes"),
        (
            b"RIFF\x00\x00\x00\x00AVI LIST",
            "video/mp4",
            "declared as video/mp4 but its bytes are not",
        ),
        (b"hello", "audio/mpeg", r"not MP3 \(detected: no known format; first bytes 68 65"),
    ],
)
def test_a_contradicting_declared_type_names_both(data: bytes, declared: str, message: str) -> None:
    with pytest.raises(BadMediaError, match=message):
        media_type(data, declared)


def test_formats_not_known_here_are_taken_as_declared() -> None:
    store = MediaStore()
    assert store.put(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")
    assert store.put(b"\x00\x01" * 8, "audio/L16").mime_type == "audio/L16"
    with pytest.raises(BadMediaError, match=r"cannot detect the media type of 16 bytes.*mime_type"):
        store.put(b"\x00\x01" * 8)


def test_adts_aac_is_not_taken_for_mp3() -> None:
    assert sniff(b"\xff\xf1\x50\x80") is None  # layer bits 00
    assert sniff(b"\xff\xfb\xf0\x00") is None  # bitrate index 15 is invalid
    assert sniff(image_bytes("image/jpeg")) == (JPEG, "image/jpeg")


def test_a_float_wav_is_accepted() -> None:
    """``wave`` only decodes PCM; a well-formed IEEE-float WAV is still intact."""
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 8)
    data = b"RIFF" + struct.pack("<I", len(body) + 8) + body + bytes(8)
    assert MediaStore().put(data).mime_type == "audio/wav"


def test_a_streamed_wav_of_unknown_length_is_accepted() -> None:
    data = bytearray(wav_bytes(b"\x00\x01" * 4))
    data[40:44] = b"\xff\xff\xff\xff"  # the data chunk size of a WAV written as a stream
    check_intact(bytes(data), WAV)
    with wave.open(io.BytesIO(bytes(data))) as reader:
        assert reader.getnframes() > 10**9


def test_kinds_do_not_share_aliases() -> None:
    seen: set[str] = set()
    for kind in KINDS:
        assert not seen & kind.aliases
        seen |= kind.aliases


@settings(max_examples=60)
@given(
    st.sampled_from([*PILLOW_FORMATS, "audio/wav", *MAGIC_HEADS]).flatmap(
        lambda m: st.tuples(st.just(m), media_bytes(m))
    )
)
def test_samples_are_detected_as_their_type(sample: tuple[str, bytes]) -> None:
    mime, data = sample
    assert media_type(data, None)[0] == mime
