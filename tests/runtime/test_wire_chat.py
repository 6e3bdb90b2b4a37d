from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    AudioPart,
    Generation,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
)
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.wire_chat import (
    chat_message_bytes,
    chat_messages_json,
    from_chat,
    to_chat,
    tool_specs_to_chat,
)
from tests.runtime.strategies import (
    MP3_HEAD,
    MP4_HEAD,
    OGG_HEAD,
    image_bytes,
    messages,
    wav_bytes,
)

STORE = MediaStore()
PNG = image_bytes("image/png")
JPEG = image_bytes("image/jpeg")
WAV = wav_bytes()
MP3 = MP3_HEAD + bytes(12)
OGG = OGG_HEAD + b"vorbis"
MP4 = MP4_HEAD + bytes(8)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _media_of(message: AnyMessage) -> list[Any]:
    return [p.media for p in getattr(message, "content", ()) if getattr(p, "media", None)]


@settings(max_examples=200)
@given(messages(STORE))
def test_round_trip_through_json(message: AnyMessage) -> None:
    fresh = MediaStore()
    wire = orjson.loads(orjson.dumps(to_chat(message, STORE)))
    back = from_chat(wire, fresh)
    assert back == message
    for ref in _media_of(message):
        assert fresh.get(ref) == STORE.get(ref)


@settings(max_examples=50)
@given(messages(STORE))
def test_cached_bytes_are_the_json_of_to_chat(message: AnyMessage) -> None:
    encoded = chat_message_bytes(message, STORE)
    assert orjson.loads(encoded) == to_chat(message, STORE)


def test_bytes_are_encoded_once_per_message() -> None:
    store = MediaStore()
    message = UserMessage(content=(ImagePart(media=store.put(PNG, "image/png")),))
    first = chat_message_bytes(message, store)
    assert chat_message_bytes(message, store) is first
    # once cached, the bytes no longer need the store
    assert chat_message_bytes(message, MediaStore()) is first


def test_messages_json_joins_the_cached_bytes() -> None:
    store = MediaStore()
    history: list[AnyMessage] = [
        SystemMessage(content="be brief"),
        UserMessage(content="hi"),
        AssistantMessage(content="hello"),
    ]
    body = chat_messages_json(history, store)
    assert orjson.loads(body) == [to_chat(m, store) for m in history]
    assert chat_messages_json([], store) == b"[]"
    parts = [chat_message_bytes(m, store) for m in history]
    assert body == b"[" + b",".join(parts) + b"]"


def test_a_single_text_part_is_a_plain_string() -> None:
    store = MediaStore()
    assert to_chat(SystemMessage(content="rules"), store) == {
        "role": "system",
        "content": "rules",
    }
    two = UserMessage(content=(TextPart(text="a"), TextPart(text="b")))
    assert to_chat(two, store)["content"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
    ]
    assert to_chat(UserMessage(content=()), store)["content"] == []
    assert from_chat({"role": "user", "content": "hi"}, store) == UserMessage(content="hi")
    assert from_chat({"role": "user", "content": None}, store) == UserMessage(content=())
    assert from_chat({"role": "user"}, store) == UserMessage(content=())


def test_media_parts() -> None:
    store = MediaStore()
    png = store.put(PNG, "image/png")
    wav = store.put(WAV, "audio/wav")
    ogg = store.put(OGG, "audio/ogg")
    mp4 = store.put(MP4, "video/mp4")
    message = UserMessage(
        content=(
            TextPart(text="look"),
            ImagePart(media=png, detail="high"),
            ImagePart(url="https://example.com/cat.jpg"),
            AudioPart(media=wav),
            AudioPart(media=ogg),
            AudioPart(url="https://example.com/a.mp3"),
            VideoPart(media=mp4),
            VideoPart(url="https://example.com/v.mp4"),
        )
    )
    assert to_chat(message, store)["content"] == [
        {"type": "text", "text": "look"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + b64(PNG), "detail": "high"},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}},
        {"type": "audio_url", "audio_url": {"url": "data:audio/ogg;base64," + b64(OGG)}},
        {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}},
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + b64(MP4)}},
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
    ]


