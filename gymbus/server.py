"""``gymbus serve``: environments over HTTP (protocol: :mod:`gymbus.remote_protocol`).

The server builds tasks and episodes, runs the tools, the simulated user, the reference
solver and the verifier; the policy and the runtime stay with the client
(:class:`~gymbus.remote.RemoteEnv`). Guards, in order: bearer token (401, no detail about
the expected token), per-client concurrency (429; a client is a token and a peer
address), body size (413), body validation (422 naming the field). An episode belongs to
the token that created it; another client asking for it gets 404, as for an unknown or
expired episode.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from gymbus.envs.base import Environment
from gymbus.remote_protocol import (
    AskSolver,
    AskUser,
    AuditUser,
    CallTool,
    ConversationDelta,
    CreateEpisode,
    EnvInfo,
    EnvList,
    EpisodeCreated,
    EpisodeDeleted,
    ErrorBody,
    ErrorDetail,
    Health,
    Verify,
)
from gymbus.runtime.errors import ConfigError, ToolError
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import MediaRef
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import AuditedUser
from gymbus.served_episodes import (
    EpisodeTable,
    OutOfSyncError,
    Owner,
    ServedEpisode,
    failed,
)

__all__ = ["ServerConfig", "create_app", "episode_table", "serve"]

log = structlog.get_logger("gymbus.serve")

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_OWNER: web.RequestKey[Owner] = web.RequestKey("gymbus_owner")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_ENV_INSTANCES = 64


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What to serve and the limits. ``tokens``: the accepted bearer tokens (each one a
    client identity); empty means no authentication (allowed on loopback only)."""

    envs: Mapping[str, type[Environment]]
    tokens: tuple[str, ...] = ()
    max_body_bytes: int = 32 * 1024 * 1024
    client_concurrency: int = 256
    """Requests one client may have in flight; more are refused with 429."""
    idle_expiry: float = 600.0
    max_episodes: int = 10_000


class _ProtocolError(Exception):
    """A protocol error, answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> web.Response:
        body = ErrorBody(error=ErrorDetail(code=self.code, message=self.message, field=self.field))
        headers = {401: {"WWW-Authenticate": "Bearer"}, 429: {"Retry-After": "1"},
                   503: {"Retry-After": "1"}}.get(self.status)  # fmt: skip
        return _reply(body, self.status, headers)


def _reply(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def _parse(request: web.Request, model: type[M]) -> M:
    """The body as ``model``; 413 if too large, 422 naming the field if invalid."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _ProtocolError(
            413, "body_too_large", "the request body is larger than the server's limit"
        ) from None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        where = ".".join(str(p) for p in _field_at_fault([e["loc"] for e in errors])) or "body"
        message = f"{where}: {errors[0]['msg']}"
        raise _ProtocolError(422, "invalid_body", message, field=where) from None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _field_at_fault(locations: list[tuple[int | str, ...]]) -> tuple[int | str, ...]:
    """Where validation failed: the part all errors share (the alternatives of a union
    all fail under the same field), else the first error's location."""
    common = locations[0]
    for loc in locations[1:]:
        n = 0
        while n < min(len(common), len(loc)) and common[n] == loc[n]:
            n += 1
        common = common[:n]
    return common or locations[0]


