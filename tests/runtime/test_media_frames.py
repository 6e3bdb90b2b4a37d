from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from gymbus.runtime.errors import ConfigError, WireFormatError
from gymbus.runtime.media_frames import frame_indices, frames_limit, sample_frames
from tests.runtime.strategies import MP4_HEAD, animated_bytes, image_bytes

COLORS = [(i * 12, 255 - i * 12, i) for i in range(20)]


def test_frame_indices_are_even_and_include_both_ends() -> None:
    assert frame_indices(20, 8) == [0, 2, 5, 8, 10, 13, 16, 19]
    assert frame_indices(3, 8) == [0, 1, 2]
    assert frame_indices(20, 1) == [0]
    assert frame_indices(1, 8) == [0]
    with pytest.raises(ValueError, match="at least one frame"):
        frame_indices(0, 8)


@given(st.integers(1, 500), st.integers(1, 64))
def test_frame_indices_properties(count: int, max_frames: int) -> None:
    indices = frame_indices(count, max_frames)
    assert len(indices) == min(count, max_frames)
    assert indices == sorted(set(indices))
    assert indices[0] == 0
    assert len(indices) == 1 or indices[-1] == count - 1


def _colors(frames: list[bytes]) -> list[tuple[int, ...]]:
    out = []
    for png in frames:
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            out.append(tuple(image.convert("RGB").getpixel((0, 0))))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("mime", ["image/gif", "image/webp", "image/png"])
def test_animated_images_are_sampled_into_png_frames(mime: str) -> None:
    data = animated_bytes(COLORS, mime)
    frames = sample_frames(data, 8)
    assert len(frames) == 8
    colors = _colors(frames)
    expected = [COLORS[i] for i in frame_indices(20, 8)]
    tolerance = 0 if mime == "image/png" else 24  # GIF palettes and lossy WebP shift colours
    for got, want in zip(colors, expected, strict=True):
        assert all(abs(a - b) <= tolerance for a, b in zip(got, want, strict=True)), (got, want)
    assert sample_frames(data, 8) == frames  # deterministic


def test_a_still_image_is_one_frame() -> None:
    assert len(sample_frames(image_bytes("image/png"), 8)) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (MP4_HEAD + bytes(8), r"video is video/mp4: only animated GIF, WebP or PNG"),
        (image_bytes("image/jpeg"), r"video is image/jpeg: only animated"),
        (b"nothing", "video is an unknown type"),
        (animated_bytes(COLORS[:3])[:40], "cannot be decoded into frames"),
    ],
)
def test_what_cannot_be_framed_is_a_wire_format_error(data: bytes, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        sample_frames(data, 8)


def test_frames_limit() -> None:
    assert frames_limit("video_url", 8) is None
    assert frames_limit("frames", 3) == 3
    with pytest.raises(ConfigError, match="max_frames must be >= 1"):
        frames_limit("frames", 0)
    with pytest.raises(ConfigError, match="video must be"):
        frames_limit("gif", 8)  # type: ignore[arg-type]
