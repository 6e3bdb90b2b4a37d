"""Video as still frames, for servers without video input.

An animated GIF, WebP or PNG (APNG) is decoded with Pillow and ``max_frames`` frames are
sampled evenly, first and last included (the indices of vLLM's uniform frame sampling,
``linspace(0, n - 1, k)`` truncated), each re-encoded as PNG. Sampling and encoding are
deterministic: the same video gives the same frame bytes.
"""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

from gymbus.runtime.errors import ConfigError, WireFormatError
from gymbus.runtime.media_sniff import GIF, PNG, WEBP, sniff

__all__ = ["DEFAULT_MAX_FRAMES", "VideoMode", "frame_indices", "frames_limit", "sample_frames"]

VideoMode = Literal["video_url", "frames"]
"""How a wire writer sends a video part: as one video (vLLM's ``video_url``) or as
sampled frames (image parts), for servers without video input."""

DEFAULT_MAX_FRAMES = 8

_ANIMATED = {GIF.name, WEBP.name, PNG.name}


def frames_limit(video: VideoMode, max_frames: int) -> int | None:
    """``max_frames`` when videos go as frames, None when they go as video_url."""
    if video not in ("video_url", "frames"):
        raise ConfigError(f"video must be 'video_url' or 'frames', got {video!r}")
    if max_frames < 1:
        raise ConfigError(f"max_frames must be >= 1, got {max_frames}")
    return max_frames if video == "frames" else None


def frame_indices(count: int, max_frames: int) -> list[int]:
    """``min(count, max_frames)`` evenly spaced indices into ``count`` frames, first and
    last included."""
    if count < 1 or max_frames < 1:
        raise ValueError(f"need at least one frame (count={count}, max_frames={max_frames})")
    k = min(count, max_frames)
    if k == 1:
        return [0]
    return [i * (count - 1) // (k - 1) for i in range(k)]


def sample_frames(data: bytes, max_frames: int, what: str = "video") -> list[bytes]:
    """Up to ``max_frames`` frames of an animated image, as PNG bytes."""
    found = sniff(data)
    if found is None or found[0].name not in _ANIMATED:
        detected = found[1] if found is not None else "an unknown type"
        raise WireFormatError(
            f"{what} is {detected}: only animated GIF, WebP or PNG can be sent as frames "
            "(there is no video decoder); convert it, or send it as video_url"
        )
    frames: list[bytes] = []
    try:
        with Image.open(io.BytesIO(data)) as image:
            for index in frame_indices(getattr(image, "n_frames", 1), max_frames):
                image.seek(index)
                alpha = "A" in image.getbands() or "transparency" in image.info
                out = io.BytesIO()
                image.convert("RGBA" if alpha else "RGB").save(out, format="PNG")
                frames.append(out.getvalue())
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise WireFormatError(f"{what} cannot be decoded into frames: {exc}") from exc
    return frames
