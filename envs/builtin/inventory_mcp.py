"""``inventory-mcp``: carry out warehouse jobs through the tools of an MCP server (the one
shipped in :mod:`.inventory_mcp_server`), where each job depends on what the lookups say
(capabilities: information dependency, multiple-intent synthesis).

"1. Top up Shop floor to 40 units of "cordless drill" on hand, taking the extra units from
Back room. 2. Reserve 6 units of "cordless drill" at Shop floor for order SO-48213." needs
``list_locations`` (location ids), ``find_item`` (the sku; the search also returns look-alikes
such as "cordless drill battery"), ``get_stock`` (how many to move for the top-up), then
``move_stock`` and ``reserve_stock``. Difficulty: easy is one move; medium a top-up and a
reservation; hard adds a move of a second item and asks how many units of one item are
available (on hand minus reserved) afterwards, where other orders' reservations make that
differ from the units on hand.

The server holds one workspace per episode, created from the task when the episode starts;
the model's tools are the server's own (schemas and errors as the server gives them) with
the ``workspace`` argument bound and hidden. Options: ``mcp_url=`` uses a running
streamable-HTTP server, one connection shared by every episode (each episode's workspace
is dropped when it ends); without it the environment spawns the server over stdio
(``python -m gymbus.envs.builtin.inventory_mcp_server``) once and shares it the same way,
or, with ``server_per_episode=True``, every episode spawns its own server and stops it
afterwards (scope ``episode``: full isolation, but spawning costs ~0.7 s of CPU per
server). Sharing is the default because the server keys all state on the workspace, so
episodes cannot see each other's state either way.

Verifier (state check, :mod:`.inventory_checks`): the workspace's final state, read from
the server, must be exactly the expected one, and a question must be answered right.
Null check: the null model calls no tools, so no job is done: every job check fails and it
scores 0.0.
"""

from __future__ import annotations

import sys
import uuid
from contextlib import suppress
from typing import Any

import orjson

from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.builtin.inventory_checks import InventoryVerifier
from gymbus.envs.builtin.inventory_solver import InventorySolver
from gymbus.envs.builtin.inventory_store import ADMIN_TOOLS
from gymbus.envs.builtin.inventory_tasks import InventoryTask, generate
from gymbus.envs.mcp_tools import MCPConnection, MCPServerParams, MCPToolset
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import PolicyError, ToolError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import SystemMessage, UserMessage, content_text
from gymbus.runtime.tasks import Task

__all__ = ["SERVER_MODULE", "InventoryMCP"]

SERVER_MODULE = "gymbus.envs.builtin.inventory_mcp_server"

_SYSTEM_PROMPT = (
    "You are a warehouse operations assistant with access to the inventory system through "
    "the tools. Requests name items and locations as people say them: look skus up with "
    "find_item and location ids with list_locations, and check stock with get_stock before "
    "acting on it. Do exactly the jobs asked, in order; every change is recorded."
)


class InventoryMCP(Environment):
    name = "inventory-mcp"
    description = (
        "Carry out warehouse jobs (move stock, top a location up, reserve for an order, then "
        "say what is left) with the tools of a stateful inventory MCP server shipped in the "
        "repository, spawned over stdio per episode or shared over streamable HTTP. Reward: "
        "the server's final state is exactly as expected and the question is answered right."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-step",),
        core_capabilities=("information-dependency", "multiple-intent-synthesis"),
        knowledge_domain="logistics",
        task_type="inventory-operations",
        verification_method="state-check",
    )

    def __init__(
        self,
        *,
        difficulty: Difficulty = "medium",
        mcp_url: str | None = None,
        server_per_episode: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(difficulty=difficulty, **options)
        self.mcp_url = mcp_url
        # inventory calls are instant: a slow one means trouble, found well inside the
        # runtime's tool_timeout (30 s) so that it is told apart (slow → the model's error
        # message; hung → kind `tool`)
        if mcp_url is not None:
            params = MCPServerParams(
                name="inventory", url=mcp_url, call_timeout=10.0, max_concurrency=64
            )
        else:
            command = (sys.executable, "-m", SERVER_MODULE)
            params = MCPServerParams(name="inventory", command=command, call_timeout=10.0)
        # a shared server holds every episode's workspace: each is dropped when its episode ends
        self.shared = mcp_url is not None or not server_per_episode
        self.toolset = MCPToolset(params, scope="shared" if self.shared else "episode")

    def task(self, seed: int) -> Task:
        return self.make_task(seed, generate(seed, self.difficulty))

    async def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, InventoryTask)
        # episode state, not task data: a fresh workspace even when a task is replayed
        workspace = f"{task.task_id}#{uuid.uuid4().hex}"
        connection = await self.toolset.acquire()
        try:
            await self._create_workspace(connection, workspace, data)
        except BaseException:
            with suppress(Exception):  # the first error is the one to report
                await self._release(connection, workspace)
            raise

        async def read_state() -> dict[str, Any]:
            output = await connection.call("inventory_state", {"workspace": workspace})
            state: dict[str, Any] = orjson.loads(content_text(output))
            return state

        async def cleanup() -> None:
            await self._release(connection, workspace)

        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT),
                UserMessage(content=data.request, author="environment"),
            ),
            tools=connection.toolbox(exclude=ADMIN_TOOLS, bind={"workspace": workspace}),
            verifier=InventoryVerifier(data, read_state),
            solver=InventorySolver(),
            limits=Limits(max_turns=16),
            metadata=self.metadata.model_dump(mode="json"),
            state=workspace,
            cleanup=cleanup,
        )

    async def aclose(self) -> None:
        await self.toolset.aclose()

    async def _create_workspace(
        self, connection: MCPConnection, workspace: str, data: InventoryTask
    ) -> None:
        seed = {
            "workspace": workspace,
            "locations": [loc.model_dump() for loc in data.locations],
            "items": [item.model_dump() for item in data.items],
            "reservations": [r.model_dump() for r in data.reservations],
        }
        try:
            await connection.call("create_workspace", seed)
        except PolicyError as exc:  # the server refused (full, say): not the model's doing
            raise ToolError(f"MCP server 'inventory' could not create a workspace: {exc}") from exc

    async def _release(self, connection: MCPConnection, workspace: str) -> None:
        """Drop the workspace from a shared server, then give the connection back."""
        try:
            if self.shared:
                await connection.call("drop_workspace", {"workspace": workspace})
        finally:
            await self.toolset.release(connection)
