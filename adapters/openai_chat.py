"""OpenAI Chat Completions adapter (``POST {base_url}/chat/completions``).

Works with OpenAI and OpenAI-compatible servers (vLLM, SGLang, ...). The request body is
spliced together from cached bytes: each message's JSON is encoded once (on the message),
the tools once per tools tuple and the sampling fields once per ``SamplingParams``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from gymbus.adapters.http import HTTPClient, HTTPResult, ModelEndpoint, RetryPolicy, safe_url
from gymbus.runtime.closing import AsyncClosing
from gymbus.runtime.errors import ConfigError, ModelResponseError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.media_frames import DEFAULT_MAX_FRAMES, VideoMode, frames_limit
from gymbus.runtime.messages import AssistantMessage, Generation
from gymbus.runtime.model import ModelRequest, SamplingParams
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.wire_chat import chat_message_bytes, from_chat, tool_specs_to_chat

__all__ = ["OpenAIAdapter", "OpenAIChat", "merge_params"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
_CACHE_LIMIT = 64
_TOKEN_ID_PREFIX = "token_id:"


def merge_params(base: SamplingParams, override: SamplingParams) -> SamplingParams:
    """``base`` with every field explicitly set on ``override`` taking its value.

    ``extra_body`` dicts merge key by key (``override`` wins). An override with no
    fields set returns ``base`` itself.
    """
    fields = override.model_fields_set
    if not fields:
        return base
    update = {name: getattr(override, name) for name in fields if name != "extra_body"}
    if "extra_body" in fields:
        update["extra_body"] = {**base.extra_body, **override.extra_body}
    return base.model_copy(update=update)


class IdentityCache:
    """Small cache of values derived from an object, keyed by the object's identity
    (specs and params hold dicts, so they are not hashable). Bounded: it is cleared
    when full, since callers reuse a handful of objects."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, bytes]] = {}

    def get(self, key: object) -> bytes | None:
        entry = self._entries.get(id(key))
        if entry is not None and entry[0] is key:
            return entry[1]
        return None

    def put(self, key: object, value: bytes) -> bytes:
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value


def json_fragment(fields: Mapping[str, Any]) -> bytes:
    """``fields`` as the inside of a JSON object, with a leading comma (or nothing)."""
    if not fields:
        return b""
    return b"," + orjson.dumps(fields)[1:-1]


def check_extra_body(extra: Mapping[str, Any], reserved: frozenset[str]) -> None:
    clash = sorted(reserved.intersection(extra))
    if clash:
        raise ConfigError(
            f"extra_body may not set {', '.join(map(repr, clash))}: the adapter writes "
            "them (set the model on the adapter; messages and tools come from the episode)"
        )


def token_logprobs(entries: object, where: str) -> list[dict[str, Any]]:
    """OpenAI logprob entries as ``TokenLogprob`` fields. A token id comes from a
    ``token_id`` key (SGLang) or a ``token_id:N`` token (vLLM's
    ``return_tokens_as_token_ids``)."""
    if not isinstance(entries, list):
        raise ModelResponseError(f"{where}: expected a list of logprobs, got {entries!r:.80}")
    out: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ModelResponseError(f"{where}: expected logprob objects, got {entry!r:.80}")
        token = entry.get("token")
        token_id = entry.get("token_id")
        if token_id is None and isinstance(token, str) and token.startswith(_TOKEN_ID_PREFIX):
            suffix = token[len(_TOKEN_ID_PREFIX) :]
            token_id = int(suffix) if suffix.isdigit() else None
        out.append({"token": token, "logprob": entry.get("logprob"), "token_id": token_id})
    return out


def shape_hint(data: dict[str, Any]) -> str:
    """What a body without the expected fields has instead: its error or its keys."""
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    if isinstance(message, str) and message:
        return f"; error: {message[:300]}"
    return f" (keys: {sorted(data)[:10]})"


def build_generation(fields: dict[str, Any], url: str) -> Generation:
    try:
        return Generation.model_validate(fields)
    except ValidationError as exc:
        raise ModelResponseError(
            f"response from {url} has invalid generation metadata: {str(exc)[:400]}"
        ) from None


WEIGHT_VERSION_HEADER = "X-Weight-Version"
"""Sent with every request when the trainer has set ``Runtime.weight_version``, so a
server (or a proxy in front of several) can route to, or check, the matching weights."""


