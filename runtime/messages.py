"""Typed conversation messages: frozen pydantic models, discriminated on ``role``.

Content parts are a union on ``type`` (text, image, audio, video). Media travel by
reference (:class:`MediaRef`, a content hash into a media store) or by URL; adapters
inline bytes only when they write a wire request. Messages are immutable, so a wire
encoding computed once can be cached on the message (see :meth:`BaseMessage.cached`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self, TypeVar

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from gymbus.runtime.errors import ToolArgumentsError

T = TypeVar("T")

Author = Literal["policy", "user", "tool", "environment"]


class Frozen(BaseModel):
    """Base of every immutable record: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class MediaRef(Frozen):
    """A media blob by content address: ``sha256`` of the bytes in a media store."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    mime_type: str
    size: int = Field(ge=0)


class TextPart(Frozen):
    type: Literal["text"] = "text"
    text: str


class _MediaPart(Frozen):
    """A media part is either a stored blob (``media``) or a remote ``url`` — exactly one."""

    media: MediaRef | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _MediaPart:
        if (self.media is None) == (self.url is None):
            raise ValueError(f"{type(self).__name__} needs exactly one of 'media' or 'url'")
        return self


class ImagePart(_MediaPart):
    type: Literal["image"] = "image"
    detail: Literal["auto", "low", "high"] | None = None


class AudioPart(_MediaPart):
    type: Literal["audio"] = "audio"


class VideoPart(_MediaPart):
    type: Literal["video"] = "video"


ContentPart = Annotated[TextPart | ImagePart | AudioPart | VideoPart, Field(discriminator="type")]


def _coerce_content(value: Any) -> Any:
    """Accept a plain string as shorthand for one text part."""
    if isinstance(value, str):
        return (TextPart(text=value),)
    return value


Content = Annotated[tuple[ContentPart, ...], BeforeValidator(_coerce_content)]


def content_text(content: str | tuple[Any, ...]) -> str:
    """The text of message content or a tool's output: a string as it is, else the text
    parts joined (media parts are skipped)."""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, TextPart))


class ToolCall(Frozen):
    """A function call requested by the model. ``arguments`` is the raw JSON text as the
    model wrote it (kept verbatim so conversion is lossless and malformed JSON can be
    reported back to the model)."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        try:
            value = orjson.loads(self.arguments)
        except orjson.JSONDecodeError as exc:
            raise ToolArgumentsError(
                f"arguments of tool call {self.id!r} to {self.name!r} are not valid JSON: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise ToolArgumentsError(
                f"arguments of tool call {self.id!r} to {self.name!r} must be a JSON object, "
                f"got {type(value).__name__}"
            )
        return value


class Usage(Frozen):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class TokenLogprob(Frozen):
    token: str
    logprob: float
    token_id: int | None = None


class Generation(Frozen):
    """What the model server said about how an assistant message was produced.

    Token ids and logprobs are kept exactly as returned (token faithfulness); none of
    this goes back on the wire.
    """

    model: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    prompt_token_ids: tuple[int, ...] | None = None
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    weight_version: str | None = None
    response_id: str | None = None
    latency_s: float | None = None
    attempts: int = 1
    cost_usd: float | None = None
    """Set by whoever knows the price (e.g. an LLM user given ``prices``)."""


class BaseMessage(Frozen):
    """Common behaviour: a per-instance cache for derived encodings (wire bytes).

    The cache is not part of a message's value: equality ignores it, and
    ``model_copy`` (the one way to derive a *different* message) starts a fresh one.
    """

    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseMessage):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = Frozen.__hash__

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy.__pydantic_private__ = {"_cache": {}}
        return copy

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """Return ``compute()``, computed once per message and key (messages are immutable)."""
        # straight to pydantic's private dict: `self._cache` goes through
        # BaseModel.__getattr__ (~3 µs) and this is on the per-request hot path
        cache: dict[str, Any] = self.__pydantic_private__["_cache"]  # type: ignore[index]
        try:
            return cache[key]  # type: ignore[no-any-return]
        except KeyError:
            value = cache[key] = compute()
            return value

    @property
    def text(self) -> str:
        """The concatenated text parts (media parts are skipped)."""
        return content_text(getattr(self, "content", ()))


class SystemMessage(BaseMessage):
    role: Literal["system"] = "system"
    content: Content
    author: Literal["environment"] = "environment"


class UserMessage(BaseMessage):
    """A user turn: the environment's task prompt (``author="environment"``) or a
    simulated user's reply (``author="user"``; an LLM-backed user records its own
    ``generation`` — tokens, latency — kept apart from the policy's)."""

    role: Literal["user"] = "user"
    content: Content
    author: Literal["user", "environment"] = "user"
    generation: Generation | None = None


class AssistantMessage(BaseMessage):
    role: Literal["assistant"] = "assistant"
    content: Content = ()
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    reasoning: str | None = None
    generation: Generation | None = None
    author: Literal["policy"] = "policy"


class ToolMessage(BaseMessage):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: Content
    name: str | None = None
    is_error: bool = False
    author: Literal["tool"] = "tool"


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]

AnyMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage


def author_of(message: AnyMessage) -> Author:
    """Who produced a message: the policy, the (simulated) user, a tool, or the environment.
    Every message carries it as ``author`` (fixed by role except for user messages)."""
    return message.author
