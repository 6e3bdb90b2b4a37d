"""Fault-injection run at scale: retail-orders episodes through a FaultyModelServer that
faults on a share of requests (every kind alike), the reference solver playing through
it. Prints what the server did (outcomes, faults by kind), how the episodes ended
(scored by reward, failed by cause) and the wall and CPU time; exits 1 if an episode
ended in a way the fault model does not allow (see tests/test_fault_injection.py).

    python benchmarks/fault_injection.py                          # 20,000 episodes, 15%
    python benchmarks/fault_injection.py --n 50000 --fault-rate 0.3 --concurrency 256
    python benchmarks/fault_injection.py --api responses --json
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import time
from collections import Counter
from typing import Any

import anyio
import orjson

import gymbus
from gymbus.adapters import (
    FaultPlan,
    FaultyModelServer,
    HTTPClient,
    OpenAIChat,
    OpenAIResponses,
    RetryPolicy,
    solver_policy,
)
from gymbus.envs.builtin.retail_orders import RetailOrdersSolver
from gymbus.runtime.rollout import Rollout

CAUSES = {  # a failure's cause → the pattern of its message
    "retries_exhausted": re.compile(r"failed after \d+ attempt\(s\)"),
    "invalid_json": re.compile(r"returned a body that is not JSON"),
    "missing_choices": re.compile(r"has no '(choices|output)'"),
    "no_message": re.compile(r"has no 'choices\[0\]\.message'|unknown role None"),
}


def outcome_of(rollout: Rollout, oversize_chars: int) -> str:
    """``scored <reward>`` (``, oversize answer`` when the answer was lost in one) or
    ``failed <kind>: <cause>``."""
    if rollout.failure is None:
        oversize = len(rollout.messages[-1].text) == oversize_chars
        return f"scored {rollout.reward}" + (", oversize answer" if oversize else "")
    message = rollout.failure.message
    cause = next((c for c, p in CAUSES.items() if p.search(message)), "other")
    return f"failed {rollout.failure.kind}: {cause}"


def allowed(outcome: str) -> bool:
    """Failures are model failures of a known cause; a scored episode earns 1.0 unless
    an oversize reply swallowed its answer."""
    return outcome in ("scored 1.0", "scored 0.0, oversize answer") or (
        outcome.startswith("failed model: ") and not outcome.endswith("other")
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = gymbus.envs.load("retail-orders", difficulty=args.difficulty)
    plan = FaultPlan.uniform(args.fault_rate, oversize_chars=args.oversize_chars)
    retry = RetryPolicy(max_attempts=args.attempts, base_delay=0.001, max_delay=0.01)
    outcomes: Counter[str] = Counter()
    wall, cpu = time.perf_counter(), time.process_time()
    policy = solver_policy(RetailOrdersSolver)
    async with (
        FaultyModelServer(policy=policy, faults=plan, seed=args.seed) as server,
        HTTPClient(retry=retry, timeout=args.timeout) as client,
    ):
        cls = OpenAIChat if args.api == "chat" else OpenAIResponses
        model = cls("faulty-model", base_url=server.base_url, client=client, api_key_env=None)
        async with gymbus.Runtime(model, concurrency=args.concurrency) as rt:
            async for rollout in rt.collect(gymbus.episode_jobs(env, range(args.n))):
                outcomes[outcome_of(rollout, args.oversize_chars)] += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    counts = server.counts
    return {
        "episodes": args.n,
        "fault_rate": args.fault_rate,
        "concurrency": args.concurrency,
        "api": args.api,
        "requests": counts.requests,
        "server_outcomes": dict(counts.outcomes.most_common()),
        "faults": dict(counts.faults.most_common()),
        "episode_outcomes": dict(outcomes.most_common()),
        "unexpected": sum(n for o, n in outcomes.items() if not allowed(o)),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "episodes_per_s": round(args.n / wall, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['episodes']} episodes ({result['api']}), fault rate {result['fault_rate']}, "
        f"concurrency {result['concurrency']}: {result['requests']} requests"
    )
    for title in ("server_outcomes", "faults", "episode_outcomes"):
        print(f"\n{title.replace('_', ' ')}:")
        for name, count in result[title].items():
            print(f"  {count:>8}  {name}")
    print(
        f"\nwall {result['wall_s']} s, CPU {result['cpu_s']} s (client and server, one "
        f"process), {result['episodes_per_s']} episodes/s, max RSS {result['max_rss_mb']} MB"
    )
    if result["unexpected"]:
        print(f"UNEXPECTED: {result['unexpected']} episodes ended in a way faults cannot explain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="episodes")
    parser.add_argument("--fault-rate", type=float, default=0.15)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds per request")
    parser.add_argument("--attempts", type=int, default=3, help="attempts per model call")
    parser.add_argument("--oversize-chars", type=int, default=1 << 16)
    parser.add_argument("--difficulty", default="easy")
    parser.add_argument("--api", choices=("chat", "responses"), default="chat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    gymbus.configure_logging(level="warning")  # retries are debug events: not in the table
    result = anyio.run(run, args)
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        print_table(result)
    sys.exit(1 if result["unexpected"] else 0)


if __name__ == "__main__":
    main()
