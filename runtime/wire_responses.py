"""Lossless conversion between gymbus messages and OpenAI Responses API items.

One message may become several items, and reading groups them back:

- system / user → ``{"type": "message", "role": ..., "content": [...]}`` with
  ``input_text`` and ``input_image`` parts (``image_url`` is a ``data:`` URI for stored
  media). The Responses API has no audio or video input content, so audio parts raise
  :class:`WireFormatError`, and so do video parts unless ``frames=N`` is given: then a
  stored animated GIF/WebP/PNG is written as up to N ``input_image`` parts, PNG frames
  sampled evenly (as in :mod:`.wire_chat`; they read back as image parts).
- assistant → a ``reasoning`` item when ``reasoning`` is set, then a ``message`` item
  (when there is text or a refusal), then one ``function_call`` item per tool call. An
  assistant message with none of these is an empty assistant ``message`` item, so it
  survives the round trip.
- tool → ``{"type": "function_call_output", "call_id", "output"}``: ``output`` is the text
  when the content is exactly one text part, else a list of ``input_text`` /
  ``input_image`` items; ``name`` only when set.

The shapes follow the OpenAI SDK's request types (``openai.types.responses``), which vLLM
validates its ``input`` against, so three fields are filled in rather than omitted:

- ``input_image.detail`` is required there: an image without ``detail`` is written with
  the API default ``"auto"`` (so it reads back as ``"auto"``).
- an assistant ``message`` whose content is a list of ``output_text`` parts must carry an
  ``id`` and ``status``, while a plain-string ``content`` needs neither; the common case,
  exactly one text part and no refusal, is therefore written as a string. Other assistant
  content is written as ``output_text`` / ``refusal`` parts without an id, which the
  OpenAI API accepts but vLLM rejects.
- a ``reasoning`` item must have an ``id``: it gets ``rs_`` + a hash of its text
  (deterministic; the id is not a server-side item, so only servers that take reasoning
  as plain text, like vLLM, accept it back; pass ``include_reasoning=False`` for others).

Reasoning is written as ``content: [{"type": "reasoning_text"}]`` with an empty
``summary``: that is the raw chain of thought vLLM emits and reads back (it falls back to
the summary, with a warning, only when there is no content). On reading, content text is
preferred and summary text used otherwise. Item ``id``, ``status``, ``phase``,
``encrypted_content``, annotations and logprobs are not kept.

Reading (``from_responses``, for request ``input`` lists and a response's ``output``)
merges each run of consecutive ``reasoning`` / assistant ``message`` / ``function_call``
items into ONE assistant message; so two adjacent assistant messages come back as one.
Role ``developer`` reads as a system message; a plain-string ``content`` is one text part.
Not on the wire: ``generation``, ``is_error``, ``author`` (as in :mod:`.wire_chat`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    ContentPart,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
)
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.wire_chat import _fail, _image, _kind, _opt_str, _str, _video_frames

__all__ = [
    "from_responses",
    "responses_items_json",
    "responses_message_bytes",
    "to_responses",
    "tool_specs_to_responses",
]


# --- writing -------------------------------------------------------------------------


def _input_parts(
    content: tuple[ContentPart, ...], media: MediaStore, where: str, frames: int | None
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        if isinstance(part, TextPart):
            parts.append({"type": "input_text", "text": part.text})
        elif isinstance(part, ImagePart):
            ref = part.media
            parts.append(
                {
                    "type": "input_image",
                    "image_url": media.data_uri(ref) if ref is not None else part.url,
                    "detail": part.detail or "auto",
                }
            )
        elif isinstance(part, VideoPart) and frames is not None:
            try:
                refs = _video_frames(part, media, frames)
            except WireFormatError as exc:
                raise _fail(f"{where}.content[{i}]", str(exc)) from None
            parts.extend(
                {"type": "input_image", "image_url": media.data_uri(ref), "detail": "auto"}
                for ref in refs
            )
        else:
            hint = ", or frames (video='frames') for an animated GIF/WebP/PNG"
            hint = hint if part.type == "video" else ""
            raise _fail(
                f"{where}.content[{i}]",
                f"{part.type} parts cannot be written in the Responses API (it has no "
                f"{part.type} input content); use Chat Completions{hint}",
            )
    return parts


def _reasoning_item(text: str) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return {
        "type": "reasoning",
        "id": "rs_" + digest[:32],
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def _assistant_items(
    message: AssistantMessage, where: str, include_reasoning: bool
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if include_reasoning and message.reasoning is not None:
        items.append(_reasoning_item(message.reasoning))
    content = message.content
    only = content[0] if len(content) == 1 else None
    if isinstance(only, TextPart) and message.refusal is None:
        items.append({"type": "message", "role": "assistant", "content": only.text})
    elif content or message.refusal is not None:
        parts: list[dict[str, Any]] = []
        for i, part in enumerate(content):
            if not isinstance(part, TextPart):
                raise _fail(
                    f"{where}.content[{i}]",
                    f"an assistant {part.type} part cannot be written in the Responses "
                    "API (assistant output is text or refusal)",
                )
            parts.append({"type": "output_text", "text": part.text, "annotations": []})
        if message.refusal is not None:
            parts.append({"type": "refusal", "refusal": message.refusal})
        items.append({"type": "message", "role": "assistant", "content": parts})
    for call in message.tool_calls:
        items.append(
            {
                "type": "function_call",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
    return items or [{"type": "message", "role": "assistant", "content": []}]


def to_responses(
    message: AnyMessage,
    media: MediaStore,
    where: str = "message",
    *,
    include_reasoning: bool = True,
    frames: int | None = None,
) -> list[dict[str, Any]]:
    """The Responses API input items for ``message`` (media inlined from ``media``).

    ``include_reasoning=False`` leaves out reasoning items, for servers that only take
    back their own (encrypted) reasoning, such as the OpenAI API. ``frames`` writes
    videos as up to that many image frames; without it a video part raises.
    """
    if isinstance(message, AssistantMessage):
        return _assistant_items(message, where, include_reasoning)
    if isinstance(message, ToolMessage):
        output: str | list[dict[str, Any]]
        only = message.content[0] if len(message.content) == 1 else None
        if isinstance(only, TextPart):
            output = only.text
        else:
            output = _input_parts(message.content, media, where, frames)
        item: dict[str, Any] = {
            "type": "function_call_output",
            "call_id": message.tool_call_id,
            "output": output,
        }
        if message.name is not None:
            item["name"] = message.name
        return [item]
    return [
        {
            "type": "message",
            "role": message.role,
            "content": _input_parts(message.content, media, where, frames),
        }
    ]


def _encode_items(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(items)[1:-1]  # the items without the enclosing brackets


def responses_message_bytes(
    message: AnyMessage,
    media: MediaStore,
    *,
    include_reasoning: bool = True,
    frames: int | None = None,
    where: str = "message",
) -> bytes:
    """The message's items as comma-separated JSON (no brackets), cached on the message
    (once per way of writing it)."""
    key = "responses" if include_reasoning else "responses-no-reasoning"
    if frames is not None:
        key = f"{key}:frames{frames}"
    return message.cached(
        key,
        lambda: _encode_items(
            to_responses(message, media, where, include_reasoning=include_reasoning, frames=frames)
        ),
    )


def responses_items_json(
    messages: Iterable[AnyMessage],
    media: MediaStore,
    *,
    include_reasoning: bool = True,
    frames: int | None = None,
) -> bytes:
    """A JSON array of the messages' items (a request's ``input``), joined from their
    cached encodings."""
    chunks = [
        responses_message_bytes(
            m, media, include_reasoning=include_reasoning, frames=frames, where=f"input[{i}]"
        )
        for i, m in enumerate(messages)
    ]
    return b"[" + b",".join(c for c in chunks if c) + b"]"


def tool_specs_to_responses(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Function tools in the Responses API ``tools`` shape."""
    return [
        {
            "type": "function",
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
            "strict": spec.strict,
        }
        for spec in specs
    ]


