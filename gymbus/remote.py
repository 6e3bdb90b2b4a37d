"""Play environments hosted by ``gymbus serve`` as if they were local.

:class:`RemoteEnv` starts episodes on the server; the :class:`EpisodeSpec` it builds holds
proxies — :class:`RemoteTool`, :class:`RemoteUser`, :class:`RemoteSolver`,
:class:`RemoteVerifier` — so the runtime, the policy and the rollout are the same as with
a local environment::

    async with gymbus.HTTPClient() as http:
        remote = RemoteEnv("http://127.0.0.1:8765", "retail-orders", client=http)
        async with gymbus.Runtime(gymbus.OracleModel()) as rt:
            rollouts = await rt.run(remote_episode_jobs(remote, range(20)))

What an environment raises on the server is raised again here, with the same type and
message (a tool's ``ToolInputError`` goes back to the model; a crashing tool fails the
episode with kind ``tool`` and the original exception's repr). When the server cannot be
reached or refuses a request (after retries on connection errors, 429 and 502-504), the
episode fails with the kind of the step that needed it: ``bad_task`` (starting the
episode), ``tool``, ``user`` (reply or audit), ``model`` (the oracle's reference solver)
or ``verifier``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator

import aiohttp
import anyio
from pydantic import BaseModel, ValidationError

from gymbus.adapters.http import HTTPClient, check_loopback, parse_retry_after, safe_url
from gymbus.remote_episode import (
    RemoteAuditedUser,
    RemoteBuildError,
    RemoteCallError,
    RemoteEpisode,
    RemoteSolver,
    RemoteTool,
    RemoteToolError,
    RemoteUser,
    RemoteVerifier,
    ServerSideError,
    parse_reply,
)
from gymbus.remote_protocol import (
    TOKEN_ENV,
    CreateEpisode,
    EnvInfo,
    EnvList,
    EpisodeCreated,
    ErrorBody,
    JSONScalar,
    StepFailure,
)
from gymbus.runtime.closing import AsyncClosing
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ConfigError, UnknownEnvironmentError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.media import MediaStore
from gymbus.runtime.model import SamplingParams
from gymbus.runtime.tools import Toolbox

__all__ = [
    "RemoteCallError",
    "RemoteEnv",
    "RemoteSolver",
    "RemoteTool",
    "RemoteUser",
    "RemoteVerifier",
    "ServerSideError",
    "remote_episode_jobs",
]

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


class RemoteEnv(AsyncClosing):
    """An environment served by ``gymbus serve`` at ``base_url`` (``http://HOST:PORT``).

    ``options`` are the environment's options (e.g. ``{"difficulty": "hard"}``); ``token``
    defaults to the ``GYMBUS_SERVER_TOKEN`` variable and is only ever sent as a bearer
    header. Requests go through ``client``'s session with its retry policy and timeout;
    media the server's messages refer to are copied into ``media`` (the shared store).
    """

    def __init__(
        self,
        base_url: str,
        env: str,
        *,
        options: dict[str, JSONScalar] | None = None,
        token: str | None = None,
        client: HTTPClient | None = None,
        media: MediaStore | None = None,
    ) -> None:
        check_loopback(base_url)
        self.base_url = base_url.rstrip("/")
        self.env = env
        self.options = dict(options or {})
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        self._token = token or None  # only ever sent as a header, masked in error texts
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._owns_client = client is None
        self.client = client if client is not None else HTTPClient()
        self._media = media

    @property
    def name(self) -> str:
        return self.env

    @property
    def media(self) -> MediaStore:
        return self._media if self._media is not None else MediaStore.shared()

    def __repr__(self) -> str:
        return f"RemoteEnv({safe_url(self.base_url)!r}, {self.env!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def describe(self) -> EnvInfo:
        """The environment's name, description and metadata, as served. Raises
        :class:`UnknownEnvironmentError` if the server does not serve it and
        :class:`ConfigError` if the server cannot be reached or refuses."""
        try:
            raw = await self.send("GET", "/v1/envs")
            served = EnvList.model_validate_json(raw).envs
        except (RemoteCallError, ValidationError) as exc:
            raise ConfigError(f"environment server {safe_url(self.base_url)}: {exc}") from None
        for info in served:
            if info.name == self.env:
                return info
        raise UnknownEnvironmentError(self.env, [info.name for info in served])

    async def start(self, seed: int) -> EpisodeSpec:
        """Start the episode of ``seed`` on the server and return its spec."""
        body = CreateEpisode(env=self.env, seed=seed, options=self.options)
        try:
            created = parse_reply(await self.send("POST", "/v1/episodes", body), EpisodeCreated)
        except RemoteCallError as exc:
            raise BadTaskError(f"remote environment {self.env!r}: {exc}") from None
        if isinstance(created, StepFailure):
            if created.kind == "crash":  # a tool server the episode needs did not start
                raise RemoteToolError(created.message, created.exception)
            raise RemoteBuildError(created.message, created.exception)
        episode = RemoteEpisode(self, created.episode_id)
        try:
            for message in created.messages:
                await episode.pull_media(getattr(message, "content", ()))
        except RemoteCallError as exc:
            await episode.close()
            raise BadTaskError(f"remote environment {self.env!r}: {exc}") from None
        user: RemoteUser | None = None
        if created.has_user:
            user = RemoteAuditedUser(episode) if created.user_audited else RemoteUser(episode)
        params = created.params
        return EpisodeSpec(
            task=created.task,
            messages=created.messages,
            verifier=RemoteVerifier(episode),
            tools=Toolbox(RemoteTool(episode, spec) for spec in created.tools),
            user=user,
            limits=created.limits,
            solver=RemoteSolver(episode) if created.has_solver else None,
            params=None if params is None else SamplingParams.model_validate(params),
            metadata=created.metadata,
            state=episode,  # the environment's state stays on the server
            cleanup=episode.close,  # a failed episode is dropped now, not at expiry
        )

    async def send(
        self, method: str, path: str, body: BaseModel | None = None, *, attempts: int | None = None
    ) -> bytes:
        """One protocol request (retried on connection errors, 429 and 502-504 with the
        client's policy); the body of the 2xx answer. Raises :class:`RemoteCallError`."""
        policy = self.client.retry
        max_attempts = attempts or policy.max_attempts
        url = self.base_url + path
        data = body.model_dump_json().encode() if body is not None else None
        timeout = aiohttp.ClientTimeout(total=self.client.timeout)
        session = self.client.session()
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            retry_after: float | None = None
            try:
                async with session.request(
                    method, url, data=data, headers=self._headers, timeout=timeout
                ) as response:
                    status = response.status
                    raw = await response.read()
                    retry_after = parse_retry_after(response.headers)
            except _RETRYABLE as exc:
                cause = (
                    "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                )
            except aiohttp.ClientError as exc:  # str, not repr: that shows request headers
                raise RemoteCallError(
                    f"{method} {safe_url(url)} failed: {type(exc).__name__}: {exc}"
                ) from None
            else:
                if 200 <= status < 300:
                    return raw
                code, message = _error_of(raw, self._token)
                cause = f"HTTP {status}: {message}"
                if status not in _RETRY_STATUSES:
                    raise RemoteCallError(
                        f"{method} {safe_url(url)} failed with {cause}", status=status, code=code
                    )
            if attempt >= max_attempts:
                raise RemoteCallError(
                    f"{method} {safe_url(url)} failed after {attempt} attempt(s); last: {cause}",
                    status=status,
                )
            await anyio.sleep(policy.delay(attempt, retry_after))


def _error_of(raw: bytes, secret: str | None) -> tuple[str | None, str]:
    """The error code and message of a protocol error (any other body: its start), with
    ``secret`` masked should a proxy in between echo it."""
    try:
        error = ErrorBody.model_validate_json(raw)
        code, message = error.error.code, error.error.message
    except ValidationError:
        code, message = None, raw[:200].decode("utf-8", "replace") or "(empty body)"
    return code, message.replace(secret, "***") if secret else message


def remote_episode_jobs(
    remote: RemoteEnv, seeds: Iterable[int], *, samples: int = 1
) -> Iterator[EpisodeJob]:
    """Jobs for ``remote`` like :func:`gymbus.episode_jobs` for a local environment (same
    episode and group ids); each episode starts on the server when the runtime builds it."""
    for seed in seeds:
        for sample in range(samples):
            yield EpisodeJob(
                env=remote.env,
                seed=seed,
                sample=sample,
                build=functools.partial(remote.start, seed),
                episode_id=f"{remote.env}/{seed}#{sample}",
                group_id=f"{remote.env}/{seed}",
                group_size=samples,
            )
