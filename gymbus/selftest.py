"""The end-to-end self-test behind ``gymbus test``: an environment is proven solvable
(the oracle scores 1.0 through the protocol), not trivially solvable (the null model
scores 0.0), deterministic (the same seed gives a byte-identical task) and correctly
described (its metadata validates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from gymbus.adapters import NullModel, OracleModel
from gymbus.collection import run
from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.registry import validate_environment_class
from gymbus.runtime.errors import GymbusError
from gymbus.runtime.model import Model

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)


@dataclass(frozen=True, slots=True)
class Check:
    env: str
    name: str
    ok: bool
    detail: str


async def self_test(
    cls: type[Environment],
    *,
    seeds: int = 20,
    difficulties: Sequence[Difficulty] = DIFFICULTIES,
    concurrency: int = 32,
) -> list[Check]:
    """Run every check for one environment class; never raises for a failing check."""
    name = cls.name
    checks: list[Check] = []
    try:
        validate_environment_class(cls)
        checks.append(Check(name, "metadata", True, "valid on five dimensions"))
    except GymbusError as exc:
        return [Check(name, "metadata", False, str(exc))]
    for difficulty in difficulties:
        try:
            env = cls(difficulty=difficulty)
        except Exception as exc:
            checks.append(Check(name, f"{difficulty}: create", False, repr(exc)))
            continue
        async with env:  # closes what it holds across episodes (a shared MCP server)
            checks.append(_determinism(env, difficulty, seeds))
            checks.append(await _expect(env, difficulty, OracleModel(), 1.0, seeds, concurrency))
            checks.append(await _expect(env, difficulty, NullModel(), 0.0, seeds, concurrency))
    return checks


def _determinism(env: Environment, difficulty: str, seeds: int) -> Check:
    label = f"{difficulty}: determinism"
    try:
        first = [env.task(seed).model_dump_json() for seed in range(seeds)]
        second = [env.task(seed).model_dump_json() for seed in range(seeds)]
    except Exception as exc:
        return Check(env.name, label, False, f"task generation raised {exc!r}")
    changed = [seed for seed, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
    if changed:
        return Check(env.name, label, False, f"seeds {changed[:5]} gave different tasks")
    distinct = len(set(first))
    if seeds > 1 and distinct < 2:
        return Check(env.name, label, False, "every seed gave the same task")
    return Check(env.name, label, True, f"{seeds} seeds byte-identical, {distinct} distinct")


async def _expect(
    env: Environment,
    difficulty: str,
    model: Model,
    reward: float,
    seeds: int,
    concurrency: int,
) -> Check:
    label = f"{difficulty}: {model.name} scores {reward:g}"
    rollouts = await run(env, model, n=seeds, concurrency=concurrency)
    bad = [r for r in rollouts if r.status != "scored" or r.reward != reward]
    if not bad:
        return Check(env.name, label, True, f"{len(rollouts)}/{len(rollouts)} episodes")
    worst = bad[0]
    why = (
        f"failed ({worst.failure.kind}): {worst.failure.message}"
        if worst.failure
        else f"reward {worst.reward}, evidence {worst.evidence}"
    )
    return Check(
        env.name, label, False, f"{len(bad)}/{len(rollouts)} wrong; e.g. {worst.task_id}: {why}"
    )
