"""``gymbus init NAME``: scaffold an installable environment package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gymbus.runtime.errors import ConfigError
from gymbus.scaffold import scaffold


def init(
    name: Annotated[str, typer.Argument(help="environment name, kebab-case")],
    directory: Annotated[
        Path, typer.Option("--dir", help="where to create the package folder")
    ] = Path("."),
) -> None:
    """Create DIR/NAME: a package with an environment, a tool, a verifier, a reference
    solver and tests, registered through the gymbus.envs entry point."""
    try:
        root = scaffold(name, directory)
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    Console().print(
        f"created {root}\n"
        f"  pip install {root}\n"
        f"  gymbus test {name}\n"
        f"  gymbus run {name} --model oracle --n 10"
    )
