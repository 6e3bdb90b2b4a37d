"""``inventory-mcp`` on the real MCP server — spawned over stdio per episode, or one shared
streamable-HTTP server for hundreds of concurrent episodes — including bad arguments, a full
server and a server killed mid-run (the pure parts: tests/envs/test_inventory_tasks.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import orjson
import pytest

from gymbus.adapters import FunctionModel, NullModel, OracleModel
from gymbus.collection import episode_jobs, run
from gymbus.envs.builtin.inventory_mcp import InventoryMCP
from gymbus.envs.builtin.inventory_store import MODEL_TOOLS
from gymbus.envs.builtin.inventory_tasks import DIFFICULTIES, InventoryTask, MoveStep
from gymbus.envs.mcp_tools import MCPConnection, MCPServerParams
from gymbus.runtime.errors import ConfigError, ToolError
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.runtime import Runtime
from tests.envs.inventory_server import inventory_http_server, server_processes


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown options: colour"):
        InventoryMCP(colour="red")
    assert InventoryMCP().toolset.scope == "shared"
    assert InventoryMCP(server_per_episode=True).toolset.scope == "episode"
    assert InventoryMCP(mcp_url="http://127.0.0.1:1/mcp").toolset.scope == "shared"


def gymbus_test(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gymbus", "test", *arguments]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240, env=env)


def test_gymbus_test_spawns_the_real_server_over_stdio(tmp_path: Path) -> None:
    result = gymbus_test("inventory-mcp", "--seeds", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for difficulty in DIFFICULTIES:
        assert f"{difficulty}: oracle scores 1" in result.stdout
        assert f"{difficulty}: null scores 0" in result.stdout
    assert "FAIL" not in result.stdout.upper()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("difficulty", "per_episode"), [(d, False) for d in DIFFICULTIES] + [("hard", True)]
)
async def test_oracle_scores_one_and_null_zero_over_stdio(
    difficulty: str, per_episode: bool
) -> None:
    env = InventoryMCP(difficulty=difficulty, server_per_episode=per_episode)  # type: ignore[arg-type]
    async with env:
        oracle = await run(env, OracleModel(), n=3)
        null = await run(env, NullModel(), n=3)
    assert [(r.status, r.reward) for r in oracle] == [("scored", 1.0)] * 3, oracle[0].failure
    assert [(r.status, r.reward) for r in null] == [("scored", 0.0)] * 3
    assert all(r.scores["state_exact"] == 0.0 for r in null)
    assert server_processes() == []


@pytest.mark.anyio
async def test_the_model_sees_the_servers_tools_without_the_workspace() -> None:
    async with InventoryMCP(difficulty="easy") as env:
        spec = await env.episode(env.task(0))
        try:
            assert sorted(spec.tools) == sorted(MODEL_TOOLS)
            for tool_spec in spec.tools.specs:
                assert "workspace" not in tool_spec.parameters["properties"]
                assert "workspace" not in tool_spec.parameters.get("required", [])
            move = spec.tools["move_stock"].spec.parameters["properties"]["quantity"]
            assert move["type"] == "integer"
            assert move["minimum"] == 1
            # a model naming another workspace still acts on its own (bound values win)
            item = InventoryTask.model_validate(spec.task.data).items[0]
            found = await spec.tools["find_item"]({"query": item.name, "workspace": "other"})
            assert isinstance(found, str)
            assert item.sku in found
        finally:
            assert spec.cleanup is not None
            await spec.cleanup()
    assert server_processes() == []


def with_bad_calls_first(request: ModelRequest) -> AssistantMessage:
    """Two schema-violating calls on the first turn, then the reference solver."""
    if sum(isinstance(m, AssistantMessage) for m in request.conversation) == 0:
        bad = {"from_location": "LOC-1", "to_location": "LOC-2"}
        return AssistantMessage(
            tool_calls=(
                ToolCall(
                    id="bad_1",
                    name="move_stock",
                    arguments=orjson.dumps({**bad, "sku": "SKU-1", "quantity": "many"}).decode(),
                ),
                ToolCall(id="bad_2", name="move_stock", arguments=orjson.dumps(bad).decode()),
            )
        )
    assert request.episode.solver is not None
    return request.episode.solver.next_message(request.conversation)


@pytest.mark.anyio
async def test_schema_violations_are_error_messages_the_model_sees(tmp_path: Path) -> None:
    with inventory_http_server(tmp_path / "server.log") as server:
        async with InventoryMCP(difficulty="medium", mcp_url=server.url) as env:
            (rollout,) = await run(env, FunctionModel(with_bad_calls_first), n=1)
    assert rollout.status == "scored", rollout.failure
    assert rollout.reward == 1.0
    errors = {m.tool_call_id: m.text for m in rollout.messages if isinstance(m, ToolMessage)}
    assert errors["bad_1"].startswith("error: invalid arguments for 'move_stock' at quantity")
    assert "'many' is not of type 'integer'" in errors["bad_1"]
    assert "'sku' is a required property" in errors["bad_2"]
    assert all(
        m.is_error == m.tool_call_id.startswith("bad_")
        for m in rollout.messages
        if isinstance(m, ToolMessage)
    )


def wrong_quantity(request: ModelRequest) -> AssistantMessage:
    """The reference solver, but its move is one unit short; then it says it is done."""
    if any(isinstance(m, ToolMessage) and m.name == "move_stock" for m in request.conversation):
        return AssistantMessage(content="Done.")
    assert request.episode.solver is not None
    message = request.episode.solver.next_message(request.conversation)
    calls = []
    for call in message.tool_calls:
        arguments = call.parsed_arguments()
        if call.name == "move_stock":
            arguments["quantity"] -= 1
        calls.append(call.model_copy(update={"arguments": orjson.dumps(arguments).decode()}))
    return message.model_copy(update={"tool_calls": tuple(calls)})


@pytest.mark.anyio
async def test_a_wrong_action_scores_below_one_with_evidence_over_stdio() -> None:
    async with InventoryMCP(difficulty="easy") as env:
        (rollout,) = await run(env, FunctionModel(wrong_quantity), n=1)
    data = InventoryTask.model_validate(env.task(0).data)
    (step,) = data.steps
    assert isinstance(step, MoveStep)
    assert rollout.status == "scored"
    assert rollout.reward is not None
    assert rollout.reward < 1
    assert rollout.scores["job_1"] == 0.0
    differences = rollout.evidence["state_exact"]["stock_differences"]
    assert {(d["sku"], d["location"], d["got"] - d["expected"]) for d in differences} == {
        (step.sku, step.source, 1),
        (step.sku, step.target, -1),
    }
    (operation,) = rollout.evidence["state_exact"]["operations"]
    assert operation["quantity"] == step.quantity - 1


@pytest.mark.anyio
async def test_a_full_server_fails_the_episode_with_kind_tool(tmp_path: Path) -> None:
    with inventory_http_server(tmp_path / "server.log", "--max-workspaces", "1") as server:
        async with InventoryMCP(mcp_url=server.url) as env:
            first = await env.episode(env.task(0))
            with pytest.raises(ToolError, match=r"could not create a workspace: .*its limit"):
                await env.episode(env.task(1))
            assert first.cleanup is not None
            await first.cleanup()  # drops the workspace: there is room again
            again = await env.episode(env.task(1))
            assert again.cleanup is not None
            await again.cleanup()


async def server_stats(url: str) -> dict[str, int]:
    connection = await MCPConnection(MCPServerParams(name="inventory", url=url)).open()
    try:
        stats: dict[str, int] = orjson.loads(str(await connection.call("server_stats", {})))
    finally:
        await connection.aclose()
    return stats


@pytest.mark.anyio
async def test_200_concurrent_episodes_over_one_shared_http_server(tmp_path: Path) -> None:
    """The acceptance test: one streamable-HTTP server, 200 episodes in flight at once
    (each holds at its first turn until all 200 have their workspace)."""
    n = 200
    with inventory_http_server(tmp_path / "server.log") as server:
        started = time.perf_counter()
        async with (
            InventoryMCP(difficulty="hard", mcp_url=server.url) as env,
            Runtime(FunctionModel(Gate(n, 0), name="oracle"), concurrency=n) as runtime,
        ):
            rollouts = await runtime.run(episode_jobs(env, range(n)))
        elapsed = time.perf_counter() - started
        stats = await server_stats(server.url)
        assert server.process.poll() is None
    print(f"\n{n} concurrent inventory-mcp episodes over one HTTP server: {elapsed:.1f} s")
    failed = [r.failure for r in rollouts if r.status != "scored"]
    assert not failed, failed[:3]
    assert [r.reward for r in rollouts] == [1.0] * n
    assert len({r.episode_id for r in rollouts}) == n
    assert stats == {"workspaces": 0, "created": n, "dropped": n, "peak": n}


class Gate:
    """A model that plays the reference solver, but holds every episode at turn ``turn``
    until all ``n`` episodes are there, then calls ``when_full`` once and lets them go on:
    proof that they are all in flight at once (no sleeps)."""

    def __init__(self, n: int, turn: int, when_full: Callable[[], object] = lambda: None) -> None:
        self.n = n
        self.turn = turn
        self.when_full = when_full
        self.waiting = 0
        self.full = anyio.Event()

    async def __call__(self, request: ModelRequest) -> AssistantMessage:
        if sum(isinstance(m, AssistantMessage) for m in request.conversation) == self.turn:
            self.waiting += 1
            if self.waiting == self.n:
                self.when_full()
                self.full.set()
            with anyio.fail_after(60):
                await self.full.wait()
        assert request.episode.solver is not None
        return request.episode.solver.next_message(request.conversation)


def assert_killed(rollouts: list[Rollout], n: int) -> None:
    assert len(rollouts) == n
    for rollout in rollouts:
        assert rollout.status == "failed", rollout.evidence
        assert rollout.failure is not None
        assert rollout.failure.kind == "tool"
        assert "MCP server 'inventory'" in rollout.failure.message


@pytest.mark.anyio
async def test_a_shared_server_killed_mid_run_fails_its_episodes_with_kind_tool(
    tmp_path: Path,
) -> None:
    n = 8
    with inventory_http_server(tmp_path / "server.log") as server:

        def kill() -> None:
            server.process.kill()
            server.process.wait(timeout=10)

        gate = Gate(n, 2, kill)
        async with InventoryMCP(difficulty="hard", mcp_url=server.url) as env:
            rollouts = await run(env, FunctionModel(gate), n=n, concurrency=n)
            # later episodes cannot reach it either: they fail the same way
            (late,) = await run(env, OracleModel(), n=1, seed=n)
    assert_killed(rollouts, n)
    assert late.failure is not None
    assert late.failure.kind == "tool"
    assert "could not connect to MCP server 'inventory'" in late.failure.message


@pytest.mark.anyio
async def test_episode_servers_killed_mid_run_fail_with_kind_tool_and_leave_no_process() -> None:
    n = 4
    killed: list[int] = []

    def kill_all() -> None:
        killed.extend(server_processes())
        for pid in killed:
            os.kill(pid, signal.SIGKILL)

    async with InventoryMCP(difficulty="medium", server_per_episode=True) as env:
        rollouts = await run(env, FunctionModel(Gate(n, 2, kill_all)), n=n, concurrency=n)
    assert len(killed) == n  # one server per episode, all alive at the gate
    assert_killed(rollouts, n)
    assert all("killed by signal 9" in r.failure.message for r in rollouts if r.failure)
    assert server_processes() == []
