"""Media in requests against the fake server: video as frames, and each blob encoded once."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from gymbus.adapters import OpenAIChat, OpenAIResponses
from gymbus.runtime.errors import ConfigError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.media_frames import frame_indices
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    ImagePart,
    TextPart,
    UserMessage,
    VideoPart,
)
from tests.openai_server import OpenAIServer, request_for
from tests.runtime.strategies import animated_bytes, image_bytes

pytestmark = pytest.mark.anyio

COLORS = [(i * 12, 200 - i * 10, 7 * i) for i in range(20)]


def _options(server: OpenAIServer, media: MediaStore) -> dict[str, Any]:
    return {"base_url": server.base_url, "api_key_env": None, "media": media}


def _video_message(media: MediaStore) -> UserMessage:
    gif = media.put(animated_bytes(COLORS), "image/gif")
    return UserMessage(content=(TextPart(text="what moves?"), VideoPart(media=gif)))


def _png_color(url: str) -> tuple[int, ...]:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
        assert image.format == "PNG"
        return tuple(image.convert("RGB").getpixel((0, 0)))  # type: ignore[arg-type]


def _close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 24 for x, y in zip(a, b, strict=True))  # GIF palette error


async def test_chat_frames_mode_sends_eight_png_frames(openai_server: OpenAIServer) -> None:
    media = MediaStore()
    async with OpenAIChat("fake-model", video="frames", **_options(openai_server, media)) as model:
        reply = await model.generate(request_for(_video_message(media)))
    assert reply.text == "echo: what moves?"
    [message] = openai_server.requests[0].json()["messages"]
    text, *frames = message["content"]
    assert text == {"type": "text", "text": "what moves?"}
    assert len(frames) == 8
    assert all(set(f) == {"type", "image_url"} and f["type"] == "image_url" for f in frames)
    colors = [_png_color(f["image_url"]["url"]) for f in frames]
    expected = [COLORS[i] for i in frame_indices(20, 8)]
    assert all(_close(c, e) for c, e in zip(colors, expected, strict=True)), colors

    # deterministic: a fresh store, message and adapter send the same bytes
    other = MediaStore()
    async with OpenAIChat("fake-model", video="frames", **_options(openai_server, other)) as model:
        await model.generate(request_for(_video_message(other)))
    assert openai_server.requests[1].body == openai_server.requests[0].body


async def test_chat_max_frames_and_the_default_video_url(openai_server: OpenAIServer) -> None:
    media = MediaStore()
    message = _video_message(media)
    options = _options(openai_server, media)
    async with OpenAIChat("fake-model", video="frames", max_frames=3, **options) as model:
        await model.generate(request_for(message))
    async with OpenAIChat("fake-model", **options) as model:
        await model.generate(request_for(message))  # same message, the other cache entry
    three = openai_server.requests[0].json()["messages"][0]["content"]
    assert [p["type"] for p in three] == ["text", "image_url", "image_url", "image_url"]
    video = openai_server.requests[1].json()["messages"][0]["content"]
    assert video[1]["type"] == "video_url"
    assert video[1]["video_url"]["url"].startswith("data:image/gif;base64,")


async def test_responses_frames_mode_sends_input_images(openai_server: OpenAIServer) -> None:
    media = MediaStore()
    message = _video_message(media)
    options = _options(openai_server, media)
    async with OpenAIResponses("fake-model", **options) as model:
        with pytest.raises(WireFormatError, match=r"input\[0\]\.content\[1\]: video parts"):
            await model.generate(request_for(message))
    assert openai_server.count == 0
    async with OpenAIResponses("fake-model", video="frames", **options) as model:
        reply = await model.generate(request_for(message))
    assert reply.text == "echo: what moves?"
    [item] = openai_server.requests[0].json()["input"]
    images = item["content"][1:]
    assert len(images) == 8
    assert {p["type"] for p in images} == {"input_image"}
    assert {p["detail"] for p in images} == {"auto"}


@pytest.mark.parametrize("adapter", [OpenAIChat, OpenAIResponses])
def test_bad_video_options_are_config_errors(adapter: type[OpenAIChat]) -> None:
    url = "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="max_frames must be >= 1"):
        adapter("m", base_url=url, api_key_env=None, max_frames=0)
    with pytest.raises(ConfigError, match="video must be"):
        adapter("m", base_url=url, api_key_env=None, video="mp4")  # type: ignore[arg-type]


@pytest.mark.parametrize("adapter", [OpenAIChat, OpenAIResponses])
async def test_an_image_sent_in_ten_requests_is_encoded_once(
    openai_server: OpenAIServer, adapter: type[OpenAIChat]
) -> None:
    media = MediaStore()
    image = media.put(image_bytes("image/png", (64, 64), (9, 99, 199)), "image/png")
    first = UserMessage(content=(TextPart(text="look"), ImagePart(media=image)))
    conversation: list[AnyMessage] = [first]
    async with adapter("fake-model", **_options(openai_server, media)) as model:
        for turn in range(10):
            reply = await model.generate(request_for(*conversation))
            conversation += [reply, UserMessage(content=f"and now? {turn}")]
        # the same image in new message objects: the store's cached encoding is reused
        again = UserMessage(content=(ImagePart(media=image),))
        await model.generate(request_for(again))
    assert media.encodings == 1
    assert openai_server.count == 11
    uris = [r.body.count(media.data_uri(image).encode()) for r in openai_server.requests]
    assert uris == [1] * 11
    assert isinstance(conversation[1], AssistantMessage)
