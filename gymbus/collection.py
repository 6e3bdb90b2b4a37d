"""Compose environments, models and the runtime: jobs from seeds, and a one-call run."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Iterable, Iterator

from gymbus.envs.base import Environment
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.model import Model, SamplingParams
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.runtime import Runtime


def _build(env: Environment, seed: int) -> EpisodeSpec | Awaitable[EpisodeSpec]:
    return env.episode(env.task(seed))  # the runtime awaits an `async def episode`


def episode_jobs(
    env: Environment, seeds: Iterable[int], *, samples: int = 1
) -> Iterator[EpisodeJob]:
    """One job per (seed, sample); tasks are generated lazily when each episode starts.
    Episode ids are deterministic: ``{task_id}#{sample}``."""
    for seed in seeds:
        for sample in range(samples):
            yield EpisodeJob(
                env=env.name,
                seed=seed,
                sample=sample,
                build=functools.partial(_build, env, seed),
                episode_id=f"{env.name}/{seed}#{sample}",
                group_id=f"{env.name}/{seed}",
                group_size=samples,
            )


async def run(
    env: Environment,
    model: Model,
    *,
    n: int,
    seed: int = 0,
    concurrency: int = 64,
    params: SamplingParams | None = None,
) -> list[Rollout]:
    """Play ``n`` tasks of ``env`` (seeds ``seed … seed+n-1``) and return the rollouts in
    completion order. For streaming, use :meth:`Runtime.collect` with
    :func:`episode_jobs` inside ``async with Runtime(...)``."""
    async with Runtime(model, concurrency=concurrency, params=params) as runtime:
        return await runtime.run(episode_jobs(env, range(seed, seed + n)))
