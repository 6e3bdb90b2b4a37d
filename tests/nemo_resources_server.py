"""A small NeMo Gym resources server for tests (aiohttp, 127.0.0.1, port 0).

Our own minimal equivalent of the three sample environments' servers, following the
documented protocol (``/seed_session``, ``POST /{tool}``, ``/verify``):

- ``example_single_tool_call``: ``get_weather(city)`` says it is cold; reward always 1.
- ``example_session_state_mgmt``: a counter per session, seeded with ``initial_count``;
  ``increment_counter(count)``, ``get_counter_value()``; reward 1 when the session's
  counter equals ``expected_count`` (0 for a session never seeded).
- ``example_multi_step``: ``get_synonym_value(synonym)`` = sum of the code points;
  ``extract_synonym_values(synonym_values)``; reward 1 when the last extraction equals
  ``expected_synonym_values``, with the same extra verify fields as the original.

Sessions live in a cookie set on every answer (as Starlette's session middleware does).
``/verify`` checks the ``response`` has the shape NeMo Gym's pydantic models demand and
answers 422 otherwise. Every request is recorded; ``fail_next(path, status)`` makes the
next request to ``path`` fail.

Below the server: the path of the sample data and the policies the tests play it with
(``replay_model`` replays the sample rollouts' policy turns).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from gymbus import FunctionModel, Runtime
from gymbus.nemo_gym import read_rollouts
from gymbus.nemo_gym_env import NeMoGymResourcesEnv
from gymbus.runtime.messages import AssistantMessage, ToolCall, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.rollout import Rollout

COOKIE = "ExampleResourcesServer___test"
SESSION_ID = web.RequestKey("session_id", str)
CREATE_FIELDS = {
    "background", "include", "input", "instructions", "max_output_tokens", "max_tool_calls",
    "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt", "reasoning",
    "service_tier", "store", "temperature", "text", "tool_choice", "tools", "top_logprobs",
    "top_p", "truncation", "user", "stream",
}  # fmt: skip

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Seen:
    path: str
    session: str
    had_cookie: bool
    body: Any


class InvalidBodyError(Exception):
    """A request body NeMo Gym's pydantic models would reject (answered with 422)."""


