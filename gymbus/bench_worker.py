"""One benchmark measurement, in a fresh process so that CPU time and peak RSS belong to
that measurement alone. Prints one JSON object.

    python -m gymbus.bench_worker gymbus|floor|scale WORKLOAD N CONCURRENCY URL
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from typing import Any

import aiohttp
import orjson

from gymbus.adapters import HTTPClient, OpenAIChat
from gymbus.bench_envs import BenchEnv, Workload
from gymbus.collection import episode_jobs
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage
from gymbus.runtime.model import EpisodeInfo, ModelRequest, SamplingParams
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.transcript import Transcript

WARMUP = 20


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(url: str, concurrency: int) -> tuple[HTTPClient, OpenAIChat]:
    client = HTTPClient(connector_limit=max(concurrency, 1))
    return client, OpenAIChat("bench", base_url=url, client=client, api_key_env=None)


async def run_gymbus(workload: Workload, n: int, concurrency: int, url: str) -> dict[str, Any]:
    env = BenchEnv(workload)
    client, model = _model(url, concurrency)
    async with client, Runtime(model, concurrency=concurrency) as rt:
        await rt.run(episode_jobs(env, range(10**6, 10**6 + WARMUP)))
        cpu, wall = time.process_time(), time.perf_counter()
        rollouts = await rt.run(episode_jobs(env, range(n)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rewards = [r.reward for r in rollouts]
    return {
        "rollouts": len(rollouts),
        "all_correct": rewards == [1.0] * n,
        "cpu_ms_per_rollout": cpu / n * 1e3,
        "rollouts_per_s": n / wall,
        "peak_rss_mb": _rss_mb(),
    }


def _bodies(workload: Workload, model: OpenAIChat) -> list[bytes]:
    """The request bodies gymbus sends for one episode, built once for the floor."""
    env = BenchEnv(workload)
    spec = env.episode(env.task(0))
    conversation = Transcript(spec.messages)
    info = EpisodeInfo("floor", "bench", "bench/0", 0)
    bodies = []
    for step in range(1, 4 if workload == "tools3" else 1):
        bodies.append(
            model.request_body(ModelRequest(conversation, spec.tools.specs, SamplingParams(), info))
        )
        call = ToolCall(
            id=f"call_{step}", name=f"step{step}", arguments=f'{{"key": "k{step - 1}"}}'
        )
        result = ToolMessage(tool_call_id=call.id, name=call.name, content=f"k{step}")
        conversation = conversation.append(AssistantMessage(tool_calls=(call,)), result)
    bodies.append(
        model.request_body(ModelRequest(conversation, spec.tools.specs, SamplingParams(), info))
    )
    return bodies


async def run_floor(workload: Workload, n: int, concurrency: int, url: str) -> dict[str, Any]:
    """The physical floor: a bare aiohttp client making the same calls, same concurrency."""
    _, model = _model(url, concurrency)
    bodies = _bodies(workload, model)
    endpoint = url + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        slots = asyncio.Semaphore(concurrency)

        async def rollout() -> None:
            async with slots:
                for body in bodies:
                    async with session.post(endpoint, data=body, headers=headers) as response:
                        orjson.loads(await response.read())

        await asyncio.gather(*(rollout() for _ in range(WARMUP)))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(rollout() for _ in range(n)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "rollouts": n,
        "cpu_ms_per_rollout": cpu / n * 1e3,
        "rollouts_per_s": n / wall,
        "peak_rss_mb": _rss_mb(),
    }


async def run_scale(workload: Workload, n: int, concurrency: int, url: str) -> dict[str, Any]:
    """``n`` episodes all in flight at once (the server delays each reply): memory per
    in-flight episode and event-loop lag."""
    env = BenchEnv(workload)
    client, model = _model(url, n)
    lags: list[float] = []
    stop = asyncio.Event()

    async def monitor() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async with client, Runtime(model, concurrency=n, model_concurrency=n) as rt:
        await rt.run(episode_jobs(env, range(10**6, 10**6 + WARMUP)))
        base = _rss_mb()
        watcher = asyncio.ensure_future(monitor())
        wall = time.perf_counter()
        rollouts = await rt.run(episode_jobs(env, range(n)))
        wall = time.perf_counter() - wall
        stop.set()
        await watcher
    lags.sort()
    return {
        "episodes_in_flight": n,
        "all_correct": all(r.reward == 1.0 for r in rollouts) and len(rollouts) == n,
        "wall_s": wall,
        "rss_growth_mb": _rss_mb() - base,
        "kb_per_episode": (_rss_mb() - base) * 1024 / n,
        "loop_lag_p99_ms": lags[int(0.99 * (len(lags) - 1))] * 1e3 if lags else None,
        "loop_lag_median_ms": statistics.median(lags) * 1e3 if lags else None,
    }


def main() -> None:
    mode, workload, n, concurrency, url = sys.argv[1:6]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runner = {"gymbus": run_gymbus, "floor": run_floor, "scale": run_scale}[mode]
    result = asyncio.run(runner(workload, int(n), int(concurrency), url))  # type: ignore[arg-type]
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
