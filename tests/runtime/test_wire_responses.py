from __future__ import annotations

import base64
import hashlib
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
    ImagePart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
)
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.wire_responses import (
    from_responses,
    responses_items_json,
    responses_message_bytes,
    to_responses,
    tool_specs_to_responses,
)
from tests.runtime.strategies import (
    conversations,
    image_bytes,
)

STORE = MediaStore()
PNG = image_bytes("image/png")
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
JPEG = image_bytes("image/jpeg")
# What the Responses API can express: text and images for input; text for assistant output.
INPUT_KINDS = ("text", "image")
ASSISTANT_KINDS = ("text",)


def _items(messages: list[AnyMessage], store: MediaStore) -> list[dict[str, Any]]:
    return [item for m in messages for item in to_responses(m, store)]


def _with_default_detail(message: AnyMessage) -> AnyMessage:
    """Images without ``detail`` are written with the API default, ``"auto"``."""
    content = tuple(
        p.model_copy(update={"detail": "auto"})
        if isinstance(p, ImagePart) and p.detail is None
        else p
        for p in message.content
    )
    return message.model_copy(update={"content": content})


@settings(max_examples=200)
@given(conversations(STORE, INPUT_KINDS, assistant_kinds=ASSISTANT_KINDS))
def test_round_trip_through_json(conversation: list[AnyMessage]) -> None:
    """Identity for conversations without adjacent assistant messages (those merge), up to
    the default image detail."""
    fresh = MediaStore()
    wire = orjson.loads(orjson.dumps(_items(conversation, STORE)))
    assert from_responses(wire, fresh) == [_with_default_detail(m) for m in conversation]
    for message in conversation:
        for part in getattr(message, "content", ()):
            if isinstance(part, ImagePart) and part.media is not None:
                assert fresh.get(part.media) == STORE.get(part.media)


def test_adjacent_assistant_messages_merge() -> None:
    store = MediaStore()
    first = AssistantMessage(tool_calls=(ToolCall(id="c1", name="f"),))
    second = AssistantMessage(content="done")
    merged = from_responses(_items([first, second], store), store)
    assert merged == [AssistantMessage(content="done", tool_calls=first.tool_calls)]


def test_assistant_item_order_and_shapes() -> None:
    message = AssistantMessage(
        content="It is sunny.",
        reasoning="The user wants weather.",
        tool_calls=(ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),),
    )
    digest = hashlib.sha256(b"The user wants weather.").hexdigest()[:32]
    assert to_responses(message, MediaStore()) == [
        {
            "type": "reasoning",
            "id": f"rs_{digest}",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "The user wants weather."}],
        },
        {"type": "message", "role": "assistant", "content": "It is sunny."},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
    ]
    assert to_responses(message, MediaStore(), include_reasoning=False)[0]["type"] == "message"


def test_assistant_parts_and_refusal() -> None:
    refused = AssistantMessage(content="Sorry.", refusal="I can't help with that.")
    assert to_responses(refused, MediaStore()) == [
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Sorry.", "annotations": []},
                {"type": "refusal", "refusal": "I can't help with that."},
            ],
        }
    ]
    two = AssistantMessage(content=(TextPart(text="a"), TextPart(text="b")))
    assert to_responses(two, MediaStore())[0]["content"] == [
        {"type": "output_text", "text": "a", "annotations": []},
        {"type": "output_text", "text": "b", "annotations": []},
    ]
    store = MediaStore()
    for message in (refused, two):
        assert from_responses(to_responses(message, store), store) == [message]


def test_only_tool_calls_means_no_message_item() -> None:
    message = AssistantMessage(tool_calls=(ToolCall(id="c", name="f", arguments="{"),))
    assert to_responses(message, MediaStore()) == [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}
    ]
    assert to_responses(AssistantMessage(), MediaStore()) == [
        {"type": "message", "role": "assistant", "content": []}
    ]


