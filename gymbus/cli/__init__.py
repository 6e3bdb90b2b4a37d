"""The gymbus command line (typer + rich). Results go to stdout, logs to stderr."""

from __future__ import annotations

from typing import Annotated

import typer

from gymbus.cli.bench_cmd import bench
from gymbus.cli.collect_cmd import collect
from gymbus.cli.envs_cmd import envs
from gymbus.cli.init_cmd import init
from gymbus.cli.nemo_cmd import nemo_app
from gymbus.cli.report_cmd import report
from gymbus.cli.run_cmd import run
from gymbus.cli.selftest_cmd import selftest
from gymbus.cli.serve_cmd import serve
from gymbus.cli.view_cmd import view
from gymbus.runtime.logs import configure_logging

app = typer.Typer(
    name="gymbus",
    help="Async agent-environment runtime for RL rollouts and evaluations of LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    log_format: Annotated[
        str, typer.Option("--log-format", help="console (for people) or json (for machines)")
    ] = "console",
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning…")
    ] = "warning",
) -> None:
    try:
        configure_logging(log_format, log_level)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


app.command("envs")(envs)
app.command("run")(run)
app.command("collect")(collect)
app.command("bench")(bench)
app.command("test")(selftest)
app.command("init")(init)
app.command("report")(report)
app.command("serve")(serve)
app.command("view")(view)
app.add_typer(nemo_app, name="nemo")


def main() -> None:
    app()
