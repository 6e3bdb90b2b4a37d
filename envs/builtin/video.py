"""Short flat-colour videos for the visual environments: animated GIFs drawn frame by frame,
and objects tracked back out of them by colour.

Frames are palette images drawn without anti-aliasing (:class:`~.images.Canvas`), so every
pixel has exactly one of the scene's colours and an object is exactly the pixels of its
colour. GIF encoding (LZW, fixed settings, one shared palette) is deterministic: the same
frames give byte-identical GIF bytes.

Videos travel by reference, as a :class:`~gymbus.runtime.messages.VideoPart` holding an
``image/gif`` blob (adapters send it as a ``video_url`` data URI, or split it into image
frames for servers without video input): :func:`video_question` puts it in a
:class:`~gymbus.runtime.media.MediaStore` and :func:`first_video` reads it back, which is
how a reference solver watches it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from PIL import Image, ImageSequence

from gymbus.envs.builtin.images import RGB
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import SystemMessage, TextPart, UserMessage, VideoPart
from gymbus.runtime.transcript import Transcript

__all__ = [
    "GIF",
    "Frame",
    "Point",
    "changes_direction",
    "decode_gif",
    "direction_label",
    "direction_of",
    "encode_gif",
    "first_video",
    "track",
    "video_question",
]

GIF = "image/gif"
Point = tuple[float, float]


def encode_gif(frames: Sequence[Image.Image], frame_ms: int) -> bytes:
    """Palette ``frames`` (same size and palette) as a looping animated GIF showing each for
    ``frame_ms`` (deterministic: the same frames give the same bytes). Consecutive equal
    frames are merged by the encoder, so frames should differ."""
    if not frames:
        raise ValueError("a video needs at least one frame")
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=list(frames[1:]),
        duration=frame_ms,
        loop=0,
        optimize=False,
    )
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: RGB bytes, row-major."""

    width: int
    height: int
    rgb: bytes

    def centroid(self, colour: RGB) -> Point | None:
        """The mean position (x, y) of the pixels of exactly ``colour``; ``None`` if absent."""
        pattern = bytes(colour)
        width, data = self.width, self.rgb
        sum_x = sum_y = count = 0
        i = data.find(pattern)
        while i >= 0:
            if i % 3:  # straddles two pixels
                i = data.find(pattern, i + 1)
                continue
            pixel = i // 3
            sum_x += pixel % width
            sum_y += pixel // width
            count += 1
            i = data.find(pattern, i + 3)
        return (sum_x / count, sum_y / count) if count else None


def decode_gif(data: bytes) -> list[Frame]:
    """Every frame of an animated image (GIF, or any format Pillow reads), fully composed."""
    with Image.open(io.BytesIO(data)) as video:
        return [
            Frame(frame.width, frame.height, frame.convert("RGB").tobytes())
            for frame in ImageSequence.Iterator(video)
        ]


def track(frames: Sequence[Frame], colour: RGB) -> list[Point] | None:
    """The centroid of ``colour`` in every frame; ``None`` if it is missing from any."""
    points: list[Point] = []
    for frame in frames:
        point = frame.centroid(colour)
        if point is None:
            return None
        points.append(point)
    return points


def direction_of(dx: float, dy: float, tolerance: float = 1.0) -> str | None:
    """A displacement as a direction in image coordinates (y grows downwards): ``"left"``,
    ``"up"``, ..., or a diagonal ``"up-left"``, ``"down-right"``, ...; a component within
    ``tolerance`` pixels counts as no movement. ``None`` when it did not move."""
    vertical = "up" if dy < -tolerance else "down" if dy > tolerance else ""
    horizontal = "left" if dx < -tolerance else "right" if dx > tolerance else ""
    return "-".join(part for part in (vertical, horizontal) if part) or None