class OpenAIAdapter(AsyncClosing):
    """What the OpenAI-style adapters share: endpoint, default params, media store, the
    request-fragment caches and the client lifecycle. Subclasses say how sampling
    params and tools are written (:meth:`_sampling`, :meth:`_encode_tools`)."""

    _PATH = ""
    _RESERVED: frozenset[str] = frozenset()

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key_env: str | None = "OPENAI_API_KEY",
        params: SamplingParams | None = None,
        client: HTTPClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        media: MediaStore | None = None,
        video: VideoMode = "video_url",
        max_frames: int = DEFAULT_MAX_FRAMES,
    ) -> None:
        self._frames = frames_limit(video, max_frames)  # None: videos go as video_url
        self._model = model
        self._endpoint = ModelEndpoint(
            base_url.rstrip("/") + self._PATH,
            api_key_env=api_key_env,
            client=client,
            retry=retry,
            timeout=timeout,
        )
        self._params = params if params is not None else SamplingParams()
        check_extra_body(self._params.extra_body, self._RESERVED)
        self.media = media if media is not None else MediaStore.shared()
        self._head = b'{"model":' + orjson.dumps(model)
        self._where = safe_url(self._endpoint.url)  # for error texts
        self._tools_cache = IdentityCache()
        self._params_cache = IdentityCache()

    @property
    def name(self) -> str:
        return self._model

    @property
    def params(self) -> SamplingParams:
        """Default sampling params (a request's set fields override them)."""
        return self._params

    @property
    def client(self) -> HTTPClient:
        return self._endpoint.client

    @property
    def url(self) -> str:
        return self._endpoint.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._model!r}, url={self._where!r})"

    async def aclose(self) -> None:
        """Close the HTTP client if this adapter created it."""
        await self._endpoint.aclose()

    def _tools_fragment(self, tools: Sequence[ToolSpec]) -> bytes:
        if not tools:
            return b""
        cached = self._tools_cache.get(tools)
        if cached is None:
            cached = self._tools_cache.put(tools, b',"tools":' + self._encode_tools(tools))
        return cached

    def _params_fragment(self, params: SamplingParams) -> bytes:
        cached = self._params_cache.get(params)
        if cached is None:
            merged = merge_params(self._params, params)
            check_extra_body(merged.extra_body, self._RESERVED)
            fields = self._sampling(merged)
            fields.update(merged.extra_body)
            cached = self._params_cache.put(params, json_fragment(fields))
        return cached

    def request_parts(self, request: ModelRequest) -> list[bytes]:
        """The JSON body for ``request`` as a list of chunks: the envelope and each
        message's cached encoding, never concatenated here — a long-context body goes
        out without copying the history (see ``HTTPClient.post_json``)."""
        parts = [self._head + self._MESSAGES_KEY + b"["]
        first = True
        for chunk in self._message_chunks(request.conversation):
            if not chunk:
                continue
            if not first:
                parts.append(b",")
            parts.append(chunk)
            first = False
        parts.append(
            b"]"
            + self._tools_fragment(request.tools)
            + self._params_fragment(request.params)
            + b"}"
        )
        return parts

    def request_body(self, request: ModelRequest) -> bytes:
        """The JSON body for ``request`` as one bytes object (inspection, benchmarks)."""
        return b"".join(self.request_parts(request))

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        version = request.weight_version
        headers = None if version is None else {WEIGHT_VERSION_HEADER: str(version)}
        result = await self._endpoint.post(self.request_parts(request), headers)
        return self.parse_response(result)

    @staticmethod
    def _common_sampling(p: SamplingParams) -> dict[str, Any]:
        """The sampling fields both APIs write the same way."""
        out: dict[str, Any] = {}
        if p.temperature is not None:
            out["temperature"] = p.temperature
        if p.top_p is not None:
            out["top_p"] = p.top_p
        if p.seed is not None:
            out["seed"] = p.seed
        if p.stop is not None:
            out["stop"] = list(p.stop)
        if p.top_logprobs is not None:
            out["top_logprobs"] = p.top_logprobs
        return out

    # -- what each API writes its own way -----------------------------------------------
    _MESSAGES_KEY = b""

    def _message_chunks(self, conversation: Transcript) -> Iterator[bytes]:
        """Each message's cached wire encoding (empty when it writes nothing)."""
        raise NotImplementedError

    def _encode_tools(self, tools: Sequence[ToolSpec]) -> bytes:
        raise NotImplementedError

    def _sampling(self, p: SamplingParams) -> dict[str, Any]:
        raise NotImplementedError

    def parse_response(self, result: HTTPResult) -> AssistantMessage:
        raise NotImplementedError


