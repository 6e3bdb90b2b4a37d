"""Lossless conversion between gymbus messages and OpenAI Chat Completions messages.

Writing (``to_chat``) builds plain dicts directly; ``chat_message_bytes`` caches each
message's JSON on the message, so a request costs O(new messages) of encoding.

Shapes written:

- content that is exactly one text part is a plain string; other content is a list of
  parts: ``text``, ``image_url`` (``url`` is a ``data:`` URI for stored media, ``detail``
  only when set), ``input_audio`` (base64 + ``wav``/``mp3``) for stored WAV/MP3 audio,
  ``audio_url`` (vLLM) for other audio and audio by URL, ``video_url`` (vLLM) for video;
- with ``frames=N`` (for servers without video input) a stored animated GIF/WebP/PNG
  video is written instead as up to N ``image_url`` parts, PNG frames sampled evenly
  (:mod:`.media_frames`; the frames are stored media too, so their encodings are cached).
  That is one-way: the frames read back as image parts;
- an assistant message omits ``content`` when it has none, and writes ``tool_calls``
  (``arguments`` verbatim), ``refusal`` and ``reasoning`` only when set. ``reasoning`` is
  vLLM's field for interleaved thinking (it was ``reasoning_content`` before vLLM 0.11 and
  current vLLM reads only ``reasoning``); both names are accepted on reading.

Not on the wire (runtime-side metadata, restored as defaults when reading):
``AssistantMessage.generation``, ``ToolMessage.is_error`` (Chat Completions has no error
flag for tool results) and ``UserMessage.author``.

Reading normalizes: role ``developer`` becomes a system message; a ``data:`` URL becomes
stored media (so a URL part holding a data URI reads back as a stored-media part); audio
media types ``audio/x-wav``/``audio/wave``/``audio/mp3`` are written as ``wav``/``mp3`` and
read back as ``audio/wav``/``audio/mpeg``; refusal content parts are joined into
``refusal``. Unknown keys are ignored (servers add their own); a wrong role, part type or
shape, or media the store refuses (:class:`BadMediaError`: corrupt, mistyped, too large),
raises :class:`WireFormatError` naming the field path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from gymbus.runtime.errors import BadMediaError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    AudioPart,
    ContentPart,
    ImagePart,
    MediaRef,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
)
from gymbus.runtime.tools import ToolSpec

__all__ = [
    "chat_message_bytes",
    "chat_messages_json",
    "from_chat",
    "to_chat",
    "tool_specs_to_chat",
]

_AUDIO_FORMAT = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}
_FORMAT_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}
_Detail = Literal["auto", "low", "high"]
_DETAILS: dict[str, _Detail] = {"auto": "auto", "low": "low", "high": "high"}


# --- writing -------------------------------------------------------------------------


def _media_url(part: ImagePart | AudioPart | VideoPart, media: MediaStore) -> str:
    ref = part.media
    if ref is not None:
        return media.data_uri(ref)
    assert part.url is not None  # a media part has exactly one source
    return part.url


def _video_frames(part: VideoPart, media: MediaStore, max_frames: int) -> tuple[MediaRef, ...]:
    """The stored frames a video part is written as in frames mode."""
    if part.media is None:
        raise WireFormatError(
            f"a video by URL ({part.url!r:.60}) cannot be sent as frames: frames are decoded "
            "from stored media (put the video's bytes in the media store)"
        )
    return media.frames(part.media, max_frames)


def _part_to_chat(part: ContentPart, media: MediaStore) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        image_url: dict[str, Any] = {"url": _media_url(part, media)}
        if part.detail is not None:
            image_url["detail"] = part.detail
        return {"type": "image_url", "image_url": image_url}
    if isinstance(part, AudioPart):
        ref = part.media
        if ref is not None:
            fmt = _AUDIO_FORMAT.get(ref.mime_type)
            if fmt is not None:
                return {
                    "type": "input_audio",
                    "input_audio": {"data": media.base64(ref), "format": fmt},
                }
        return {"type": "audio_url", "audio_url": {"url": _media_url(part, media)}}
    return {"type": "video_url", "video_url": {"url": _media_url(part, media)}}


def _content_to_chat(
    content: tuple[ContentPart, ...], media: MediaStore, frames: int | None
) -> str | list[Any]:
    if len(content) == 1:
        only = content[0]
        if isinstance(only, TextPart):
            return only.text
    if frames is None:
        return [_part_to_chat(p, media) for p in content]
    parts: list[Any] = []
    for part in content:
        if isinstance(part, VideoPart):
            parts.extend(
                {"type": "image_url", "image_url": {"url": media.data_uri(ref)}}
                for ref in _video_frames(part, media, frames)
            )
        else:
            parts.append(_part_to_chat(part, media))
    return parts


def to_chat(message: AnyMessage, media: MediaStore, *, frames: int | None = None) -> dict[str, Any]:
    """The Chat Completions form of ``message`` (media inlined from ``media``); videos
    as ``video_url`` parts or, given ``frames``, as up to that many image frames."""
    if isinstance(message, AssistantMessage):
        out: dict[str, Any] = {"role": "assistant"}
        if message.content:
            out["content"] = _content_to_chat(message.content, media, frames)
        if message.reasoning is not None:
            out["reasoning"] = message.reasoning
        if message.refusal is not None:
            out["refusal"] = message.refusal
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        return out
    if isinstance(message, ToolMessage):
        out = {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": _content_to_chat(message.content, media, frames),
        }
        if message.name is not None:
            out["name"] = message.name
        return out
    return {"role": message.role, "content": _content_to_chat(message.content, media, frames)}


def chat_message_bytes(
    message: AnyMessage, media: MediaStore, *, frames: int | None = None
) -> bytes:
    """``to_chat(message)`` as JSON, encoded once per message (and ``frames``) and cached
    on it."""
    key = "chat" if frames is None else f"chat:frames{frames}"
    return message.cached(key, lambda: orjson.dumps(to_chat(message, media, frames=frames)))


def chat_messages_json(
    messages: Iterable[AnyMessage], media: MediaStore, *, frames: int | None = None
) -> bytes:
    """A JSON array of the messages, joined from their cached encodings."""
    chunks = [chat_message_bytes(m, media, frames=frames) for m in messages]
    return b"[" + b",".join(chunks) + b"]"


def tool_specs_to_chat(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Function tools in the Chat Completions ``tools`` shape."""
    tools: list[dict[str, Any]] = []
    for spec in specs:
        function: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        }
        if spec.strict:
            function["strict"] = True
        tools.append({"type": "function", "function": function})
    return tools


