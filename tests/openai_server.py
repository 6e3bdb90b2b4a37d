"""A real, scriptable OpenAI-compatible HTTP server for adapter tests (127.0.0.1, port 0).

Serves ``POST /v1/chat/completions`` and ``POST /v1/responses``. What the assistant says
is decided by ``server.policy`` (a function of the :class:`SeenRequest`, returning a
:class:`Turn` or a string); faults are queued with ``server.fail_next(...)`` and consumed
one per request. Every request is recorded in ``server.requests``.

Tool call ids are ``call_<number of request messages>_<index>``, so the same conversation
gets the same ids through both APIs. Token ids are fake and deterministic: one id per
whitespace-separated word (``crc32(word) % 50000``); logprobs are ``-0.5 * position``.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import anyio
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from gymbus.runtime.messages import AnyMessage
from gymbus.runtime.model import EpisodeInfo, ModelRequest, SamplingParams, Solver
from gymbus.runtime.tools import ToolSpec
from gymbus.runtime.transcript import Transcript

Api = Literal["chat", "responses"]


@dataclass(frozen=True)
class ToolCallSpec:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """What the fake model answers: text and/or tool calls (and optional reasoning)."""

    text: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    reasoning: str | None = None


@dataclass(frozen=True)
class SeenMessage:
    """A request message reduced to role and text (tool calls as ``name(args)``)."""

    role: str
    text: str


@dataclass(frozen=True)
class SeenRequest:
    api: Api
    body: dict[str, Any]
    messages: tuple[SeenMessage, ...]
    tools: tuple[str, ...]

    @property
    def last(self) -> SeenMessage:
        return self.messages[-1]


Policy = Callable[[SeenRequest], "Turn | str"]


@dataclass(frozen=True)
class Fault:
    """A misbehaviour for one request. Build with the class methods."""

    kind: Literal["status", "malformed", "missing", "slow", "disconnect"]
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    message: str | None = None

    @classmethod
    def http(
        cls, status: int, retry_after: float | str | None = None, message: str | None = None
    ) -> Fault:
        """An error status. ``message`` may contain ``{authorization}``, replaced by the
        request's Authorization header (a server that echoes credentials)."""
        value = None if retry_after is None else str(retry_after)
        return cls("status", status=status, retry_after=value, message=message)

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls("malformed")

    @classmethod
    def missing_choices(cls) -> Fault:
        """200 with a JSON object lacking ``choices`` (chat) / ``output`` (responses)."""
        return cls("missing")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", delay=seconds)

    @classmethod
    def disconnect(cls) -> Fault:
        return cls("disconnect")


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]
    body: bytes
    peer: tuple[str, int] | None  # client address: same peer = same pooled connection

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.body)
        return data


def request_for(
    *messages: AnyMessage,
    tools: Sequence[ToolSpec] = (),
    params: SamplingParams | None = None,
    episode_id: str = "ep-1",
    solver: Solver | None = None,
) -> ModelRequest:
    """A :class:`ModelRequest` for ``messages`` in a toy episode."""
    return ModelRequest(
        Transcript(messages),
        tuple(tools),
        params if params is not None else SamplingParams(),
        EpisodeInfo(episode_id, "toy", "toy/0", 0, solver=solver),
    )


def echo_policy(request: SeenRequest) -> Turn:
    """Answers ``echo: <last message text>``."""
    return Turn(text=f"echo: {request.last.text}")


def tool_policy(name: str, arguments: dict[str, Any], answer: str = "done") -> Policy:
    """Calls tool ``name`` once; after a tool result, answers ``<answer>: <result>``."""

    def policy(request: SeenRequest) -> Turn:
        if request.last.role == "tool":
            return Turn(text=f"{answer}: {request.last.text}")
        return Turn(tool_calls=(ToolCallSpec(name, arguments),))

    return policy


def token_id(word: str) -> int:
    return zlib.crc32(word.encode()) % 50000


def _words(text: str) -> list[str]:
    return text.split()


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return " ".join(texts)


def _seen_chat(body: dict[str, Any]) -> tuple[SeenMessage, ...]:
    seen = []
    for m in body.get("messages", []):
        text = _text_of(m.get("content"))
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            text = f"{text} {fn['name']}({fn['arguments']})".strip()
        seen.append(SeenMessage(m["role"], text))
    return tuple(seen)


def _seen_responses(body: dict[str, Any]) -> tuple[SeenMessage, ...]:
    seen = []
    for item in body.get("input", []):
        kind = item.get("type", "message")
        if kind == "message":
            seen.append(SeenMessage(item["role"], _text_of(item.get("content"))))
        elif kind == "function_call":
            seen.append(SeenMessage("assistant", f"{item['name']}({item['arguments']})"))
        elif kind == "function_call_output":
            seen.append(SeenMessage("tool", _text_of(item.get("output"))))
    return tuple(seen)


