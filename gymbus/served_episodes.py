"""The episodes a ``gymbus serve`` process holds — who owns each, the conversation it last
sent, replies to retried tool calls, idle expiry (lazily on access and by a sweeper), the
spec's ``cleanup`` once an episode is dropped — and their steps: each runs the
environment's code with the runtime's own rules and returns the reply body (a result, or
the environment's failure).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
import structlog

from gymbus.remote_protocol import (
    ConversationDelta,
    SolverReplied,
    StepFailed,
    StepFailure,
    StepFailureKind,
    ToolResult,
    UserAudited,
    UserReplied,
    Verified,
)
from gymbus.runtime.actors import UserCall, UserHost
from gymbus.runtime.episode_spec import EpisodeSpec, clean_up
from gymbus.runtime.errors import (
    PolicyError,
    ToolArgumentsError,
    UnknownToolError,
    UserSimulatorError,
)
from gymbus.runtime.messages import AnyMessage
from gymbus.runtime.model import AsyncSolver
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import AuditedUser, EndEpisode
from gymbus.runtime.verification import CompletedEpisode

log = structlog.get_logger("gymbus.serve")

Owner = int | None
"""The index of the token that created an episode (None on an unauthenticated server)."""

REPLAY_SIZE = 256


class OutOfSyncError(Exception):
    """A conversation delta builds on more messages than the server holds."""


class ToolReplies:
    """Finished tool replies by request id (the last ``size``), so that a request retried
    after its answer was lost gets that answer instead of running the tool again; a
    duplicate arriving while the first still runs waits for it."""

    __slots__ = ("_done", "_running", "_size")

    def __init__(self, size: int = REPLAY_SIZE) -> None:
        self._size = size
        self._done: OrderedDict[str, bytes] = OrderedDict()
        self._running: dict[str, anyio.Event] = {}

    async def once(self, request_id: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        while True:
            done = self._done.get(request_id)
            if done is not None:
                return done
            running = self._running.get(request_id)
            if running is None:
                break
            await running.wait()  # then look again: the first attempt may have been cancelled
        event = self._running[request_id] = anyio.Event()
        try:
            body = await compute()
            self._done[request_id] = body
            while len(self._done) > self._size:
                self._done.popitem(last=False)
            return body
        finally:
            del self._running[request_id]
            event.set()


def failed(kind: StepFailureKind, exc: BaseException) -> bytes:
    failure = StepFailure(kind=kind, message=str(exc), exception=repr(exc))
    return StepFailed(failure=failure).model_dump_json().encode()


@dataclass(eq=False, slots=True)
class ServedEpisode:
    episode_id: str
    owner: Owner
    env: str
    spec: EpisodeSpec
    last_used: float
    busy: int = 0
    history: list[AnyMessage] = field(default_factory=list)
    tool_replies: ToolReplies = field(default_factory=ToolReplies)

    def conversation(self, delta: ConversationDelta) -> Transcript:
        """The conversation ``delta`` stands for; it becomes the one the next delta
        builds on. Raises :class:`OutOfSyncError` if ``delta.base`` is too long."""
        if delta.base > len(self.history):
            raise OutOfSyncError(
                f"the conversation builds on {delta.base} messages; the server holds "
                f"{len(self.history)} for this episode (send base 0)"
            )
        messages = self.history[: delta.base]
        messages.extend(delta.messages)
        self.history = messages
        return Transcript(messages)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> bytes:
        """One tool call with the tool executor's rules: the model's mistakes are failures
        of their kind, anything else raised is a crash, ``tool_timeout`` bounds it."""
        tools = self.spec.tools
        tool = tools.get(name)
        try:
            if tool is None:
                available = ", ".join(tools) or "(none)"
                raise UnknownToolError(f"unknown tool {name!r}; available: {available}")
            with anyio.fail_after(self.spec.limits.tool_timeout):
                output = await tool(arguments)
            if not isinstance(output, str | tuple):  # as the executor does: JSON text
                output = orjson.dumps(output).decode()
            return ToolResult(output=output).model_dump_json().encode()
        except ToolArgumentsError as exc:
            return failed("arguments", exc)
        except UnknownToolError as exc:
            return failed("unknown_tool", exc)
        except PolicyError as exc:
            return failed("input_error", exc)
        except TimeoutError as exc:
            return failed("timeout", exc)
        except Exception as exc:
            return failed("crash", exc)

    async def user_turn(self, conversation: Transcript) -> bytes:
        assert self.spec.user is not None
        call = UserCall(self.spec.user, conversation, self.spec.limits.call_timeout)
        try:
            turn = await UserHost().handle(call)
        except UserSimulatorError as exc:  # worded by the runtime's own user host
            return failed("user", exc)
        reply = (
            UserReplied(end=turn.reason)
            if isinstance(turn, EndEpisode)
            else UserReplied(message=turn)
        )
        return reply.model_dump_json().encode()

    async def audit(self, conversation: Transcript) -> bytes:
        user = self.spec.user
        assert isinstance(user, AuditedUser)
        try:
            return UserAudited(audit=await user.audit(conversation)).model_dump_json().encode()
        except Exception as exc:
            return failed("crash", exc)

    async def solve(self, conversation: Transcript) -> bytes:
        solver = self.spec.solver
        assert solver is not None
        try:
            if isinstance(solver, AsyncSolver):
                message = await solver.next_message_async(conversation)
            else:
                message = solver.next_message(conversation)
            return SolverReplied(message=message).model_dump_json().encode()
        except Exception as exc:
            return failed("crash", exc)

    async def verify(
        self, transcript: Transcript, stop_reason: str, episode_id: str | None
    ) -> bytes:
        """Score with the verifier pool's rules: raising or a non-finite reward fails."""
        spec = self.spec
        episode = CompletedEpisode(
            episode_id or self.episode_id, spec.task, transcript, stop_reason, spec.state
        )
        try:
            score = await spec.verifier.verify(episode)
            if not math.isfinite(score.reward):
                raise ValueError(f"verifier returned a non-finite reward {score.reward!r}")
            return Verified(score=score).model_dump_json().encode()
        except Exception as exc:
            return failed("verifier", exc)


