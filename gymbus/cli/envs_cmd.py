"""``gymbus envs``: the environment catalogue as a table, JSON, a matrix or Markdown."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from gymbus.catalogue import Catalogue, markdown, matrix, select
from gymbus.envs.metadata import (
    CORE_CAPABILITIES,
    ROLLOUT_STRUCTURES,
    VERIFICATION_METHODS,
)
from gymbus.envs.registry import available, load_errors


def _check(values: list[str], allowed: tuple[str, ...], option: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise typer.BadParameter(
            f"unknown value(s) {', '.join(unknown)}; choose from {', '.join(allowed)}",
            param_hint=option,
        )


def envs(
    capability: Annotated[
        list[str], typer.Option("--capability", "-c", help="core capability (repeatable)")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    structure: Annotated[
        list[str], typer.Option("--structure", "-s", help="rollout structure (repeatable)")
    ] = [],  # noqa: B006
    domain: Annotated[
        list[str], typer.Option("--domain", "-d", help="knowledge domain (repeatable)")
    ] = [],  # noqa: B006
    verification: Annotated[
        list[str], typer.Option("--verification", "-v", help="verification method")
    ] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
    show_matrix: Annotated[
        bool, typer.Option("--matrix", help="capabilities × rollout structures")
    ] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="the docs/environments.md page")
    ] = False,
) -> None:
    """List the available environments with their five-dimension metadata."""
    _check(capability, CORE_CAPABILITIES, "--capability")
    _check(structure, ROLLOUT_STRUCTURES, "--structure")
    _check(verification, VERIFICATION_METHODS, "--verification")
    catalogue = select(
        available(),
        capabilities=capability,
        structures=structure,
        domains=domain,
        verifications=verification,
    )
    err = Console(stderr=True)
    for failure in load_errors():
        err.print(
            f"[yellow]warning:[/yellow] skipped entry point {failure.name!r} = "
            f"{failure.value!r}: {failure.error}"
        )
    if as_json:
        rows = [
            {"name": name, "metadata": cls.metadata.model_dump(mode="json")}
            for name, cls in catalogue.items()
        ]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif as_markdown:
        typer.echo(markdown(catalogue), nl=False)
    elif show_matrix:
        Console().print(_matrix_table(catalogue))
    else:
        Console().print(_table(catalogue))


def _table(catalogue: Catalogue) -> Table:
    table = Table(title=f"{len(catalogue)} environments")
    for column in ("name", "structures", "capabilities", "domain", "task type", "verification"):
        table.add_column(column, overflow="fold")
    for name, cls in catalogue.items():
        m = cls.metadata
        table.add_row(
            name,
            "\n".join(m.rollout_structures) or "—",
            "\n".join(m.core_capabilities) or "—",
            m.knowledge_domain,
            m.task_type,
            m.verification_method,
        )
    return table


def _matrix_table(catalogue: Catalogue) -> Table:
    cells = matrix(catalogue)
    columns = (*ROLLOUT_STRUCTURES, "single-turn")
    table = Table(title="core capabilities × rollout structures", show_lines=True)
    table.add_column("capability", overflow="fold", min_width=14)
    for column in columns:
        table.add_column(column, overflow="fold")
    for capability, row in cells.items():
        table.add_row(capability, *("\n".join(row[c]) or "·" for c in columns))
    return table
