"""OpenAI Responses API adapter (``POST {base_url}/responses``).

Stateless by default (``store: false``, the whole conversation is sent as ``input``).
Each message's items are encoded once and cached on the message
(:func:`~gymbus.runtime.wire_responses.responses_message_bytes`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from gymbus.adapters.http import HTTPClient, HTTPResult, RetryPolicy
from gymbus.adapters.openai_chat import (
    OPENAI_BASE_URL,
    OpenAIAdapter,
    build_generation,
    shape_hint,
    token_logprobs,
)
from gymbus.runtime.errors import ConfigError, ModelResponseError, WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.media_frames import DEFAULT_MAX_FRAMES, VideoMode
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.model import SamplingParams
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.wire_responses import (
    from_responses,
    responses_message_bytes,
    tool_specs_to_responses,
)

__all__ = ["OpenAIResponses"]

_LOGPROBS_INCLUDE = "message.output_text.logprobs"
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


class OpenAIResponses(OpenAIAdapter):
    """A :class:`~gymbus.runtime.model.Model` backed by a Responses API endpoint.

    Same constructor and params merge rule as :class:`~gymbus.adapters.OpenAIChat`.
    ``max_tokens`` is sent as ``max_output_tokens``; ``logprobs`` adds
    ``include: ["message.output_text.logprobs"]`` (with ``top_logprobs`` when set).
    ``seed`` and ``stop`` are not OpenAI Responses parameters; they are sent when set
    (vLLM accepts them, OpenAI answers 400). ``return_token_ids`` is a vLLM Chat
    Completions feature and raises :class:`ConfigError` here.

    The Responses API has no audio or video input: such parts raise
    :class:`WireFormatError`, except that with ``video="frames"`` a stored animated
    GIF/WebP/PNG video is sent as up to ``max_frames`` (default 8) evenly sampled frames,
    as ``input_image`` parts.
    """

    _PATH = "/responses"
    _RESERVED = frozenset({"model", "input", "tools"})

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
        store: bool = False,
        video: VideoMode = "video_url",
        max_frames: int = DEFAULT_MAX_FRAMES,
    ) -> None:
        self._store = store
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

    _MESSAGES_KEY = b',"input":'

    def _message_chunks(self, conversation: Transcript) -> Iterator[bytes]:
        media, frames = self.media, self._frames
        return (
            responses_message_bytes(m, media, frames=frames, where=f"input[{i}]")
            for i, m in enumerate(conversation)
        )

    def _encode_tools(self, tools: Sequence[ToolSpec]) -> bytes:
        return orjson.dumps(tool_specs_to_responses(tools))

    def _sampling(self, p: SamplingParams) -> dict[str, Any]:
        if p.return_token_ids:
            raise ConfigError(
                "return_token_ids is a vLLM Chat Completions feature; use OpenAIChat for token ids"
            )
        out = self._common_sampling(p)
        out["store"] = self._store
        if p.max_tokens is not None:
            out["max_output_tokens"] = p.max_tokens
        if p.logprobs or p.top_logprobs is not None:
            out["include"] = [_LOGPROBS_INCLUDE]
        return out

    def parse_response(self, result: HTTPResult) -> AssistantMessage:
        """The one assistant message (with its :class:`Generation`) in a response's
        ``output``; an empty output (e.g. the token budget went to reasoning) is an
        empty assistant message."""
        data = result.data
        url = self._where
        error = data.get("error")
        if data.get("status") == "failed" or isinstance(error, dict):
            message = error.get("message") if isinstance(error, dict) else None
            raise ModelResponseError(f"response from {url} failed: {message or 'no message'}")
        output = data.get("output")
        if not isinstance(output, list):
            raise ModelResponseError(f"response from {url} has no 'output' list{shape_hint(data)}")
        try:
            messages = from_responses(output, self.media, "output")
        except WireFormatError as exc:
            raise ModelResponseError(f"response from {url}: {exc}") from None
        if not messages:
            parsed = AssistantMessage()
        elif len(messages) == 1 and isinstance(messages[0], AssistantMessage):
            parsed = messages[0]
        else:
            roles = [m.role for m in messages]
            raise ModelResponseError(
                f"response from {url}: output should be one assistant turn, got roles {roles}"
            )
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        fields: dict[str, Any] = {
            "model": data.get("model") or self._model,
            "finish_reason": _finish_reason(data, parsed),
            "usage": {
                "prompt_tokens": usage.get("input_tokens") or 0,
                "completion_tokens": usage.get("output_tokens") or 0,
            },
            "response_id": data.get("id"),
            "latency_s": result.latency_s,
            "attempts": result.attempts,
        }
        logprobs = _output_logprobs(output)
        if logprobs is not None:
            fields["logprobs"] = logprobs
        generation = build_generation(fields, url)
        return parsed.model_copy(update={"generation": generation})


def _finish_reason(data: dict[str, Any], message: AssistantMessage) -> str | None:
    """Chat-style finish reason: ``stop``/``tool_calls`` when completed, ``length`` when
    the output token limit cut it short, else the status or incomplete reason."""
    status = data.get("status")
    if status == "completed" or status is None:
        return "tool_calls" if message.tool_calls else "stop"
    details = data.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if isinstance(reason, str):
        return _INCOMPLETE_REASONS.get(reason, reason)
    return str(status)


def _output_logprobs(output: list[Any]) -> list[dict[str, Any]] | None:
    """Logprobs of every ``output_text`` part in order, or None if none carry any."""
    found: list[dict[str, Any]] | None = None
    for i, item in enumerate(output):
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        content = item.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("logprobs"):
                entries = token_logprobs(part["logprobs"], f"output[{i}].content[{j}].logprobs")
                found = entries if found is None else found + entries
    return found
