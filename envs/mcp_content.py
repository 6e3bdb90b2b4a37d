"""MCP results as gymbus tool output: the content blocks of a ``CallToolResult`` (or the
contents of a resource) as the text and media parts the model is shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gymbus.runtime.errors import BadMediaError, ToolError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AudioPart, ContentPart, ImagePart, MediaRef, TextPart
from gymbus.runtime.tools import ToolOutput

if TYPE_CHECKING:  # mcp is imported once a server is connected (it takes ~0.4 s)
    from mcp_types import CallToolResult, ContentBlock, ReadResourceResult


def tool_output(result: CallToolResult, where: str) -> ToolOutput:
    """The output of a successful call: a string when it is only text (the blocks joined
    by newlines), else text, image and audio parts; with no content blocks, the
    ``structuredContent`` as JSON. Media go to the shared :class:`MediaStore`; media that
    cannot be stored raise :class:`ToolError` (``where`` names the tool)."""
    parts = [_part(block, where) for block in result.content]
    if not parts and result.structured_content is not None:
        return orjson.dumps(result.structured_content).decode()
    texts = [part.text for part in parts if isinstance(part, TextPart)]
    return "\n".join(texts) if len(texts) == len(parts) else tuple(parts)


def error_text(result: CallToolResult) -> str:
    """What a result flagged ``isError`` says (its text blocks), for the model."""
    from mcp_types import TextContent

    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    return "\n".join(texts).strip() or "the tool reported an error"


def resource_text(result: ReadResourceResult) -> str:
    """The text contents of a resource, joined by newlines (binary contents are skipped)."""
    from mcp_types import TextResourceContents

    return "\n".join(c.text for c in result.contents if isinstance(c, TextResourceContents))


def _part(block: ContentBlock, where: str) -> ContentPart:
    from mcp_types import (
        AudioContent,
        EmbeddedResource,
        ImageContent,
        ResourceLink,
        TextContent,
        TextResourceContents,
    )

    if isinstance(block, TextContent):
        return TextPart(text=block.text)
    if isinstance(block, ImageContent):
        return ImagePart(media=_store(block.data, block.mime_type, where))
    if isinstance(block, AudioContent):
        return AudioPart(media=_store(block.data, block.mime_type, where))
    if isinstance(block, ResourceLink):
        return TextPart(text=f"[resource {block.name}: {block.uri}]")
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, TextResourceContents):
            return TextPart(text=resource.text)
        mime = resource.mime_type or "application/octet-stream"
        if mime.startswith("image/"):
            return ImagePart(media=_store(resource.blob, mime, where))
        if mime.startswith("audio/"):
            return AudioPart(media=_store(resource.blob, mime, where))
        size = len(resource.blob) * 3 // 4
        return TextPart(text=f"[resource {resource.uri}: {mime}, about {size} bytes]")
    raise ToolError(f"{where} returned a content block gymbus does not know: {block!r:.200}")


def _store(data: str, mime_type: str, where: str) -> MediaRef:
    try:
        return MediaStore.shared().put_base64(data, mime_type)
    except (BadMediaError, WireFormatError) as exc:
        raise ToolError(f"{where} returned media gymbus cannot use: {exc}") from None
