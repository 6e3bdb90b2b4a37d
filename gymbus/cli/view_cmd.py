"""``gymbus view FILE…``: browse rollout files in a local web page (see :mod:`gymbus.viewer`)."""

from __future__ import annotations

import asyncio
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gymbus.cli.paths import ROLLOUT_PATHS_HELP, rollout_files
from gymbus.viewer import bind, serve


def view(
    files: Annotated[
        list[Path],
        typer.Argument(
            help=f"{ROLLOUT_PATHS_HELP} (media are read from X.media/ beside X.jsonl)",
            metavar="FILE|DIR",
            exists=True,
            readable=True,
        ),
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: a free one)")] = 8700,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="keep indexing lines appended to the files (a run still writing)"
        ),
    ] = False,
    open_browser: Annotated[
        bool, typer.Option("--open", help="open the page in the default browser")
    ] = False,
) -> None:
    """Serve a viewer of rollout files on 127.0.0.1 until interrupted: an episode table
    with filters, transcripts with media, GRPO groups and plots."""
    files = rollout_files(files)
    try:
        sock = bind(port)
    except OSError as exc:
        Console(stderr=True).print(
            f"[red]error:[/red] cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
        )
        raise typer.Exit(1) from None

    def ready(url: str) -> None:
        print(f"gymbus view: {url} (Ctrl-C to stop)", flush=True)
        if open_browser:
            webbrowser.open(url)

    asyncio.run(serve(files, sock, ready, follow=follow))
