"""``gymbus serve``'s guards against bad requests, over real HTTP on 127.0.0.1: each bad
request gets its structured error, and none disturbs another client's episodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

import gymbus
from gymbus.envs.base import Environment
from gymbus.envs.registry import available
from gymbus.remote import RemoteEnv
from gymbus.remote_episode import RemoteEpisode
from gymbus.runtime.jobs import EpisodeJob
from gymbus.server import ServerConfig, serve
from tests.served_envs import FaultyEnv

pytestmark = pytest.mark.anyio

TOKEN_A = "server-test-token-A-0123456789abcdef"
TOKEN_B = "server-test-token-B-fedcba9876543210"
ENVS: dict[str, type[Environment]] = {**available(), FaultyEnv.name: FaultyEnv}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def url() -> AsyncIterator[str]:
    config = ServerConfig(
        envs=ENVS, tokens=(TOKEN_A, TOKEN_B), max_body_bytes=64 * 1024, client_concurrency=2
    )
    async with serve(config) as url:
        yield url


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = TOKEN_A,
    json: Any = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with session.request(method, url, headers=headers, json=json, data=data) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json(), dict(response.headers)


async def start(session: aiohttp.ClientSession, url: str, fault: str = "none", **body: Any) -> str:
    status, reply, _ = await call(
        session, "POST", f"{url}/v1/episodes",
        json={"env": "faulty", "seed": 0, "options": {"fault": fault}, **body},
    )  # fmt: skip
    assert status == 200, reply
    episode_id: str = reply["episode_id"]
    return episode_id


async def test_health_needs_no_token_and_says_nothing_else(
    url: str, session: aiohttp.ClientSession
) -> None:
    status, reply, _ = await call(session, "GET", f"{url}/v1/health", token=None)
    assert (status, reply) == (200, {"status": "ok", "protocol": 1})


async def test_a_missing_or_wrong_token_is_401_without_detail(
    url: str, session: aiohttp.ClientSession
) -> None:
    for token in (None, "", "x" * 40, TOKEN_A[:-1], TOKEN_A + "0"):
        status, reply, headers = await call(session, "GET", f"{url}/v1/envs", token=token)
        assert status == 401
        assert reply["error"]["code"] == "unauthorized"
        assert headers["WWW-Authenticate"] == "Bearer"
        text = str(reply)
        assert TOKEN_A not in text
        assert TOKEN_B not in text
        assert "expected" not in text


async def test_an_oversized_body_is_413(url: str, session: aiohttp.ClientSession) -> None:
    big = {"env": "faulty", "seed": 0, "options": {"pad": "x" * 100_000}}
    status, reply, _ = await call(session, "POST", f"{url}/v1/episodes", json=big)
    assert status == 413
    assert reply["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"seed": 0}', "env"),
        (b'{"env": "faulty", "seed": "zero"}', "seed"),
        (b'{"env": "faulty", "seed": 0, "options": {"fault": ["a"]}}', "options.fault"),
        (b'{"env": "faulty", "seed": 0, "extra": 1}', "extra"),
        (b'{"env": "no-such-env", "seed": 0}', "env"),
        (b'{"env": "faulty", "seed": 0, "options": {"colour": "red"}}', "options"),
    ],
)
async def test_a_bad_episode_request_is_422_naming_the_field(
    url: str, session: aiohttp.ClientSession, body: bytes, field: str
) -> None:
    status, reply, _ = await call(session, "POST", f"{url}/v1/episodes", data=body)
    assert status == 422, reply
    assert reply["error"]["field"] == field


MESSAGE_AT = "conversation.messages.0"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "robot", "content": "hi"}, MESSAGE_AT),
        ({"role": "assistant", "tool_calls": "none"}, f"{MESSAGE_AT}.assistant.tool_calls"),
        ({"role": "user", "content": [{"type": "image"}]}, f"{MESSAGE_AT}.user.content.0.image"),
    ],
)
async def test_a_message_failing_validation_is_422_naming_the_field(
    url: str, session: aiohttp.ClientSession, message: dict[str, Any], field: str
) -> None:
    episode = f"{url}/v1/episodes/{await start(session, url)}"
    body = {"conversation": {"messages": [message]}}
    status, reply, _ = await call(session, "POST", f"{episode}/user", json=body)
    assert status == 422
    assert reply["error"]["field"] == field
    assert reply["error"]["message"].startswith(field)


async def test_unknown_episodes_routes_and_other_clients_episodes_are_404(
    url: str, session: aiohttp.ClientSession
) -> None:
    episode = f"{url}/v1/episodes/{await start(session, url)}"
    tool = {"arguments": {"key": "a"}}
    for method, target, token in [
        ("POST", f"{url}/v1/episodes/no-such-episode/tools/lookup", TOKEN_A),
        ("DELETE", f"{url}/v1/episodes/no-such-episode", TOKEN_A),
        ("POST", f"{episode}/tools/lookup", TOKEN_B),  # A's episode, B's token
        ("DELETE", episode, TOKEN_B),
        ("GET", f"{url}/v1/nothing-here", TOKEN_A),
        ("GET", f"{url}/v1/media/{'0' * 64}", TOKEN_A),
    ]:
        status, reply, _ = await call(session, method, target, token=token, json=tool)
        assert status == 404, (method, target)
        assert set(reply["error"]) >= {"code", "message"}
    status, reply, _ = await call(session, "GET", f"{url}/v1/episodes")
    assert status == 405
    status, reply, _ = await call(session, "POST", f"{episode}/tools/lookup", json=tool)
    assert (status, reply) == (200, {"output": "value-of-a"})  # still A's, still alive
    assert (await call(session, "DELETE", episode))[0] == 200
    assert (await call(session, "DELETE", episode))[0] == 404


async def test_an_environment_without_a_user_has_no_user_endpoint(
    url: str, session: aiohttp.ClientSession
) -> None:
    status, reply, _ = await call(
        session, "POST", f"{url}/v1/episodes", json={"env": "retail-orders", "seed": 3}
    )
    assert status == 200
    assert (reply["has_user"], reply["user_audited"], reply["has_solver"]) == (False, False, True)
    body: dict[str, Any] = {"conversation": {"messages": []}}
    status, reply, _ = await call(
        session, "POST", f"{url}/v1/episodes/{reply['episode_id']}/user", json=body
    )
    assert (status, reply["error"]["code"]) == (404, "no_user")


async def test_a_conversation_out_of_sync_is_409(url: str, session: aiohttp.ClientSession) -> None:
    episode = f"{url}/v1/episodes/{await start(session, url)}"
    body = {"conversation": {"base": 5, "messages": []}}
    status, reply, _ = await call(session, "POST", f"{episode}/solve", json=body)
    assert (status, reply["error"]["field"]) == (409, "conversation.base")


async def test_a_retried_tool_call_runs_once_and_an_unknown_tool_is_a_failure(
    url: str, session: aiohttp.ClientSession
) -> None:
    episode = f"{url}/v1/episodes/{await start(session, url)}"
    body = {"arguments": {"key": "a"}, "request_id": "r-1"}
    first = await call(session, "POST", f"{episode}/tools/lookup", json=body)
    again = await call(session, "POST", f"{episode}/tools/lookup", json=body)
    assert first[:2] == again[:2] == (200, {"output": "value-of-a"})
    status, reply, _ = await call(session, "POST", f"{episode}/tools/nope", json=body)
    assert status == 200
    assert reply["failure"]["kind"] == "unknown_tool"
    assert reply["failure"]["message"] == "unknown tool 'nope'; available: lookup"
    verify = {"transcript": {"messages": []}, "stop_reason": "done"}
    status, reply, _ = await call(session, "POST", f"{episode}/verify", json=verify)
    assert reply["score"]["evidence"]["lookups"] == 1


async def test_a_client_over_its_concurrency_limit_gets_429_and_others_do_not(
    url: str, session: aiohttp.ClientSession
) -> None:
    FaultyEnv.gate = gate = anyio.Event()
    try:
        episode = f"{url}/v1/episodes/{await start(session, url, fault='gate')}"
        tool = {"arguments": {"key": "a"}}
        replies: list[tuple[int, dict[str, Any], dict[str, str]]] = []

        async def blocked() -> None:
            replies.append(await call(session, "POST", f"{episode}/tools/lookup", json=tool))

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked)
            tg.start_soon(blocked)
            with anyio.fail_after(10):  # until both lookups hold A's two slots
                status, reply, headers = await call(session, "GET", f"{url}/v1/envs")
                while status != 429:
                    status, reply, headers = await call(session, "GET", f"{url}/v1/envs")
            assert reply["error"]["code"] == "too_many_requests"
            assert headers["Retry-After"] == "1"
            status, reply, _ = await call(session, "GET", f"{url}/v1/envs", token=TOKEN_B)
            assert status == 200  # another client is not limited by A's requests
            gate.set()
        assert [r[:2] for r in replies] == [(200, {"output": "value-of-a"})] * 2
        assert (await call(session, "GET", f"{url}/v1/envs"))[0] == 200  # slots are free again
    finally:
        FaultyEnv.gate = None


async def test_an_idle_episode_expires(session: aiohttp.ClientSession) -> None:
    config = ServerConfig(envs=ENVS, tokens=(TOKEN_A,), idle_expiry=0.05)
    async with serve(config) as url:
        episode = f"{url}/v1/episodes/{await start(session, url)}"
        with anyio.fail_after(10):
            status, reply, _ = await call(session, "POST", f"{episode}/solve", data=b"{}")
            while status == 422:  # an invalid request does not count as use
                await anyio.sleep(0.01)
                status, reply, _ = await call(session, "POST", f"{episode}/solve", data=b"{}")
        assert status == 404
        assert reply["error"]["code"] == "unknown_episode"


async def test_bad_requests_do_not_disturb_another_clients_episode(
    url: str, session: aiohttp.ClientSession
) -> None:
    async with RemoteEnv(url, "faulty", token=TOKEN_B) as remote:
        spec = await remote.start(0)
        assert isinstance(spec.state, RemoteEpisode)
        victim = f"{url}/v1/episodes/{spec.state.episode_id}"
        for method, target, token, data in [
            ("POST", f"{victim}/tools/lookup", TOKEN_A, b'{"arguments": {"key": "a"}}'),
            ("POST", f"{victim}/verify", TOKEN_A, b'{"transcript": {}, "stop_reason": "x"}'),
            ("DELETE", victim, TOKEN_A, None),
            ("DELETE", victim, "not-a-token-at-all-0000", None),
            ("POST", f"{victim}/user", TOKEN_B, b"{broken"),
            ("POST", f"{victim}/solve", TOKEN_B, b'{"conversation": {"base": 99}}'),
            ("POST", f"{victim}/tools/lookup", TOKEN_B, b"x" * 100_000),
        ]:
            status, _, _ = await call(session, method, target, token=token, data=data)
            assert status in (401, 404, 409, 413, 422), (method, target, status)
        async with gymbus.Runtime(gymbus.OracleModel()) as rt:
            [rollout] = await rt.run([EpisodeJob(env="faulty", seed=0, build=lambda: spec)])
    [local] = await gymbus.run(FaultyEnv(), gymbus.OracleModel(), n=1)
    assert rollout.reward == local.reward == 1.0
    assert rollout.messages == local.messages
    assert rollout.evidence["lookups"] == 1