# --- reading -------------------------------------------------------------------------


def _fail(where: str, problem: str) -> WireFormatError:
    return WireFormatError(f"{where}: {problem}")


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", f"expected a string, got {_kind(value)}")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{where}.{key}", f"expected a string or null, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _url_of(part: Mapping[str, Any], key: str, where: str) -> str:
    """``{key: {"url": ...}}`` or vLLM's shorthand ``{key: "..."}``."""
    value = part.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _str(value, "url", f"{where}.{key}")
    raise _fail(f"{where}.{key}", f"expected an object with 'url', got {_kind(value)}")


def _image(url: str, detail_value: object, media: MediaStore, where: str) -> ImagePart:
    detail = _DETAILS.get(detail_value) if isinstance(detail_value, str) else None
    if detail is None and detail_value is not None:
        raise _fail(
            f"{where}.detail",
            f"unsupported image detail {detail_value!r} (expected auto, low or high)",
        )
    if url.startswith("data:"):
        return ImagePart(media=_put_uri(media, url, f"{where}.url"), detail=detail)
    return ImagePart(url=url, detail=detail)


def _part_from_chat(
    part: object, media: MediaStore, where: str, refusals: list[str] | None
) -> ContentPart | None:
    if isinstance(part, str):  # vLLM accepts bare strings in a content list
        return TextPart(text=part)
    if not isinstance(part, Mapping):
        raise _fail(where, f"expected a content part object, got {_kind(part)}")
    kind = part.get("type")
    if kind == "text":
        return TextPart(text=_str(part, "text", where))
    if kind == "image_url":
        value = part.get("image_url")
        detail = value.get("detail") if isinstance(value, Mapping) else None
        return _image(_url_of(part, "image_url", where), detail, media, f"{where}.image_url")
    if kind == "input_audio":
        value = part.get("input_audio")
        if not isinstance(value, Mapping):
            raise _fail(f"{where}.input_audio", f"expected an object, got {_kind(value)}")
        data = _str(value, "data", f"{where}.input_audio")
        if data.startswith("data:"):  # some clients send a whole data URI here
            return AudioPart(media=_put_uri(media, data, f"{where}.input_audio.data"))
        fmt = value.get("format")
        mime = _FORMAT_MIME.get(fmt) if isinstance(fmt, str) else None
        if mime is None:
            raise _fail(f"{where}.input_audio.format", f"expected 'wav' or 'mp3', got {fmt!r}")
        try:
            return AudioPart(media=media.put_base64(data, mime))
        except (WireFormatError, BadMediaError) as exc:
            raise _fail(f"{where}.input_audio.data", str(exc)) from None
    if kind == "audio_url":
        url = _url_of(part, "audio_url", where)
        if url.startswith("data:"):
            return AudioPart(media=_put_uri(media, url, f"{where}.audio_url.url"))
        return AudioPart(url=url)
    if kind == "video_url":
        url = _url_of(part, "video_url", where)
        if url.startswith("data:"):
            return VideoPart(media=_put_uri(media, url, f"{where}.video_url.url"))
        return VideoPart(url=url)
    if kind == "refusal" and refusals is not None:
        refusals.append(_str(part, "refusal", where))
        return None
    raise _fail(f"{where}.type", f"unknown content part type {kind!r}")


