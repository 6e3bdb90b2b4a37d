"""NeMo Gym resources servers as gymbus environments, driven over HTTP.

The protocol is the one NeMo Gym's ``simple_agent`` speaks
(``responses_api_agents/simple_agent/app.py``, ``nemo_gym/base_resources_server.py``,
``nemo_gym/server_utils.py``):

1. ``POST /seed_session`` with the task line; the answer sets the session cookie (a
   Starlette session holding the ``session_id`` every stateful server keys its state on).
2. One ``POST /{tool_name}`` per tool call, the parsed arguments as the body, the
   session's cookies attached; the answer body, as text, is the tool's output.
3. ``POST /verify`` with the task line plus ``response`` (the episode in NeMo Gym's
   Responses API shape, :func:`~gymbus.nemo_gym_wire.response_object`); the answer holds
   ``reward`` and the verifier's other fields (kept in ``Score.evidence["nemo_gym"]``).

Cookies are kept per episode and updated from every answer, as NeMo Gym's agents do;
nothing goes through a shared cookie jar. Tool calls of one turn run one at a time, in
order (``max_parallel_tool_calls=1``), like NeMo Gym's agent. Nothing is retried: tool
calls change server state. Failures map onto gymbus's taxonomy: ``/seed_session``
failing → ``bad_task``; a tool answering 400/422 → the model's mistake (an error tool
message); any other tool failure → ``tool``; ``/verify`` failing → ``verifier``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson
from jsonschema import Draft202012Validator

from gymbus.adapters.http import check_loopback, safe_url
from gymbus.nemo_gym import PARAMS, VERIFY_EVIDENCE, NeMoTask, read_tasks
from gymbus.nemo_gym_wire import create_params, response_object
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import (
    BadTaskError,
    ToolArgumentsError,
    ToolError,
    ToolInputError,
    VerifierError,
)
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.limits import Limits
from gymbus.runtime.tools import Toolbox, ToolSpec
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = [
    "NeMoGymResourcesEnv",
    "ResourcesServer",
    "ResourcesServerTool",
    "ResourcesServerVerifier",
    "ServerReply",
    "ServerSession",
]

_TEXT_LIMIT = 300
_MODEL_MISTAKES = frozenset({400, 422})  # FastAPI's answer to a body that fails validation
_UNTIMED = aiohttp.ClientTimeout(total=None)


@dataclass(frozen=True, slots=True)
class ServerReply:
    """A server's answer: status, raw body and the cookies it set."""

    status: int
    body: bytes
    cookies: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        text = " ".join(self.body.decode("utf-8", "replace").split())
        return text[:_TEXT_LIMIT] + "…" if len(text) > _TEXT_LIMIT else text or "(empty body)"


