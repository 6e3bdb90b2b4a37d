import io

import pytest
from PIL import Image

from gymbus.envs.builtin.images import (
    PNG,
    RGB,
    Canvas,
    Component,
    Run,
    ShapeKind,
    classify_shape,
    components,
    decode_png,
    first_image,
    image_question,
)
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import ImagePart, TextPart, UserMessage
from gymbus.runtime.transcript import Transcript

WHITE: RGB = (255, 255, 255)
RED: RGB = (200, 0, 0)
BLUE: RGB = (0, 0, 200)


def drawn(kind: ShapeKind, size: int) -> Component:
    canvas = Canvas(size + 4, size + 4, [WHITE, RED])
    canvas.shape(kind, 2, 2, size, 1)
    (region,) = components(decode_png(canvas.png()), ignore={0})
    return region


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- drawing --------------------------------------------------------------------------------


def test_canvas_checks_its_palette() -> None:
    with pytest.raises(ValueError, match="must be distinct"):
        Canvas(4, 4, [WHITE, RED, RED])
    with pytest.raises(ValueError, match="1 to 256 colours"):
        Canvas(4, 4, [])


def test_drawing_is_deterministic_and_aliased() -> None:
    def picture() -> bytes:
        canvas = Canvas(60, 40, [WHITE, RED, BLUE])
        canvas.shape("circle", 3, 3, 30, 1)
        canvas.shape("triangle", 36, 10, 20, 2)
        canvas.text((2, 30), "Oslo 40", 2)
        return canvas.png()

    first = picture()
    assert first == picture()
    assert first.startswith(b"\x89PNG")
    raster = decode_png(first)
    assert set(raster.pixels) == {0, 1, 2}  # no blended edge colours, text included
    assert raster.palette[:3] == (WHITE, RED, BLUE)


@pytest.mark.parametrize("kind", ["square", "circle", "triangle"])
@pytest.mark.parametrize("size", range(10, 81, 7))
def test_shapes_fill_their_box_as_classified(kind: ShapeKind, size: int) -> None:
    region = drawn(kind, size)
    assert (region.x0, region.y0, region.x1, region.y1) == (2, 2, 2 + size, 2 + size)
    assert classify_shape(region) == kind


def test_fill_ratios_are_near_the_ideal_ones() -> None:
    assert drawn("square", 40).fill_ratio == 1.0
    assert drawn("circle", 40).fill_ratio == pytest.approx(0.785, abs=0.03)
    assert drawn("triangle", 40).fill_ratio == pytest.approx(0.5, abs=0.03)


# --- reading --------------------------------------------------------------------------------


def test_runs_split_a_row_by_colour() -> None:
    canvas = Canvas(10, 2, [WHITE, RED, BLUE])
    canvas.draw.line((2, 0, 4, 0), fill=1)
    canvas.draw.point((5, 0), fill=2)
    raster = decode_png(canvas.png())
    assert raster.runs(0) == [Run(0, 0, 2, 0), Run(0, 2, 5, 1), Run(0, 5, 6, 2), Run(0, 6, 10, 0)]
    assert raster.runs(1) == [Run(1, 0, 10, 0)]
    assert raster.colour(3, 0) == RED
    assert raster.index_of(BLUE) == 2
    assert raster.index_of((1, 2, 3)) is None
    assert raster.most_common_index() == 0


def test_rgb_images_decode_like_palette_images() -> None:
    canvas = Canvas(30, 20, [WHITE, RED, BLUE])
    canvas.shape("square", 2, 2, 10, 1)
    canvas.shape("circle", 15, 2, 12, 2)
    rgb = decode_png(png_of(canvas.image.convert("RGB")))
    paletted = decode_png(canvas.png())
    background = rgb.index_of(WHITE)
    assert background is not None
    assert [(c.area, c.x0, c.y0) for c in components(rgb, ignore={background})] == [
        (c.area, c.x0, c.y0) for c in components(paletted, ignore={0})
    ]
    assert rgb.colour(3, 3) == RED


def test_only_flat_colour_images_decode() -> None:
    gradient = Image.new("RGB", (300, 1))
    gradient.putdata([(x % 256, x // 256, 0) for x in range(300)])
    with pytest.raises(ValueError, match="more than 256 colours"):
        decode_png(png_of(gradient))


def test_repeated_palette_colours_share_one_index() -> None:
    image = Image.new("P", (4, 1), 0)
    image.putpalette([*WHITE, *RED, *RED])
    image.putdata([0, 1, 2, 0])
    raster = decode_png(png_of(image))
    assert list(raster.pixels) == [0, 1, 1, 0]
    (region,) = components(raster, ignore={0})
    assert region.area == 2


def test_components_are_four_connected_regions_of_one_colour() -> None:
    canvas = Canvas(12, 8, [WHITE, RED, BLUE])
    canvas.draw.rectangle((0, 0, 0, 4), fill=1)  # a U: two arms joined at the bottom
    canvas.draw.rectangle((3, 0, 3, 4), fill=1)
    canvas.draw.line((0, 4, 3, 4), fill=1)
    canvas.draw.point((5, 0), fill=1)  # touches the next one only diagonally
    canvas.draw.point((6, 1), fill=1)
    canvas.draw.rectangle((7, 0, 8, 1), fill=2)  # touches the red point, other colour
    regions = components(decode_png(canvas.png()), ignore={0})
    assert [(r.index, r.area, r.x0, r.y0, r.x1, r.y1) for r in regions] == [
        (1, 12, 0, 0, 4, 5),
        (1, 1, 5, 0, 6, 1),
        (2, 4, 7, 0, 9, 2),
        (1, 1, 6, 1, 7, 2),
    ]


# --- images in conversations ----------------------------------------------------------------


def test_image_question_round_trips_through_the_store() -> None:
    media = MediaStore()
    png = Canvas(4, 4, [WHITE]).png()
    system, user = image_question(media, "What is shown?", png)
    assert system.role == "system"
    assert user.author == "environment"
    text, image = user.content
    assert isinstance(text, TextPart)
    assert text.text == "What is shown?"
    assert isinstance(image, ImagePart)
    assert image.media is not None
    assert image.media.mime_type == PNG
    assert first_image(Transcript([system, user]), media) == (user, png)


def test_first_image_needs_a_stored_image() -> None:
    media = MediaStore()
    _, user = image_question(media, "What is shown?", Canvas(4, 4, [WHITE]).png())
    assert first_image(Transcript([user]), MediaStore()) is None  # another store
    by_url = UserMessage(content=(ImagePart(url="https://example.com/a.png"),))
    assert first_image(Transcript([by_url]), media) is None
    assert first_image(Transcript([by_url, user]), media) is not None
