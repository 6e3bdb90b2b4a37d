"""``gymbus test ENV`` / ``gymbus test --all``: the end-to-end self-test as a table."""

from __future__ import annotations

from typing import Annotated

import anyio
import orjson
import typer
from rich.console import Console
from rich.table import Table

from gymbus.envs.registry import available, load_errors
from gymbus.selftest import Check, self_test


def selftest(
    names: Annotated[list[str] | None, typer.Argument(help="environments to test")] = None,
    all_envs: Annotated[bool, typer.Option("--all", help="test every environment")] = False,
    seeds: Annotated[int, typer.Option(min=1, help="seeds per difficulty")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print the checks as JSON")] = False,
) -> None:
    """Oracle scores 1.0 and null 0.0 on N seeds of every difficulty, tasks are
    deterministic, metadata is valid. Exits 1 if any check fails."""
    catalogue = available()
    err = Console(stderr=True)
    if all_envs == bool(names):
        err.print("[red]error:[/red] name one or more environments, or pass --all")
        raise typer.Exit(2)
    chosen = sorted(catalogue) if all_envs else list(names or [])
    unknown = [n for n in chosen if n not in catalogue]
    if unknown:
        err.print(
            f"[red]error:[/red] unknown environment(s) {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(sorted(catalogue))}"
        )
        raise typer.Exit(2)

    async def run_all() -> list[Check]:
        checks: list[Check] = []
        for name in chosen:
            checks += await self_test(catalogue[name], seeds=seeds)
        return checks

    checks = anyio.run(run_all)
    failures = [c for c in checks if not c.ok]
    broken_plugins = list(load_errors()) if all_envs else []
    if as_json:
        typer.echo(orjson.dumps([_dump(c) for c in checks], option=orjson.OPT_INDENT_2).decode())
    else:
        table = Table(title=f"gymbus test · {len(chosen)} environment(s) · {seeds} seeds")
        for column in ("environment", "check", "result", "detail"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row(
                c.env, c.name, "[green]ok[/green]" if c.ok else "[red]FAIL[/red]", c.detail
            )
        Console().print(table)
    for failure in broken_plugins:
        err.print(f"[red]entry point {failure.name!r} failed to load:[/red] {failure.error}")
    if failures or broken_plugins:
        err.print(f"[red]{len(failures)} check(s) failed[/red]")
        raise typer.Exit(1)


def _dump(check: Check) -> dict[str, object]:
    return {"env": check.env, "check": check.name, "ok": check.ok, "detail": check.detail}