# --- reading -------------------------------------------------------------------------


def _content_parts(
    value: object, media: MediaStore, where: str, refusals: list[str] | None = None
) -> list[ContentPart]:
    """Message content or function output: a string, or a list of input/output parts."""
    if isinstance(value, str):
        return [TextPart(text=value)]
    if not isinstance(value, list | tuple):
        raise _fail(where, f"expected a string or a list of parts, got {_kind(value)}")
    parts: list[ContentPart] = []
    for i, part in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(part, Mapping):
            raise _fail(at, f"expected a content part object, got {_kind(part)}")
        kind = part.get("type")
        if kind == "input_text" or (kind == "output_text" and refusals is not None):
            parts.append(TextPart(text=_str(part, "text", at)))
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _fail(
                    f"{at}.image_url",
                    f"expected a URL string, got {_kind(url)} (file_id is not supported)",
                )
            parts.append(_image(url, part.get("detail"), media, at))
        elif kind == "refusal" and refusals is not None:
            refusals.append(_str(part, "refusal", at))
        else:
            raise _fail(f"{at}.type", f"unsupported content type {kind!r}")
    return parts


class _AssistantTurn:
    """The items of one assistant message, collected until a non-assistant item."""

    __slots__ = ("content", "reasoning", "refusals", "tool_calls")

    def __init__(self) -> None:
        self.content: list[ContentPart] = []
        self.reasoning: list[str] = []
        self.refusals: list[str] = []
        self.tool_calls: list[ToolCall] = []

    def message(self) -> AssistantMessage:
        return AssistantMessage(
            content=tuple(self.content),
            tool_calls=tuple(self.tool_calls),
            refusal="".join(self.refusals) if self.refusals else None,
            reasoning="\n\n".join(self.reasoning) if self.reasoning else None,
        )


