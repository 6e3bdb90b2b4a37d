"""``gymbus envs``: the environment catalogue as a table or JSON."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from gymbus.envs.registry import available


def envs(
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
) -> None:
    """List the available environments with their metadata."""
    catalogue = available()
    if as_json:
        rows = [
            {"name": name, "metadata": cls.metadata.model_dump(mode="json")}
            for name, cls in sorted(catalogue.items())
        ]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{len(catalogue)} environments")
    for column in ("name", "structures", "capabilities", "domain", "task type", "verification"):
        table.add_column(column)
    for name, cls in sorted(catalogue.items()):
        m = cls.metadata
        table.add_row(
            name,
            ", ".join(m.rollout_structures),
            ", ".join(m.core_capabilities),
            m.knowledge_domain,
            m.task_type,
            m.verification_method,
        )
    Console().print(table)
