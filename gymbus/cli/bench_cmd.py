"""``gymbus bench``: gymbus against a bare aiohttp floor, side by side in one run."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console

from gymbus.bench import compare, scale, table
from gymbus.bench_envs import WORKLOADS, Workload


def bench(
    workload: Annotated[str, typer.Option(help="single | tools3 | all")] = "all",
    n: Annotated[int, typer.Option("--n", min=1, help="rollouts per measurement")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, help="rollouts in flight")] = 64,
    repeat: Annotated[int, typer.Option(min=1, help="repeats (the median is reported)")] = 3,
    scale_episodes: Annotated[
        int, typer.Option("--scale", min=0, help="episodes in flight for the scale test (0: skip)")
    ] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Client CPU per rollout, throughput and peak RSS of gymbus vs the floor (ratios),
    and memory per in-flight episode / event-loop lag with many episodes in flight."""
    if workload != "all" and workload not in WORKLOADS:
        raise typer.BadParameter("use single, tools3 or all", param_hint="--workload")
    chosen: list[Workload] = list(WORKLOADS) if workload == "all" else [workload]  # type: ignore[list-item]
    result = {"workloads": compare(chosen, n, concurrency, repeat)}
    if scale_episodes:
        result["scale"] = scale(scale_episodes)
    if as_json:
        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        Console().print(table(result), markup=False)