class OpenAIChat(OpenAIAdapter):
    """A :class:`~gymbus.runtime.model.Model` backed by a Chat Completions endpoint.

    ``params`` are the defaults; fields set on a request's params override them field by
    field (see :func:`merge_params`). ``max_tokens`` is sent as ``max_completion_tokens``
    (OpenAI deprecated ``max_tokens``; vLLM and SGLang accept both); pass
    ``max_tokens_field="max_tokens"`` for servers that only know the old name.
    ``return_token_ids`` sends vLLM's ``return_token_ids`` and reads back the response's
    ``prompt_token_ids`` and the choice's ``token_ids``.

    Pass a shared :class:`HTTPClient` to pool connections across adapters; without one
    the adapter creates its own, and should be closed (``async with`` or :meth:`aclose`).
    ``timeout`` (seconds per attempt) and ``retry`` default to the client's (120 s, 5
    attempts). Tools and params are encoded once per object identity, so pass the same
    ``ToolSpec`` tuple (e.g. ``Toolbox.specs``) and ``SamplingParams`` across calls.

    Videos are sent as vLLM ``video_url`` parts. For a server without video input pass
    ``video="frames"``: a stored animated GIF/WebP/PNG is then sent as up to ``max_frames``
    (default 8) evenly sampled PNG frames, as ``image_url`` parts; a video by URL, or in
    a format Pillow cannot decode (MP4, WebM), raises :class:`WireFormatError`.
    """

    _PATH = "/chat/completions"
    _RESERVED = frozenset({"model", "messages", "tools"})

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key_env: str | None = "OPENAI_API_KEY",
        params: SamplingParams | None = None,
        client: HTTPClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        media: MediaStore | None = None,
        max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
        video: VideoMode = "video_url",
        max_frames: int = DEFAULT_MAX_FRAMES,
    ) -> None:
        self._max_tokens_field = max_tokens_field
        super().__init__(
            model,
            base_url=base_url,
            api_key_env=api_key_env,
            params=params,
            client=client,
            retry=retry,
            timeout=timeout,
            media=media,
            video=video,
            max_frames=max_frames,
        )

    _MESSAGES_KEY = b',"messages":'

    def _message_chunks(self, conversation: Transcript) -> Iterator[bytes]:
        media, frames = self.media, self._frames
        return (chat_message_bytes(m, media, frames=frames) for m in conversation)

    def _encode_tools(self, tools: Sequence[ToolSpec]) -> bytes:
        return orjson.dumps(tool_specs_to_chat(tools))

    def _sampling(self, p: SamplingParams) -> dict[str, Any]:
        out = self._common_sampling(p)
        if p.max_tokens is not None:
            out[self._max_tokens_field] = p.max_tokens
        if p.logprobs or p.top_logprobs is not None:
            out["logprobs"] = True
        if p.return_token_ids:
            out["return_token_ids"] = True
        return out

    # --- response --------------------------------------------------------------------

    def parse_response(self, result: HTTPResult) -> AssistantMessage:
        """The assistant message (with its :class:`Generation`) from a completion."""
        data = result.data
        url = self._where
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ModelResponseError(f"response from {url} has no 'choices'{shape_hint(data)}")
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise ModelResponseError(f"response from {url} has no 'choices[0].message'")
        if "role" not in message:
            message = {**message, "role": "assistant"}
        try:
            parsed = from_chat(message, self.media, "choices[0].message")
        except WireFormatError as exc:
            raise ModelResponseError(f"response from {url}: {exc}") from None
        if not isinstance(parsed, AssistantMessage):
            raise ModelResponseError(
                f"response from {url}: choices[0].message has role {parsed.role!r}, "
                "expected 'assistant'"
            )
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        prompt_ids = data.get("prompt_token_ids")  # vLLM: top level; completions: in choice
        if prompt_ids is None:
            prompt_ids = choice.get("prompt_token_ids")
        fields: dict[str, Any] = {
            "model": data.get("model") or self._model,
            "finish_reason": choice.get("finish_reason"),
            "usage": {
                "prompt_tokens": usage.get("prompt_tokens") or 0,
                "completion_tokens": usage.get("completion_tokens") or 0,
            },
            "prompt_token_ids": prompt_ids,
            "token_ids": choice.get("token_ids"),
            "response_id": data.get("id"),
            "latency_s": result.latency_s,
            "attempts": result.attempts,
        }
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and logprobs.get("content") is not None:
            fields["logprobs"] = token_logprobs(logprobs["content"], "choices[0].logprobs.content")
        generation = build_generation(fields, url)
        return parsed.model_copy(update={"generation": generation})