def _put_uri(media: MediaStore, uri: str, where: str) -> MediaRef:
    try:
        return media.put_data_uri(uri)
    except (WireFormatError, BadMediaError) as exc:
        raise _fail(where, str(exc)) from None


def _content_from_chat(
    value: object, media: MediaStore, where: str, refusals: list[str] | None = None
) -> tuple[ContentPart, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(text=value),)
    if not isinstance(value, list | tuple):
        raise _fail(where, f"expected a string, a list of parts or null, got {_kind(value)}")
    parts = []
    for i, item in enumerate(value):
        part = _part_from_chat(item, media, f"{where}[{i}]", refusals)
        if part is not None:
            parts.append(part)
    return tuple(parts)


def _tool_calls_from_chat(value: object, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise _fail(where, f"expected a list, got {_kind(value)}")
    calls = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(at, f"expected a tool call object, got {_kind(item)}")
        kind = item.get("type", "function")
        if kind != "function":
            raise _fail(f"{at}.type", f"unsupported tool call type {kind!r}")
        function = item.get("function")
        if not isinstance(function, Mapping):
            raise _fail(f"{at}.function", f"expected an object, got {_kind(function)}")
        calls.append(
            ToolCall(
                id=_str(item, "id", at),
                name=_str(function, "name", f"{at}.function"),
                arguments=_str(function, "arguments", f"{at}.function"),
            )
        )
    return tuple(calls)


def from_chat(data: Mapping[str, Any], media: MediaStore, where: str = "message") -> AnyMessage:
    """Parse one Chat Completions message (request or response form).

    Media in ``data:`` URIs and ``input_audio`` are put into ``media``. ``where`` prefixes
    the field path in errors, e.g. ``"messages[3]"``.
    """
    if not isinstance(data, Mapping):
        raise _fail(where, f"expected a message object, got {_kind(data)}")
    role = data.get("role")
    content_at = f"{where}.content"
    try:
        if role == "user":
            return UserMessage(content=_content_from_chat(data.get("content"), media, content_at))
        if role == "system" or role == "developer":
            return SystemMessage(content=_content_from_chat(data.get("content"), media, content_at))
        if role == "assistant":
            refusals: list[str] = []
            content = _content_from_chat(data.get("content"), media, content_at, refusals)
            refusal = _opt_str(data, "refusal", where)
            if refusals and refusal is None:
                refusal = "".join(refusals)
            reasoning = _opt_str(data, "reasoning", where)
            if reasoning is None:
                reasoning = _opt_str(data, "reasoning_content", where)
            return AssistantMessage(
                content=content,
                tool_calls=_tool_calls_from_chat(data.get("tool_calls"), f"{where}.tool_calls"),
                refusal=refusal,
                reasoning=reasoning,
            )
        if role == "tool":
            return ToolMessage(
                tool_call_id=_str(data, "tool_call_id", where),
                content=_content_from_chat(data.get("content"), media, content_at),
                name=_opt_str(data, "name", where),
            )
    except ValidationError as exc:
        raise _fail(where, f"invalid message: {exc}") from None
    raise _fail(f"{where}.role", f"unknown role {role!r}")
