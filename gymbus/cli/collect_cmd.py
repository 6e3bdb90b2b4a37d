"""``gymbus collect``: many environments at once, GRPO groups, a streaming JSONL sink that
survives crashes (``--resume`` schedules exactly the missing episodes), live progress.
``--backend ray`` plays the same plan on Ray workers (:mod:`gymbus.ray_backend`)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import structlog
import typer
from rich.console import Console

from gymbus.adapters import HTTPClient, RetryPolicy
from gymbus.collect_config import CollectConfig, EnvEntry, load_config, parse_env_option
from gymbus.envs.base import Environment
from gymbus.envs.registry import load
from gymbus.models import make_model
from gymbus.plan import EpisodeKey, plan_jobs, plan_tasks
from gymbus.progress import CollectProgress
from gymbus.runtime.errors import ConfigError, InputError, leaf_errors
from gymbus.runtime.model import Model
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.sink import RolloutSink, read_rollouts

log = structlog.get_logger("gymbus.collect")


def collect(
    env: Annotated[
        list[str] | None, typer.Option("--env", help="NAME or NAME=WEIGHT (repeatable)")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="a TOML collection config")] = None,
    model: Annotated[str | None, typer.Option(help="oracle | null | openai:MODEL")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server")] = None,
    api: Annotated[str | None, typer.Option(help="chat | responses")] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="number of tasks")] = None,
    group_size: Annotated[
        int | None, typer.Option(min=1, help="rollouts per task, kept together")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="episodes in flight, all environments")
    ] = None,
    env_concurrency: Annotated[
        list[str] | None, typer.Option(help="NAME=N: at most N episodes of NAME in flight")
    ] = None,
    model_concurrency: Annotated[
        int | None, typer.Option(min=1, help="model calls in flight")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="first task seed of every environment")] = None,
    out: Annotated[
        Path | None, typer.Option(help="the rollout JSONL file (media to OUT.media/)")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="keep OUT and schedule only the episodes it lacks")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="no live progress")] = False,
    backend: Annotated[
        str, typer.Option(help="local (this process) | ray (Ray workers; gymbus[ray])")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="with --backend ray: auto | HOST:PORT of a running Ray cluster"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="with --backend ray: Ray workers (default: the cluster's CPUs)"),
    ] = None,
) -> None:
    """Collect rollouts from several environments at once into one JSONL file."""
    err = Console(stderr=True)
    try:
        cfg = _merge(
            load_config(config) if config else CollectConfig(),
            env=env,
            model=model,
            base_url=base_url,
            api=api,
            n=n,
            group_size=group_size,
            concurrency=concurrency,
            env_concurrency=env_concurrency,
            model_concurrency=model_concurrency,
            seed=seed,
            out=out,
        )
        if backend not in ("local", "ray"):
            raise ConfigError(f"--backend {backend!r}: use 'local' or 'ray'")
        if backend == "local" and (address is not None or workers is not None):
            raise ConfigError("--address and --workers go with --backend ray")
        if cfg.out is None:
            raise ConfigError("say where to write: --out FILE.jsonl (or out = … in the config)")
        if not cfg.envs:
            raise ConfigError("no environment: pass --env NAME[=WEIGHT] or a config with [envs]")
        if cfg.out.exists() and cfg.out.stat().st_size > 0 and not resume:
            raise ConfigError(f"{cfg.out} exists; pass --resume to continue it, or another --out")
        done = _done(cfg.out) if resume and cfg.out.exists() else set()
        client = HTTPClient()
        envs = {name: _environment(name, entry) for name, entry in cfg.envs.items()}
        policy = make_model(
            cfg.model,
            base_url=cfg.base_url,
            api=cfg.api,
            api_key_env=cfg.api_key_env,
            client=client,
            retry=RetryPolicy(max_attempts=cfg.max_attempts),
            request_timeout=cfg.request_timeout,
        )
    except InputError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    show = not quiet and sys.stderr.isatty()
    try:
        if backend == "ray":
            progress = _collect_on_ray(cfg, done, address, workers, err if show else None)
        else:
            progress = anyio.run(_collect, cfg, envs, policy, client, done, err if show else None)
    except* KeyboardInterrupt:
        err.print(f"interrupted; finished rollouts are in {cfg.out} — continue with --resume")
        raise typer.Exit(130) from None
    except* InputError as group:  # e.g. the media folder cannot be written
        for error in leaf_errors(group):
            err.print(f"[red]error:[/red] {error}")
        err.print(f"finished rollouts are in {cfg.out} — continue with --resume")
        raise typer.Exit(2) from None
    Console().print(progress.table("gymbus collect: done"))
    if progress.failed:
        raise typer.Exit(1)


def _collect_on_ray(
    cfg: CollectConfig,
    done: set[EpisodeKey],
    address: str | None,
    workers: int | None,
    console: Console | None,
) -> CollectProgress:
    try:  # an optional extra: gymbus[ray]
        from gymbus.ray_backend import WorkersLostError, collect_with_ray
    except ImportError as exc:
        Console(stderr=True).print(f"[red]error:[/red] --backend ray needs gymbus[ray] ({exc})")
        raise typer.Exit(2) from None
    try:
        return collect_with_ray(cfg, done, address=address, workers=workers, console=console)
    except InputError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except WorkersLostError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _merge(cfg: CollectConfig, **cli: Any) -> CollectConfig:
    """Command-line values override the config file's."""
    update: dict[str, Any] = {k: v for k, v in cli.items() if v is not None and k != "env"}
    envs = dict(cfg.envs)
    for value in cli.get("env") or []:
        name, weight = parse_env_option(value)
        previous = envs.get(name, EnvEntry())
        envs[name] = previous.model_copy(update={"weight": weight})
    for value in update.pop("env_concurrency", []) or []:
        name, _, limit = value.partition("=")
        if name not in envs or not limit.isdigit() or int(limit) < 1:
            raise ConfigError(f"--env-concurrency {value!r}: use NAME=N for a collected NAME")
        envs[name] = envs[name].model_copy(update={"concurrency": int(limit)})
    update["envs"] = envs
    return CollectConfig.model_validate({**cfg.model_dump(), **update})


