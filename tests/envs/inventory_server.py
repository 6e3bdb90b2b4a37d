"""The shipped inventory MCP server as a real subprocess for tests: streamable HTTP on a
free port of 127.0.0.1, always stopped afterwards; and a census of the server processes
this test process has spawned (for "no orphan process" checks)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_MODULE = "gymbus.envs.builtin.inventory_mcp_server"
STARTUP_TIMEOUT = 60.0
_URL_LINE = re.compile(r"inventory MCP server: (http://127\.0\.0\.1:[0-9]+/mcp)\n")


@dataclass(frozen=True, slots=True)
class RunningServer:
    process: subprocess.Popen[str]
    url: str
    log: Path


def stop(process: subprocess.Popen[str]) -> None:
    """Terminate, then kill after a grace period; reaped when this returns."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def inventory_http_server(log: Path, *arguments: str) -> Iterator[RunningServer]:
    """``python -m …inventory_mcp_server --http --port 0`` until the block ends; its
    stderr goes to ``log``."""
    command = [sys.executable, "-m", SERVER_MODULE, "--http", "--port", "0", *arguments]
    with (
        log.open("w") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True) as process,
    ):
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
            line = process.stdout.readline() if ready else ""
            match = _URL_LINE.fullmatch(line)
            if match is None:
                raise RuntimeError(
                    f"the server did not announce its URL within {STARTUP_TIMEOUT}s: got "
                    f"{line!r}, exit code {process.poll()}, stderr {log.read_text()[-2000:]!r}"
                )
            yield RunningServer(process, match.group(1), log)
        finally:
            stop(process)


def server_processes() -> list[int]:
    """Live (not zombie) child processes of this process running the server module."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it exited while we looked
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == me and state != "Z" and SERVER_MODULE in cmdline:
            found.append(int(entry.name))
    return found
