"""Fuzzing ``gymbus serve``'s request bodies over real HTTP on 127.0.0.1.

Contract (:mod:`gymbus.server`): a bad request is a 4xx with ``{"error": {"code",
"message"}}``; an environment's own failure is a 200 with ``{"failure": …}``. A 500 is
our bug (the server answers it as JSON and keeps serving, but the client's input should
never cause one). One server serves every example, so a request that broke its state
would fail the examples after it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from gymbus.envs.base import Environment
from gymbus.envs.registry import available
from gymbus.runtime.media import MediaStore
from gymbus.server import ServerConfig, serve
from tests.fuzzing import JSON, json_values, scalars, shaped, short_text, sometimes
from tests.runtime.strategies import messages

pytestmark = pytest.mark.anyio

TOKEN = "fuzz-server-token-0123456789abcdef"
ENV_NAMES = ("retail-orders", "travel-clarify", "records-needle", "status-updates")
ENVS: dict[str, type[Environment]] = {n: c for n, c in available().items() if n in ENV_NAMES}
STEPS = ("user", "audit", "solve", "verify")


@dataclass
class Served:
    url: str
    session: aiohttp.ClientSession
    episodes: dict[str, tuple[str, tuple[str, ...]]]  # env -> (episode id, tool names)

    async def request(self, method: str, path: str | URL, body: bytes | None = None) -> Any:
        """The JSON reply; fails on a 5xx or a body that is not the protocol's."""
        url = URL(self.url + path, encoded=True) if isinstance(path, str) else path
        async with self.session.request(method, url, data=body) as response:
            assert response.status < 500, await response.text()
            assert response.content_type == "application/json"
            reply = await response.json()
        assert isinstance(reply, dict)
        if response.status >= 400:
            assert isinstance(reply["error"]["code"], str)
            assert isinstance(reply["error"]["message"], str)
        return reply


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    config = ServerConfig(envs=ENVS, tokens=(TOKEN,), max_body_bytes=64 * 1024)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with serve(config) as url, aiohttp.ClientSession(headers=headers) as session:
        server = Served(url, session, {})
        for env in ENVS:
            body = json.dumps({"env": env, "seed": 0}).encode()
            reply = await server.request("POST", "/v1/episodes", body)
            tools = tuple(tool["name"] for tool in reply["tools"])
            server.episodes[env] = (reply["episode_id"], tools)
        yield server


# --- bodies -------------------------------------------------------------------------

PROTOCOL_KEYS = (
    "env", "seed", "options", "arguments", "request_id", "conversation", "base", "messages",
    "transcript", "stop_reason", "episode_id", "role", "content", "type", "text",
)  # fmt: skip
PROTOCOL_WORDS = (*ENV_NAMES, "user", "assistant", "tool", "text", "done", "easy", "hard")
message_json = sometimes(
    messages(MediaStore(), ("text",), runtime_fields=True).map(lambda m: m.model_dump(mode="json"))
)
delta = shaped(
    {}, base=st.integers(-1, 3) | st.integers(), messages=st.lists(message_json, max_size=3)
)
OPTION_NAMES = ("difficulty", "context_tokens", "user_model", "fault")
create_bodies = shaped(
    {"env": st.sampled_from(ENV_NAMES) | short_text, "seed": st.integers()},
    options=st.dictionaries(
        st.sampled_from(OPTION_NAMES) | short_text,
        st.sampled_from(["easy", "hard", 3000]) | scalars,
        max_size=2,
    ),
)
tool_bodies = shaped(
    {"arguments": st.dictionaries(st.text(max_size=8), json_values(("order_id",), ("x",)))},
    request_id=short_text,
)
step_bodies = {
    "user": shaped({"conversation": delta}),
    "audit": shaped({"conversation": delta}),
    "solve": shaped({"conversation": delta}),
    "verify": shaped({"transcript": delta, "stop_reason": short_text}, episode_id=short_text),
}
any_body = st.one_of(
    st.binary(max_size=80),
    json_values(PROTOCOL_KEYS, PROTOCOL_WORDS).map(lambda v: json.dumps(v).encode()),
)


def _encode(body: JSON) -> bytes:
    return json.dumps(body).encode()  # big ints, NaN and lone surrogates too


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """(env, path, body): a route of the protocol and a body mostly shaped for it."""
    env = draw(st.sampled_from(ENV_NAMES))
    route = draw(st.sampled_from(("create", "tool", *STEPS)))
    if route == "create":
        path, body = "/v1/episodes", draw(create_bodies)
    elif route == "tool":
        path, body = "tools/{tool}", draw(tool_bodies)
    else:
        path, body = route, draw(step_bodies[route])
    raw = draw(sometimes(st.just(_encode(body))) | any_body)
    return env, path, raw if isinstance(raw, bytes) else _encode(raw)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one server on purpose
)
@given(requests())
@example(("retail-orders", "/v1/episodes", b'{"env": "retail-orders", "seed": 0, "options": '
          b'{"x": 123456789012345678901234567890}}'))  # fmt: skip
@example(("retail-orders", "tools/{tool}", b'{"arguments": {"order_id": '
          b'123456789012345678901234567890}, "request_id": "r1"}'))  # fmt: skip
async def test_bad_bodies_get_4xx_json_errors_and_the_server_keeps_serving(
    served: Served, case: tuple[str, str, bytes]
) -> None:
    env, path, body = case
    if not path.startswith("/"):
        episode_id, tools = served.episodes[env]
        tool = tools[0] if tools else "none"
        path = f"/v1/episodes/{episode_id}/" + path.format(tool=tool)
    await served.request("POST", path, body)
    assert await served.request("GET", "/v1/health") == {"status": "ok", "protocol": 1}


async def test_big_integers_and_odd_media_ids_are_client_errors(served: Served) -> None:
    """Regressions: a >64-bit integer in environment options or in the arguments of a
    tool call with a request id (orjson cannot encode it), and a media id with a
    trailing newline (``re.match`` with ``$``), each caused a 500."""
    reply = await served.request(
        "POST", "/v1/episodes", b'{"env": "records-needle", "seed": 0, "options": '
        b'{"context_tokens": 123456789012345678901234567890}}',
    )  # fmt: skip
    assert reply["error"]["code"] == "bad_options"
    episode_id, tools = served.episodes["retail-orders"]
    path = f"/v1/episodes/{episode_id}/tools/{tools[0]}"
    body = b'{"arguments": {"order_id": 123456789012345678901234567890}, "request_id": "r"}'
    first = await served.request("POST", path, body)
    assert first["failure"]["kind"] == "arguments"  # the tool's own answer: not a string
    assert await served.request("POST", path, body) == first  # the replay of the same call
    media = URL(served.url + "/v1/media/" + "a" * 64 + "%0A", encoded=True)
    reply = await served.request("GET", media)
    assert reply["error"]["code"] == "unknown_media"
