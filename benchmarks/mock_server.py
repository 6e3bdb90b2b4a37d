"""A minimal OpenAI-compatible chat server for benchmarks, run in its own process so that
its CPU is not counted against the client: reads the whole body, answers a fixed short
completion after an optional delay.

    python benchmarks/mock_server.py --port 0 --latency 0.0   # prints "PORT <n>" when ready
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

REPLY = (
    b'{"id":"b","object":"chat.completion","model":"mock","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1}}'
)


async def main(port: int, latency: float) -> None:
    async def chat(request: web.Request) -> web.Response:
        await request.read()
        if latency:
            await asyncio.sleep(latency)
        return web.Response(body=REPLY, content_type="application/json")

    app = web.Application(client_max_size=256 * 2**20)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
    print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.latency))
