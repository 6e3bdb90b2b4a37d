from __future__ import annotations

import pytest
from pydantic import ValidationError

from gymbus.runtime.errors import ToolArgumentsError
from gymbus.runtime.messages import (
    AssistantMessage,
    ImagePart,
    MediaRef,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    author_of,
)


def test_a_string_is_shorthand_for_one_text_part() -> None:
    m = UserMessage(content="hi")
    assert m.content == (TextPart(text="hi"),)
    assert m.text == "hi"


def test_messages_are_frozen() -> None:
    m = UserMessage(content="hi")
    with pytest.raises(ValidationError):
        m.content = ()  # type: ignore[misc]


def test_the_wire_cache_is_not_part_of_the_value() -> None:
    a = UserMessage(content="x")
    assert a.cached("chat", lambda: b"x-bytes") == b"x-bytes"
    assert a.cached("chat", lambda: b"other") == b"x-bytes"  # computed once
    assert a == UserMessage(content="x")
    assert hash(a) == hash(UserMessage(content="x"))


def test_model_copy_starts_a_fresh_cache_so_no_stale_bytes_are_sent() -> None:
    a = UserMessage(content="x")
    a.cached("chat", lambda: b"x")
    b = a.model_copy(update={"content": (TextPart(text="y"),)})
    assert b.cached("chat", lambda: b"y") == b"y"


def test_media_parts_need_exactly_one_source() -> None:
    ref = MediaRef(sha256="0" * 64, mime_type="image/png", size=3)
    assert ImagePart(media=ref).media == ref
    assert ImagePart(url="https://example.invalid/a.png").url
    with pytest.raises(ValidationError, match="exactly one of 'media' or 'url'"):
        ImagePart()
    with pytest.raises(ValidationError, match="exactly one of 'media' or 'url'"):
        ImagePart(media=ref, url="https://example.invalid/a.png")


@pytest.mark.parametrize(
    ("arguments", "error"),
    [("{oops", "not valid JSON"), ("3", "must be a JSON object, got int")],
)
def test_bad_tool_arguments_raise_a_typed_error_naming_the_call(arguments: str, error: str) -> None:
    call = ToolCall(id="c9", name="lookup", arguments=arguments)
    with pytest.raises(ToolArgumentsError, match=error) as info:
        call.parsed_arguments()
    assert "'c9'" in str(info.value)
    assert "'lookup'" in str(info.value)


def test_authors() -> None:
    assert author_of(AssistantMessage(content="a")) == "policy"
    assert author_of(ToolMessage(tool_call_id="1", content="r")) == "tool"
    assert author_of(UserMessage(content="u")) == "user"
    assert author_of(UserMessage(content="task", author="environment")) == "environment"
