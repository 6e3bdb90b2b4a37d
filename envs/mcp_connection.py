"""One MCP client connection (see :mod:`gymbus.envs.mcp_tools`): its owner task, the
requests made on it, and what their failures become."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import anyio
import structlog
from jsonschema.protocols import Validator
from pydantic import ValidationError

from gymbus.envs.mcp_content import error_text, resource_text, tool_output
from gymbus.envs.mcp_schemas import ToolShape, UsableTool, hide_arguments, list_tools, usable_tools
from gymbus.envs.mcp_stdio import StdioServer
from gymbus.runtime.errors import GymbusError, ToolError, ToolInputError, leaf_errors
from gymbus.runtime.tools import Toolbox, ToolOutput, ToolSpec, check_arguments

if TYPE_CHECKING:  # mcp is imported when a connection opens (it takes ~0.4 s)
    from mcp import Client

    from gymbus.envs.mcp_tools import MCPServerParams

PING_TIMEOUT = 5.0
"""Seconds (at most ``call_timeout``) a server has to answer the ping that follows a
timed-out call."""
COURTESY_WAIT = 1.0
"""Seconds left, after a request timed out, for the SDK to tell the server to stop it."""
CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`MCPConnection.aclose` waits for a clean shutdown before cancelling it."""

_CONNECTION_CLOSED = -32000  # mcp_types.CONNECTION_CLOSED (not imported: mcp loads lazily)
_REQUEST_TIMEOUT = -32001  # mcp_types.REQUEST_TIMEOUT
T = TypeVar("T")
log = structlog.get_logger("gymbus.mcp")


class MCPTool:
    """One tool of an MCP server as a gymbus :class:`~gymbus.runtime.tools.Tool`: the
    arguments are checked against the schema the model sees, the bound ones added, and
    the call made on the connection."""

    __slots__ = ("_bound", "_connection", "_spec", "_validator")

    def __init__(
        self,
        connection: MCPConnection,
        spec: ToolSpec,
        validator: Validator,
        bound: Mapping[str, Any],
    ) -> None:
        self._connection = connection
        self._spec = spec
        self._validator = validator
        self._bound = dict(bound)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def __call__(self, arguments: dict[str, Any]) -> ToolOutput:
        check_arguments(self._validator, self._spec.name, arguments)
        if self._bound:  # bound values win: the model cannot leave its workspace
            arguments = {**arguments, **self._bound}
        return await self._connection.call(self._spec.name, arguments)


