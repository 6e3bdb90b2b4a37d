"""``gymbus report FILE…``: rewards, pass@k, failures, tokens and latency of rollout files,
as rich tables or one JSON object, and optionally as a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gymbus.cli.paths import ROLLOUT_PATHS_HELP, rollout_files
from gymbus.report import Report, Summary, summarize
from gymbus.report_html import collect, write_html
from gymbus.runtime.sink import RolloutFileError


def report(
    files: Annotated[
        list[Path],
        typer.Argument(
            help=f"{ROLLOUT_PATHS_HELP} (from `gymbus run --out`, `gymbus collect`)",
            metavar="FILE|DIR",
            exists=True,
            readable=True,
        ),
    ],
    success_threshold: Annotated[
        float, typer.Option(help="a scored rollout succeeds when reward >= this")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="also write a self-contained HTML page with the tables and charts",
            metavar="PATH",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Summarize rollout files per environment, capability and rollout structure."""
    files = rollout_files(files)
    try:
        if html is None:
            result = summarize(files, success_threshold=success_threshold)
        else:
            result, charts = collect(files, success_threshold=success_threshold)
    except RolloutFileError as exc:
        Console(stderr=True).print(Text.assemble(("error: ", "red"), str(exc)), soft_wrap=True)
        raise typer.Exit(2) from None
    if html is not None:
        try:
            write_html(result, charts, html)
        except OSError as exc:
            Console(stderr=True).print(
                Text.assemble(("error: ", "red"), f"cannot write {html}: {exc}"), soft_wrap=True
            )
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    console = Console()
    console.print(
        Text(
            f"{result.rollouts} rollouts from {len(result.files)} file(s). success = scored "
            f"and reward ≥ {result.success_threshold:g}; a failed rollout counts as "
            "unsuccessful in its group. pass@k/pass^k average the groups (same group_id; "
            "none = a group of one) with ≥ k rollouts. Reward: mean ± standard error over "
            "scored rollouts. Tokens: mean per rollout. Latency: wall seconds, linear "
            "interpolation."
        )
    )
    for title, label, rows in _groupings(result):
        console.print(_table(title, label, rows))


def _groupings(result: Report) -> list[tuple[str, str, dict[str, Summary]]]:
    return [
        ("overall", "", {"all": result.overall}),
        ("by environment", "environment", result.by_env),
        (
            "by core capability (a rollout counts under each it claims)",
            "capability",
            result.by_capability,
        ),
        ("by rollout structure", "structure", result.by_structure),
    ]


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(title: str, label: str, rows: dict[str, Summary]) -> Table:
    ks = sorted({p.k for s in rows.values() for p in s.pass_k})
    table = Table(title=title, title_justify="left")
    table.add_column(label, no_wrap=True)
    for column in ("rollouts", "scored", "failed", "reward"):
        table.add_column(column, justify="right")
    for k in ks:
        table.add_column(f"pass@{k}", justify="right")
        if k > 1:  # pass^1 is pass@1
            table.add_column(f"pass^{k}", justify="right")
    table.add_column("failures", overflow="fold")
    for column in ("prompt tok", "compl. tok", "user tok", "p50 s", "p95 s", "p99 s"):
        table.add_column(column, justify="right")
    for name, s in rows.items():
        by_k = {p.k: p for p in s.pass_k}
        passes: list[str] = []
        for k in ks:
            p = by_k.get(k)
            passes.append("—" if p is None else f"{p.pass_at_k:.3f}")
            if k > 1:
                passes.append("—" if p is None else f"{p.pass_hat_k:.3f}")
        reward = (
            "—" if s.reward_mean is None else f"{s.reward_mean:.3f} ± {_number(s.reward_stderr)}"
        )
        failures = ", ".join(f"{kind} {count}" for kind, count in s.failures.items()) or "—"
        cells = [
            name,
            str(s.rollouts),
            str(s.scored),
            str(s.failed),
            reward,
            *passes,
            failures,
            _number(s.tokens.prompt.mean, 1),
            _number(s.tokens.completion.mean, 1),
            _number(s.tokens.user.mean, 1),
            _number(s.latency_s.p50),
            _number(s.latency_s.p95),
            _number(s.latency_s.p99),
        ]
        table.add_row(*(Text(cell) for cell in cells))
    return table
