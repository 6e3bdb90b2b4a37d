"""The trainer-facing API: GRPO groups, weight versions and staleness, per-environment
limits, leaving early."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import replace

import anyio
import pytest

from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tools import Toolbox

from .toy import CallModel, FnModel, jobs

pytestmark = pytest.mark.anyio


def grouped(tasks: int, size: int, **kwargs: object) -> list[EpisodeJob]:
    base = jobs(tasks, **kwargs)
    return [
        replace(job, sample=s, episode_id=f"{job.episode_id}#{s}", group_id=f"g{job.seed}",
                group_size=size)
        for job in base
        for s in range(size)
    ]  # fmt: skip


async def test_groups_come_out_whole_and_in_sample_order() -> None:
    async with Runtime(CallModel(), concurrency=5) as rt:
        groups = [g async for g in rt.collect_groups(grouped(12, 4))]
    assert len(groups) == 12
    for group in groups:
        assert [r.sample for r in group] == [0, 1, 2, 3]
        assert len({r.group_id for r in group}) == 1
        assert all(r.group_size == 4 and r.reward == 1.0 for r in group)


async def test_every_turn_records_the_weight_version_current_when_it_was_sampled() -> None:
    seen: list[int | None] = []
    runtime = Runtime(CallModel(), concurrency=1)

    class Recording(CallModel):
        async def generate(self, request: ModelRequest) -> AssistantMessage:
            seen.append(request.weight_version)
            runtime.weight_version = (runtime.weight_version or 0) + 1  # the trainer moves on
            return await super().generate(request)

    runtime.model = Recording()
    async with runtime as rt:
        rt.weight_version = 7
        [rollout] = await rt.run(jobs(1))
    assert seen == [7, 8]
    versions = [m.generation.weight_version for m in rollout.messages
                if isinstance(m, AssistantMessage) and m.generation]  # fmt: skip
    assert versions == ["7", "8"]


@pytest.mark.parametrize("policy", ["drop", "rerun"])
async def test_stale_episodes_are_dropped_or_rerun(policy: str) -> None:
    runtime = Runtime(CallModel(), concurrency=4, max_staleness=2, on_stale=policy)  # type: ignore[arg-type]
    first_calls = 0
    published = anyio.Event()

    class Trainer(CallModel):
        async def generate(self, request: ModelRequest) -> AssistantMessage:
            nonlocal first_calls
            if request.weight_version == 1:
                first_calls += 1
                if first_calls == 4:  # four episodes are under way at version 1 …
                    runtime.weight_version = 5  # … when the trainer publishes version 5
                    published.set()
                await published.wait()
            return await super().generate(request)

    runtime.model = Trainer()
    async with runtime as rt:
        rt.weight_version = 1
        groups = [g async for g in rt.collect_groups(grouped(6, 2))]
    kept = [r for g in groups for r in g]
    if policy == "drop":
        assert rt.stats.stale_dropped == 4
        assert len(kept) == 12 - 4  # their groups shrink
    else:
        assert rt.stats.stale_reruns == 4
        assert rt.stats.stale_dropped == 0
        assert len(kept) == 12
    assert all(r.reward == 1.0 for r in kept)
    assert all(
        int(m.generation.weight_version or 0) >= 3
        for r in kept
        for m in r.messages
        if isinstance(m, AssistantMessage) and m.generation
    )


async def test_per_environment_limits_hold_under_the_global_budget() -> None:
    in_flight = peak = 0
    release = anyio.Event()

    async def slow(request: ModelRequest) -> AssistantMessage:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= 2:
            release.set()
        await release.wait()
        in_flight -= 1
        return AssistantMessage(content=str(request.episode.seed + 1))

    async with Runtime(FnModel(slow), concurrency=10, env_concurrency={"toy": 2}) as rt:
        rollouts = await rt.run(jobs(20, tools=Toolbox()))
    assert len(rollouts) == 20
    assert peak == 2


async def test_leaving_collect_groups_early_cancels_cleanly() -> None:
    before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    async with (
        Runtime(CallModel(), concurrency=8) as rt,
        aclosing(rt.collect_groups(grouped(500, 2))) as groups,
    ):
        async for _ in groups:
            break
    after = {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}
    assert after <= before
