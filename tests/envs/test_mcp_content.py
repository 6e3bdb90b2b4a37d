"""MCP results as tool output (envs/mcp_content.py) and the specs the model sees
(envs/mcp_schemas.py): pure conversions, checked on the SDK's own types."""

from __future__ import annotations

import base64
import io

import pytest
from jsonschema import Draft202012Validator
from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
    Tool,
)
from PIL import Image
from structlog.testing import capture_logs

from gymbus.envs.mcp_content import error_text, tool_output
from gymbus.envs.mcp_schemas import hide_arguments, usable_tools
from gymbus.runtime.errors import ToolError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import ImagePart, TextPart
from gymbus.runtime.tools import ToolSpec


def png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "blue").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_text_blocks_become_one_string() -> None:
    result = CallToolResult(content=[TextContent(text="a"), TextContent(text="b")])
    assert tool_output(result, "t") == "a\nb"


def test_structured_content_alone_becomes_json() -> None:
    result = CallToolResult(content=[], structured_content={"total": 3})
    assert tool_output(result, "t") == '{"total":3}'


def test_media_resources_and_links_become_parts() -> None:
    result = CallToolResult(
        content=[
            TextContent(text="see"),
            ImageContent(data=png(), mime_type="image/png"),
            EmbeddedResource(resource=TextResourceContents(uri="note://1", text="a note")),
            EmbeddedResource(
                resource=BlobResourceContents(uri="blob://1", blob=png(), mime_type="image/png")
            ),
            EmbeddedResource(
                resource=BlobResourceContents(uri="blob://2", blob="AAAA", mime_type="x/y")
            ),
            ResourceLink(name="report", uri="file:///r.txt"),
        ]
    )
    output = tool_output(result, "t")
    assert isinstance(output, tuple)
    text, image, note, blob_image, blob, link = output
    assert text == TextPart(text="see")
    assert isinstance(image, ImagePart)
    assert isinstance(blob_image, ImagePart)
    assert image.media == blob_image.media
    assert image.media in MediaStore.shared()
    assert note == TextPart(text="a note")
    assert blob == TextPart(text="[resource blob://2: x/y, about 3 bytes]")
    assert link == TextPart(text="[resource report: file:///r.txt]")


def test_media_that_cannot_be_stored_is_the_servers_fault() -> None:
    result = CallToolResult(content=[AudioContent(data="not base64!", mime_type="audio/wav")])
    with pytest.raises(ToolError, match="tool 'x' returned media gymbus cannot use"):
        tool_output(result, "tool 'x'")


def test_an_error_result_says_its_text() -> None:
    assert error_text(CallToolResult(content=[TextContent(text="no stock")], is_error=True)) == (
        "no stock"
    )
    assert error_text(CallToolResult(content=[], is_error=True)) == "the tool reported an error"


def test_only_usable_tools_are_kept() -> None:
    listed = [
        Tool(name="ok", input_schema={"type": "object"}),
        Tool(name="has.dot", input_schema={"type": "object"}),
        Tool(name="bad_schema", input_schema={"type": "object", "properties": 3}),
    ]
    with capture_logs() as logs:
        usable = usable_tools(listed, "s")
    assert list(usable) == ["ok"]
    assert [e["tool"] for e in logs if e["event"] == "mcp.tool_skipped"] == [
        "has.dot",
        "bad_schema",
    ]


def test_hidden_arguments_leave_the_schema_and_only_tools_that_take_them_get_them() -> None:
    spec = ToolSpec(
        name="move",
        parameters={
            "type": "object",
            "properties": {"workspace": {"type": "string"}, "sku": {"type": "string"}},
            "required": ["workspace", "sku"],
            "additionalProperties": False,
        },
    )
    shown, validator, takes = hide_arguments(
        spec, Draft202012Validator, frozenset({"workspace", "tenant"})
    )
    assert takes == ("workspace",)
    assert shown.parameters["properties"] == {"sku": {"type": "string"}}
    assert shown.parameters["required"] == ["sku"]
    assert validator.is_valid({"sku": "A"})
    assert not validator.is_valid({"sku": "A", "workspace": "w"})  # additionalProperties
    assert spec.parameters["required"] == ["workspace", "sku"]  # the full spec is unchanged
