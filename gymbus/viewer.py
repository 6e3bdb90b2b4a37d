"""``gymbus view``: a local web viewer of rollout files — an aiohttp server on 127.0.0.1
serving a single page (``viewer_assets/``: plain HTML, CSS and JavaScript, no CDN) and the
JSON API it reads.

The files are indexed in a background thread (:mod:`.viewer_index`) while the server
answers; the page polls ``/api/status`` until indexing is done. An episode is read from
its file by offset when opened, validated against the rollout schema and sent with long
strings cut (:mod:`.viewer_detail`); media come from the ``X.media/`` folder beside
``X.jsonl``.

Nothing from a rollout is trusted: the page builds its DOM with ``textContent`` only, the
plots are escaped server-side (:mod:`.charts`), and every response carries a strict
Content-Security-Policy (scripts and styles only from this server, no inline script) so a
``<script>`` in a transcript cannot run even if it reached markup. Requests whose ``Host``
is not this loopback address are refused (no DNS rebinding), and media are served with
``nosniff`` and a sandboxing CSP.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import socket
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from gymbus.charts import charts_html
from gymbus.runtime.errors import GymbusError
from gymbus.runtime.media_frames import sample_frames
from gymbus.runtime.media_sniff import media_type
from gymbus.viewer_detail import PathError, resolve, schema_problem, shorten
from gymbus.viewer_index import RolloutIndex, Row, chart_data, sort_rows
from gymbus.viewer_query import Filters, Page, QueryError, whole_number

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
MEDIA_CSP = "default-src 'none'; sandbox"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_TEXT_SLICE = 1_000_000
MAX_FRAMES = 32
ASSETS = {
    "index.html": "text/html",
    "viewer.js": "text/javascript",
    "viewer.css": "text/css",
}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ViewerState:
    """Caches of one server: the last table query, parsed episodes, extracted frames."""

    def __init__(self) -> None:
        self.query: tuple[object, list[Row]] | None = None
        self.episodes: OrderedDict[int, Any] = OrderedDict()
        self.frames: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def remember_episode(self, id: int, data: Any) -> None:
        with self.lock:
            self.episodes[id] = data
            self.episodes.move_to_end(id)
            while len(self.episodes) > 4:
                self.episodes.popitem(last=False)

    def episode(self, id: int) -> Any:
        with self.lock:
            return self.episodes.get(id)

    def remember_frame(self, sha: str, data: bytes) -> None:
        with self.lock:
            self.frames[sha] = data
            while len(self.frames) > 256:
                self.frames.popitem(last=False)


INDEX_KEY = web.AppKey("index", RolloutIndex)
STATE_KEY = web.AppKey("state", ViewerState)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _query(request: web.Request) -> Mapping[str, Sequence[str]]:
    query: dict[str, list[str]] = {}
    for key, value in request.query.items():
        query.setdefault(key, []).append(value)
    return query


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Loopback Host only; security headers on every response."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if sockname else None
    allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    if request.host not in allowed:
        return _error(403, f"host {request.host!r} is not this viewer (use 127.0.0.1:{port})")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = _error(exc.status, exc.reason)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name", "index.html")
    if name not in ASSETS:
        return _error(404, f"no such file: {name}")
    data = resources.files("gymbus").joinpath("viewer_assets", name).read_bytes()
    return web.Response(body=data, content_type=ASSETS[name], charset="utf-8")


async def _status(request: web.Request) -> web.StreamResponse:
    return _json(request.app[INDEX_KEY].status())


async def _facets(request: web.Request) -> web.StreamResponse:
    return _json(request.app[INDEX_KEY].facet_counts())


def _select(request: web.Request, filters: Filters, page: Page | None) -> list[Row]:
    """The rows matching ``filters`` in ``page``'s order; the last query is cached (pages
    of the same query are slices of it) until more rows are indexed."""
    index, state = request.app[INDEX_KEY], request.app[STATE_KEY]
    rows = index.snapshot()
    key = (filters, page and (page.sort, page.descending), len(rows))
    cached = state.query
    if cached is not None and cached[0] == key:
        return cached[1]
    selected = [row for row in rows if filters.matches(row)]
    if page is not None:
        selected = sort_rows(selected, page.sort, page.descending)
    state.query = (key, selected)
    return selected


async def _episodes(request: web.Request) -> web.StreamResponse:
    try:
        query = _query(request)
        filters, page = Filters.parse(query), Page.parse(query)
    except QueryError as exc:
        return _error(400, str(exc))
    selected = await asyncio.to_thread(_select, request, filters, page)
    files = request.app[INDEX_KEY].files
    rows = selected[page.offset : page.offset + page.limit]
    return _json(
        {
            "total": len(selected),
            "offset": page.offset,
            "limit": page.limit,
            "rows": [row.to_json(files) for row in rows],
        }
    )


def _row(request: web.Request) -> Row:
    text = request.match_info["id"]
    row = request.app[INDEX_KEY].row(int(text)) if text.isdigit() else None
    if row is None:
        raise web.HTTPNotFound(reason=f"no episode {text!r}")
    return row


def _load(request: web.Request, row: Row) -> Any:
    state = request.app[STATE_KEY]
    data = state.episode(row.id)
    if data is None:
        data = orjson.loads(request.app[INDEX_KEY].read_line(row))
        state.remember_episode(row.id, data)
    return data


async def _episode(request: web.Request) -> web.StreamResponse:
    row = _row(request)

    def build() -> dict[str, Any]:
        data = _load(request, row)
        return {
            "row": row.to_json(request.app[INDEX_KEY].files),
            "schema_problem": schema_problem(data),
            "rollout": shorten(data),
        }

    try:
        return _json(await asyncio.to_thread(build))
    except (OSError, orjson.JSONDecodeError) as exc:
        return _error(422, f"cannot read episode {row.id} ({row.line}): {exc}")


async def _text(request: web.Request) -> web.StreamResponse:
    row = _row(request)
    query = _query(request)
    path = (query.get("path") or [""])[-1]
    try:
        offset = whole_number(query, "offset", 0)
        length = min(whole_number(query, "length", 200_000), MAX_TEXT_SLICE)
        text = resolve(await asyncio.to_thread(_load, request, row), path)
    except (QueryError, PathError) as exc:
        return _error(400 if isinstance(exc, QueryError) else 404, str(exc))
    return _json(
        {
            "path": path,
            "offset": offset,
            "length": len(text),
            "text": text[offset : offset + length],
        }
    )


async def _group(request: web.Request) -> web.StreamResponse:
    group_id = request.match_info["group"]
    rows = request.app[INDEX_KEY].group(group_id)
    if not rows:
        return _error(404, f"no group {group_id!r}")
    rewards = [r.reward for r in rows if r.status == "scored" and r.reward is not None]
    mean = std = None
    if rewards:
        mean = sum(rewards) / len(rewards)
        std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    files = request.app[INDEX_KEY].files
    out = []
    for row in rows:
        item = row.to_json(files)
        advantage = normalized = None
        if row.status == "scored" and row.reward is not None and mean is not None:
            advantage = row.reward - mean
            normalized = advantage / ((std or 0.0) + 1e-6)
        item["advantage"], item["advantage_normalized"] = advantage, normalized
        out.append(item)
    return _json({"group_id": group_id, "mean": mean, "std": std, "rows": out})


async def _plots(request: web.Request) -> web.StreamResponse:
    try:
        filters = Filters.parse(_query(request))
    except QueryError as exc:
        return _error(400, str(exc))

    def render() -> str:
        return charts_html(chart_data(_select(request, filters, None)))

    return _json({"html": await asyncio.to_thread(render)})


def _blob(request: web.Request, sha: str) -> bytes | None:
    if not SHA256.match(sha):
        return None
    frame = request.app[STATE_KEY].frames.get(sha)
    if frame is not None:
        return frame
    for folder in request.app[INDEX_KEY].media_dirs():
        path = folder / sha
        if path.is_file():
            return path.read_bytes()
    return None


async def _media(request: web.Request) -> web.StreamResponse:
    sha = request.match_info["sha"]
    data = await asyncio.to_thread(_blob, request, sha)
    if data is None:
        return _error(404, f"media {sha[:80]!r} is not in the media folders of these files")
    try:
        mime, _ = media_type(data, None)
    except GymbusError:
        mime = "application/octet-stream"
    if not mime.startswith(("image/", "audio/", "video/")):
        mime = "application/octet-stream"
    response = web.Response(body=data, content_type=mime)
    response.headers["Content-Security-Policy"] = MEDIA_CSP
    return response


async def _frames(request: web.Request) -> web.StreamResponse:
    sha = request.match_info["sha"]
    try:
        limit = min(max(whole_number(_query(request), "max", 8), 1), MAX_FRAMES)
    except QueryError as exc:
        return _error(400, str(exc))
    data = await asyncio.to_thread(_blob, request, sha)
    if data is None:
        return _error(404, f"media {sha[:80]!r} is not in the media folders of these files")
    try:
        frames = await asyncio.to_thread(sample_frames, data, limit)
    except GymbusError as exc:
        return _error(422, str(exc))
    out = []
    for frame in frames:
        digest = hashlib.sha256(frame).hexdigest()
        request.app[STATE_KEY].remember_frame(digest, frame)
        out.append({"sha256": digest, "mime_type": "image/png", "size": len(frame)})
    return _json({"frames": out})


def make_app(index: RolloutIndex) -> web.Application:
    """The viewer's application over ``index`` (scanned by the caller)."""
    app = web.Application(middlewares=[_guard])
    app[INDEX_KEY] = index
    app[STATE_KEY] = ViewerState()
    app.router.add_get("/", _asset)
    app.router.add_get("/static/{name}", _asset)
    app.router.add_get("/api/status", _status)
    app.router.add_get("/api/facets", _facets)
    app.router.add_get("/api/episodes", _episodes)
    app.router.add_get("/api/episodes/{id}", _episode)
    app.router.add_get("/api/episodes/{id}/text", _text)
    app.router.add_get("/api/groups/{group}", _group)
    app.router.add_get("/api/plots", _plots)
    app.router.add_get("/media/{sha}", _media)
    app.router.add_get("/api/media/{sha}/frames", _frames)
    return app


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(
    paths: Sequence[Path],
    sock: socket.socket,
    on_ready: Callable[[str], None],
    *,
    follow: bool = False,
) -> None:
    """Index ``paths`` in a thread (and, with ``follow``, the lines appended to them
    later) and serve the viewer on ``sock`` until SIGINT/SIGTERM."""
    index = RolloutIndex(tuple(paths), follow=follow)
    port = int(sock.getsockname()[1])
    runner = web.AppRunner(make_app(index), access_log=None)
    scanner = threading.Thread(target=index.scan, name="gymbus-view-index", daemon=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    scanner.start()
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        on_ready(f"http://127.0.0.1:{port}/")
        await stop.wait()
    finally:
        index.stop.set()
        await runner.cleanup()
        scanner.join(timeout=10)