def test_audio_type_aliases_normalize() -> None:
    store = MediaStore()
    ref = store.put(WAV, "audio/x-wav")
    wire = to_chat(UserMessage(content=(AudioPart(media=ref),)), store)
    assert wire["content"][0]["input_audio"]["format"] == "wav"
    back = from_chat(wire, store)
    assert back.content[0].media.mime_type == "audio/wav"  # type: ignore[union-attr]
    assert back.content[0].media.sha256 == ref.sha256  # type: ignore[union-attr]


def test_assistant_omits_empty_fields_and_keeps_arguments_verbatim() -> None:
    store = MediaStore()
    assert to_chat(AssistantMessage(), store) == {"role": "assistant"}
    message = AssistantMessage(
        tool_calls=(ToolCall(id="call_1", name="f", arguments='{"a": 1,}'),),
        reasoning="think",
        generation=Generation(model="m"),
    )
    assert to_chat(message, store) == {
        "role": "assistant",
        "reasoning": "think",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a": 1,}'},
            }
        ],
    }


def test_runtime_only_fields_are_not_written() -> None:
    store = MediaStore()
    tool = ToolMessage(tool_call_id="c", content="boom", is_error=True)
    assert to_chat(tool, store) == {"role": "tool", "tool_call_id": "c", "content": "boom"}
    assert from_chat(to_chat(tool, store), store) == tool.model_copy(update={"is_error": False})
    named = ToolMessage(tool_call_id="c", content="ok", name="f")
    assert to_chat(named, store)["name"] == "f"
    user = UserMessage(content="x", author="environment")
    assert to_chat(user, store) == {"role": "user", "content": "x"}


# Shapes as the OpenAI API reference and vLLM show them.


def test_openai_tool_call_response_message() -> None:
    message = from_chat(
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {
                        "name": "get_current_weather",
                        "arguments": '{\n"location": "Boston, MA"\n}',
                    },
                }
            ],
        },
        MediaStore(),
    )
    assert message == AssistantMessage(
        tool_calls=(
            ToolCall(
                id="call_abc123",
                name="get_current_weather",
                arguments='{\n"location": "Boston, MA"\n}',
            ),
        )
    )


def test_openai_refusal_and_content_part_refusal() -> None:
    store = MediaStore()
    refused = from_chat({"role": "assistant", "content": None, "refusal": "I can't."}, store)
    assert refused == AssistantMessage(refusal="I can't.")
    parts = from_chat(
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Sorry."}, {"type": "refusal", "refusal": "No."}],
        },
        store,
    )
    assert parts == AssistantMessage(content="Sorry.", refusal="No.")


def test_openai_user_message_with_image_and_audio() -> None:
    store = MediaStore()
    message = from_chat(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's in this image?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/boardwalk.jpg", "detail": "low"},
                },
                {"type": "input_audio", "input_audio": {"data": b64(MP3), "format": "mp3"}},
            ],
        },
        store,
    )
    assert isinstance(message, UserMessage)
    _text, image, audio = message.content
    assert image == ImagePart(url="https://example.com/boardwalk.jpg", detail="low")
    assert isinstance(audio, AudioPart)
    assert audio.media is not None
    assert audio.media.mime_type == "audio/mpeg"
    assert store.get(audio.media) == MP3


def test_vllm_reasoning_fields_and_developer_role() -> None:
    store = MediaStore()
    new = from_chat({"role": "assistant", "content": "4", "reasoning": "2+2"}, store)
    old = from_chat({"role": "assistant", "content": "4", "reasoning_content": "2+2"}, store)
    assert new == old == AssistantMessage(content="4", reasoning="2+2")
    assert from_chat({"role": "developer", "content": "x"}, store) == SystemMessage(content="x")


