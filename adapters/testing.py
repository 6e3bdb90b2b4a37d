"""A fault-injecting OpenAI-compatible model server, for testing environments and
training loops against a model server that misbehaves the way real ones do::

    plan = FaultPlan.uniform(0.15)  # 15% of requests suffer one fault, all kinds alike
    async with FaultyModelServer(policy=solver_policy(MySolver), faults=plan, seed=0) as server:
        model = OpenAIChat("faulty-model", base_url=server.base_url, api_key_env=None)
        ...
    server.counts.faults["hang"]  # how many requests were left hanging

It listens on 127.0.0.1 (port 0: a free one) and serves ``POST /v1/chat/completions``,
``POST /v1/responses`` and ``GET /v1/models`` in the caller's event loop. Each request is
decoded into a :class:`Transcript` with gymbus's own wire readers; the ``policy`` decides
the normal answer; then, with the plan's probabilities (a seeded ``random.Random``, one
draw per request, so a run's sequence of faults is reproducible), one fault replaces or
spoils it. What a gymbus client makes of each :data:`FaultKind`:

==================  ===========================================  ======================
kind                the server                                   gymbus
==================  ===========================================  ======================
status_429          429 with ``Retry-After``/``retry-after-ms``  retried
status_500/502/503  that status                                  retried
reset               aborts the TCP connection                    retried
hang                never answers                                client timeout, retried
truncated           ``Content-Length`` larger than what it       retried
                    sends, then closes
invalid_json        200, a body that is not JSON                 fails: kind ``model``
missing_choices     200, no ``choices`` (Responses: ``output``)  fails: kind ``model``
no_message          200, a choice without ``message`` (an        fails: kind ``model``
                    output message item without role)
bad_tool_args       the answer's tool call with its arguments    error tool message,
                    cut short (a call to the first tool if it    the episode goes on
                    answered in text)
oversize            the answer's content replaced by             a normal (huge) answer
                    ``oversize_chars`` characters
==================  ===========================================  ======================

Retries exhausted, a hang's last timeout included, fail the episode with kind ``model``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any, Literal, NoReturn, Self, TypeAlias

import anyio
import orjson
from aiohttp import web

from gymbus.adapters.fault_plan import FAULT_KINDS, FaultCounts, FaultKind, FaultPlan
from gymbus.runtime.closing import AsyncClosing
from gymbus.runtime.errors import WireFormatError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage, SystemMessage, TextPart, ToolCall
from gymbus.runtime.model import Solver
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.wire_chat import from_chat, to_chat
from gymbus.runtime.wire_responses import from_responses, to_responses

__all__ = [
    "FAULT_KINDS",
    "FaultCounts",
    "FaultKind",
    "FaultPlan",
    "FaultyModelServer",
    "ServerPolicy",
    "echo_policy",
    "solver_policy",
]

_Api = Literal["chat", "responses"]

ServerPolicy: TypeAlias = Callable[[Transcript], "str | AssistantMessage"]
"""What the model answers: ``policy(conversation) -> str | AssistantMessage``. The
conversation is the request's messages (system, user, assistant, tool) decoded with
gymbus's wire readers; return text, or an :class:`AssistantMessage` with text and/or
tool calls (their ``arguments`` a JSON string). A policy that raises gets the request a
500 (counted as outcome ``policy_error``)."""


def echo_policy(conversation: Transcript) -> str:
    """Answers ``echo: <the last message's text>``."""
    last = conversation.last
    return f"echo: {last.text if last is not None else ''}"


def solver_policy(factory: Callable[[], Solver]) -> ServerPolicy:
    """Play a reference solver (``Solver.next_message``), e.g.
    ``solver_policy(RetailOrdersSolver)``. A fresh ``factory()`` answers each request, so
    solvers must be pure functions of the conversation, as gymbus's are. A solver that
    reads media must read the server's store (pass the same one as ``media=``)."""

    def policy(conversation: Transcript) -> AssistantMessage:
        return factory().next_message(conversation)

    return policy


_NOT_A_REQUEST = (
    orjson.JSONDecodeError,
    WireFormatError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
)