def test_input_message_shapes() -> None:
    store = MediaStore()
    png = store.put(PNG, "image/png")
    assert to_responses(SystemMessage(content="rules"), store) == [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "rules"}]}
    ]
    user = UserMessage(
        content=(
            TextPart(text="what is this?"),
            ImagePart(media=png),
            ImagePart(url="https://example.com/a.jpg", detail="low"),
        )
    )
    assert to_responses(user, store) == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "what is this?"},
                {
                    "type": "input_image",
                    "image_url": PNG_URI,
                    "detail": "auto",
                },
                {"type": "input_image", "image_url": "https://example.com/a.jpg", "detail": "low"},
            ],
        }
    ]


def test_tool_output_shapes() -> None:
    store = MediaStore()
    png = store.put(PNG, "image/png")
    text = ToolMessage(tool_call_id="call_1", content="72F", name="get_weather", is_error=True)
    assert to_responses(text, store) == [
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": "72F",
            "name": "get_weather",
        }
    ]
    mixed = ToolMessage(
        tool_call_id="call_2", content=(TextPart(text="chart"), ImagePart(media=png))
    )
    assert to_responses(mixed, store) == [
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": [
                {"type": "input_text", "text": "chart"},
                {
                    "type": "input_image",
                    "image_url": PNG_URI,
                    "detail": "auto",
                },
            ],
        }
    ]
    back = from_responses(to_responses(text, store), store)
    assert back == [text.model_copy(update={"is_error": False})]


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (
            UserMessage(content=(TextPart(text="x"), AudioPart(url="https://example.com/a.wav"))),
            r"messages\[2\]\.content\[1\]: audio parts cannot be written in the Responses API",
        ),
        (
            ToolMessage(tool_call_id="c", content=(VideoPart(url="https://example.com/v.mp4"),)),
            r"messages\[2\]\.content\[0\]: video parts cannot be written",
        ),
        (
            AssistantMessage(content=(ImagePart(url="https://example.com/a.png"),)),
            r"messages\[2\]\.content\[0\]: an assistant image part cannot be written",
        ),
    ],
)
def test_inexpressible_parts_raise(message: AnyMessage, path: str) -> None:
    with pytest.raises(WireFormatError, match=path):
        to_responses(message, MediaStore(), where="messages[2]")


# Shapes as the OpenAI SDK types (openai-python, src/openai/types/responses) and vLLM show them.


def test_openai_response_output_with_reasoning_summary_and_function_call() -> None:
    output: list[dict[str, Any]] = [
        {
            "id": "rs_123",
            "type": "reasoning",
            "summary": [
                {"type": "summary_text", "text": "Need weather."},
                {"type": "summary_text", "text": "Call the tool."},
            ],
            "encrypted_content": None,
            "status": None,
        },
        {
            "id": "fc_123",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_abc",
            "name": "get_weather",
            "arguments": '{"location":"Paris, France"}',
        },
    ]
    assert from_responses(output, MediaStore()) == [
        AssistantMessage(
            reasoning="Need weather.\n\nCall the tool.",
            tool_calls=(
                ToolCall(
                    id="call_abc", name="get_weather", arguments='{"location":"Paris, France"}'
                ),
            ),
        )
    ]


def test_openai_response_output_message() -> None:
    output: list[dict[str, Any]] = [
        {"id": "rs_1", "type": "reasoning", "summary": []},
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "phase": "final_answer",
            "content": [
                {"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []},
            ],
        },
    ]
    assert from_responses(output, MediaStore()) == [AssistantMessage(content="Hi!")]


def test_vllm_response_output_reasoning_content() -> None:
    output: list[dict[str, Any]] = [
        {
            "id": "rs_abc",
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "2+2=4"}],
            "status": None,
        },
        {
            "id": "msg_abc",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "4", "annotations": [], "logprobs": None}],
        },
    ]
    assert from_responses(output, MediaStore()) == [
        AssistantMessage(content="4", reasoning="2+2=4")
    ]


def test_easy_input_messages_and_developer_role() -> None:
    store = MediaStore()
    items: list[dict[str, Any]] = [
        {"role": "developer", "content": "Talk like a pirate."},
        {"role": "user", "content": "Are semicolons optional?"},
        {"role": "assistant", "content": "Arr, aye."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ok"}]},
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": "[]",
            "id": "fco_1",
            "status": "completed",
        },
    ]
    assert from_responses(items, store) == [
        SystemMessage(content="Talk like a pirate."),
        UserMessage(content="Are semicolons optional?"),
        AssistantMessage(content="Arr, aye."),
        UserMessage(content="ok"),
        ToolMessage(tool_call_id="c", content="[]"),
    ]