def test_vllm_shorthand_media_and_data_uris() -> None:
    store = MediaStore()
    message = from_chat(
        {
            "role": "user",
            "content": [
                "plain",
                {"type": "image_url", "image_url": "data:image/png;base64," + b64(PNG)},
                {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
                {"type": "audio_url", "audio_url": {"url": "data:audio/ogg;base64," + b64(OGG)}},
                {
                    "type": "input_audio",
                    "input_audio": {"data": "data:audio/wav;base64," + b64(WAV)},
                },
            ],
        },
        store,
    )
    text, image, video, ogg, wav = message.content
    assert text == TextPart(text="plain")
    assert isinstance(image, ImagePart)
    assert image.media is not None
    assert store.get(image.media) == PNG
    assert video == VideoPart(url="https://example.com/v.mp4")
    assert isinstance(ogg, AudioPart)
    assert ogg.media is not None
    assert ogg.media.mime_type == "audio/ogg"
    assert isinstance(wav, AudioPart)
    assert wav.media is not None
    assert wav.media.mime_type == "audio/wav"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"role": "robot", "content": "x"}, r"messages\[3\]\.role: unknown role 'robot'"),
        ({"content": "x"}, r"messages\[3\]\.role: unknown role None"),
        (
            {"role": "user", "content": ["a", {"type": "file", "file": {}}]},
            r"messages\[3\]\.content\[1\]\.type: unknown content part type 'file'",
        ),
        ({"role": "user", "content": 5}, r"messages\[3\]\.content: expected a string"),
        ({"role": "user", "content": [7]}, r"messages\[3\]\.content\[0\]: expected a content"),
        (
            {"role": "user", "content": [{"type": "text", "text": None}]},
            r"messages\[3\]\.content\[0\]\.text: expected a string, got null",
        ),
        (
            {"role": "user", "content": [{"type": "refusal", "refusal": "no"}]},
            r"messages\[3\]\.content\[0\]\.type: unknown content part type 'refusal'",
        ),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]},
            r"messages\[3\]\.content\[0\]\.image_url\.url: expected a string",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "original"}}],
            },
            r"messages\[3\]\.content\[0\]\.image_url\.detail: unsupported image detail",
        ),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]},
            r"messages\[3\]\.content\[0\]\.image_url\.url: unsupported data URI",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "aGk="}}]},
            r"messages\[3\]\.content\[0\]\.input_audio\.format: expected 'wav' or 'mp3'",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "!!", "format": "wav"}}
                ],
            },
            r"messages\[3\]\.content\[0\]\.input_audio\.data: invalid base64",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": b64(PNG), "format": "wav"}}
                ],
            },
            r"input_audio\.data: media declared as audio/wav but its bytes are PNG",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": "data:image/png;base64,aGk="}],
            },
            r"content\[0\]\.image_url\.url: media declared as image/png but its bytes are not",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": "data:image/png;base64," + b64(PNG[:30])}
                ],
            },
            r"content\[0\]\.image_url\.url: corrupt PNG image",
        ),
        (
            {"role": "assistant", "tool_calls": {"id": "x"}},
            r"messages\[3\]\.tool_calls: expected a list",
        ),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]},
            r"messages\[3\]\.tool_calls\[0\]\.type: unsupported tool call type 'custom'",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
            },
            r"messages\[3\]\.tool_calls\[0\]\.function\.arguments: expected a string",
        ),
        ({"role": "assistant", "refusal": 3}, r"messages\[3\]\.refusal: expected a string"),
        ({"role": "tool", "content": "x"}, r"messages\[3\]\.tool_call_id: expected a string"),
    ],
)
def test_malformed_messages_name_the_field(data: dict[str, Any], path: str) -> None:
    with pytest.raises(WireFormatError, match=path):
        from_chat(data, MediaStore(), where="messages[3]")


def test_not_a_mapping() -> None:
    with pytest.raises(WireFormatError, match=r"message: expected a message object, got list"):
        from_chat([], MediaStore())  # type: ignore[arg-type]


def test_writing_media_missing_from_the_store_fails() -> None:
    ref = MediaStore().put(PNG, "image/png")
    message = UserMessage(content=(ImagePart(media=ref),))
    with pytest.raises(WireFormatError, match=ref.sha256):
        chat_message_bytes(message, MediaStore())


def test_tool_specs() -> None:
    specs = [
        ToolSpec(name="search", description="Search the web"),
        ToolSpec(
            name="add",
            parameters={"type": "object", "properties": {"a": {"type": "integer"}}},
            strict=True,
        ),
    ]
    assert tool_specs_to_chat(specs) == [
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search the web",
                "parameters": {"type": "object", "properties": {}},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "strict": True,
            },
        },
    ]