class ResourcesServer:
    """The one HTTP seam to a resources server: JSON POSTs with explicit cookies (its own
    aiohttp session with no cookie jar, so episodes never share a session)."""

    def __init__(self, url: str, *, request_timeout: float | None = 60.0) -> None:
        check_loopback(url)
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ResourcesServer({safe_url(self.url)!r})"

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0),  # the runtime bounds
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            raise_for_status=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def where(self, path: str) -> str:
        return f"POST {safe_url(self.url + path)}"

    async def post(
        self, path: str, body: Any, cookies: Mapping[str, str], *, timed: bool = True
    ) -> ServerReply:
        """POST ``body`` as JSON. ``timed=False`` leaves the deadline to the caller (tool
        calls run under the episode's ``tool_timeout``)."""
        if self._session is None:
            raise RuntimeError("use ResourcesServer inside 'async with'")
        headers = {"Content-Type": "application/json"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        async with self._session.post(
            self.url + path,
            data=orjson.dumps(body),
            headers=headers,
            timeout=self._timeout if timed else _UNTIMED,
        ) as response:
            raw = await response.read()
            jar = {name: morsel.value for name, morsel in response.cookies.items()}
            return ServerReply(response.status, raw, jar)


@dataclass(slots=True)
class ServerSession:
    """One episode's session on the server: its task and the cookies it carries."""

    server: ResourcesServer
    task: NeMoTask
    cookies: dict[str, str] = field(default_factory=dict)

    async def post(self, path: str, body: Any, *, timed: bool = True) -> ServerReply:
        reply = await self.server.post(path, body, self.cookies, timed=timed)
        self.cookies.update(reply.cookies)
        return reply

    def request_body(self) -> dict[str, Any]:
        """The task line as NeMo Gym's agents send it (the request with every field)."""
        return {**self.task.data, PARAMS: create_params(self.task.params)}


class ResourcesServerTool:
    """A tool whose calls are ``POST /{name}`` on the session's server. Arguments are
    checked against the tool's JSON Schema first (a violation is the model's mistake)."""

    __slots__ = ("_session", "_spec", "_validator")

    def __init__(self, spec: ToolSpec, session: ServerSession) -> None:
        self._spec = spec
        self._session = session
        self._validator = Draft202012Validator(spec.parameters)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def __call__(self, arguments: dict[str, Any]) -> str:
        error = next(iter(self._validator.iter_errors(arguments)), None)
        if error is not None:
            at = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ToolArgumentsError(
                f"invalid arguments for {self._spec.name!r} at {at}: {error.message}"
            )
        path = f"/{self._spec.name}"
        where = self._session.server.where(path)
        try:
            reply = await self._session.post(path, arguments, timed=False)
        except aiohttp.ClientError as exc:
            raise ToolError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        if reply.ok:
            return reply.body.decode("utf-8", "replace")
        if reply.status in _MODEL_MISTAKES:
            raise ToolInputError(
                f"the server rejected the call (HTTP {reply.status}): {reply.text()}"
            )
        raise ToolError(f"{where} failed with HTTP {reply.status}: {reply.text()}")


def _scores(extra: Mapping[str, Any]) -> dict[str, float]:
    """The verifier's numeric (and boolean) fields as sub-scores."""
    scores = {}
    for key, value in extra.items():
        if isinstance(value, bool | int | float) and math.isfinite(value):
            scores[key] = float(value)
    return scores


class ResourcesServerVerifier:
    """Scores an episode with the server's ``/verify`` (in the episode's session)."""

    async def verify(self, episode: CompletedEpisode) -> Score:
        session = episode.state
        if not isinstance(session, ServerSession):
            raise VerifierError("a NeMo Gym episode must carry its ServerSession as state")
        task = session.task
        response = response_object(
            episode.transcript[len(task.messages) :],
            task.params,
            response_id=episode.episode_id,
            created_at=time.time(),
            stop_reason=episode.stop_reason,
        )
        where = session.server.where("/verify")
        try:
            reply = await session.post("/verify", {**session.request_body(), "response": response})
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VerifierError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        if not reply.ok:
            raise VerifierError(f"{where} failed with HTTP {reply.status}: {reply.text()}")
        try:
            data = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            raise VerifierError(
                f"{where} answered with a body that is not JSON: {reply.text()}"
            ) from None
        reward = data.get("reward") if isinstance(data, dict) else None
        if (
            isinstance(reward, bool)
            or not isinstance(reward, int | float)
            or not math.isfinite(reward)
        ):
            raise VerifierError(f"{where} answered without a finite reward: {reply.text()}")
        extra = {k: v for k, v in data.items() if k not in (PARAMS, "response", "reward")}
        return Score(reward=float(reward), scores=_scores(extra), evidence={VERIFY_EVIDENCE: extra})


class NeMoGymResourcesEnv:
    """NeMo Gym tasks played against a running resources server.

    ``async with NeMoGymResourcesEnv.from_file(path, url) as env`` opens the HTTP
    session; :meth:`jobs` gives one :class:`EpisodeJob` per task and sample (episode id
    ``{task_id}#{sample}``, the samples of a task form one group) whose ``build`` seeds a
    server session. There is no reference solver: play it with a model. Custom ``limits``
    should keep ``max_parallel_tool_calls=1`` to call tools in order, as NeMo Gym does.
    """

    def __init__(
        self,
        tasks: Sequence[NeMoTask],
        server_url: str,
        *,
        limits: Limits | None = None,
        request_timeout: float | None = 60.0,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.tasks = tuple(tasks)
        self.server = ResourcesServer(server_url, request_timeout=request_timeout)
        self.limits = limits or Limits(max_parallel_tool_calls=1)
        self.metadata = {"source": "nemo-gym", "resources_server": safe_url(server_url)}
        self.metadata.update(metadata or {})
        self._verifier = ResourcesServerVerifier()

    @classmethod
    def from_file(
        cls, path: Path, server_url: str, *, env: str | None = None, **options: Any
    ) -> Self:
        """The tasks of a NeMo Gym task file (see :func:`~gymbus.nemo_gym.read_tasks`)."""
        return cls(read_tasks(path, env=env), server_url, **options)

    async def __aenter__(self) -> Self:
        await self.server.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.server.__aexit__(exc_type, exc, tb)

    async def episode(self, task: NeMoTask) -> EpisodeSpec:
        """Seed a fresh server session for ``task`` and build its episode."""
        session = ServerSession(self.server, task)
        where = self.server.where("/seed_session")
        try:
            reply = await session.post("/seed_session", session.request_body())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadTaskError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        if not reply.ok:
            raise BadTaskError(f"{where} failed with HTTP {reply.status}: {reply.text()}")
        return EpisodeSpec(
            task=task.task,
            messages=task.messages,
            verifier=self._verifier,
            tools=Toolbox(ResourcesServerTool(spec, session) for spec in task.tools),
            limits=self.limits,
            params=task.sampling(),
            metadata=self.metadata,
            state=session,
        )

    def jobs(self, *, samples: int = 1) -> Iterator[EpisodeJob]:
        """One job per task and sample, in file order."""
        for task in self.tasks:
            for sample in range(samples):
                yield EpisodeJob(
                    env=task.task.env,
                    seed=task.task.seed,
                    build=functools.partial(self.episode, task),
                    sample=sample,
                    episode_id=f"{task.task.task_id}#{sample}",
                    group_id=task.task.task_id,
                    group_size=samples,
                )