def _reasoning_text(item: Mapping[str, Any], where: str) -> str | None:
    """The reasoning content text if any, else the summary text, else None."""
    for key, part_type, sep in (
        ("content", "reasoning_text", ""),
        ("summary", "summary_text", "\n\n"),
    ):
        parts = item.get(key)
        if parts is None:
            continue
        if not isinstance(parts, list | tuple):
            raise _fail(f"{where}.{key}", f"expected a list, got {_kind(parts)}")
        if not parts:
            continue
        texts = []
        for i, part in enumerate(parts):
            at = f"{where}.{key}[{i}]"
            if not isinstance(part, Mapping) or part.get("type") != part_type:
                raise _fail(at, f"expected a {part_type!r} part")
            texts.append(_str(part, "text", at))
        return sep.join(texts)
    return None


def _message_item(
    item: Mapping[str, Any], media: MediaStore, where: str, turn: _AssistantTurn | None
) -> AnyMessage | _AssistantTurn:
    role = item.get("role")
    content = item.get("content")
    if role == "assistant":
        turn = turn or _AssistantTurn()
        turn.content.extend(_content_parts(content, media, f"{where}.content", turn.refusals))
        return turn
    if role == "user":
        return UserMessage(content=tuple(_content_parts(content, media, f"{where}.content")))
    if role == "system" or role == "developer":
        return SystemMessage(content=tuple(_content_parts(content, media, f"{where}.content")))
    raise _fail(f"{where}.role", f"unknown role {role!r}")


def from_responses(
    items: Sequence[Mapping[str, Any]], media: MediaStore, where: str = "input"
) -> list[AnyMessage]:
    """Parse Responses API items (a request's ``input`` or a response's ``output``).

    Consecutive reasoning / assistant message / function call items become one
    :class:`AssistantMessage`. ``where`` prefixes the field path in errors.
    """
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise _fail(where, f"expected a list of items, got {_kind(items)}")
    messages: list[AnyMessage] = []
    turn: _AssistantTurn | None = None
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(at, f"expected an item object, got {_kind(item)}")
        kind = item.get("type", "message" if "role" in item else None)
        try:
            if kind == "reasoning":
                turn = turn or _AssistantTurn()
                text = _reasoning_text(item, at)
                if text is not None:
                    turn.reasoning.append(text)
            elif kind == "function_call":
                turn = turn or _AssistantTurn()
                turn.tool_calls.append(
                    ToolCall(
                        id=_str(item, "call_id", at),
                        name=_str(item, "name", at),
                        arguments=_str(item, "arguments", at),
                    )
                )
            elif kind == "message":
                result = _message_item(item, media, at, turn)
                if isinstance(result, _AssistantTurn):
                    turn = result
                    continue
                if turn is not None:
                    messages.append(turn.message())
                    turn = None
                messages.append(result)
            elif kind == "function_call_output":
                if turn is not None:
                    messages.append(turn.message())
                    turn = None
                output = _content_parts(item.get("output"), media, f"{at}.output")
                messages.append(
                    ToolMessage(
                        tool_call_id=_str(item, "call_id", at),
                        content=tuple(output),
                        name=_opt_str(item, "name", at),
                    )
                )
            else:
                raise _fail(f"{at}.type", f"unsupported item type {kind!r}")
        except ValidationError as exc:
            raise _fail(at, f"invalid item: {exc}") from None
    if turn is not None:
        messages.append(turn.message())
    return messages
