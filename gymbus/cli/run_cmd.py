"""``gymbus run ENV``: play N tasks of one environment with one model, write JSONL."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, get_args

import anyio
import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gymbus.adapters import HTTPClient, RetryPolicy
from gymbus.cli.summary import RunSummary
from gymbus.collection import episode_jobs
from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.registry import load
from gymbus.models import make_model
from gymbus.remote import RemoteEnv, remote_episode_jobs
from gymbus.runtime.errors import ConfigError, InputError, UnknownEnvironmentError, leaf_errors
from gymbus.runtime.model import Model, SamplingParams
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.sink import RolloutSink

log = structlog.get_logger("gymbus.run")


def run(
    env: Annotated[str, typer.Argument(help="environment name (see `gymbus envs`)")],
    model: Annotated[str, typer.Option(help="oracle | null | openai:MODEL")] = "oracle",
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    api: Annotated[str, typer.Option(help="chat | responses")] = "chat",
    api_key_env: Annotated[
        str, typer.Option(help="environment variable holding the API key")
    ] = "OPENAI_API_KEY",
    max_attempts: Annotated[
        int,
        typer.Option(
            min=1, help="attempts per model or environment request (429/5xx/connection errors)"
        ),
    ] = 5,
    request_timeout: Annotated[
        float, typer.Option(min=0.001, help="seconds per model HTTP request")
    ] = 120.0,
    user_model: Annotated[
        str | None,
        typer.Option(help="play the simulated user with this model (openai:MODEL)"),
    ] = None,
    user_base_url: Annotated[
        str | None, typer.Option(help="server of the user model (default: --base-url)")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="number of tasks")] = 10,
    seed: Annotated[int, typer.Option(help="first task seed (tasks use seed … seed+n-1)")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="episodes in flight")] = 32,
    difficulty: Annotated[str, typer.Option(help="easy | medium | hard")] = "medium",
    temperature: Annotated[float | None, typer.Option(help="sampling temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="max tokens per model call")] = None,
    out: Annotated[
        Path | None, typer.Option(help="write one JSON rollout per line (media to OUT.media/)")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    remote: Annotated[
        str | None,
        typer.Option(help="play ENV served by `gymbus serve` at this URL ($GYMBUS_SERVER_TOKEN)"),
    ] = None,
) -> None:
    """Play N tasks of ENV with MODEL; print a summary; exit 1 if any episode failed."""
    console = Console()
    err = Console(stderr=True)
    if api not in ("chat", "responses"):
        raise typer.BadParameter("use 'chat' or 'responses'", param_hint="--api")
    # one session for the policy, the user model and a remote environment
    client = HTTPClient(retry=RetryPolicy(max_attempts=max_attempts))
    if remote is not None:
        if user_model is not None:
            err.print("[red]error:[/red] --user-model cannot be used with --remote "
                      "(the served environment plays its own user)")  # fmt: skip
            raise typer.Exit(2)
        if difficulty not in get_args(Difficulty):
            raise typer.BadParameter("use easy, medium or hard", param_hint="--difficulty")
    options: dict[str, object] = {}
    if user_model is not None:
        try:
            options["user_model"] = make_model(
                user_model,
                base_url=user_base_url or base_url,
                api=api,  # type: ignore[arg-type]
                api_key_env=api_key_env,
                client=client,
                retry=RetryPolicy(max_attempts=max_attempts),
                request_timeout=request_timeout,
            )
        except ConfigError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    try:
        environment: Environment | RemoteEnv = (
            load(env, difficulty=difficulty, **options)
            if remote is None
            else RemoteEnv(remote, env, options={"difficulty": difficulty}, client=client)
        )
    except UnknownEnvironmentError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    show_progress = not quiet and sys.stderr.isatty()
    started = time.perf_counter()
    if out is not None:
        out.unlink(missing_ok=True)  # a new file (`gymbus collect --resume` continues one)
    try:
        summary = anyio.run(
            _collect,
            environment,
            client,
            lambda client: make_model(
                model,
                base_url=base_url,
                api=api,  # type: ignore[arg-type]
                api_key_env=api_key_env,
                client=client,
                retry=RetryPolicy(max_attempts=max_attempts),
                request_timeout=request_timeout,
            ),
            n,
            seed,
            concurrency,
            params,
            out,
            err if show_progress else None,
        )
    except* InputError as group:  # a remote env is checked here; media may fail to save
        for error in leaf_errors(group):
            err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    summary.print(console, env=env, model=model, wall_s=time.perf_counter() - started)
    if out is not None:
        console.print(f"wrote {summary.episodes} rollouts to {out}")
    if summary.failed:
        raise typer.Exit(1)


async def _collect(
    env: Environment | RemoteEnv,
    client: HTTPClient,
    make: Callable[[HTTPClient], Model],
    n: int,
    seed: int,
    concurrency: int,
    params: SamplingParams,
    out: Path | None,
    progress_console: Console | None,
) -> RunSummary:
    summary = RunSummary()
    with ExitStack() as files:
        sink: RolloutSink | None = None
        if out is not None:
            sink = files.enter_context(RolloutSink(out))  # the media go to OUT.media/
        async with client, env:  # the environment closes what it holds (an MCP server)
            model = make(client)
            if isinstance(env, RemoteEnv):
                await env.describe()  # the server serves it and accepts our token
                jobs = remote_episode_jobs(env, range(seed, seed + n))
            else:
                jobs = episode_jobs(env, range(seed, seed + n))
            log.info("run.started", env=env.name, model=model.name, n=n, seed=seed)
            async with Runtime(model, concurrency=concurrency, params=params) as runtime:
                progress = _progress(progress_console)
                with progress:
                    task = progress.add_task(env.name, total=n)
                    async for rollout in runtime.collect(jobs):
                        summary.add(rollout)
                        if rollout.failure is not None:
                            log.warning(
                                "episode.failed",
                                episode_id=rollout.episode_id,
                                kind=rollout.failure.kind,
                                cause=rollout.failure.message,
                            )
                        if sink is not None:
                            sink.write(rollout)
                        progress.update(task, advance=1)
    log.info(
        "run.finished",
        episodes=summary.episodes,
        failed=summary.failed,
        mean_reward=summary.mean_reward,
    )
    return summary


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
        transient=True,
    )
