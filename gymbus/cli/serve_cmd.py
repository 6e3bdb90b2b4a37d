"""``gymbus serve``: host environments for remote runtimes (``gymbus run ENV --remote URL``)."""

from __future__ import annotations

import ipaddress
import os
import signal
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console

from gymbus.envs.registry import available
from gymbus.remote_protocol import TOKEN_ENV
from gymbus.server import ServerConfig
from gymbus.server import serve as serve_envs

MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_tokens(token_file: Path | None) -> tuple[str, ...]:
    """The accepted tokens: one per line of ``token_file`` (``#`` comments and blank
    lines skipped), else the ``GYMBUS_SERVER_TOKEN`` variable; empty if neither."""
    if token_file is not None:
        lines = token_file.read_text().splitlines()
        return tuple(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))
    token = os.environ.get(TOKEN_ENV, "").strip()
    return (token,) if token else ()


def serve(
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="serve this environment (repeatable); default: all"),
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: a free one)")] = 8765,
    token_file: Annotated[
        Path | None,
        typer.Option(help=f"accepted bearer tokens, one per line (default: ${TOKEN_ENV})"),
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="no authentication (only on a loopback address)")
    ] = False,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="largest request body")] = 32.0,
    client_concurrency: Annotated[
        int, typer.Option(min=1, help="requests in flight per client (then 429)")
    ] = 256,
    idle_expiry: Annotated[
        float, typer.Option(min=0.001, help="seconds before an unused episode is dropped")
    ] = 600.0,
    max_episodes: Annotated[int, typer.Option(min=1, help="episodes held at once")] = 10_000,
) -> None:
    """Serve environments over HTTP until interrupted; prints the URL it listens on."""
    err = Console(stderr=True)

    def refuse(message: str) -> typer.Exit:
        err.print(f"[red]error:[/red] {message}")
        return typer.Exit(2)

    catalogue = available()
    names = env or list(catalogue)
    unknown = sorted(set(names) - set(catalogue))
    if unknown:
        raise refuse(
            f"unknown environment {unknown[0]!r}; available: {', '.join(sorted(catalogue))}"
        )
    try:
        tokens = read_tokens(token_file)
    except OSError as exc:
        raise refuse(f"cannot read the token file: {exc}") from None
    if insecure:
        if not is_loopback(host):
            raise refuse(f"--insecure is allowed only on a loopback address, not {host!r}")
        tokens = ()
    elif not tokens:
        raise refuse(f"no token: set {TOKEN_ENV} or pass --token-file (or --insecure on 127.0.0.1)")
    elif any(len(token) < MIN_TOKEN_LENGTH for token in tokens):
        raise refuse(f"a token must have at least {MIN_TOKEN_LENGTH} characters")
    config = ServerConfig(
        envs={name: catalogue[name] for name in names},
        tokens=tokens,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        client_concurrency=client_concurrency,
        idle_expiry=idle_expiry,
        max_episodes=max_episodes,
    )
    try:
        anyio.run(_serve, config, host, port)
    except OSError as exc:  # address in use, cannot bind
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None


async def _serve(config: ServerConfig, host: str, port: int) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_envs(config, host, port) as url:
            print(f"gymbus serve: listening on {url}", flush=True)
            async for _ in signals:
                break
