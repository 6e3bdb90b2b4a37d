"""Tools from MCP servers as environment tools, with the runtime's error handling.

An :class:`MCPToolset` gives an environment access to one MCP server (over stdio — a
child process — or streamable HTTP), scoped ``"shared"`` (one connection for every
episode) or ``"episode"`` (a fresh connection per episode, for servers that keep state per
connection). An :class:`MCPConnection` lists the server's tools once and hands out
:class:`~gymbus.runtime.tools.Toolbox` es of :class:`MCPTool`::

    toolset = MCPToolset(MCPServerParams(name="notes", command=(sys.executable, "-m", "notes")),
                         scope="episode")

    async def episode(self, task):
        connection = await toolset.acquire()
        return EpisodeSpec(..., tools=connection.toolbox(bind={"workspace": task.task_id}),
                           cleanup=functools.partial(toolset.release, connection))

What the model's calls become:

- arguments that violate the tool's input schema → :class:`ToolArgumentsError` before any
  request (an error tool message, as for a ``FunctionTool``);
- a result flagged ``isError``, or a JSON-RPC error (unknown tool, invalid params) →
  :class:`ToolInputError` (an error tool message);
- a call longer than ``call_timeout`` → the server is pinged: if it answers, an error tool
  message ("… timed out after N s"); if not, :class:`ToolError` ("… is not responding
  (hung)"), which fails the episode with kind ``tool`` and marks the connection broken;
- the server process exited or the connection closed → :class:`ToolError` with the exit
  code and the end of the server's stderr.

Design: the ``mcp.Client`` context (task groups inside) is entered and exited by one
asyncio task the connection owns, so that :meth:`MCPConnection.open` and
:meth:`MCPConnection.aclose` may be called from any task (an episode's build, its cleanup,
the environment's ``aclose``); calls are made from the callers' tasks. The client uses
``mode="legacy"`` (the initialize handshake): every server in use speaks it, it keeps one
session per connection (``Mcp-Session-Id`` over HTTP — per-connection state), and it has
``ping``, which tells a slow tool from a hung server (the 2026 stateless protocol has
neither). Response caching is off: a verifier reading a resource must see current state.
Over stdio the client runs on :class:`~gymbus.envs.mcp_stdio.StdioServer` rather than the
SDK's ``stdio_client``, which hides its process: errors need the exit code and stderr, and
the process group is killed so nothing the server started outlives it (the shutdown
sequence is the SDK's). The ``mcp`` package is imported when a connection opens, not with
this module (it takes ~0.4 s). asyncio only (the owner is an asyncio task).

Beyond the shared contract (issue 12): ``env`` is added to the SDK's safe default
environment (PATH, HOME, …), not to this process's (whose secrets a server need not see);
``bind`` reaches only the tools whose schema lists the argument; ``toolbox(include=...)``
naming a tool the server lacks raises :class:`ToolError`; :attr:`MCPConnection.alive` and
:attr:`MCPConnection.pid` are public; :meth:`MCPToolset.acquire` after
:meth:`MCPToolset.aclose` raises :class:`ToolError`.

Header values (``headers``, e.g. a bearer token) and the server's ``env`` are never
logged, shown in a repr or put in an error message; URLs appear without query or
credentials (put credentials in ``headers``: the SDK's debug log shows the URL).
``Limits.tool_timeout`` should exceed ``call_timeout`` plus the ping (at most 5 s) plus
2 s, or the runtime's own deadline fails a slow call first (kind ``tool`` either way).
"""

from __future__ import annotations

from typing import Literal, Self
from urllib.parse import urlsplit

import anyio
from pydantic import ConfigDict, Field, model_validator

from gymbus.envs.mcp_connection import MCPConnection, MCPTool
from gymbus.runtime.errors import ToolError
from gymbus.runtime.messages import Frozen

__all__ = ["MCPConnection", "MCPServerParams", "MCPTool", "MCPToolset"]


class MCPServerParams(Frozen):
    """How to reach one MCP server: ``command`` (stdio: the server's argv) or ``url``
    (streamable HTTP, e.g. ``http://127.0.0.1:8000/mcp``) — exactly one."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1)
    """Shown in errors and logs."""
    command: tuple[str, ...] | None = None
    env: dict[str, str] | None = Field(default=None, repr=False)
    """stdio: variables added to the SDK's safe default set (PATH, HOME, …)."""
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    """HTTP headers (e.g. ``Authorization``): sent, never logged or shown."""
    connect_timeout: float = Field(default=20.0, gt=0)
    """Spawn/connect, initialize and list the tools."""
    call_timeout: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=16, ge=1)
    """Tool calls in flight on one connection."""

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give exactly one of command or url")
        if self.command is not None and not self.command:
            raise ValueError(f"MCP server {self.name!r}: command is empty")
        return self

    @property
    def where(self) -> str:
        if self.url is not None:
            return f"MCP server {self.name!r} ({_safe_url(self.url)})"
        return f"MCP server {self.name!r}"


class MCPToolset:
    """An environment's access to one MCP server, scoped per environment: ``"shared"`` —
    one connection (opened on first use, reopened if it broke) for every episode;
    ``"episode"`` — a fresh connection per :meth:`acquire`, closed by :meth:`release`."""

    def __init__(self, params: MCPServerParams, *, scope: Literal["shared", "episode"]) -> None:
        if scope not in ("shared", "episode"):
            raise ValueError(f"scope must be 'shared' or 'episode', got {scope!r}")
        self.params = params
        self.scope = scope
        self._shared: MCPConnection | None = None
        self._lock = anyio.Lock()
        self._attempts = 0  # opening attempts of the shared connection
        self._last_failure: ToolError | None = None
        self._closed = False

    async def acquire(self) -> MCPConnection:
        """An open connection; raises :class:`ToolError` if the server cannot be reached."""
        if self._closed:
            raise ToolError(f"the toolset of {self.params.where} is closed")
        if self.scope == "episode":
            return await MCPConnection(self.params).open()
        shared = self._shared
        if shared is not None and shared.alive:
            return shared
        attempts = self._attempts
        async with self._lock:
            shared = self._shared
            if shared is not None and shared.alive:
                return shared
            if self._attempts != attempts and self._last_failure is not None:
                raise ToolError(str(self._last_failure))  # it failed while we waited
            self._shared = None
            if shared is not None:
                await shared.aclose()
            self._attempts += 1
            try:
                opened = await MCPConnection(self.params).open()
            except ToolError as exc:
                self._last_failure = exc
                raise
            if self._closed:  # the environment closed while we connected
                await opened.aclose()
                raise ToolError(f"the toolset of {self.params.where} is closed")
            self._last_failure = None
            self._shared = opened
            return opened

    async def release(self, connection: MCPConnection) -> None:
        """The episode is over: close its connection (scope ``"episode"``)."""
        if self.scope == "episode":
            await connection.aclose()

    async def aclose(self) -> None:
        """Close the shared connection (idempotent); acquiring afterwards raises."""
        self._closed = True
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.aclose()


def _safe_url(url: str) -> str:
    """``url`` without credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"
