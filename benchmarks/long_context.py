"""Long-context benchmark (ratios against a floor measured in the same run).

1. Per-turn client CPU versus context size: gymbus (`OpenAIChat.generate` on a growing
   transcript whose first message holds the long context) against a bare aiohttp POST of
   the *same bytes* to the same local server, which runs in its own process.
2. Memory of 100 concurrent 256k-token episodes (all requests in flight at once, the
   server holding each for 0.5 s) versus the payload (the request bodies' total size).

    python benchmarks/long_context.py                 # table
    python benchmarks/long_context.py --json          # one JSON object
    python benchmarks/long_context.py --sizes 8000,131072 --turns 5
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from gymbus.adapters import HTTPClient, OpenAIChat
from gymbus.envs.builtin.records_data import generate, render_prompt
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.runtime.model import EpisodeInfo, ModelRequest, SamplingParams
from gymbus.runtime.tokenizer import count_tokens
from gymbus.runtime.transcript import Transcript

HERE = Path(__file__).resolve().parent
INFO = EpisodeInfo("bench", "records-needle", "bench/0", 0)


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "mock_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        raise RuntimeError(f"mock server did not start: {line!r}")
    return process, f"http://127.0.0.1:{line.split()[1]}/v1"


def long_prompt(tokens: int, seed: int = 0) -> str:
    d = generate(seed, "hard", tokens)
    return render_prompt(d.records, d.field, d.badge, d.name, d.office)


def cpu() -> float:
    return time.process_time()


async def per_turn(base_url: str, tokens: int, turns: int) -> dict[str, Any]:
    prompt = long_prompt(tokens)
    conversation = Transcript([SystemMessage(content="Answer."), UserMessage(content=prompt)])
    async with HTTPClient() as client:
        model = OpenAIChat("mock", base_url=base_url, client=client, api_key_env=None)
        params = SamplingParams()

        def advance(c: Transcript, i: int) -> Transcript:
            return c.append(AssistantMessage(content=f"ok {i}"), UserMessage(content=f"next {i}"))

        await model.generate(ModelRequest(conversation, (), params, INFO))  # encode once
        bodies = []
        c = conversation
        for i in range(turns):
            c = advance(c, i)
            bodies.append(model.request_body(ModelRequest(c, (), params, INFO)))
        # gymbus: build the request from cached message bytes, POST, parse the reply
        c = conversation
        requests = []
        for i in range(turns):
            c = advance(c, i)
            requests.append(ModelRequest(c, (), params, INFO))
        start = cpu()
        for request in requests:
            await model.generate(request)
        gymbus_cpu = (cpu() - start) / turns
    # floor: the same bytes with a bare aiohttp session
    async with aiohttp.ClientSession() as session:
        url = base_url + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        start = cpu()
        for body in bodies:
            data = io.BytesIO(body) if len(body) > 1 << 20 else body
            async with session.post(url, data=data, headers=headers) as response:
                orjson.loads(await response.read())
        floor_cpu = (cpu() - start) / turns
    return {
        "context_tokens": count_tokens(prompt),
        "body_bytes": len(bodies[-1]),
        "gymbus_cpu_ms_per_turn": gymbus_cpu * 1e3,
        "floor_cpu_ms_per_turn": floor_cpu * 1e3,
        "ratio": gymbus_cpu / floor_cpu if floor_cpu else None,
    }


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def memory(base_url: str, episodes: int, tokens: int) -> dict[str, Any]:
    base = long_prompt(tokens, seed=1)
    start_rss = rss_mb()
    async with HTTPClient() as client:
        model = OpenAIChat("mock", base_url=base_url, client=client, api_key_env=None)
        requests = [
            ModelRequest(
                Transcript([UserMessage(content=f"episode {i}\n{base}")]),
                (),
                SamplingParams(),
                INFO,
            )
            for i in range(episodes)
        ]
        payload = sum(len(model.request_body(r)) for r in requests)  # encodes (and caches)
        await asyncio.gather(*(model.generate(r) for r in requests))
    peak = rss_mb()
    return {
        "episodes": episodes,
        "context_tokens": count_tokens(base),
        "payload_mb": payload / 2**20,
        "rss_growth_mb": peak - start_rss,
        "ratio": (peak - start_rss) / (payload / 2**20),
    }


async def main(sizes: list[int], turns: int, episodes: int, memory_tokens: int) -> dict[str, Any]:
    count_tokens("warm up the tokenizer")
    server, url = start_server(latency=0.0)
    try:
        rows = [await per_turn(url, size, turns) for size in sizes]
    finally:
        server.terminate()
        server.wait()
    server, url = start_server(latency=0.5)
    try:
        mem = await memory(url, episodes, memory_tokens)
    finally:
        server.terminate()
        server.wait()
    return {"per_turn": rows, "memory": mem}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| context tokens | body MB | gymbus CPU ms/turn | bare POST CPU ms/turn | ratio |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["per_turn"]:
        lines.append(
            f"| {r['context_tokens']:,} | {r['body_bytes'] / 2**20:.2f} | "
            f"{r['gymbus_cpu_ms_per_turn']:.2f} | {r['floor_cpu_ms_per_turn']:.2f} | "
            f"{r['ratio']:.2f} |"
        )
    m = result["memory"]
    lines += [
        "",
        f"Memory, {m['episodes']} concurrent {m['context_tokens']:,}-token episodes: "
        f"payload {m['payload_mb']:.0f} MB, RSS growth {m['rss_growth_mb']:.0f} MB, "
        f"ratio {m['ratio']:.2f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="gymbus long-context benchmark")
    parser.add_argument("--sizes", default="8000,131072,524288,1000000")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--memory-tokens", type=int, default=262144)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    result = asyncio.run(main(sizes, args.turns, args.episodes, args.memory_tokens))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() if args.json else table(result))