_UP = r"up(?:wards?)?|upper|top|north"
_DOWN = r"down(?:wards?)?|lower|bottom|south"
_LEFT = r"left(?:wards?)?|west"
_RIGHT = r"right(?:wards?)?|east"
_AXES = {"up": _UP, "down": _DOWN, "left": _LEFT, "right": _RIGHT}
# what joins the two halves of a diagonal: up-left, up left, upleft, up and to the left
_JOIN = r"(?:\s*-\s*|\s+(?:and\s+)?(?:to(?:wards?)?\s+the\s+)?|)"


def _either(group: str, *words: str) -> str:
    return f"(?P<{group}>{'|'.join(words)})"


_COMPOUND = re.compile(
    rf"\b(?:{_either('v', _UP, _DOWN)}{_JOIN}{_either('h', _LEFT, _RIGHT)}"
    rf"|{_either('h2', _LEFT, _RIGHT)}{_JOIN}{_either('v2', _UP, _DOWN)})\b",
    re.IGNORECASE,
)
_SINGLE = re.compile(
    r"\b(?:" + "|".join(f"(?P<{name}>{words})" for name, words in _AXES.items()) + r")\b",
    re.IGNORECASE,
)


def _axis(word: str) -> str:
    return next(name for name, words in _AXES.items() if re.fullmatch(words, word, re.I))


def direction_label(text: str) -> str | None:
    """The one direction ``text`` names, as :func:`direction_of` spells it, or ``None``.

    Words: up/upward(s)/upper/top/north, down/downward(s)/lower/bottom/south,
    left/leftward(s)/west, right/rightward(s)/east. A vertical and a horizontal word
    joined by a hyphen, a space, "and" or "and to the" make one diagonal ("upper left",
    "up and to the left", "north-west" → ``"up-left"``). Naming two different directions
    ("left or up", "left, not right") is hedging: ``None``.
    """
    named: set[str] = set()
    for match in _COMPOUND.finditer(text):
        vertical, horizontal = match["v"] or match["v2"], match["h"] or match["h2"]
        named.add(f"{_axis(vertical)}-{_axis(horizontal)}")
    rest = _COMPOUND.sub(" ", text)
    named.update(m.lastgroup for m in _SINGLE.finditer(rest) if m.lastgroup)
    return named.pop() if len(named) == 1 else None


def changes_direction(points: Sequence[Point], tolerance: float = 0.5) -> bool:
    """Whether a path turns back along an axis: some frame-to-frame step moves the
    opposite way along x (or y) to an earlier step (steps within ``tolerance`` px along
    that axis count as no movement)."""
    for axis in (0, 1):
        signs = {
            1 if step > 0 else -1
            for a, b in pairwise(points)
            if abs(step := b[axis] - a[axis]) > tolerance
        }
        if len(signs) > 1:
            return True
    return False


# --- videos in conversations ---------------------------------------------------------------


_SYSTEM_PROMPT = (
    "You answer questions about the video you are shown. Watch it carefully, frame by "
    "frame; the answer is in the video. Reply with the answer only."
)


def video_question(media: MediaStore, text: str, gif: bytes) -> tuple[SystemMessage, UserMessage]:
    """The opening messages of a video question: ``gif`` goes into ``media`` (the store
    adapters inline it from) and the user message carries the text, then the video."""
    video = VideoPart(media=media.put(gif, GIF))
    question = UserMessage(content=(TextPart(text=text), video), author="environment")
    return SystemMessage(content=_SYSTEM_PROMPT), question


def first_video(conversation: Transcript, media: MediaStore) -> tuple[UserMessage, bytes] | None:
    """The first user message that carries a stored video, and that video's bytes (read
    from ``media``, the store the environment put it in); ``None`` when there is none."""
    for message in conversation:
        if isinstance(message, UserMessage):
            for part in message.content:
                if isinstance(part, VideoPart) and part.media is not None:
                    if part.media not in media:
                        return None
                    return message, media.get(part.media)
    return None