class EpisodeTable:
    """Live episodes by id. An episode unused for ``idle_expiry`` seconds (and with no
    request running) is dropped: at the next access to it, or by :meth:`sweep`."""

    def __init__(
        self,
        *,
        idle_expiry: float = 600.0,
        max_episodes: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if idle_expiry <= 0:
            raise ValueError(f"idle_expiry must be positive, got {idle_expiry}")
        self.idle_expiry = idle_expiry
        self.max_episodes = max_episodes
        self._clock = clock
        self._episodes: dict[str, ServedEpisode] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._unclean: list[ServedEpisode] = []  # dropped outside an event loop

    def __len__(self) -> int:
        return len(self._episodes)

    @property
    def full(self) -> bool:
        return len(self._episodes) >= self.max_episodes

    def add(self, owner: Owner, env: str, spec: EpisodeSpec) -> ServedEpisode:
        episode_id = secrets.token_urlsafe(18)
        episode = ServedEpisode(episode_id, owner, env, spec, self._clock())
        self._episodes[episode_id] = episode
        return episode

    def get(self, episode_id: str, owner: Owner) -> ServedEpisode | None:
        """The episode, if it exists, is ``owner``'s and has not expired."""
        episode = self._episodes.get(episode_id)
        if episode is None or episode.owner != owner:
            return None
        if self._expired(episode, self._clock()):
            self._drop(episode, "expired")
            return None
        return episode

    def remove(self, episode_id: str, owner: Owner) -> bool:
        episode = self.get(episode_id, owner)
        if episode is None:
            return False
        self._drop(episode, "deleted")
        return True

    @contextmanager
    def using(self, episode: ServedEpisode) -> Iterator[ServedEpisode]:
        """Mark ``episode`` busy for one request (it cannot expire meanwhile)."""
        episode.busy += 1
        try:
            yield episode
        finally:
            episode.busy -= 1
            episode.last_used = self._clock()

    def sweep(self) -> int:
        """Drop every expired episode; return how many."""
        now = self._clock()
        expired = [e for e in self._episodes.values() if self._expired(e, now)]
        for episode in expired:
            self._drop(episode, "expired")
        return len(expired)

    async def run_sweeper(self) -> None:
        """Sweep every half expiry (at most every 30 s), forever."""
        interval = min(self.idle_expiry / 2, 30.0)
        while True:
            await anyio.sleep(interval)
            self.sweep()

    def _expired(self, episode: ServedEpisode, now: float) -> bool:
        return episode.busy == 0 and now - episode.last_used > self.idle_expiry

    async def aclose(self) -> None:
        """Drop every episode and wait for their cleanups (the server is stopping)."""
        for episode in list(self._episodes.values()):
            self._drop(episode, "closed")
        unclean, self._unclean = self._unclean, []
        for episode in unclean:
            await clean_up(episode.spec, episode.episode_id)
        if self._cleanups:
            await asyncio.wait(set(self._cleanups))

    def _drop(self, episode: ServedEpisode, why: str) -> None:
        if self._episodes.pop(episode.episode_id, None) is not None:
            level = log.info if why == "expired" else log.debug
            level(f"episode.{why}", env=episode.env, task_id=episode.spec.task.task_id)
            if episode.spec.cleanup is not None:  # in the background: dropping is sync
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # (a table used synchronously, in tests)
                    self._unclean.append(episode)
                    return
                task = loop.create_task(clean_up(episode.spec, episode.episode_id))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)