class MCPConnection:
    """One live MCP client connection. Its ``mcp.Client`` context runs in an owner task
    (asyncio task) so it can be opened and closed from any task."""

    def __init__(self, params: MCPServerParams) -> None:
        self.params = params
        self._slots = anyio.Semaphore(params.max_concurrency)
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._owner: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None
        self._client: Client | None = None
        self._server: StdioServer | None = None
        self._failure: ToolError | None = None  # why it did not open
        self._broken: str | None = None  # why it can no longer be used
        self._tools: dict[str, UsableTool] = {}
        self._shapes: dict[tuple[str, frozenset[str]], ToolShape] = {}
        self._pings: set[asyncio.Task[None]] = set()  # pings that may outlive their wait

    def __repr__(self) -> str:
        return f"MCPConnection({self.params.where}, alive={self.alive})"

    @property
    def alive(self) -> bool:
        """Open, not closing, not broken (hung, exited, disconnected)."""
        server = self._server
        return (
            self._client is not None
            and not self._stop.is_set()
            and self._broken is None
            and (server is None or server.returncode is None)
        )

    @property
    def pid(self) -> int | None:
        """The server process's id (stdio), for diagnostics."""
        return None if self._server is None else self._server.pid

    @property
    def tool_specs(self) -> tuple[ToolSpec, ...]:
        """The server's tools as the model would see them (without bound arguments)."""
        return tuple(spec for spec, _ in self._tools.values())

    async def open(self) -> Self:
        """Connect, initialize and list the tools within ``connect_timeout``; raise
        :class:`ToolError` naming the server and the cause (nothing is left running)."""
        if self._owner is not None:
            raise RuntimeError(f"{self!r} was already opened")
        self._owner = asyncio.get_running_loop().create_task(
            self._own(), name=f"mcp-connection:{self.params.name}"
        )
        try:
            await self._ready.wait()
        except BaseException:  # cancelled while connecting
            await self.aclose()
            raise
        if self._failure is not None:
            await self.aclose()
            raise self._failure
        log.debug("mcp.connected", server=self.params.name, tools=len(self._tools), pid=self.pid)
        return self

    async def aclose(self) -> None:
        """Close the connection; a stdio server process is gone when this returns. Idempotent
        and shielded from cancellation (bounded by the transport's shutdown sequence)."""
        owner = self._owner
        self._stop.set()
        with anyio.CancelScope(shield=True):
            if owner is not None and not owner.done():
                if self._scope is not None and (not self._ready.is_set() or self._broken):
                    self._scope.cancel()  # connecting, or a broken server: no goodbye
                await asyncio.wait({owner}, timeout=CLOSE_TIMEOUT)
                if not owner.done() and self._scope is not None:
                    self._scope.cancel()  # e.g. an HTTP server hanging on the session's DELETE
                    await asyncio.wait({owner}, timeout=CLOSE_TIMEOUT)
                if not owner.done():
                    log.warning("mcp.close_abandoned", server=self.params.name, pid=self.pid)
                    owner.cancel()
            if self._pings:  # stuck on the closed connection's writes: they end now
                await asyncio.wait(set(self._pings), timeout=COURTESY_WAIT)
                for ping in self._pings:
                    ping.cancel()

    async def _own(self) -> None:
        """The owner task: the client context from connecting to closing."""
        from mcp import Client
        from mcp_types import Implementation

        params = self.params
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + params.connect_timeout) as scope:
                self._scope = scope
                if self._stop.is_set():  # closed before this task ran
                    scope.cancel()
                client = Client(
                    self._transport(),
                    mode="legacy",
                    cache=None,
                    client_info=Implementation(name="gymbus", version="0"),
                )
                async with client:
                    self._tools = usable_tools(await list_tools(client), params.name)
                    scope.deadline = math.inf
                    if self._server is not None:
                        self._server.unresponsive = False
                    self._client = client
                    self._ready.set()
                    await self._stop.wait()
            if scope.cancelled_caught and self._client is None:
                self._failure = self._open_error(
                    "was closed while connecting"
                    if self._stop.is_set()
                    else f"did not become ready within {params.connect_timeout:g} s"
                )
        except Exception as exc:
            if self._client is None:
                self._failure = self._open_error(_cause(exc), exited=True)
            else:
                self._broken = f"{params.where} failed: {_cause(exc)}"
                log.warning("mcp.connection_failed", server=params.name, error=_cause(exc))
        finally:
            self._client = None
            self._ready.set()
            log.debug("mcp.closed", server=params.name, pid=self.pid)

    def _transport(self) -> Any:
        params = self.params
        if params.command is not None:
            self._server = StdioServer(params.command, env=params.env, cwd=params.cwd)
            self._server.unresponsive = True  # until it is ready: no grace to exit by itself
            return self._server.streams()
        assert params.url is not None
        return _http_streams(params.url, params.headers)

    def _open_error(self, cause: str, *, exited: bool = False) -> ToolError:
        server = self._server
        if exited and server is not None and server.returncode is not None:
            cause = f"{_exit_status(server.returncode)} before it was ready"
        if server is not None and (tail := server.stderr_tail()):
            cause += f"; stderr: {tail}"
        verb = "start" if self.params.command is not None else "connect to"
        return ToolError(f"could not {verb} {self.params.where}: {cause}")

    # -- tools ------------------------------------------------------------------------------
    def toolbox(
        self,
        *,
        include: Collection[str] | None = None,
        exclude: Collection[str] = (),
        bind: Mapping[str, Any] | None = None,
    ) -> Toolbox:
        """The tools the model sees. ``bind`` arguments are removed from each schema (from
        ``properties`` and ``required``) and added to every call of the tools that take
        them — hidden per-episode arguments, e.g. a workspace id. Naming a tool the server
        does not have in ``include`` raises :class:`ToolError`."""
        if self._client is None and not self._tools:
            raise RuntimeError(f"{self!r} is not open")
        bound = dict(bind or {})
        names = list(self._tools) if include is None else list(include)
        missing = [name for name in names if name not in self._tools]
        if missing:
            raise ToolError(
                f"{self.params.where} has no tool {', '.join(map(repr, missing))}; "
                f"it has: {', '.join(self._tools) or '(none)'}"
            )
        tools = []
        for name in names:
            if name in exclude:
                continue
            spec, validator, takes = self._shape(name, frozenset(bound))
            tools.append(MCPTool(self, spec, validator, {key: bound[key] for key in takes}))
        return Toolbox(tools)

    def _shape(self, name: str, hidden: frozenset[str]) -> ToolShape:
        """Cached: every episode of an environment binds the same names."""
        shape = self._shapes.get((name, hidden))
        if shape is None:
            spec, cls = self._tools[name]
            shape = self._shapes[(name, hidden)] = hide_arguments(spec, cls, hidden)
        return shape

    async def call(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        """Call tool ``name`` (no schema check, no bound arguments) with the error mapping
        :mod:`gymbus.envs.mcp_tools` describes."""
        what = f"a call to {name!r}"
        async with self._slots:
            result = await self._request(
                what, lambda c, t: c.call_tool(name, dict(arguments), read_timeout_seconds=t)
            )
        if result.is_error:
            raise ToolInputError(error_text(result))
        return tool_output(result, f"tool {name!r} of {self.params.where}")

    async def read_resource(self, uri: str) -> str:
        """The text of resource ``uri`` (for verifiers' state checks)."""
        from mcp_types import ReadResourceRequest, ReadResourceRequestParams, ReadResourceResult

        request = ReadResourceRequest(params=ReadResourceRequestParams(uri=uri))
        result = await self._request(
            f"reading {uri!r}",
            lambda c, t: c.session.send_request(
                request, ReadResourceResult, request_read_timeout_seconds=t
            ),
        )
        return resource_text(result)

    async def _request(self, what: str, send: Callable[[Client, float], Awaitable[T]]) -> T:
        """``send`` under ``call_timeout`` (the SDK's request timeout, so that its cancel
        notification to the server is not shielded: a hung HTTP server gets
        :data:`COURTESY_WAIT` more seconds to take it), with the errors mapped."""
        from mcp import MCPError

        client = self._client
        if client is None or not self.alive:
            raise ToolError(self._broken or self._gone_message(what))
        closed = False
        timeout = self.params.call_timeout
        with anyio.move_on_after(timeout + COURTESY_WAIT):
            try:
                return await send(client, timeout)
            except MCPError as exc:
                if exc.code == _CONNECTION_CLOSED:
                    closed = True
                elif exc.code != _REQUEST_TIMEOUT:  # the server's answer: the model's input
                    raise ToolInputError(exc.message) from None
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                closed = True
            except TimeoutError:  # the transport's own bounded send: a wedged connection
                pass
            except (ValidationError, RuntimeError) as exc:  # a malformed result
                raise ToolError(
                    f"{self.params.where} answered {what} with an invalid result: {exc}"
                ) from None
        if closed:
            raise ToolError(await self._disconnected(what))
        raise await self._timed_out(what, client)

    async def _timed_out(self, what: str, client: Client) -> GymbusError:
        """After a timed-out request: alive (answers a ping) → the model's error; else hung."""
        timeout = self.params.call_timeout
        ping_timeout = min(PING_TIMEOUT, timeout)  # a live server answers a ping at once
        answer = await self._ping(client, ping_timeout)
        if answer == "closed":
            return ToolError(await self._disconnected(what))
        if answer == "alive":
            return ToolInputError(f"{what} timed out after {timeout:g} s")
        self._broken = (
            f"{self.params.where} is not responding (hung): {what} timed out after {timeout:g} s "
            f"and a ping got no answer within {ping_timeout:g} s"
        )
        log.warning("mcp.server_hung", server=self.params.name, during=what, pid=self.pid)
        if self._server is not None:
            self._server.unresponsive = True  # closing it won't wait for it to exit
        return ToolError(self._broken)

    async def _ping(self, client: Client, within: float) -> Literal["alive", "closed", "silent"]:
        """Ping in a task of its own, which is never cancelled: cancelling a request whose
        write is stuck (a hung HTTP server) would block this task for the SDK's shielded
        cancel notification. A stuck ping ends when the connection closes."""
        from mcp import MCPError
        from mcp_types import EmptyResult, PingRequest

        answer: list[Literal["alive", "closed", "silent"]] = []

        async def ping() -> None:
            try:
                await client.session.send_request(
                    PingRequest(), EmptyResult, request_read_timeout_seconds=within
                )
                answer.append("alive")
            except MCPError as exc:  # any answer but "timed out" or "closed" is a live server
                closed = exc.code == _CONNECTION_CLOSED
                answer.append(
                    "closed" if closed else "silent" if exc.code == _REQUEST_TIMEOUT else "alive"
                )
            except Exception:
                answer.append("silent")

        task = asyncio.get_running_loop().create_task(ping(), name="mcp-ping")
        self._pings.add(task)
        task.add_done_callback(self._pings.discard)
        await asyncio.wait({task}, timeout=within + COURTESY_WAIT)
        return answer[0] if answer else "silent"

    async def _disconnected(self, what: str) -> str:
        if self._server is not None:
            await self._server.wait_exit(1.0)  # the exit code comes just after stdout's end
        self._broken = self._gone_message(what)
        log.warning("mcp.server_gone", server=self.params.name, during=what, pid=self.pid)
        return self._broken

    def _gone_message(self, what: str) -> str:
        server = self._server
        if self._stop.is_set() or (self._client is None and self._owner is not None):
            status = "is closed"
        elif server is None:
            status = "closed the connection"
        elif server.returncode is None:
            status = "closed its output"
        else:
            status = _exit_status(server.returncode)
        message = f"{self.params.where} {status} during {what}"
        if server is not None and (tail := server.stderr_tail()):
            message += f"; stderr: {tail}"
        return message


def _http_streams(url: str, headers: Mapping[str, str]) -> Any:
    from contextlib import asynccontextmanager

    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    @asynccontextmanager
    async def streams() -> Any:
        async with (
            create_mcp_http_client(headers=dict(headers)) as http,
            streamable_http_client(url, http_client=http) as pair,
        ):
            yield pair

    return streams()


def _cause(exc: BaseException) -> str:
    """The first real error inside ``exc`` (task groups wrap them), as ``Type: message``."""
    leaves = [e for e in leaf_errors(exc) if not isinstance(e, anyio.get_cancelled_exc_class())]
    leaf = leaves[0] if leaves else exc
    text = str(leaf) or "(no message)"
    return text if isinstance(leaf, GymbusError) else f"{type(leaf).__name__}: {text}"


def _exit_status(code: int) -> str:
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited (code {code})"
