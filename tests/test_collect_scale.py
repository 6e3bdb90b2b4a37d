"""10,000 episodes over three environments in one process: every one accounted for."""

from __future__ import annotations

from collections import Counter

import pytest

import gymbus
from gymbus.plan import plan_jobs, plan_tasks

pytestmark = pytest.mark.anyio


async def test_ten_thousand_episodes_over_three_environments() -> None:
    names = ("retail-orders", "ledger-signs", "constrained-writing")
    envs = {name: gymbus.envs.load(name, difficulty="easy") for name in names}
    tasks = plan_tasks(dict.fromkeys(names, 1.0), 2500, seed=11)
    jobs = list(plan_jobs(envs, tasks, group_size=4))
    assert len(jobs) == 10_000
    statuses: Counter[str] = Counter()
    seen: set[str] = set()
    async with gymbus.Runtime(gymbus.OracleModel(), concurrency=512) as rt:
        async for group in rt.collect_groups(jobs):
            assert len(group) == 4
            for rollout in group:
                statuses[rollout.status] += 1
                seen.add(rollout.episode_id)
                assert rollout.reward == 1.0, rollout.evidence
    assert len(seen) == 10_000
    assert statuses == {"scored": 10_000}