def _environment(name: str, entry: EnvEntry) -> Environment:
    return load(name, difficulty=entry.difficulty, **entry.options)


@asynccontextmanager
async def _open(envs: Mapping[str, Environment]) -> AsyncIterator[None]:
    """Close every environment at the end (what it holds across episodes)."""
    async with AsyncExitStack() as stack:
        for env in envs.values():
            await stack.enter_async_context(env)
        yield


def _done(path: Path) -> set[EpisodeKey]:
    return {(r.env, r.seed, r.sample) for _, r in read_rollouts(path)}


async def _collect(
    cfg: CollectConfig,
    envs: dict[str, Environment],
    policy: Model,
    client: HTTPClient,
    done: set[EpisodeKey],
    console: Console | None,
) -> CollectProgress:
    assert cfg.out is not None
    tasks = plan_tasks({n: e.weight for n, e in cfg.envs.items()}, cfg.n, seed=cfg.seed)
    scheduled = dict.fromkeys(envs, 0)
    for task in tasks:
        scheduled[task.env] += cfg.group_size
    progress = CollectProgress(scheduled, console)
    for key in done:  # resumed episodes count as done
        if key[0] in progress.envs:
            progress.envs[key[0]].scheduled -= 1
    jobs = plan_jobs(
        envs,
        tasks,
        group_size=cfg.group_size,
        done=done,
        limits=cfg.limit_overrides(),
        on_start=progress.started,
    )
    log.info("collect.started", envs=list(envs), n=cfg.n, resumed=len(done), out=str(cfg.out))
    async with (
        client,
        _open(envs),
        Runtime(
            policy,
            concurrency=cfg.concurrency,
            model_concurrency=cfg.model_concurrency,
            env_concurrency={n: e.concurrency for n, e in cfg.envs.items() if e.concurrency},
            params=cfg.sampling,
        ) as runtime,
    ):
        with RolloutSink(cfg.out) as sink, progress:
            async for rollout in runtime.collect(jobs):
                sink.write(rollout)
                progress.add(rollout)
    log.info("collect.finished", written=sink.written, failed=progress.failed)
    return progress
