"""An async RL trainer loop on gymbus: collect GRPO groups from two environments,
compute group-normalized advantages, write one training batch per step.

Runs offline: the "policy" is each environment's reference solver that answers wrong
about half the time (seeded), so groups have mixed rewards. Swap in
``gymbus.OpenAIChat(model=..., base_url=..., params=SamplingParams(logprobs=True,
return_token_ids=True))`` to train on a real server: then every rollout also carries
token ids, logprobs and the trainable mask (``rollout.tokens()``).

    python examples/trainer_loop.py --steps 3 --tasks 16 --group-size 4 --out /tmp/batches
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path
from typing import Any

import anyio
import orjson

import gymbus
from gymbus.plan import plan_jobs, plan_tasks

WEIGHTS = {"retail-orders": 0.5, "ledger-signs": 0.5}


class HalfRightSolver:
    """The reference solver, except that about half its final answers are wrong."""

    name = "half-right-oracle"

    def __init__(self, p_wrong: float = 0.5) -> None:
        self.oracle = gymbus.OracleModel()
        self.p_wrong = p_wrong

    async def generate(self, request: gymbus.ModelRequest) -> gymbus.AssistantMessage:
        reply = await self.oracle.generate(request)
        if reply.tool_calls:
            return reply
        if random.Random(request.episode.episode_id).random() < self.p_wrong:
            return gymbus.AssistantMessage(content="It is 0.", generation=reply.generation)
        return reply


def advantages(group: tuple[gymbus.Rollout, ...]) -> list[float]:
    """GRPO: (reward - group mean) / group std (0 when all rewards are equal)."""
    rewards = [r.reward or 0.0 for r in group]
    mean = statistics.fmean(rewards)
    std = statistics.pstdev(rewards)
    return [0.0 if std == 0 else (reward - mean) / std for reward in rewards]


def sample(rollout: gymbus.Rollout, advantage: float) -> dict[str, Any]:
    tokens = rollout.tokens()  # None offline: the oracle returns no token ids
    return {
        "episode_id": rollout.episode_id,
        "env": rollout.env,
        "group_id": rollout.group_id,
        "reward": rollout.reward,
        "advantage": advantage,
        "messages": [m.model_dump(mode="json") for m in rollout.messages],
        "token_ids": tokens.token_ids if tokens else None,
        "trainable_mask": tokens.mask if tokens else None,
    }


async def train(steps: int, tasks: int, group_size: int, out: Path) -> None:
    envs = {name: gymbus.envs.load(name) for name in WEIGHTS}
    async with gymbus.Runtime(HalfRightSolver(), concurrency=64, max_staleness=1) as rt:
        for step in range(steps):
            rt.weight_version = step  # after each optimizer step, say which weights serve
            plan = plan_tasks(WEIGHTS, tasks, seed=step * tasks)  # fresh tasks each step
            batch: list[dict[str, Any]] = []
            async for group in rt.collect_groups(plan_jobs(envs, plan, group_size=group_size)):
                scored = tuple(r for r in group if r.status == "scored")  # drop infra failures
                if len(scored) < 2:
                    continue
                batch += [sample(r, a) for r, a in zip(scored, advantages(scored), strict=True)]
            path = out / f"step-{step:04d}.jsonl"
            await anyio.Path(path).write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in batch))
            mean = statistics.fmean(s["reward"] for s in batch) if batch else float("nan")
            informative = sum(1 for s in batch if s["advantage"] != 0.0)
            print(
                f"step {step}: {len(batch)} samples, mean reward {mean:.3f}, "
                f"{informative} with non-zero advantage -> {path}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=16, help="tasks per step")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("batches"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    anyio.run(train, args.steps, args.tasks, args.group_size, args.out)


if __name__ == "__main__":
    main()
