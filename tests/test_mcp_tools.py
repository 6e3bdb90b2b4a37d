"""MCP servers' tools as environment tools (envs/mcp_tools.py), against real MCP servers
(tests/mcp_servers.py) over stdio and streamable HTTP: listing, routing, bound arguments,
the error mapping, concurrency, scopes, process hygiene and secrets; then episodes played
by the runtime with a crashing server and one that cannot start."""

from __future__ import annotations

import asyncio
import functools
import logging
import select
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import orjson
import pytest
from structlog.testing import capture_logs

from gymbus.adapters import OracleModel
from gymbus.collection import episode_jobs
from gymbus.envs.base import Environment
from gymbus.envs.mcp_tools import MCPConnection, MCPServerParams, MCPToolset
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolArgumentsError, ToolError, ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import AssistantMessage, ImagePart, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

pytestmark = pytest.mark.anyio

SERVERS = str(Path(__file__).with_name("mcp_servers.py"))
CANARY = "canary-7f3e9a1c5b"


def stdio(mode: str = "tools", **options: Any) -> MCPServerParams:
    return MCPServerParams(name="test", command=(sys.executable, SERVERS, mode), **options)


@dataclass(frozen=True)
class HTTPServer:
    url: str
    process: subprocess.Popen[str]


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    """The tools server over streamable HTTP in a subprocess (its URL is its first line)."""
    process = subprocess.Popen(
        [sys.executable, SERVERS, "tools", "--http"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the HTTP MCP server did not print its URL within 30 s"
        yield HTTPServer(process.stdout.readline().strip(), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # e.g. a test made it ignore SIGTERM
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    before = _other_tasks()
    yield
    assert _other_tasks() <= before


def _other_tasks() -> set[asyncio.Task[Any]]:
    """Live tasks but this one and the test runner's (the connections' owners, …)."""
    current = asyncio.current_task()
    return {
        t
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and "TestRunner" not in repr(t.get_coro())
    }


@asynccontextmanager
async def connected(params: MCPServerParams) -> AsyncIterator[MCPConnection]:
    connection = await MCPConnection(params).open()
    try:
        yield connection
    finally:
        await connection.aclose()


def gone(pid: int | None) -> bool:
    """The process no longer exists (exited and reaped: no zombie left either)."""
    assert pid is not None
    return not Path(f"/proc/{pid}").exists()


async def server_stats(connection: MCPConnection) -> dict[str, Any]:
    stats: dict[str, Any] = orjson.loads(str(await connection.call("stats", {})))
    return stats


# -- listing and calling ------------------------------------------------------------------------
async def test_tools_are_listed_with_their_json_schemas() -> None:
    with capture_logs() as logs:
        async with connected(stdio()) as connection:
            specs = {spec.name: spec for spec in connection.tool_specs}
    assert {"echo", "add", "image", "slow", "put", "get", "stats"} <= set(specs)
    add = specs["add"]
    assert add.description == "Add two integers."
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert sorted(add.parameters["required"]) == ["a", "b"]
    assert "dotted.name" not in specs  # not a valid tool name for models: skipped, said so
    [skipped] = [e for e in logs if e["event"] == "mcp.tool_skipped"]
    assert skipped["tool"] == "dotted.name"


async def test_calls_are_routed_and_results_become_text_or_media() -> None:
    async with connected(stdio()) as connection:
        tools = connection.toolbox(include=["add", "echo", "image"])
        assert [spec.name for spec in tools.specs] == ["add", "echo", "image"]
        assert await tools["add"]({"a": 2, "b": 40}) == "42"
        assert await tools["echo"]({"text": "héllo"}) == "héllo"
        output = await tools["image"]({})
    assert isinstance(output, tuple)
    [part] = output
    assert isinstance(part, ImagePart)
    assert part.media is not None
    assert part.media.mime_type == "image/png"
    assert part.media in MediaStore.shared()


async def test_bind_hides_arguments_from_the_model_and_adds_them_to_calls() -> None:
    async with connected(stdio()) as connection:
        tools = connection.toolbox(include=["put", "get", "echo"], bind={"workspace": "w1"})
        put = tools["put"].spec.parameters
        assert "workspace" not in put["properties"]
        assert "workspace" not in put["required"]
        full = {spec.name: spec for spec in connection.tool_specs}["put"].parameters
        assert "workspace" in full["properties"]
        assert await tools["put"]({"key": "k", "value": "v1"}) == "ok"
        # a model that names the workspace itself is overridden: it cannot leave its own
        await tools["put"]({"key": "k", "value": "v2", "workspace": "w2"})
        assert await connection.call("get", {"workspace": "w1", "key": "k"}) == "v2"
        with pytest.raises(ToolInputError, match="no 'k' in 'w2'"):
            await connection.call("get", {"workspace": "w2", "key": "k"})
        assert await tools["echo"]({"text": "x"}) == "x"  # echo takes no workspace
        assert await connection.read_resource("state://w1") == "k=v2"


async def test_schema_violations_are_argument_errors_before_any_request() -> None:
    async with connected(stdio()) as connection:
        add = connection.toolbox()["add"]
        with pytest.raises(ToolArgumentsError, match="invalid arguments for 'add' at a"):
            await add({"a": "two", "b": 1})
        with pytest.raises(ToolArgumentsError, match="'b' is a required property"):
            await add({"a": 1})
        assert "add" not in (await server_stats(connection))["calls"]


async def test_tool_errors_and_json_rpc_errors_go_back_to_the_model() -> None:
    async with connected(stdio()) as connection:
        with pytest.raises(ToolInputError, match="the shelf is empty"):
            await connection.toolbox()["fail"]({"reason": "the shelf is empty"})
        with pytest.raises(ToolInputError, match="Unknown tool: nosuch"):
            await connection.call("nosuch", {})
        assert connection.alive
        with pytest.raises(ToolError, match="has no tool 'nosuch'; it has: echo, add"):
            connection.toolbox(include=["nosuch"])


# -- timeouts, hangs, crashes and failures to start ----------------------------------------------
async def test_a_slow_call_on_a_live_server_is_an_error_for_the_model() -> None:
    async with connected(stdio(call_timeout=0.3)) as connection:
        with pytest.raises(ToolInputError, match=r"a call to 'slow' timed out after 0.3 s"):
            await connection.call("slow", {"seconds": 10})
        assert connection.alive
        assert await connection.call("add", {"a": 1, "b": 1}) == "2"


async def test_a_hung_server_is_a_tool_failure_and_is_killed() -> None:
    async with connected(stdio(call_timeout=0.3)) as connection:
        pid = connection.pid
        with pytest.raises(ToolError, match=r"MCP server 'test' is not responding \(hung\)"):
            await connection.call("hang", {})
        assert not connection.alive
        with anyio.fail_after(1), pytest.raises(ToolError, match="not responding"):
            await connection.call("add", {"a": 1, "b": 1})  # fails at once from now on
        with anyio.fail_after(8):  # it ignores stdin's end and SIGTERM: SIGKILL after grace
            await connection.aclose()
    assert gone(pid)


async def test_a_crash_mid_call_is_a_tool_failure_with_the_exit_code() -> None:
    async with connected(stdio()) as connection:
        pid = connection.pid
        with pytest.raises(ToolError) as raised:
            await connection.call("crash", {})
        assert not connection.alive
    message = str(raised.value)
    assert message.startswith("MCP server 'test' exited (code 3) during a call to 'crash'")
    assert "exiting with code 3 on purpose" in message  # the end of its stderr
    assert gone(pid)


@pytest.mark.parametrize(
    ("command", "cause"),
    [
        (
            (sys.executable, SERVERS, "fail-start"),
            "exited (code 1) before it was ready; stderr: "
            "fail-start: missing configuration GYMBUS_TEST_CONFIG",
        ),
        (("/nonexistent/mcp-server",), "FileNotFoundError"),
    ],
)
async def test_a_server_that_fails_to_start_says_why(command: tuple[str, ...], cause: str) -> None:
    connection = MCPConnection(MCPServerParams(name="test", command=command))
    with pytest.raises(ToolError, match="could not start MCP server 'test'") as raised:
        await connection.open()
    assert cause in str(raised.value)
    assert connection.pid is None or gone(connection.pid)


async def test_a_server_that_never_gets_ready_times_out_and_is_killed() -> None:
    connection = MCPConnection(stdio("hang-start", connect_timeout=0.5))
    with anyio.fail_after(10), pytest.raises(ToolError, match=r"not become ready within 0\.5 s"):
        await connection.open()
    assert gone(connection.pid)


# -- concurrency, cancellation and scopes --------------------------------------------------------
async def test_max_concurrency_bounds_calls_in_flight() -> None:
    async with connected(stdio(max_concurrency=2)) as connection:
        slow = connection.toolbox()["slow"]
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(slow, {"seconds": 0.2})
        stats = await server_stats(connection)
    assert stats["calls"]["slow"] == 6
    assert stats["peak"] == 2


async def test_cancelling_the_task_using_a_connection_leaves_no_process() -> None:
    toolset = MCPToolset(stdio(), scope="episode")
    pids: list[int] = []
    calling = anyio.Event()

    async def episode() -> None:
        connection = await toolset.acquire()
        try:
            assert connection.pid is not None
            pids.append(connection.pid)
            calling.set()
            await connection.call("slow", {"seconds": 60})
        finally:
            await toolset.release(connection)  # shielded: the process is gone after it

    async with anyio.create_task_group() as tg:
        tg.start_soon(episode)
        with anyio.fail_after(20):
            await calling.wait()
        tg.cancel_scope.cancel()
    assert gone(pids[0])


async def test_cancelling_while_connecting_leaves_no_process() -> None:
    connection = MCPConnection(stdio())
    with anyio.move_on_after(0.05):
        await connection.open()
    assert connection.pid is None or gone(connection.pid)
    assert not connection.alive


async def test_shared_scope_opens_one_connection_for_every_acquire() -> None:
    toolset = MCPToolset(stdio(), scope="shared")
    got: list[MCPConnection] = []

    async def acquire() -> None:
        got.append(await toolset.acquire())

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(acquire)
    assert len({id(c) for c in got}) == 1
    counts = [await got[0].call("count", {}) for _ in range(3)]
    assert counts == ["1", "2", "3"]  # one connection's state
    await toolset.release(got[0])  # shared: nothing happens
    assert got[0].alive
    pid = got[0].pid
    await toolset.aclose()
    await toolset.aclose()  # idempotent
    assert gone(pid)


async def test_a_shared_connection_that_died_is_opened_again() -> None:
    toolset = MCPToolset(stdio(), scope="shared")
    first = await toolset.acquire()
    with pytest.raises(ToolError, match="exited"):
        await first.call("crash", {})
    second = await toolset.acquire()
    assert second is not first
    assert await second.call("add", {"a": 1, "b": 2}) == "3"
    await toolset.aclose()
    assert gone(first.pid)
    assert gone(second.pid)


async def test_episode_scope_opens_a_connection_per_acquire() -> None:
    toolset = MCPToolset(stdio(), scope="episode")
    connections = [await toolset.acquire() for _ in range(3)]
    assert len({c.pid for c in connections}) == 3
    assert [await c.call("count", {}) for c in connections] == ["1", "1", "1"]
    for connection in connections:
        await toolset.release(connection)
    assert all(gone(c.pid) for c in connections)


# -- streamable HTTP and secrets -----------------------------------------------------------------
async def test_streamable_http_with_per_connection_sessions(http_server: HTTPServer) -> None:
    params = MCPServerParams(
        name="remote", url=http_server.url, headers={"Authorization": f"Bearer {CANARY}"}
    )
    async with connected(params) as first, connected(params) as second:
        assert "add" in {spec.name for spec in first.tool_specs}
        assert await first.toolbox()["add"]({"a": 20, "b": 22}) == "42"
        assert await first.call("authorized", {}) == "true"  # the header was sent
        assert [await first.call("count", {}) for _ in range(2)] == ["1", "2"]
        assert await second.call("count", {}) == "1"  # its own session


async def test_a_hung_http_server_is_a_tool_failure(http_server: HTTPServer) -> None:
    params = MCPServerParams(name="remote", url=http_server.url, call_timeout=0.3)
    connection = await MCPConnection(params).open()
    with pytest.raises(
        ToolError, match=r"MCP server 'remote' \(http://127\.0\.0\.1:\d+/mcp\) is not"
    ):
        await connection.call("hang", {})
    with anyio.fail_after(3):  # no goodbye to a hung server: the session's DELETE is skipped
        await connection.aclose()


async def test_header_values_never_reach_errors_reprs_or_logs(
    http_server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {CANARY}"}
    params = MCPServerParams(name="remote", url=http_server.url, headers=headers, call_timeout=0.3)
    errors: list[str] = [repr(params), str(params)]
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        try:
            MCPServerParams(name="x", url="http://127.0.0.1:1/mcp", command=("x",), headers=headers)
        except ValueError as exc:
            errors.append(str(exc))
        async with connected(params) as connection:
            for call in (
                {"name": "slow", "arguments": {"seconds": 5}},
                {"name": "nosuch", "arguments": {}},
                {"name": "crash", "arguments": {}},
                {"name": "add", "arguments": {"a": 1, "b": 1}},
            ):
                try:
                    await connection.call(call["name"], call["arguments"])  # type: ignore[arg-type]
                except (ToolError, ToolInputError) as exc:
                    errors.append(str(exc))
        http_server.process.wait(timeout=10)
        try:
            await MCPConnection(params).open()
        except ToolError as exc:
            errors.append(str(exc))
    assert len(errors) == 8, errors
    assert "closed the connection during a call to 'crash'" in errors[5]
    assert "could not connect to MCP server 'remote' (http://127.0.0.1:" in errors[7]
    everything = "\n".join([*errors, repr(logs), caplog.text])
    assert CANARY not in everything


# -- episodes through the runtime ----------------------------------------------------------------
Play = Literal["store", "crash every 3rd", "sleep"]


class Keeper:
    """The reference solver: store the task's value with ``put`` and answer with the
    result — or crash the server (seeds divisible by 3), or sleep in ``slow`` for a minute."""

    def __init__(self, task: Task, play: Play) -> None:
        self._task = task
        self._play = play

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        if isinstance(conversation.last, ToolMessage):
            return AssistantMessage(content=conversation.last.text)
        name, arguments = "put", {"key": "item", "value": self._task.data["value"]}
        if self._play == "crash every 3rd" and self._task.seed % 3 == 0:
            name, arguments = "crash", {}
        if self._play == "sleep":
            name, arguments = "slow", {"seconds": 60}
        call = ToolCall(id="c", name=name, arguments=orjson.dumps(arguments).decode())
        return AssistantMessage(tool_calls=(call,))


class StoredValue:
    """State check: the server's store for the episode's workspace holds the value."""

    async def verify(self, episode: CompletedEpisode) -> Score:
        connection, workspace = episode.state
        state = await connection.read_resource(f"state://{workspace}")
        expected = f"item={episode.task.data['value']}"
        return Score(reward=float(state == expected), evidence={"state": state})


class KeeperEnv(Environment):
    """Episodes on an MCP server: one connection per episode or a shared one."""

    name = "mcp-keeper"

    def __init__(
        self, params: MCPServerParams, scope: Literal["shared", "episode"], play: Play = "store"
    ) -> None:
        super().__init__()
        self.toolset = MCPToolset(params, scope=scope)
        self.play = play
        self.pids: list[int] = []
        self.built: dict[int, anyio.Event] = {}  # set when that many episodes have built

    def task(self, seed: int) -> Task:
        return self.make_task(seed, {"value": f"v{seed}"})

    async def episode(self, task: Task) -> EpisodeSpec:
        connection = await self.toolset.acquire()
        if connection.pid is not None:
            self.pids.append(connection.pid)
        self.built.setdefault(len(self.pids), anyio.Event()).set()
        workspace = task.task_id.replace("/", "-")  # a URI path segment
        return EpisodeSpec(
            task=task,
            messages=(UserMessage(content="store the value", author="environment"),),
            verifier=StoredValue(),
            tools=connection.toolbox(
                include=["put", "crash", "slow"], bind={"workspace": workspace}
            ),
            limits=Limits(tool_timeout=120),
            solver=Keeper(task, self.play),
            state=(connection, workspace),
            cleanup=functools.partial(self.toolset.release, connection),
        )

    async def aclose(self) -> None:
        await self.toolset.aclose()


async def test_episodes_whose_server_crashes_fail_with_kind_tool_the_others_score() -> None:
    async with (
        KeeperEnv(stdio(), scope="episode", play="crash every 3rd") as env,
        Runtime(OracleModel(), concurrency=6) as rt,
    ):
        rollouts = {r.seed: r for r in await rt.run(episode_jobs(env, range(9)))}
    for seed, rollout in rollouts.items():
        if seed % 3 == 0:
            assert rollout.failure is not None, seed
            assert rollout.failure.kind == "tool"
            assert "exited (code 3) during a call to 'crash'" in rollout.failure.message
        else:
            assert rollout.reward == 1.0, rollout.failure
    assert len(env.pids) == 9
    assert all(gone(pid) for pid in env.pids)  # every episode's cleanup closed its server


async def test_cancelled_episodes_leave_no_server_process() -> None:
    env = KeeperEnv(stdio(), scope="episode", play="sleep")
    async with env, Runtime(OracleModel(), concurrency=4) as rt, anyio.create_task_group() as tg:
        tg.start_soon(rt.run, episode_jobs(env, range(4)))
        with anyio.fail_after(30):  # every episode has built (its server is up)
            await env.built.setdefault(4, anyio.Event()).wait()
        tg.cancel_scope.cancel()
    assert len(env.pids) == 4
    assert all(gone(pid) for pid in env.pids)


async def test_an_episode_whose_server_cannot_start_fails_with_kind_tool() -> None:
    async with KeeperEnv(stdio("fail-start"), scope="episode") as env, Runtime(OracleModel()) as rt:
        [rollout] = await rt.run(episode_jobs(env, range(1)))
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"
    assert rollout.failure.message.startswith(
        "could not build the episode: could not start MCP server 'test': exited (code 1)"
    )


async def test_a_shared_http_connection_serves_many_episodes(http_server: HTTPServer) -> None:
    env = KeeperEnv(MCPServerParams(name="remote", url=http_server.url), scope="shared")
    async with env, Runtime(OracleModel(), concurrency=16) as rt:
        rollouts = await rt.run(episode_jobs(env, range(24)))
        connection = await env.toolset.acquire()
    assert [r.reward for r in rollouts] == [1.0] * 24
    assert not connection.alive  # closed with the environment
