"""Fuzzing the surfaces that read what a model server or a model wrote: wire messages,
tool-call arguments, tool argument validation, media bytes.

Each test states the surface's documented contract as the set of exceptions it may
raise; anything else (KeyError, TypeError, a pydantic ValidationError…) is a bug.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gymbus.runtime.errors import BadMediaError, ToolArgumentsError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tools import FunctionTool, ToolSpec
from gymbus.runtime.wire_chat import from_chat
from gymbus.runtime.wire_responses import from_responses
from tests.fuzzing import (
    any_text,
    chat_messages,
    data_uris,
    declared_types,
    json_objects,
    json_values,
    media_ish_bytes,
    outcome,
    responses_items,
    scalars,
)
from tests.runtime.strategies import image_bytes

MESSAGES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)
STORE = MediaStore()  # one per module: hypothesis does not mix with function fixtures
TYPE_SUBTYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")

WIRE_KEYS = (
    "role", "content", "type", "text", "image_url", "url", "detail", "input_audio", "data",
    "format", "audio_url", "video_url", "refusal", "tool_calls", "id", "function", "name",
    "arguments", "tool_call_id", "reasoning", "reasoning_content", "call_id", "output",
    "summary", "status",
)  # fmt: skip
WIRE_WORDS = (
    "user", "system", "developer", "assistant", "tool", "text", "image_url", "input_audio",
    "audio_url", "video_url", "refusal", "function", "message", "reasoning", "function_call",
    "function_call_output", "input_text", "output_text", "input_image", "reasoning_text",
    "summary_text", "wav", "mp3", "auto", "low", "high", "{}", '{"a": 1}',
)  # fmt: skip
wire_values = json_values(WIRE_KEYS, WIRE_WORDS, data_uris())
wire_objects = json_objects(WIRE_KEYS, WIRE_WORDS, data_uris())


@settings(max_examples=300, deadline=None)
@given(st.one_of(chat_messages(), chat_messages(), wire_objects, wire_values))
@example({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]})
@example({"role": "assistant", "tool_calls": [{"id": 1, "function": {"name": "f"}}]})
def test_from_chat_raises_only_wire_format_errors(data: Any) -> None:
    message = outcome(lambda: from_chat(data, STORE, "messages[0]"), WireFormatError)
    if isinstance(message, WireFormatError):
        assert str(message).startswith("messages[0]")  # the field path
    else:
        assert isinstance(message, MESSAGES)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(responses_items(), max_size=4), st.lists(wire_objects), wire_values))
@example([{"type": "reasoning", "summary": [{"type": "summary_text"}]}])
@example([{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image"}]}])
def test_from_responses_raises_only_wire_format_errors(items: Any) -> None:
    messages = outcome(lambda: from_responses(items, STORE, "input"), WireFormatError)
    if isinstance(messages, WireFormatError):
        assert str(messages).startswith("input")
    else:
        assert all(isinstance(m, MESSAGES) for m in messages)


json_texts = json_values(("a", "b"), ("x",)).map(repr) | st.builds(
    lambda text, cut: text[:cut], json_values(("a", "b"), ("x",)).map(str), st.integers(0, 40)
)


@settings(max_examples=300)
@given(st.one_of(any_text, st.text(max_size=60), json_texts))
@example("\ud800")
@example('{"a": "\\ud800"}')
@example("[" * 5000)
@example("123456789012345678901234567890")
def test_tool_call_arguments_parse_or_raise_tool_arguments_error(arguments: str) -> None:
    call = ToolCall(id="call_1", name="lookup", arguments=arguments)
    parsed = outcome(call.parsed_arguments, ToolArgumentsError)
    if isinstance(parsed, ToolArgumentsError):
        assert "'call_1'" in str(parsed)
    else:
        assert isinstance(parsed, dict)


def _lookup(order_id: str, limit: int = 10) -> str:
    return f"{order_id}:{limit}"


def _anything(**fields: Any) -> str:
    return ",".join(sorted(fields))


TOOLS = (
    FunctionTool(  # the schema allows what the function does not take
        _lookup,
        ToolSpec(
            name="lookup",
            parameters={
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "limit": {"type": "integer"}},
            },
        ),
    ),
    FunctionTool(
        _lookup,
        ToolSpec(
            name="strict_lookup",
            parameters={
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "pattern": "^ORD-[0-9]+$"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                },
                "required": ["order_id"],
                "additionalProperties": False,
            },
        ),
    ),
    FunctionTool(_anything, ToolSpec(name="anything")),
)
ARGUMENT_NAMES = ("order_id", "limit", "other", "self", "fields", "")


@settings(max_examples=300)
@given(
    st.sampled_from(TOOLS),
    st.dictionaries(
        st.sampled_from(ARGUMENT_NAMES) | st.text(max_size=6),
        scalars | json_values(ARGUMENT_NAMES, ("ORD-1",)),
        max_size=4,
    ),
)
@example(TOOLS[0], {"order_id": "ORD-1", "other": 1})
@example(TOOLS[0], {"limit": 3})
@example(TOOLS[2], {"": 1})
def test_function_tools_accept_or_raise_tool_arguments_error(
    tool: FunctionTool, arguments: dict[str, Any]
) -> None:
    output = outcome(lambda: asyncio.run(tool(arguments)), ToolArgumentsError)
    if isinstance(output, ToolArgumentsError):
        assert repr(tool.spec.name) in str(output)
    else:
        assert isinstance(output, str)


def test_arguments_the_function_cannot_take_go_back_to_the_model() -> None:
    """Regression: a schema without ``additionalProperties: false`` let an extra or a
    missing argument reach the function, whose TypeError crashed the episode (kind
    ``tool``) instead of going back to the model."""
    lookup = TOOLS[0]
    with pytest.raises(ToolArgumentsError, match="other"):
        asyncio.run(lookup({"order_id": "ORD-1", "other": 1}))
    with pytest.raises(ToolArgumentsError, match="order_id"):
        asyncio.run(lookup({"limit": 3}))
    assert asyncio.run(lookup({"order_id": "ORD-1"})) == "ORD-1:10"


def test_a_type_error_inside_the_tool_is_still_a_crash() -> None:
    def broken(x: int) -> str:
        return x + "!"  # type: ignore[return-value,operator]

    tool = FunctionTool(broken, ToolSpec(name="broken"))
    with pytest.raises(TypeError):
        asyncio.run(tool({"x": 1}))


@settings(max_examples=400, deadline=None)
@given(media_ish_bytes(), declared_types())
@example(b"\x00\x01 raw samples", "audio/L16\n")
def test_media_put_stores_or_raises_bad_media(data: bytes, declared: str | None) -> None:
    ref = outcome(lambda: STORE.put(data, declared), BadMediaError, WireFormatError)
    if isinstance(ref, Exception):
        return
    assert TYPE_SUBTYPE.fullmatch(ref.mime_type), ref.mime_type
    assert STORE.get(ref) == data
    assert STORE.put_data_uri(STORE.data_uri(ref)) == ref  # what is stored can be written


@settings(max_examples=200, deadline=None)
@given(data_uris())
@example("data:audio/L16\n;base64,AAEC")
def test_media_data_uris_store_or_raise_wire_format_errors(uri: str) -> None:
    ref = outcome(lambda: STORE.put_data_uri(uri), BadMediaError, WireFormatError)
    if isinstance(ref, Exception):
        return
    assert TYPE_SUBTYPE.fullmatch(ref.mime_type), ref.mime_type


def test_a_media_type_with_a_trailing_newline_is_refused() -> None:
    """Regression: the type/subtype check used ``re.match`` with ``$``, which also
    matches before a final newline, so media of a type not sniffed (raw PCM) declared
    as ``"audio/L16\\n"`` was stored under it and written into broken data URIs."""
    pcm = b"\x00\x01 raw samples"
    assert STORE.put(pcm, "audio/L16").mime_type == "audio/L16"
    with pytest.raises(WireFormatError, match="type/subtype"):
        STORE.put(pcm, "audio/L16\n")
    with pytest.raises(WireFormatError, match="type/subtype"):
        STORE.put_data_uri("data:audio/L16\n;base64,AAEC")
    with pytest.raises(WireFormatError, match="type/subtype"):  # sniffed: was BadMediaError
        STORE.put(image_bytes("image/png"), "image/png\n")


def test_reading_an_assistant_message_keeps_what_it_can() -> None:
    """A sanity anchor for the fuzzers: well-formed input still reads."""
    message = from_chat(
        {"role": "assistant", "content": "hi", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        STORE,
    )  # fmt: skip
    assert isinstance(message, AssistantMessage)
    assert message.tool_calls[0].parsed_arguments() == {}
