"""Video as sampled frames on both wire formats (``frames=N``), for servers without
video input: one-way, the frames read back as image parts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AudioPart,
    ImagePart,
    TextPart,
    ToolMessage,
    UserMessage,
    VideoPart,
)
from gymbus.runtime.wire_chat import chat_message_bytes, from_chat, to_chat
from gymbus.runtime.wire_responses import (
    from_responses,
    responses_items_json,
    responses_message_bytes,
    to_responses,
)
from tests.runtime.strategies import (
    ANIMATION,
    MP4_HEAD,
    animated_bytes,
    conversations,
    messages,
    wav_bytes,
)

STORE = MediaStore()
MP4 = MP4_HEAD + bytes(8)
# What the Responses API can express with frames: text, images and videos as input.
INPUT_KINDS = ("text", "image", ANIMATION)
ASSISTANT_KINDS = ("text",)


def _with_default_detail(message: AnyMessage) -> AnyMessage:
    content = tuple(
        p.model_copy(update={"detail": "auto"})
        if isinstance(p, ImagePart) and p.detail is None
        else p
        for p in message.content
    )
    return message.model_copy(update={"content": content})


# --- Chat Completions ------------------------------------------------------------------


def chat_framed(message: AnyMessage, store: MediaStore, max_frames: int) -> AnyMessage:
    """``message`` with each video part replaced by image parts of its frames."""
    content: list[Any] = []
    for part in getattr(message, "content", ()):
        if isinstance(part, VideoPart):
            assert part.media is not None
            content.extend(ImagePart(media=ref) for ref in store.frames(part.media, max_frames))
        else:
            content.append(part)
    return message.model_copy(update={"content": tuple(content)})


@settings(max_examples=60)
@given(messages(STORE, ("text", "image", "audio", ANIMATION)), st.integers(1, 4))
def test_chat_round_trip(message: AnyMessage, max_frames: int) -> None:
    """Frames mode is one-way: the frames read back as image parts."""
    wire = to_chat(message, STORE, frames=max_frames)
    back = from_chat(orjson.loads(orjson.dumps(wire)), MediaStore())
    assert back == chat_framed(message, STORE, max_frames)


def test_chat_writes_sampled_png_frames() -> None:
    store = MediaStore()
    gif = store.put(animated_bytes([(i * 12, 0, 0) for i in range(20)]), "image/gif")
    message = UserMessage(content=(TextPart(text="what happens?"), VideoPart(media=gif)))
    as_video = to_chat(message, store)
    assert as_video["content"][1] == {
        "type": "video_url",
        "video_url": {"url": store.data_uri(gif)},
    }
    parts = to_chat(message, store, frames=8)["content"]
    assert parts[0] == {"type": "text", "text": "what happens?"}
    frames = store.frames(gif, 8)
    assert parts[1:] == [
        {"type": "image_url", "image_url": {"url": store.data_uri(ref)}} for ref in frames
    ]
    assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in parts[1:])
    assert len(to_chat(message, store, frames=3)["content"]) == 4
    # each way of writing is cached separately on the message
    video_bytes = chat_message_bytes(message, store)
    frame_bytes = chat_message_bytes(message, store, frames=8)
    assert video_bytes != frame_bytes
    assert chat_message_bytes(message, store) is video_bytes
    assert chat_message_bytes(message, store, frames=8) is frame_bytes
    assert orjson.loads(frame_bytes) == to_chat(message, store, frames=8)
    three = chat_message_bytes(message, store, frames=3)
    assert len(orjson.loads(three)["content"]) == 4


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (VideoPart(url="https://example.com/v.gif"), "a video by URL .* cannot be sent as frames"),
        (
            VideoPart(media=STORE.put(MP4, "video/mp4")),
            r"\(video/mp4\) is video/mp4: only animated",
        ),
    ],
)
def test_what_chat_cannot_write_as_frames(part: VideoPart, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        to_chat(UserMessage(content=(part,)), STORE, frames=8)


# --- Responses API ---------------------------------------------------------------------


def responses_framed(message: AnyMessage, store: MediaStore, max_frames: int) -> AnyMessage:
    """``message`` with each video part replaced by image parts (detail "auto") of its
    frames."""
    content: list[Any] = []
    for part in getattr(message, "content", ()):
        if isinstance(part, VideoPart):
            assert part.media is not None
            refs = store.frames(part.media, max_frames)
            content.extend(ImagePart(media=ref, detail="auto") for ref in refs)
        else:
            content.append(part)
    return _with_default_detail(message.model_copy(update={"content": tuple(content)}))


@settings(max_examples=60)
@given(
    conversations(STORE, INPUT_KINDS, assistant_kinds=ASSISTANT_KINDS, max_size=4),
    st.integers(1, 4),
)
def test_responses_round_trip(conversation: list[AnyMessage], max_frames: int) -> None:
    items = [item for m in conversation for item in to_responses(m, STORE, frames=max_frames)]
    back = from_responses(orjson.loads(orjson.dumps(items)), MediaStore())
    assert back == [responses_framed(m, STORE, max_frames) for m in conversation]


def test_responses_writes_input_images_and_caches_per_mode() -> None:
    store = MediaStore()
    gif = store.put(animated_bytes([(0, i * 12, 0) for i in range(20)]), "image/gif")
    message = UserMessage(content=(TextPart(text="describe"), VideoPart(media=gif)))
    with pytest.raises(
        WireFormatError,
        match=r"video parts cannot be written.*Completions, or frames \(video='frames'\)",
    ):
        to_responses(message, store)
    [item] = to_responses(message, store, frames=8)
    assert item["content"][1:] == [
        {"type": "input_image", "image_url": store.data_uri(ref), "detail": "auto"}
        for ref in store.frames(gif, 8)
    ]
    assert len(item["content"]) == 9
    frames = responses_message_bytes(message, store, frames=8)
    assert responses_message_bytes(message, store, frames=8) is frames
    assert orjson.loads(b"[" + frames + b"]") == [item]
    with pytest.raises(WireFormatError):  # the other mode is not served from that cache
        responses_message_bytes(message, store)
    body = responses_items_json([message], store, frames=2)
    assert len(orjson.loads(body)[0]["content"]) == 3


def test_responses_still_refuses_audio_and_urls() -> None:
    store = MediaStore()
    audio = UserMessage(content=(AudioPart(media=store.put(wav_bytes(), "audio/wav")),))
    with pytest.raises(WireFormatError, match=r"input\[0\]\.content\[0\]: audio parts"):
        responses_items_json([audio], store, frames=8)
    url = ToolMessage(tool_call_id="c", content=(VideoPart(url="https://example.com/v.gif"),))
    with pytest.raises(WireFormatError, match=r"m\.content\[0\]: a video by URL"):
        to_responses(url, store, "m", frames=8)
