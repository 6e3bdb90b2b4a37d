"""The benchmark's mock OpenAI-compatible server, run in its own process so its CPU is
not counted against the client. It plays both workloads: ``single`` (answers "42") and
``tools3`` (calls step1, step2, step3 in turn — each call depends on the previous result
— then answers "42").

    python -m gymbus.bench_server [--latency 0.2]    # prints "PORT <n>" when ready
"""

from __future__ import annotations

import argparse
import asyncio
import resource

import orjson
from aiohttp import web


def _reply(content: str | None, call: tuple[str, str, str] | None) -> bytes:
    message: dict[str, object] = {"role": "assistant", "content": content}
    if call is not None:
        call_id, name, arguments = call
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
    return orjson.dumps(
        {
            "id": "bench",
            "object": "chat.completion",
            "model": "bench",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if call else "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        }
    )


ANSWER = _reply("42", None)
CALLS = [
    _reply(None, (f"call_{k}", f"step{k}", orjson.dumps({"key": f"k{k - 1}"}).decode()))
    for k in (1, 2, 3)
]


async def serve(port: int, latency: float) -> None:
    async def chat(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        done = 0
        if body.get("tools"):
            done = sum(1 for m in body["messages"] if m.get("role") == "tool")
        if latency:
            await asyncio.sleep(latency)
        payload = CALLS[done] if body.get("tools") and done < 3 else ANSWER
        return web.Response(body=payload, content_type="application/json")

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=16384)
    await site.start()
    server = site._server
    assert server is not None
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[attr-defined]
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(args.port, args.latency))


if __name__ == "__main__":
    main()