class OpenAIServer:
    """The fake server. ``async with OpenAIServer() as server``; ``server.base_url`` is
    ``http://127.0.0.1:<port>/v1``."""

    def __init__(self, policy: Policy = echo_policy, model: str = "fake-model") -> None:
        self.policy = policy
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.faults: deque[Fault] = deque()
        self._calls = 0
        app = web.Application(client_max_size=64 * 2**20)  # 1M-token prompts are ~4 MB
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        self._server = TestServer(app, host="127.0.0.1", handler_cancellation=True)

    async def __aenter__(self) -> Self:
        await self._server.start_server()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._server.close()

    @property
    def base_url(self) -> str:
        return str(self._server.make_url("/v1"))

    def fail_next(self, *faults: Fault) -> None:
        """Queue faults: each of the next requests suffers one, in order."""
        self.faults.extend(faults)

    @property
    def count(self) -> int:
        return len(self.requests)

    # --- handlers --------------------------------------------------------------------

    async def _fault(self, request: web.Request, api: Api) -> web.StreamResponse | None:
        if not self.faults:
            return None
        fault = self.faults.popleft()
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            text = (fault.message or "injected {status}").format(
                status=fault.status, authorization=request.headers.get("Authorization", "")
            )
            body = {"error": {"message": text, "type": "fault"}}
            return web.json_response(body, status=fault.status, headers=headers)
        if fault.kind == "malformed":
            return web.Response(body=b'{"choices": [', content_type="application/json")
        if fault.kind == "missing":
            return web.json_response({"id": "x", "object": "nothing"})
        if fault.kind == "slow":
            await anyio.sleep(fault.delay)
            return None
        assert request.transport is not None
        request.transport.abort()  # connection reset mid-request
        raise ConnectionResetError("injected disconnect")

    async def _read(self, request: web.Request) -> dict[str, Any]:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            RecordedRequest(
                request.path, dict(request.headers), body, tuple(peer) if peer else None
            )
        )
        self._calls += 1
        data: dict[str, Any] = orjson.loads(body)
        return data

    def _turn(self, seen: SeenRequest) -> Turn:
        turn = self.policy(seen)
        return Turn(text=turn) if isinstance(turn, str) else turn

    @staticmethod
    def _limit(words: list[str], limit: int | None) -> tuple[list[str], bool]:
        if limit is not None and len(words) > limit:
            return words[:limit], True
        return words, False

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        fault = await self._fault(request, "chat")
        if fault is not None:
            return fault
        tools = tuple(t["function"]["name"] for t in body.get("tools", []))
        messages = _seen_chat(body)
        turn = self._turn(SeenRequest("chat", body, messages, tools))
        words, cut = self._limit(
            _words(turn.text or ""), body.get("max_completion_tokens", body.get("max_tokens"))
        )
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(words) or None}
        if turn.reasoning is not None:
            message["reasoning"] = turn.reasoning
        if turn.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{len(messages)}_{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()},
                }
                for i, c in enumerate(turn.tool_calls)
            ]
        finish = "length" if cut else ("tool_calls" if turn.tool_calls else "stop")
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        prompt_words = [w for m in messages for w in _words(m.text)]
        if body.get("logprobs"):
            choice["logprobs"] = {
                "content": [
                    {"token": w, "logprob": -0.5 * i, "bytes": list(w.encode()), "top_logprobs": []}
                    for i, w in enumerate(words)
                ]
            }
        out: dict[str, Any] = {
            "id": f"chatcmpl-{self._calls}",
            "object": "chat.completion",
            "model": self.model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(prompt_words),
                "completion_tokens": len(words),
                "total_tokens": len(prompt_words) + len(words),
            },
        }
        if body.get("return_token_ids"):
            out["prompt_token_ids"] = [token_id(w) for w in prompt_words]
            choice["token_ids"] = [token_id(w) for w in words]
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        fault = await self._fault(request, "responses")
        if fault is not None:
            return fault
        tools = tuple(t["name"] for t in body.get("tools", []))
        messages = _seen_responses(body)
        turn = self._turn(SeenRequest("responses", body, messages, tools))
        words, cut = self._limit(_words(turn.text or ""), body.get("max_output_tokens"))
        output: list[dict[str, Any]] = []
        if turn.reasoning is not None:
            output.append(
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": turn.reasoning}],
                }
            )
        if words:
            part: dict[str, Any] = {
                "type": "output_text",
                "text": " ".join(words),
                "annotations": [],
            }
            if "message.output_text.logprobs" in body.get("include", []):
                part["logprobs"] = [
                    {"token": w, "logprob": -0.5 * i, "bytes": list(w.encode()), "top_logprobs": []}
                    for i, w in enumerate(words)
                ]
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{self._calls}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [part],
                }
            )
        for i, c in enumerate(turn.tool_calls):
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{self._calls}_{i}",
                    "call_id": f"call_{len(messages)}_{i}",
                    "name": c.name,
                    "arguments": orjson.dumps(c.arguments).decode(),
                    "status": "completed",
                }
            )
        prompt_words = [w for m in messages for w in _words(m.text)]
        out = {
            "id": f"resp_{self._calls}",
            "object": "response",
            "model": self.model,
            "status": "incomplete" if cut else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "output": output,
            "usage": {
                "input_tokens": len(prompt_words),
                "output_tokens": len(words),
                "total_tokens": len(prompt_words) + len(words),
            },
        }
        return web.Response(body=orjson.dumps(out), content_type="application/json")