class FaultyModelServer(AsyncClosing):
    """The server; ``async with FaultyModelServer(...) as server``, then point a client
    at ``server.base_url`` (``http://127.0.0.1:<port>/v1``). ``server.counts`` says what
    it did; ``server.open_connections`` how many client connections it holds."""

    def __init__(
        self,
        policy: ServerPolicy = echo_policy,
        *,
        faults: FaultPlan | None = None,
        seed: int | None = 0,
        model: str = "faulty-model",
        media: MediaStore | None = None,
        port: int = 0,
    ) -> None:
        self.policy = policy
        self.faults = faults if faults is not None else FaultPlan()
        self.model = model
        self.media = media if media is not None else MediaStore.shared()
        self.counts = FaultCounts()
        self._rng = random.Random(seed)
        self._port = port
        self._runner: web.AppRunner | None = None
        self._closing: anyio.Event | None = None

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=256 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/v1/models", self._models)
        # handler_cancellation: a handler whose client went away (a hang the client
        # gave up on, a reset) is cancelled instead of lingering
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=5.0
        )
        await runner.setup()
        self._closing = anyio.Event()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._port, backlog=1024).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    async def aclose(self) -> None:
        """Release hanging requests and stop serving."""
        runner, self._runner = self._runner, None
        if self._closing is not None:
            self._closing.set()
        if runner is not None:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("use the server inside 'async with'")
        address: tuple[str, int] = self._runner.addresses[0]
        return address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def open_connections(self) -> int:
        """Client connections open on the server side right now."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "closed"
        return f"FaultyModelServer({where}, fault rate {self.faults.rate:.3f})"

    # --- handlers ----------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": self.model, "object": "model", "owned_by": "gymbus"}
        return web.json_response({"object": "list", "data": [model]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "responses")

    async def _serve(self, request: web.Request, api: _Api) -> web.StreamResponse:
        counts = self.counts
        counts.requests += 1
        number = counts.requests
        raw = await request.read()
        try:
            conversation, tools = _read(api, orjson.loads(raw), self.media)
        except _NOT_A_REQUEST as exc:
            counts.outcomes["bad_request"] += 1
            return _error(400, f"not a {api} request: {exc}", kind="invalid_request")
        try:
            reply = self.policy(conversation)
        except Exception as exc:
            counts.outcomes["policy_error"] += 1
            return _error(500, f"the policy raised {exc!r}", kind="policy_error")
        message = AssistantMessage(content=reply) if isinstance(reply, str) else reply
        kind = self.faults.draw(self._rng)
        if kind is None:
            counts.outcomes["tool_calls" if message.tool_calls else "text"] += 1
        else:
            counts.outcomes["fault"] += 1
            counts.faults[kind] += 1
        if kind in ("status_429", "status_500", "status_502", "status_503"):
            return self._status(int(kind[-3:]))
        if kind == "reset":
            _abort(request)
            await self._park()
        if kind == "hang":
            await self._park()
        if kind == "invalid_json":
            return _json(b'{"choices": [{"index": 0, "message": {"role": "assist')
        if kind in ("missing_choices", "no_message"):
            return _json(orjson.dumps(_wrong_shape(api, kind, number, self.model)))
        if kind == "bad_tool_args":
            message = _malformed(message, tools, number)
        elif kind == "oversize":
            size = self.faults.oversize_chars
            huge = ("overflow " * (size // 9 + 1))[:size]
            message = message.model_copy(update={"content": (TextPart(text=huge),)})
        body = orjson.dumps(self._completion(api, message, number, len(raw)))
        if kind == "truncated":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            _abort(request)
            await self._park()
        return _json(body)

    def _status(self, status: int) -> web.Response:
        headers: dict[str, str] = {}
        if status == 429:
            wait = self.faults.retry_after
            headers = {
                "retry-after-ms": str(round(wait * 1000)),
                "Retry-After": str(math.ceil(wait)),
            }
        return _error(status, f"injected fault: HTTP {status}", headers)

    async def _park(self) -> NoReturn:
        """Never answer: wait until the client goes away (aiohttp then cancels this
        handler) or the server closes."""
        assert self._closing is not None
        await self._closing.wait()
        raise web.HTTPServiceUnavailable(text="the server is closing")

    def _completion(
        self, api: _Api, message: AssistantMessage, number: int, request_bytes: int
    ) -> dict[str, Any]:
        """The normal answer. Token counts are rough: about four bytes a token."""
        prompt = max(1, request_bytes // 4)
        done = len(message.text) + sum(len(c.name) + len(c.arguments) for c in message.tool_calls)
        completion = max(1, done // 4)
        if api == "chat":
            finish = "tool_calls" if message.tool_calls else "stop"
            return {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {"index": 0, "message": to_chat(message, self.media), "finish_reason": finish}
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        return {
            "id": f"resp_{number}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": self.model,
            "output": to_responses(message, self.media),
            "usage": {
                "input_tokens": prompt,
                "output_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }


def _read(api: _Api, body: Any, media: MediaStore) -> tuple[Transcript, tuple[str, ...]]:
    """The conversation and the tool names of a request body."""
    if api == "chat":
        messages = [from_chat(m, media, f"messages[{i}]") for i, m in enumerate(body["messages"])]
        tools = tuple(str(t["function"]["name"]) for t in body.get("tools") or ())
        return Transcript(messages), tools
    items = body["input"]
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    messages = from_responses(items, media)
    if body.get("instructions"):
        messages.insert(0, SystemMessage(content=str(body["instructions"])))
    tools = tuple(str(t["name"]) for t in body.get("tools") or ())
    return Transcript(messages), tools


def _malformed(message: AssistantMessage, tools: tuple[str, ...], number: int) -> AssistantMessage:
    """``message`` with tool-call arguments that are not JSON (cut short, as a model cut
    off mid-call writes them); a text answer gets a call to the first tool."""
    if message.tool_calls:
        calls = tuple(
            call.model_copy(update={"arguments": call.arguments[:-1] or "{"})
            for call in message.tool_calls
        )
    else:
        name = tools[0] if tools else "tool"
        calls = (ToolCall(id=f"call_malformed_{number}", name=name, arguments='{"'),)
    return message.model_copy(update={"tool_calls": calls})


def _wrong_shape(api: _Api, kind: FaultKind, number: int, model: str) -> dict[str, Any]:
    """A JSON object that is not a valid completion: no choices/output, or a choice (an
    output message item) without the message."""
    if api == "chat":
        body: dict[str, Any] = {"id": f"chatcmpl-{number}", "object": "chat.completion"}
        if kind == "no_message":
            body["choices"] = [{"index": 0, "finish_reason": "stop"}]
    else:
        body = {"id": f"resp_{number}", "object": "response", "status": "completed"}
        if kind == "no_message":
            body["output"] = [{"type": "message", "id": f"msg_{number}", "content": []}]
    body["model"] = model
    return body


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, *, kind: str = "injected"
) -> web.Response:
    body = {"error": {"message": message, "type": kind}}
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _abort(request: web.Request) -> None:
    """Reset the connection (no FIN, no answer)."""
    if request.transport is not None:
        request.transport.abort()