def test_input_image_from_data_uri() -> None:
    store = MediaStore()
    [message] = from_responses(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
                        "detail": "auto",
                    }
                ],
            }
        ],
        store,
    )
    [image] = message.content
    assert isinstance(image, ImagePart)
    assert image.media is not None
    assert image.detail == "auto"
    assert store.get(image.media) == JPEG


@pytest.mark.parametrize(
    ("items", "path"),
    [
        (
            [{"type": "web_search_call", "id": "ws"}],
            r"input\[0\]\.type: unsupported item type 'web_search_call'",
        ),
        ([{"id": "x"}], r"input\[0\]\.type: unsupported item type None"),
        ([{"type": "message", "role": "robot", "content": []}], r"input\[0\]\.role: unknown role"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "input_file"}]},
            ],
            r"input\[1\]\.content\[0\]\.type: unsupported content type 'input_file'",
        ),
        (
            [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}],
            r"input\[0\]\.content\[0\]\.type: unsupported content type 'output_text'",
        ),
        (
            [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
            r"input\[0\]\.content\[0\]\.image_url: expected a URL string, got null",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": "u", "detail": "original"}],
                }
            ],
            r"input\[0\]\.content\[0\]\.detail: unsupported image detail 'original'",
        ),
        (
            [{"type": "function_call", "call_id": "c", "name": "f"}],
            r"input\[0\]\.arguments: expected a string",
        ),
        ([{"type": "reasoning", "summary": "x"}], r"input\[0\]\.summary: expected a list"),
        (
            [{"type": "reasoning", "summary": [{"type": "reasoning_text", "text": "x"}]}],
            r"input\[0\]\.summary\[0\]: expected a 'summary_text' part",
        ),
        (
            [{"type": "function_call_output", "call_id": "c", "output": 3}],
            r"input\[0\]\.output: expected a string",
        ),
        (["text"], r"input\[0\]: expected an item object, got str"),
    ],
)
def test_malformed_items_name_the_field(items: list[Any], path: str) -> None:
    with pytest.raises(WireFormatError, match=path):
        from_responses(items, MediaStore())


def test_a_string_is_not_an_item_list() -> None:
    with pytest.raises(WireFormatError, match="expected a list of items, got str"):
        from_responses("hello", MediaStore())  # type: ignore[arg-type]


def test_bytes_are_encoded_once_per_message() -> None:
    store = MediaStore()
    message = AssistantMessage(
        content="hi", reasoning="r", tool_calls=(ToolCall(id="c", name="f"),)
    )
    first = responses_message_bytes(message, store)
    assert responses_message_bytes(message, store) is first
    assert orjson.loads(b"[" + first + b"]") == to_responses(message, store)
    without = responses_message_bytes(message, store, include_reasoning=False)
    assert without is responses_message_bytes(message, store, include_reasoning=False)
    assert orjson.loads(b"[" + without + b"]") == to_responses(
        message, store, include_reasoning=False
    )


def test_items_json_joins_the_cached_bytes() -> None:
    store = MediaStore()
    history: list[AnyMessage] = [
        SystemMessage(content="be brief"),
        UserMessage(content="weather?"),
        AssistantMessage(tool_calls=(ToolCall(id="c", name="f"),)),
        ToolMessage(tool_call_id="c", content="sunny"),
    ]
    body = responses_items_json(history, store)
    assert orjson.loads(body) == _items(history, store)
    assert responses_items_json([], store) == b"[]"


def test_tool_specs() -> None:
    specs = [ToolSpec(name="search", description="Search"), ToolSpec(name="add", strict=True)]
    assert tool_specs_to_responses(specs) == [
        {
            "type": "function",
            "name": "search",
            "description": "Search",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
        {
            "type": "function",
            "name": "add",
            "description": "",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
    ]
