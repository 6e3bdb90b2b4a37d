"""The stdio transport of :mod:`gymbus.envs.mcp_tools`: an MCP server as a child process
that leaves nothing behind.

``mcp.client.stdio.stdio_client`` does not expose its process, so a failure could not say
the exit code; this transport keeps the process (pid, exit code) and the tail of its
stderr, and follows the same shutdown sequence as the SDK (the MCP spec's): close stdin,
wait :data:`STDIN_GRACE`, SIGTERM the process group, wait :data:`TERM_GRACE`, SIGKILL it.
The server runs in a session of its own (``start_new_session``), so the signals reach the
processes it started too, and a server that exited by itself still has its group killed.
Shutdown is shielded from cancellation and every wait in it is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import ByteReceiveStream, Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

if TYPE_CHECKING:  # mcp is imported when a server is started (it takes ~0.4 s)
    from mcp.shared.message import SessionMessage

STDIN_GRACE = 2.0
"""Seconds a server has to exit by itself once its stdin is closed."""
TERM_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
REAP_WAIT = 2.0
"""Seconds to wait for a killed process to be reaped."""
STDERR_TAIL_BYTES = 8192
"""How much of the server's stderr is kept (the end), for error messages."""

_POLL = 0.01  # seconds between looks at the exit code

log = structlog.get_logger("gymbus.mcp")


class StdioServer:
    """One server process: start it with :meth:`streams` (a transport for ``mcp.Client``),
    then read :attr:`pid`, :attr:`returncode` and :meth:`stderr_tail`."""

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None
    ) -> None:
        self._argv = tuple(argv)
        self._env = dict(env or {})
        self._cwd = cwd
        self._process: Process | None = None
        self._stderr = bytearray()
        self.unresponsive = False
        """Set when the server stopped answering: shutdown skips the stdin grace period."""

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    def stderr_tail(self, lines: int = 6, chars: int = 600) -> str:
        """The last ``lines`` non-empty lines of stderr (at most ``chars``), one line."""
        text = self._stderr.decode("utf-8", "replace")
        kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(kept)[-chars:]

    async def wait_exit(self, within: float) -> int | None:
        """The exit code, waiting up to ``within`` seconds for it; None if still running."""
        process = self._process
        if process is not None and await _exited(process, within):
            return process.returncode
        return None

    @asynccontextmanager
    async def streams(
        self,
    ) -> AsyncIterator[
        tuple[
            MemoryObjectReceiveStream[SessionMessage | Exception],
            MemoryObjectSendStream[SessionMessage],
        ]
    ]:
        """Start the process; yield the session's read and write streams; stop it."""
        from mcp.client.stdio import get_default_environment
        from mcp.shared.message import SessionMessage

        process = self._process = await anyio.open_process(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=get_default_environment() | self._env,  # not our secrets: the SDK's safe set
            cwd=self._cwd,
            start_new_session=True,
        )
        # no await before the task group is entered: a cancellation here would leak it
        inbound_send, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        outbound, outbound_receive = anyio.create_memory_object_stream[SessionMessage](0)
        written = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read_stdout, process, inbound_send)
            tg.start_soon(_write_stdin, process, outbound_receive, inbound_send, written)
            tg.start_soon(self._read_stderr, process)
            try:
                yield inbound, outbound
            finally:
                with anyio.CancelScope(shield=True):
                    inbound.close()  # the reader drains stdout from now on
                    outbound.close()
                    with anyio.move_on_after(0.5):  # let accepted messages go out
                        await written.wait()
                    await _stop(process, 0.0 if self.unresponsive else STDIN_GRACE)
                tg.cancel_scope.cancel()

    async def _read_stderr(self, process: Process) -> None:
        stream = process.stderr
        assert stream is not None
        await _drain(stream, self._stderr)


async def _read_stdout(
    process: Process, sink: MemoryObjectSendStream[SessionMessage | Exception]
) -> None:
    """Newline-delimited JSON-RPC from stdout to the session; once the session is gone,
    stdout is still read (and dropped) so that the server never blocks writing."""
    import mcp_types
    from mcp.shared.message import SessionMessage

    assert process.stdout is not None
    pending: list[bytes] = []
    listening = True
    async with sink:
        with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in process.stdout:
                *lines, rest = chunk.split(b"\n")
                if not lines:
                    pending.append(rest)
                    continue
                lines[0] = b"".join([*pending, lines[0]])
                pending = [rest] if rest else []
                for line in lines:
                    if not listening or not line.strip():
                        continue
                    item: SessionMessage | Exception
                    try:
                        message = mcp_types.jsonrpc_message_adapter.validate_json(
                            line, by_name=False
                        )
                        item = SessionMessage(message)
                    except ValueError as exc:  # the session reports it
                        item = exc
                    try:
                        await sink.send(item)
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        listening = False


async def _write_stdin(
    process: Process,
    source: MemoryObjectReceiveStream[SessionMessage],
    inbound: MemoryObjectSendStream[SessionMessage | Exception],
    written: anyio.Event,
) -> None:
    assert process.stdin is not None
    try:
        async with source:
            async for item in source:
                data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                await process.stdin.send(data.encode() + b"\n")
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        await inbound.aclose()  # the server cannot hear us: end the session's reads
    finally:
        written.set()


async def _drain(stream: ByteReceiveStream, tail: bytearray) -> None:
    with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
        async for chunk in stream:
            tail += chunk
            if len(tail) > STDERR_TAIL_BYTES:
                del tail[: len(tail) - STDERR_TAIL_BYTES]


async def _stop(process: Process, stdin_grace: float) -> None:
    """Close stdin, then SIGTERM and SIGKILL the process group as needed; close the pipes."""
    if process.stdin is not None:
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
    if not await _exited(process, stdin_grace):
        _signal_group(process, signal.SIGTERM)
        if not await _exited(process, TERM_GRACE):
            _signal_group(process, signal.SIGKILL)
            await _exited(process, REAP_WAIT)
    _signal_group(process, signal.SIGKILL)  # what the server started and left behind
    if process.returncode is None:  # unkillable (uninterruptible sleep): abandon it
        log.warning("mcp.server_not_reaped", pid=process.pid)
        return
    with anyio.move_on_after(REAP_WAIT), suppress(OSError):
        await process.aclose()  # closes the pipes and the asyncio transport


async def _exited(process: Process, within: float) -> bool:
    """Whether the process exits within ``within`` seconds (polling: ``process.wait()``
    may also wait for pipes a grandchild inherited, as the SDK notes)."""
    with anyio.move_on_after(within):
        while process.returncode is None:  # noqa: ASYNC110 — no exit event to wait on
            await anyio.sleep(_POLL)
    return process.returncode is not None


def _signal_group(process: Process, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":  # no process groups: the process itself
            if process.returncode is None:
                process.kill()
        else:
            os.killpg(process.pid, sig)
