"""RemoteEnv against a real ``gymbus serve`` app on 127.0.0.1: a served environment plays,
scores and fails exactly like the same environment in-process."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import gymbus
from gymbus.adapters import HTTPClient, RetryPolicy
from gymbus.envs.base import Environment
from gymbus.envs.registry import available
from gymbus.remote import RemoteEnv, remote_episode_jobs
from gymbus.remote_episode import RemoteEpisode
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import (
    ConfigError,
    ModelError,
    ToolError,
    UnknownEnvironmentError,
    UserSimulatorError,
    VerifierError,
)
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage, ImagePart, ToolCall
from gymbus.runtime.model import AsyncSolver
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode
from gymbus.server import ServerConfig, create_app, episode_table, serve
from tests.served_envs import FAULTS, Fault, FaultyEnv

pytestmark = pytest.mark.anyio

TOKEN = "remote-test-token-0123456789abcdef"
ENVS: dict[str, type[Environment]] = {**available(), FaultyEnv.name: FaultyEnv}
FAST = RetryPolicy(max_attempts=2, base_delay=0.0)
CONVERSATION_STEPS = ("/user", "/audit", "/solve", "/verify")


def replayable(rollouts: Iterable[Rollout]) -> list[dict[str, Any]]:
    """Everything but timing, as written to a rollout file."""
    return [
        r.model_dump(mode="json", exclude={"timing"})
        for r in sorted(rollouts, key=lambda r: r.episode_id)
    ]


@pytest.fixture
async def served() -> AsyncIterator[str]:
    async with serve(ServerConfig(envs=ENVS, tokens=(TOKEN,))) as url:
        yield url


async def play_remote(
    url: str,
    env: str,
    seeds: Iterable[int],
    *,
    options: dict[str, Any] | None = None,
    model: gymbus.Model | None = None,
    media: MediaStore | None = None,
) -> list[Rollout]:
    async with HTTPClient() as http:
        remote = RemoteEnv(url, env, options=options, token=TOKEN, client=http, media=media)
        async with gymbus.Runtime(model or gymbus.OracleModel(), concurrency=8) as rt:
            return await rt.run(remote_episode_jobs(remote, seeds))


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("retail-orders", gymbus.OracleModel),
        ("travel-clarify", gymbus.OracleModel),  # a simulated user, audited
        ("travel-clarify", gymbus.NullModel),  # the user nudges, then gives up
        ("lab-report", gymbus.OracleModel),  # schema + required calls
        ("calendar-intents", gymbus.OracleModel),  # state checks on the calendar
    ],
)
async def test_a_served_environment_plays_exactly_like_a_local_one(
    served: str, name: str, model: type[gymbus.Model]
) -> None:
    seeds = range(12)
    local = await gymbus.run(gymbus.envs.load(name, difficulty="hard"), model(), n=12)
    remote = await play_remote(served, name, seeds, options={"difficulty": "hard"}, model=model())
    assert replayable(remote) == replayable(local)
    expected = 1.0 if model is gymbus.OracleModel else 0.0
    assert [r.reward for r in remote] == [expected] * 12
    if name == "travel-clarify":
        assert all(r.user_audit is not None and r.user_audit.faithful for r in remote)


@pytest.mark.parametrize("name", sorted(available()))
async def test_every_installed_environment_is_served_faithfully(served: str, name: str) -> None:
    """With a client media store of its own, so every image, audio or video crosses."""
    local = await gymbus.run(gymbus.envs.load(name), gymbus.OracleModel(), n=3)
    remote = await play_remote(served, name, range(3), media=MediaStore())
    assert replayable(remote) == replayable(local)


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_served_environment_fails_exactly_like_a_local_one(
    served: str, fault: Fault
) -> None:
    """Tool input errors and schema violations go back to the model with the same text;
    crashes, hangs, a broken user, audit, solver or verifier and a task that cannot be
    built fail the episode with the same kind and message."""
    local = await gymbus.run(FaultyEnv(fault=fault), gymbus.OracleModel(), n=2)
    remote = await play_remote(served, "faulty", range(2), options={"fault": fault})
    expected = replayable(local)
    for row in expected:  # the one difference: the verifier's class is the proxy's
        if row["failure"] is not None:
            message = row["failure"]["message"].replace("FaultyVerifier", "RemoteVerifier")
            row["failure"]["message"] = message
    assert replayable(remote) == expected
    if fault == "none":
        assert [r.evidence["lookups"] for r in remote] == [1, 1]  # server-side state
        assert {r.evidence["episode_id"] for r in remote} == {"faulty/0#0", "faulty/1#0"}


async def test_media_the_server_refers_to_are_copied_to_the_client(served: str) -> None:
    store = MediaStore()  # not the server's (shared) store: every blob must come over HTTP
    rollouts = await play_remote(served, "faulty", [0, 1], options={"fault": "media"}, media=store)
    refs = {
        part.media
        for r in rollouts
        for m in r.messages
        for part in getattr(m, "content", ())
        if isinstance(part, ImagePart) and part.media is not None
    }
    assert len(refs) == 2
    assert all(store.get(ref) == MediaStore.shared().get(ref) for ref in refs)


async def _recording_server(
    before: Callable[[web.Request, web.Application], Awaitable[None]] | None = None,
) -> tuple[TestServer, list[tuple[str, dict[str, Any], int]]]:
    """A test server whose requests (path, JSON body, status) are recorded."""
    seen: list[tuple[str, dict[str, Any], int]] = []
    app = create_app(ServerConfig(envs=ENVS, tokens=(TOKEN,)))

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        body = orjson.loads(await request.read()) if request.method == "POST" else {}
        if before is not None:
            await before(request, app)
        response: web.StreamResponse = await handler(request)
        seen.append((request.path, body, response.status))
        return response

    app.middlewares.insert(0, record)
    return TestServer(app, host="127.0.0.1"), seen


async def test_each_turn_sends_only_the_messages_the_server_lacks() -> None:
    server, seen = await _recording_server()
    async with server:
        url = str(server.make_url("")).rstrip("/")
        rollouts = await play_remote(url, "travel-clarify", range(3))
    by_episode: dict[str, list[dict[str, Any]]] = {}
    for path, body, _ in seen:
        if path.endswith(CONVERSATION_STEPS):
            by_episode.setdefault(path.rsplit("/", 1)[0], []).append(body)
    lengths = {r.episode_id: len(r.messages) for r in rollouts}
    assert len(by_episode) == 3
    for bodies in by_episode.values():
        deltas = [body.get("conversation") or body["transcript"] for body in bodies]
        client_episode_id = bodies[-1]["episode_id"]  # the last step, verify, names it
        assert sum(len(d["messages"]) for d in deltas) == lengths[client_episode_id]
        assert all(d["base"] > 0 for d in deltas[1:])


async def test_a_server_that_lost_the_conversation_is_sent_all_of_it() -> None:
    async def forget(request: web.Request, app: web.Application) -> None:
        episode_id = request.match_info.get("episode_id")
        episode = episode_table(app).get(episode_id, 0) if episode_id else None
        if episode is not None:
            episode.history.clear()

    server, seen = await _recording_server(forget)
    async with server:
        url = str(server.make_url("")).rstrip("/")
        remote = await play_remote(url, "travel-clarify", range(3))
    local = await gymbus.run(gymbus.envs.load("travel-clarify"), gymbus.OracleModel(), n=3)
    assert replayable(remote) == replayable(local)
    assert any(status == 409 for *_, status in seen)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_server_fails_the_episode_as_bad_task() -> None:
    async with HTTPClient(retry=FAST) as http:
        remote = RemoteEnv(f"http://127.0.0.1:{_free_port()}", "faulty", token=TOKEN, client=http)
        async with gymbus.Runtime(gymbus.OracleModel()) as rt:
            [rollout] = await rt.run(remote_episode_jobs(remote, [0]))
    assert rollout.status == "failed"
    assert rollout.failure is not None
    assert rollout.failure.kind == "bad_task"
    assert "after 2 attempt(s)" in rollout.failure.message
    assert TOKEN not in rollout.model_dump_json()


async def test_a_server_gone_mid_episode_fails_each_step_with_its_kind() -> None:
    async with HTTPClient(retry=FAST) as http:
        async with serve(ServerConfig(envs=ENVS, tokens=(TOKEN,))) as url:
            remote = RemoteEnv(url, "faulty", token=TOKEN, client=http)
            specs = [await remote.start(seed) for seed in range(3)]
        spec = specs[0]
        conversation = Transcript(spec.messages)
        with pytest.raises(ToolError, match="remote tool 'lookup'"):
            await spec.tools["lookup"]({"key": "a"})
        assert spec.user is not None
        with pytest.raises(UserSimulatorError, match="remote simulated user"):
            await spec.user.reply(conversation)
        assert isinstance(spec.solver, AsyncSolver)
        with pytest.raises(ModelError, match="remote reference solver"):
            await spec.solver.next_message_async(conversation)
        completed = CompletedEpisode("e", spec.task, conversation, "done")
        with pytest.raises(VerifierError, match="remote verifier"):
            await spec.verifier.verify(completed)

        call = AssistantMessage(tool_calls=(ToolCall(id="c1", name="lookup", arguments="{}"),))
        jobs = [
            EpisodeJob(env="faulty", seed=1, build=lambda: specs[1]),
            EpisodeJob(env="faulty", seed=2, build=lambda: specs[2]),
        ]
        async with gymbus.Runtime(gymbus.OracleModel()) as rt:
            [by_oracle] = await rt.run(jobs[:1])
        async with gymbus.Runtime(gymbus.ScriptedModel([call])) as rt:
            [by_tool] = await rt.run(jobs[1:])
    assert by_oracle.failure is not None
    assert by_oracle.failure.kind == "model"
    assert by_tool.failure is not None
    assert by_tool.failure.kind == "tool"


async def test_describe_checks_the_server_serves_the_environment(served: str) -> None:
    async with RemoteEnv(served, "travel-clarify", token=TOKEN) as remote:
        info = await remote.describe()
    assert info.name == "travel-clarify"
    assert info.metadata["core_capabilities"] == ["proactive-asking"]
    with pytest.raises(UnknownEnvironmentError, match="retail-orders"):
        async with RemoteEnv(served, "no-such-env", token=TOKEN) as remote:
            await remote.describe()
    wrong = "wrong-token-" + TOKEN[::-1]
    with pytest.raises(ConfigError, match="HTTP 401") as caught:
        async with RemoteEnv(served, "faulty", token=wrong) as remote:
            await remote.describe()
    assert TOKEN not in str(caught.value)
    assert wrong not in str(caught.value)


async def test_the_remote_solver_needs_its_async_method(served: str) -> None:
    async with RemoteEnv(served, "faulty", token=TOKEN) as remote:
        spec = await remote.start(0)
        assert spec.solver is not None
        with pytest.raises(ModelError, match="next_message_async"):
            spec.solver.next_message(Transcript(spec.messages))
        assert isinstance(spec.state, RemoteEpisode)  # the state stays on the server
        assert spec.state.episode_id
        local = FaultyEnv().episode(FaultyEnv().task(0))
        assert isinstance(local, EpisodeSpec)
        assert spec.tools.specs == local.tools.specs


async def test_the_server_cleans_up_every_episode_it_drops() -> None:
    """Scored (dropped once verified), failed (dropped by the client's cleanup) and left
    behind (dropped when the server stops): each server-side spec's cleanup runs once;
    stopping the server closes the environments it made (one per set of options)."""
    FaultyEnv.cleanups = FaultyEnv.closed = 0
    async with serve(ServerConfig(envs=ENVS, tokens=(TOKEN,))) as url:
        scored = await play_remote(url, "faulty", range(3))
        failed = await play_remote(url, "faulty", range(2), options={"fault": "crash"})
        async with RemoteEnv(url, "faulty", token=TOKEN) as remote:
            await remote.start(0)
    assert [r.reward for r in scored] == [1.0] * 3
    assert {r.failure.kind for r in failed if r.failure} == {"tool"}
    assert FaultyEnv.cleanups == 6
    assert FaultyEnv.closed == 2


def test_remote_jobs_have_the_ids_of_local_jobs() -> None:
    remote = RemoteEnv("http://127.0.0.1:1", "retail-orders", token=TOKEN)
    local = gymbus.episode_jobs(gymbus.envs.load("retail-orders"), range(3), samples=2)
    ids = [(j.env, j.seed, j.sample, j.episode_id, j.group_id, j.group_size) for j in local]
    assert [
        (j.env, j.seed, j.sample, j.episode_id, j.group_id, j.group_size)
        for j in remote_episode_jobs(remote, range(3), samples=2)
    ] == ids
    assert TOKEN not in repr(remote)
