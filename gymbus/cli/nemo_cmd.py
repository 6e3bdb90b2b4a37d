"""``gymbus nemo``: play NeMo Gym tasks against a resources server, and write gymbus
rollouts in NeMo Gym's rollout layout."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import anyio
import structlog
import typer
from rich.console import Console
from rich.markup import escape

from gymbus.adapters import HTTPClient, RetryPolicy
from gymbus.adapters.http import safe_url
from gymbus.cli.summary import RunSummary
from gymbus.models import make_model
from gymbus.nemo_gym import export_rollouts, read_tasks
from gymbus.nemo_gym_env import NeMoGymResourcesEnv
from gymbus.runtime.errors import InputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.model import SamplingParams
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.sink import RolloutSink

log = structlog.get_logger("gymbus.nemo")

nemo_app = typer.Typer(
    help="NeMo Gym interoperability: its task files, resources servers and rollout files.",
    no_args_is_help=True,
)


@nemo_app.command("run")
def run(
    tasks: Annotated[Path, typer.Argument(help="a NeMo Gym task JSONL file")],
    server: Annotated[str, typer.Option(help="the resources server, e.g. http://127.0.0.1:8000")],
    model: Annotated[str, typer.Option(help="openai:MODEL (oracle/null work, but score nothing)")],
    out: Annotated[Path, typer.Option(help="write one gymbus rollout per line")],
    env: Annotated[
        str | None, typer.Option(help="environment name (default: the file's folder)")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible model server")] = None,
    api: Annotated[str, typer.Option(help="chat | responses")] = "responses",
    api_key_env: Annotated[
        str, typer.Option(help="environment variable holding the API key")
    ] = "OPENAI_API_KEY",
    samples: Annotated[int, typer.Option(min=1, help="rollouts per task (one group)")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N tasks")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="episodes in flight")] = 32,
    max_turns: Annotated[int, typer.Option(min=1, help="model calls per episode")] = 32,
    max_attempts: Annotated[int, typer.Option(min=1, help="attempts per model request")] = 5,
    request_timeout: Annotated[
        float, typer.Option(min=0.001, help="seconds per model or server request")
    ] = 120.0,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="max tokens per model call")] = None,
) -> None:
    """Play TASKS on a NeMo Gym resources server with MODEL; write gymbus rollouts.

    Exit 1 if any episode failed, 2 on bad input.
    """
    console, err = Console(), Console(stderr=True)
    if api not in ("chat", "responses"):
        raise typer.BadParameter("use 'chat' or 'responses'", param_hint="--api")
    try:
        chosen = read_tasks(tasks, env=env)[:limit]
        environment = NeMoGymResourcesEnv(
            chosen,
            server,
            limits=Limits(max_turns=max_turns, max_parallel_tool_calls=1),
            request_timeout=request_timeout,
        )
        client = HTTPClient()
        policy = make_model(
            model,
            base_url=base_url,
            api=api,  # type: ignore[arg-type]
            api_key_env=api_key_env,
            client=client,
            retry=RetryPolicy(max_attempts=max_attempts),
            request_timeout=request_timeout,
        )
    except (InputError, OSError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    started = time.perf_counter()

    async def play() -> RunSummary:
        summary = RunSummary()
        log.info("nemo.run.started", tasks=len(chosen), samples=samples, server=safe_url(server))
        async with (
            client,
            environment,
            Runtime(policy, concurrency=concurrency, params=params) as rt,
        ):
            with RolloutSink(out) as sink:
                async for rollout in rt.collect(environment.jobs(samples=samples)):
                    summary.add(rollout)
                    sink.write(rollout)
                    if rollout.failure is not None:
                        log.warning(
                            "episode.failed",
                            episode_id=rollout.episode_id,
                            kind=rollout.failure.kind,
                            cause=rollout.failure.message,
                        )
        log.info("nemo.run.finished", episodes=summary.episodes, failed=summary.failed)
        return summary

    out.unlink(missing_ok=True)
    summary = anyio.run(play)
    name = chosen[0].task.env if chosen else str(tasks)
    summary.print(console, env=name, model=model, wall_s=time.perf_counter() - started)
    console.print(f"wrote {summary.episodes} rollouts to {out}")
    if summary.failed:
        raise typer.Exit(1)


@nemo_app.command("export-rollouts")
def export(
    rollouts: Annotated[Path, typer.Argument(help="a gymbus rollout JSONL file")],
    tasks: Annotated[Path, typer.Option(help="the NeMo Gym task file they were played on")],
    out: Annotated[Path, typer.Option(help="the NeMo Gym rollout JSONL file to write")],
) -> None:
    """Write gymbus ROLLOUTS as NeMo Gym rollout lines (failed episodes are left out)."""
    console, err = Console(), Console(stderr=True)
    try:
        result = export_rollouts(rollouts, tasks, out)
    except (InputError, OSError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    skipped = f" (left out {result.skipped_failed} failed)" if result.skipped_failed else ""
    console.print(f"wrote {result.written} NeMo Gym rollouts to {out}{skipped}")
