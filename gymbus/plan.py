"""Collection plans: which (environment, task seed, sample) episodes a run schedules.

A plan is deterministic in its inputs — environments and weights, ``n`` tasks, group
size ``K`` and ``seed`` — so that ``--resume`` can recompute it and schedule exactly the
episodes the file does not hold yet. Tasks are apportioned to environments by weight
(largest remainder: counts are within one task of ``n * weight``), the environments are
interleaved by a seeded shuffle so every stretch of the run mixes them, and the K
samples of a task are scheduled together (a GRPO group, ``group_id = env/seed``).
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace

from gymbus.envs.base import Environment
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.limits import Limits

EpisodeKey = tuple[str, int, int]
"""(environment, task seed, sample): the identity of a scheduled episode."""


def allocate(weights: Mapping[str, float], n: int) -> dict[str, int]:
    """Split ``n`` tasks by weight with the largest-remainder method (ties by name)."""
    if n < 0:
        raise ConfigError(f"n must not be negative, got {n}")
    if not weights:
        raise ConfigError("no environment to collect from")
    bad = {name: w for name, w in weights.items() if not (math.isfinite(w) and w > 0)}
    if bad:
        raise ConfigError(f"weights must be positive numbers: {bad}")
    total = sum(weights.values())
    quotas = {name: n * w / total for name, w in weights.items()}
    counts = {name: math.floor(q) for name, q in quotas.items()}
    left = n - sum(counts.values())
    by_remainder = sorted(quotas, key=lambda name: (counts[name] - quotas[name], name))
    for name in by_remainder[:left]:
        counts[name] += 1
    return counts


@dataclass(frozen=True, slots=True)
class PlannedTask:
    env: str
    seed: int


def plan_tasks(weights: Mapping[str, float], n: int, *, seed: int) -> list[PlannedTask]:
    """The run's tasks in schedule order: per-environment task seeds ``seed, seed+1, …``,
    environments interleaved by a shuffle seeded with ``seed``."""
    counts = allocate(weights, n)
    order = [name for name in sorted(counts) for _ in range(counts[name])]
    random.Random(f"plan:{seed}").shuffle(order)
    next_seed = dict.fromkeys(counts, seed)
    tasks = []
    for name in order:
        tasks.append(PlannedTask(name, next_seed[name]))
        next_seed[name] += 1
    return tasks


def plan_jobs(
    envs: Mapping[str, Environment],
    tasks: list[PlannedTask],
    *,
    group_size: int,
    done: Collection[EpisodeKey] = frozenset(),
    limits: Mapping[str, object] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> Iterator[EpisodeJob]:
    """One job per (task, sample) not in ``done``, samples of a task together.

    ``limits`` overrides fields of every episode's :class:`Limits`; ``on_start(env)`` is
    called when an episode starts (its task is built), e.g. to count episodes in flight.
    """
    if group_size < 1:
        raise ConfigError(f"group size must be at least 1, got {group_size}")
    overrides = dict(limits or {})
    if overrides:
        Limits.model_validate(overrides)  # fail early on a bad field
    for task in tasks:
        env = envs[task.env]
        for sample in range(group_size):
            if (task.env, task.seed, sample) in done:
                continue
            yield EpisodeJob(
                env=task.env,
                seed=task.seed,
                sample=sample,
                build=_builder(env, task.seed, overrides, on_start),
                episode_id=f"{task.env}/{task.seed}#{sample}",
                group_id=f"{task.env}/{task.seed}",
                group_size=group_size,
            )


def _builder(
    env: Environment,
    seed: int,
    overrides: dict[str, object],
    on_start: Callable[[str], None] | None,
) -> Callable[[], EpisodeSpec | Awaitable[EpisodeSpec]]:
    def build() -> EpisodeSpec | Awaitable[EpisodeSpec]:
        if on_start is not None:
            on_start(env.name)
        built = env.episode(env.task(seed))
        if not overrides:
            return built
        if inspect.isawaitable(built):  # an `async def episode`
            return _overridden(built, overrides)
        return _override(built, overrides)

    return build


async def _overridden(built: Awaitable[EpisodeSpec], overrides: dict[str, object]) -> EpisodeSpec:
    return _override(await built, overrides)


def _override(spec: EpisodeSpec, overrides: dict[str, object]) -> EpisodeSpec:
    return replace(spec, limits=spec.limits.model_copy(update=overrides))