def _need(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise InvalidBodyError(f"{where}: expected {kind}, got {value!r}")
    return value


def check_response(response: Any) -> None:
    """The checks ``NeMoGymResponse.model_validate`` would make on the fields we use."""
    _need(response, dict, "response")
    for key in ("id", "model"):
        _need(response.get(key), str, f"response.{key}")
    _need(response.get("created_at"), (int, float), "response.created_at")
    if response.get("object") != "response":
        raise InvalidBodyError("response.object: expected 'response'")
    _need(response.get("parallel_tool_calls"), bool, "response.parallel_tool_calls")
    _need(response.get("tools"), list, "response.tools")
    for i, item in enumerate(_need(response.get("output"), list, "response.output")):
        at = f"response.output[{i}]"
        kind = _need(item, dict, at).get("type")
        if kind == "message" and item.get("role") == "assistant":
            _need(item.get("id"), str, f"{at}.id")
            for j, part in enumerate(_need(item.get("content"), list, f"{at}.content")):
                if part.get("type") == "output_text":
                    _need(part.get("text"), str, f"{at}.content[{j}].text")
                    _need(part.get("annotations"), list, f"{at}.content[{j}].annotations")
                elif part.get("type") != "refusal":
                    raise InvalidBodyError(f"{at}.content[{j}].type: {part.get('type')!r}")
        elif kind == "message":
            if item.get("role") not in ("user", "system", "developer"):
                raise InvalidBodyError(f"{at}.role")
        elif kind == "function_call":
            for key in ("arguments", "call_id", "name"):
                _need(item.get(key), str, f"{at}.{key}")
        elif kind == "function_call_output":
            _need(item.get("call_id"), str, f"{at}.call_id")
            _need(item.get("output"), str, f"{at}.output")
        elif kind == "reasoning":
            _need(item.get("id"), str, f"{at}.id")
            _need(item.get("summary"), list, f"{at}.summary")
        else:
            raise InvalidBodyError(f"{at}.type: {kind!r}")


class NeMoResourcesServer:
    """``async with NeMoResourcesServer("example_session_state_mgmt") as server``;
    ``server.url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, environment: str) -> None:
        self.environment = environment
        self.requests: list[Seen] = []
        self.counters: dict[str, int] = {}
        self._faults: dict[str, int] = {}
        tools: Mapping[str, Handler] = {
            "example_single_tool_call": {"get_weather": self._get_weather},
            "example_session_state_mgmt": {
                "increment_counter": self._increment_counter,
                "get_counter_value": self._get_counter_value,
            },
            "example_multi_step": {
                "get_synonym_value": self._get_synonym_value,
                "extract_synonym_values": self._extract_synonym_values,
            },
        }[environment]
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/seed_session", self._route(self._seed_session))
        app.router.add_post("/verify", self._route(self._verify))
        for name, handler in tools.items():
            app.router.add_post(f"/{name}", self._route(handler))
        self._server = TestServer(app, host="127.0.0.1")

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
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    def fail_next(self, path: str, status: int = 500) -> None:
        self._faults[path] = status

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    # --- plumbing ------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE)
        request[SESSION_ID] = cookie or uuid.uuid4().hex
        response = await handler(request)
        response.set_cookie(COOKIE, request[SESSION_ID], httponly=True, samesite="lax")
        return response

    def _route(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            body = json.loads(await request.read() or b"{}")
            session = request[SESSION_ID]
            self.requests.append(Seen(request.path, session, COOKIE in request.cookies, body))
            status = self._faults.pop(request.path, None)
            if status is not None:
                return web.json_response({"detail": "injected fault"}, status=status)
            try:
                _need(body, dict, "body")
                return web.json_response(await handler(request, body))
            except InvalidBodyError as exc:
                return web.json_response({"detail": str(exc)}, status=422)

        return route

    # --- endpoints -----------------------------------------------------------------

    async def _seed_session(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        params = _need(body.get("responses_create_params"), dict, "responses_create_params")
        if extra := set(params) - CREATE_FIELDS:
            raise InvalidBodyError(f"responses_create_params: extra fields {sorted(extra)}")
        if self.environment == "example_session_state_mgmt":
            initial = _need(body.get("initial_count"), int, "initial_count")
            self.counters.setdefault(request[SESSION_ID], initial)
        return {}

    async def _verify(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        check_response(body.get("response"))
        answer: dict[str, Any] = {
            "responses_create_params": body["responses_create_params"],
            "response": body["response"],
        }
        if self.environment == "example_single_tool_call":
            return {**answer, "reward": 1.0}
        if self.environment == "example_session_state_mgmt":
            expected = _need(body.get("expected_count"), int, "expected_count")
            counter = self.counters.get(request[SESSION_ID])
            return {**answer, "reward": float(counter == expected)}
        expected_values = body["expected_synonym_values"]
        actual: list[int] = []
        for item in reversed(body["response"]["output"]):
            if item["type"] == "function_call" and item["name"] == "extract_synonym_values":
                actual = json.loads(item["arguments"])["synonym_values"]
                break
        accuracy = expected_values == actual
        overlap = len(set(actual) & set(expected_values)) / len(expected_values)
        label, label_value = body["minefield_label"], body["minefield_label_value"]
        return {
            **answer,
            "reward": float(accuracy),
            "parsed_synonym_values": actual,
            "accuracy": accuracy,
            "set_overlap": overlap,
            "original_term_minefield_hit": label in actual or label_value in actual,
            "order_instruction_following_failure": not accuracy and overlap == 1.0,
        }

    async def _get_weather(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        city = _need(body.get("city"), str, "city")
        return {"city": city, "weather_description": f"The weather in {city} is cold."}

    async def _increment_counter(
        self, request: web.Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        count = _need(body.get("count"), int, "count")
        session = request[SESSION_ID]
        self.counters[session] = self.counters.get(session, 0) + count
        return {"success": True}

    async def _get_counter_value(
        self, request: web.Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        return {"count": self.counters.setdefault(request[SESSION_ID], 0)}

    async def _get_synonym_value(
        self, request: web.Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        synonym = _need(body.get("synonym"), str, "synonym")
        return {"synonym_value": sum(map(ord, synonym))}

    async def _extract_synonym_values(
        self, request: web.Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        values = _need(body.get("synonym_values"), list, "synonym_values")
        for i, value in enumerate(values):
            _need(value, int, f"synonym_values[{i}]")
        return {"success": True}


# --- the sample data and policies that play it -------------------------------------

# CI clones the repository next to a copy of shared/
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nemo-gym"
ENVS = ("example_single_tool_call", "example_session_state_mgmt", "example_multi_step")


def jsonl_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def replay_model(env: str) -> FunctionModel:
    """Replays the policy turns of the sample rollout whose prompt matches the episode's."""
    script = {
        r.messages[r.prompt_length - 1].text: [
            m for m in r.output if isinstance(m, AssistantMessage)
        ]
        for r in read_rollouts(DATA / env / "example_rollouts.jsonl")
    }

    def reply(request: ModelRequest) -> AssistantMessage:
        prompt = [m for m in request.conversation if isinstance(m, UserMessage)][-1].text
        done = sum(isinstance(m, AssistantMessage) for m in request.conversation)
        return script[prompt][done]

    return FunctionModel(reply, name="replay")


def calls(*turns: list[tuple[str, str]], answer: str = "done") -> FunctionModel:
    """Plays ``turns`` of (tool, JSON arguments) calls, then answers."""

    def reply(request: ModelRequest) -> AssistantMessage:
        done = sum(isinstance(m, AssistantMessage) for m in request.conversation)
        if done >= len(turns):
            return AssistantMessage(content=answer)
        return AssistantMessage(
            tool_calls=tuple(
                ToolCall(id=f"call_{done}_{i}", name=name, arguments=args)
                for i, (name, args) in enumerate(turns[done])
            )
        )

    return FunctionModel(reply)


async def play(
    env: str, model: FunctionModel, server: NeMoResourcesServer, **jobs: Any
) -> list[Rollout]:
    async with (
        NeMoGymResourcesEnv.from_file(DATA / env / "example.jsonl", server.url) as nemo,
        Runtime(model, concurrency=8) as rt,
    ):
        return await rt.run(nemo.jobs(**jobs))


def task_line(**params: Any) -> dict[str, Any]:
    """A minimal task line; ``params`` override its request fields."""
    base = {"input": [{"role": "user", "content": "hi"}], "tools": []}
    return {"responses_create_params": {**base, **params}}