class _EnvServer:
    """The application's state and handlers."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.episodes = EpisodeTable(
            idle_expiry=config.idle_expiry, max_episodes=config.max_episodes
        )
        self._tokens = tuple(_digest(t) for t in config.tokens)
        self._in_flight: dict[tuple[Owner, str | None], int] = {}
        self._instances: dict[tuple[str, str], Environment] = {}
        self._retired: list[Environment] = []  # evicted instances, closed at shutdown

    # -- guards -----------------------------------------------------------------------------
    def _owner(self, request: web.Request) -> Owner:
        if not self._tokens:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise _ProtocolError(401, "unauthorized", "a bearer token is required")
        found: Owner = None
        digest = _digest(given)  # equal lengths, and no early exit: constant time
        for index, token in enumerate(self._tokens):
            if hmac.compare_digest(digest, token):
                found = index
        if found is None:
            raise _ProtocolError(401, "unauthorized", "the bearer token is not valid")
        return found

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path == "/v1/health":
                return await handler(request)
            owner = self._owner(request)
            request[_OWNER] = owner
            client = (owner, request.remote)
            if self._in_flight.get(client, 0) >= self.config.client_concurrency:
                raise _ProtocolError(
                    429, "too_many_requests", "too many requests in flight from this client"
                )
            self._in_flight[client] = self._in_flight.get(client, 0) + 1
            try:
                return await handler(request)
            finally:
                left = self._in_flight[client] - 1
                if left:
                    self._in_flight[client] = left
                else:
                    del self._in_flight[client]
        except _ProtocolError as problem:
            return problem.response()
        except web.HTTPException as exc:  # no route, wrong method
            code = "not_found" if exc.status == 404 else "http_error"
            return _ProtocolError(exc.status, code, exc.reason).response()
        except Exception as exc:  # a bug of ours: answer as JSON, keep serving
            log.exception("serve.internal_error", path=request.path, error=repr(exc))
            return _ProtocolError(500, "internal_error", "internal server error").response()

    def _episode(self, request: web.Request) -> ServedEpisode:
        episode = self.episodes.get(request.match_info["episode_id"], request[_OWNER])
        if episode is None:
            raise _ProtocolError(404, "unknown_episode", "no such episode (it may have expired)")
        return episode

    # -- environments -----------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return _reply(Health())

    async def list_envs(self, request: web.Request) -> web.Response:
        infos = [
            EnvInfo(
                name=name,
                description=cls.description,
                metadata=cls.metadata.model_dump(mode="json"),
            )
            for name, cls in sorted(self.config.envs.items())
        ]
        return _reply(EnvList(envs=tuple(infos)))

    def _environment(self, name: str, options: dict[str, Any]) -> Environment:
        cls = self.config.envs.get(name)
        if cls is None:
            served = ", ".join(sorted(self.config.envs)) or "(none)"
            raise _ProtocolError(
                422,
                "unknown_env",
                f"environment {name!r} is not served here; served: {served}",
                field="env",
            )
        key = (name, json.dumps(options, sort_keys=True))  # any JSON int (orjson: 64 bits)
        env = self._instances.get(key)
        if env is None:
            try:
                env = cls(**options)
            except (ConfigError, TypeError, ValueError) as exc:
                raise _ProtocolError(422, "bad_options", str(exc), field="options") from None
            if len(self._instances) >= _MAX_ENV_INSTANCES:  # their episodes may still run
                self._retired.extend(self._instances.values())
                self._instances.clear()
            self._instances[key] = env
        return env

    async def create_episode(self, request: web.Request) -> web.Response:
        body = await _parse(request, CreateEpisode)
        env = self._environment(body.env, body.options)
        if self.episodes.full:
            raise _ProtocolError(
                503, "too_many_episodes", "the server holds its maximum of episodes"
            )
        try:
            built = env.episode(env.task(body.seed))
            spec = await built if inspect.isawaitable(built) else built
        except ToolError as exc:  # a tool server could not start: the client's kind `tool`
            return _raw(failed("crash", exc))
        except Exception as exc:
            return _raw(failed("bad_task", exc))
        episode = self.episodes.add(request[_OWNER], body.env, spec)
        params = spec.params  # set fields only: unset ones stay the client's run's
        created = EpisodeCreated(
            episode_id=episode.episode_id,
            task=spec.task,
            messages=spec.messages,
            tools=spec.tools.specs,
            limits=spec.limits,
            params=params and params.model_dump(mode="json", exclude_unset=True),
            metadata=dict(spec.metadata),
            has_user=spec.user is not None,
            user_audited=isinstance(spec.user, AuditedUser),
            has_solver=spec.solver is not None,
        )
        log.debug("episode.created", env=body.env, task_id=spec.task.task_id)
        return _reply(created)

    async def aclose(self) -> None:
        """Drop every episode (awaiting their cleanups), then close the environments."""
        await self.episodes.aclose()
        for env in [*self._instances.values(), *self._retired]:
            try:
                await env.aclose()
            except Exception as exc:
                log.warning("serve.env_close_failed", env=env.name, error=repr(exc))
        self._instances.clear()
        self._retired.clear()

    async def delete_episode(self, request: web.Request) -> web.Response:
        episode_id = request.match_info["episode_id"]
        if not self.episodes.remove(episode_id, request[_OWNER]):
            raise _ProtocolError(404, "unknown_episode", "no such episode (it may have expired)")
        return _reply(EpisodeDeleted(episode_id=episode_id))

    # -- episode steps ----------------------------------------------------------------------
    async def call_tool(self, request: web.Request) -> web.Response:
        episode = self._episode(request)
        body = await _parse(request, CallTool)
        name = request.match_info["name"]
        with self.episodes.using(episode):
            if body.request_id is None:
                data = await episode.call_tool(name, body.arguments)
            else:
                call = [body.request_id, name, body.arguments]  # an id names one call
                key = json.dumps(call, sort_keys=True)  # any JSON int (orjson: 64 bits)
                data = await episode.tool_replies.once(
                    key, lambda: episode.call_tool(name, body.arguments)
                )
        return _raw(data)

    async def ask_user(self, request: web.Request) -> web.Response:
        episode = self._episode(request)
        body = await _parse(request, AskUser)
        if episode.spec.user is None:
            raise _ProtocolError(404, "no_user", "this episode has no simulated user")
        with self.episodes.using(episode):
            return _raw(await episode.user_turn(_conversation(episode, body.conversation)))

    async def audit_user(self, request: web.Request) -> web.Response:
        episode = self._episode(request)
        body = await _parse(request, AuditUser)
        if not isinstance(episode.spec.user, AuditedUser):
            raise _ProtocolError(404, "no_audit", "this episode's user is not audited")
        with self.episodes.using(episode):
            return _raw(await episode.audit(_conversation(episode, body.conversation)))

    async def solve(self, request: web.Request) -> web.Response:
        episode = self._episode(request)
        body = await _parse(request, AskSolver)
        if episode.spec.solver is None:
            raise _ProtocolError(404, "no_solver", "this episode has no reference solver")
        with self.episodes.using(episode):
            return _raw(await episode.solve(_conversation(episode, body.conversation)))

    async def verify(self, request: web.Request) -> web.Response:
        episode = self._episode(request)
        body = await _parse(request, Verify)
        with self.episodes.using(episode):
            transcript = _conversation(episode, body.transcript, "transcript")
            return _raw(await episode.verify(transcript, body.stop_reason, body.episode_id))

    async def media(self, request: web.Request) -> web.Response:
        sha = request.match_info["sha256"]
        store = MediaStore.shared()
        probe = None
        if _SHA256.fullmatch(sha):
            probe = MediaRef(sha256=sha, mime_type="application/octet-stream", size=0)
        if probe is None or probe not in store:
            raise _ProtocolError(404, "unknown_media", "no such media blob")
        return web.Response(body=store.get(probe), content_type="application/octet-stream")


def _raw(data: bytes) -> web.Response:
    return web.Response(body=data, content_type="application/json")


def _conversation(
    episode: ServedEpisode, delta: ConversationDelta, field: str = "conversation"
) -> Transcript:
    try:
        return episode.conversation(delta)
    except OutOfSyncError as exc:
        raise _ProtocolError(
            409, "conversation_out_of_sync", str(exc), field=f"{field}.base"
        ) from None


_SERVER = web.AppKey("gymbus_server", _EnvServer)


def create_app(config: ServerConfig) -> web.Application:
    """The aiohttp application serving ``config.envs`` (no background sweeper: expired
    episodes are then dropped when next touched; :func:`serve` adds the sweeper)."""
    server = _EnvServer(config)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[server.guard])
    app[_SERVER] = server
    app.router.add_get("/v1/health", server.health)
    app.router.add_get("/v1/envs", server.list_envs)
    app.router.add_post("/v1/episodes", server.create_episode)
    app.router.add_delete("/v1/episodes/{episode_id}", server.delete_episode)
    app.router.add_post("/v1/episodes/{episode_id}/tools/{name}", server.call_tool)
    app.router.add_post("/v1/episodes/{episode_id}/user", server.ask_user)
    app.router.add_post("/v1/episodes/{episode_id}/audit", server.audit_user)
    app.router.add_post("/v1/episodes/{episode_id}/solve", server.solve)
    app.router.add_post("/v1/episodes/{episode_id}/verify", server.verify)
    app.router.add_get("/v1/media/{sha256}", server.media)
    app.on_cleanup.append(lambda app: app[_SERVER].aclose())
    return app


def episode_table(app: web.Application) -> EpisodeTable:
    """The live episodes of an app made by :func:`create_app`."""
    return app[_SERVER].episodes


@asynccontextmanager
async def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``config`` on ``host:port`` (0: a free port) with the idle-episode sweeper;
    yields the base URL (``http://HOST:PORT``). Leaving the block stops the server."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{bound[1]}"
        async with anyio.create_task_group() as tg:
            tg.start_soon(episode_table(app).run_sweeper, name="episode-sweeper")
            log.info("serve.started", url=url, envs=sorted(config.envs), auth=bool(config.tokens))
            try:
                yield url
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
