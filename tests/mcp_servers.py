"""Small real MCP servers for the MCP tool tests, written with the ``mcp`` package's
``MCPServer`` and run as scripts::

    python tests/mcp_servers.py tools              # stdio
    python tests/mcp_servers.py tools --http       # streamable HTTP on 127.0.0.1, free port
    python tests/mcp_servers.py fail-start         # exits 1 with a message on stderr
    python tests/mcp_servers.py hang-start         # never answers, ignores SIGTERM

Over HTTP the first line on stdout is the endpoint URL (``http://127.0.0.1:PORT/mcp``).
The ``tools`` server records what it saw — calls per tool, peak concurrent calls — and
answers ``stats`` with it, so tests assert on the server's side of the conversation.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import sys
import time
from collections import Counter
from typing import Any

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from PIL import Image as PILImage

SCRIPT = os.path.abspath(__file__)

server: MCPServer[Any] = MCPServer("gymbus-test", log_level="WARNING")
calls: Counter[str] = Counter()
in_flight = 0
peak = 0
counters: dict[str, int] = {}
stores: dict[str, dict[str, str]] = {}


def _seen(tool: str) -> None:
    calls[tool] += 1


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    _seen("echo")
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _seen("add")
    return a + b


@server.tool()
def image() -> Image:
    """A 4x4 red PNG."""
    _seen("image")
    buffer = io.BytesIO()
    PILImage.new("RGB", (4, 4), (255, 0, 0)).save(buffer, format="PNG")
    return Image(data=buffer.getvalue(), format="png")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep without blocking the server, then answer; records concurrent calls."""
    global in_flight, peak
    _seen("slow")
    in_flight += 1
    peak = max(peak, in_flight)
    try:
        await anyio.sleep(seconds)
    finally:
        in_flight -= 1
    return f"slept {seconds}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with ``reason`` (an isError result)."""
    _seen("fail")
    raise ToolError(reason)


@server.tool()
def crash() -> str:
    """The server process exits with code 3."""
    print("crash: exiting with code 3 on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def hang() -> str:
    """Blocks the server's event loop forever and ignores SIGTERM: a hung server."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)  # noqa: ASYNC251 — blocking the loop is the point


@server.tool()
def count(ctx: Context) -> int:
    """Per-connection state: how many times this connection (this process over stdio, this
    ``Mcp-Session-Id`` over HTTP) called ``count``."""
    key = (ctx.headers or {}).get("mcp-session-id", "stdio")
    counters[key] = counters.get(key, 0) + 1
    return counters[key]


@server.tool()
def put(workspace: str, key: str, value: str) -> str:
    """Store ``value`` under ``key`` in ``workspace``."""
    _seen("put")
    stores.setdefault(workspace, {})[key] = value
    return "ok"


@server.tool()
def get(workspace: str, key: str) -> str:
    """The value under ``key`` in ``workspace``."""
    _seen("get")
    value = stores.get(workspace, {}).get(key)
    if value is None:
        raise ToolError(f"no {key!r} in {workspace!r}")
    return value


@server.tool()
def authorized(ctx: Context) -> bool:
    """Whether the request carried a bearer Authorization header (never echoes it)."""
    return (ctx.headers or {}).get("authorization", "").startswith("Bearer ")


@server.tool()
def stats() -> dict[str, Any]:
    """What this server has seen: calls per tool and peak concurrent ``slow`` calls."""
    return {"calls": dict(calls), "peak": peak, "pid": os.getpid()}


@server.tool(name="dotted.name")
def dotted() -> str:
    """A name models cannot be given (skipped by gymbus)."""
    return "never listed"


@server.resource("state://{workspace}")
def state(workspace: str) -> str:
    """The workspace's store as ``key=value`` lines (what a verifier reads)."""
    return "\n".join(f"{k}={v}" for k, v in sorted(stores.get(workspace, {}).items()))


async def _serve_http() -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = server.streamable_http_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"http://127.0.0.1:{port}/mcp", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "tools"
    if mode == "fail-start":
        print("fail-start: missing configuration GYMBUS_TEST_CONFIG", file=sys.stderr, flush=True)
        sys.exit(1)
    if mode == "hang-start":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(3600)
    if mode != "tools":
        sys.exit(f"unknown mode {mode!r}")
    if "--http" in argv:
        anyio.run(_serve_http)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
