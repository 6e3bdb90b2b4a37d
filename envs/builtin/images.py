"""Flat-colour images for the visual environments: drawing them and reading them back.

Images are drawn in palette mode without anti-aliasing (Pillow draws palette images with
hard edges, text included), so every pixel has exactly one of the colours the scene was
drawn with. That makes the reference solvers' perception exact: bars are found by colour and
measured in whole pixels, shapes are connected components of one colour. PNG encoding with
fixed parameters is deterministic: the same scene gives byte-identical PNG bytes.

Images travel by reference: :func:`image_question` puts the PNG in a
:class:`~gymbus.runtime.media.MediaStore` (adapters inline it from there when they write a
request) and :func:`first_image` reads it back, which is how a reference solver sees it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import ImagePart, SystemMessage, TextPart, UserMessage
from gymbus.runtime.transcript import Transcript

__all__ = [
    "PNG",
    "RGB",
    "Canvas",
    "Component",
    "Raster",
    "Run",
    "ShapeKind",
    "classify_shape",
    "components",
    "decode_png",
    "first_image",
    "image_question",
]

RGB = tuple[int, int, int]
ShapeKind = Literal["circle", "square", "triangle"]
PNG = "image/png"

_RUN = re.compile(rb"(.)\1*", re.DOTALL)  # a maximal run of one byte (one palette index)


class Canvas:
    """A palette image to draw on: ``colours[i]`` is ink ``i``; ink 0 is the background.

    Drawing is aliased (hard edges), so the PNG holds only these colours.
    """

    def __init__(self, width: int, height: int, colours: Sequence[RGB]) -> None:
        if not 1 <= len(colours) <= 256:
            raise ValueError(f"a palette image has 1 to 256 colours, got {len(colours)}")
        if len(set(colours)) != len(colours):
            raise ValueError("palette colours must be distinct (perception is by exact colour)")
        self.image = Image.new("P", (width, height), 0)
        self.image.putpalette([channel for colour in colours for channel in colour])
        self.draw = ImageDraw.Draw(self.image)
        self.draw.fontmode = "1"  # no anti-aliased text, whatever the image mode
        self.font = ImageFont.load_default(size=11)

    def text(self, xy: tuple[int, int], text: str, ink: int, anchor: str = "la") -> None:
        self.draw.text(xy, text, fill=ink, font=self.font, anchor=anchor)

    def shape(self, kind: ShapeKind, x: int, y: int, size: int, ink: int) -> None:
        """A filled ``kind`` inside the ``size``-pixel square whose top-left is ``(x, y)``
        (a triangle points up, its base on the square's bottom edge)."""
        box = (x, y, x + size - 1, y + size - 1)
        if kind == "square":
            self.draw.rectangle(box, fill=ink)
        elif kind == "circle":
            self.draw.ellipse(box, fill=ink)
        else:
            bottom = y + size - 1
            self.draw.polygon(
                [(x, bottom), (x + size - 1, bottom), (x + (size - 1) / 2, y)], fill=ink
            )

    def png(self) -> bytes:
        """The image as PNG bytes (fixed encoder settings: deterministic)."""
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", optimize=False, compress_level=9)
        return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Run:
    """Pixels ``x0 <= x < x1`` of one row, all of palette index ``index``."""

    y: int
    x0: int
    x1: int
    index: int

    @property
    def length(self) -> int:
        return self.x1 - self.x0


@dataclass(frozen=True, slots=True)
class Raster:
    """A decoded image as one palette index per pixel (row-major) and the palette.

    Indices are canonical: two indices never share a colour, so equal colour means equal
    index.
    """

    width: int
    height: int
    pixels: bytes
    palette: tuple[RGB, ...]

    def index(self, x: int, y: int) -> int:
        return self.pixels[y * self.width + x]

    def colour(self, x: int, y: int) -> RGB:
        return self.palette[self.index(x, y)]

    def index_of(self, colour: RGB) -> int | None:
        """The index of ``colour`` if the image uses it, else ``None``."""
        try:
            index = self.palette.index(colour)
        except ValueError:
            return None
        return index if bytes((index,)) in self.pixels else None

    def row(self, y: int) -> bytes:
        return self.pixels[y * self.width : (y + 1) * self.width]

    def runs(self, y: int) -> list[Run]:
        """Row ``y`` as maximal runs of one colour, left to right."""
        row = self.row(y)
        return [Run(y, m.start(), m.end(), row[m.start()]) for m in _RUN.finditer(row)]

    def most_common_index(self) -> int:
        counts = [self.pixels.count(bytes((i,))) for i in range(len(self.palette))]
        return max(range(len(counts)), key=counts.__getitem__)


def decode_png(data: bytes) -> Raster:
    """Decode an image of at most 256 distinct colours into a :class:`Raster`.

    Raises ``ValueError`` for an image that is not flat-colour (more than 256 colours)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode == "P" and "transparency" not in image.info:
            flat = image.getpalette("RGB") or []
            palette = [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]
            return _canonical(image.width, image.height, image.tobytes(), palette)
        rgb = image.convert("RGB")
    colours = rgb.getcolors(256)
    if colours is None:
        raise ValueError("not a flat-colour image: it has more than 256 colours")
    palette = sorted((c[0], c[1], c[2]) for _, c in colours if isinstance(c, tuple))
    lookup = {colour: i for i, colour in enumerate(palette)}
    data_rgb = rgb.tobytes()
    pixels = bytes(
        lookup[(data_rgb[i], data_rgb[i + 1], data_rgb[i + 2])] for i in range(0, len(data_rgb), 3)
    )
    return Raster(rgb.width, rgb.height, pixels, tuple(palette))


def _canonical(width: int, height: int, pixels: bytes, palette: list[RGB]) -> Raster:
    """Map indices that repeat an earlier palette colour to that earlier index."""
    first: dict[RGB, int] = {}
    table = bytearray(range(256))
    for i, colour in enumerate(palette):
        table[i] = first.setdefault(colour, i)
    return Raster(width, height, pixels.translate(bytes(table)), tuple(palette))


@dataclass(frozen=True, slots=True)
class Component:
    """A 4-connected region of one colour: its palette index, pixel count and bounding box
    (``x0 <= x < x1``, ``y0 <= y < y1``)."""

    index: int
    area: int
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def fill_ratio(self) -> float:
        """Share of the bounding box the region covers."""
        return self.area / ((self.x1 - self.x0) * (self.y1 - self.y0))


def components(raster: Raster, ignore: Container[int] = ()) -> list[Component]:
    """The 4-connected regions of equal colour, skipping indices in ``ignore`` (e.g. the
    background), in order of their first pixel (top to bottom, left to right)."""
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs: list[Run] = []
    previous: list[int] = []  # run ids of the previous row, left to right
    for y in range(raster.height):
        current: list[int] = []
        j = 0
        for run in raster.runs(y):
            if run.index in ignore:
                continue
            rid = len(runs)
            runs.append(run)
            parent.append(rid)
            current.append(rid)
            while j < len(previous) and runs[previous[j]].x1 <= run.x0:
                j += 1  # previous-row runs entirely to the left
            k = j
            while k < len(previous) and runs[previous[k]].x0 < run.x1:
                above = previous[k]
                if runs[above].index == run.index:
                    parent[find(rid)] = find(above)
                k += 1
        previous = current
    regions: dict[int, list[Run]] = {}
    for rid, run in enumerate(runs):
        regions.setdefault(find(rid), []).append(run)
    return [
        Component(
            index=members[0].index,
            area=sum(r.length for r in members),
            x0=min(r.x0 for r in members),
            y0=members[0].y,
            x1=max(r.x1 for r in members),
            y1=members[-1].y + 1,
        )
        for members in sorted(regions.values(), key=lambda m: (m[0].y, m[0].x0))
    ]


# Fill ratios of the bounding box: square 1, disc pi/4 (0.785), upright triangle 1/2. The
# cuts sit between; aliased shapes of 10 px or more stay inside them (disc >= 0.75,
# triangle <= 0.55).
_SQUARE_MIN = 0.9
_CIRCLE_MIN = 0.65


def classify_shape(component: Component) -> ShapeKind:
    """Square, circle or triangle, from how much of its bounding box a region fills."""
    ratio = component.fill_ratio
    if ratio >= _SQUARE_MIN:
        return "square"
    if ratio >= _CIRCLE_MIN:
        return "circle"
    return "triangle"


# --- images in conversations ---------------------------------------------------------------


_SYSTEM_PROMPT = (
    "You answer questions about the image you are shown. Look at it carefully; the answer "
    "is in the image. Reply with the answer only."
)


def image_question(media: MediaStore, text: str, png: bytes) -> tuple[SystemMessage, UserMessage]:
    """The opening messages of an image question: ``png`` goes into ``media`` (the store
    adapters inline it from) and the user message carries the text, then the image."""
    image = ImagePart(media=media.put(png, PNG))
    question = UserMessage(content=(TextPart(text=text), image), author="environment")
    return SystemMessage(content=_SYSTEM_PROMPT), question


def first_image(conversation: Transcript, media: MediaStore) -> tuple[UserMessage, bytes] | None:
    """The first user message that carries a stored image, and that image's bytes (read
    from ``media``, the store the environment put it in); ``None`` when there is none."""
    for message in conversation:
        if isinstance(message, UserMessage):
            for part in message.content:
                if isinstance(part, ImagePart) and part.media is not None:
                    if part.media not in media:
                        return None
                    return message, media.get(part.media)
    return None
