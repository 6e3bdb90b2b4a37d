"""The Runtime: one per process (or per run) — a task group, the bus, the actors, the
verifier pool and the global in-flight budget. ``collect`` turns episode jobs into
rollouts as they finish::

    async with Runtime(model, concurrency=64) as rt:
        async for rollout in rt.collect(jobs):
            ...

It runs inside the caller's event loop (no ``asyncio.run`` here). Each episode runs in
one task: play → publish EpisodeCompleted → wait for its terminal event (EpisodeScored
from the verifier pool, or EpisodeFailed) → hand the rollout to its collection. The
in-flight budget covers that whole span, verification included; per-environment limits
(``env_concurrency``) apply under it.

Trainers set ``rt.weight_version`` whenever they publish new weights: every model call
carries it and every turn records it. With ``max_staleness=N``, a scored episode whose
oldest turn is more than N versions behind the current one is dropped
(``on_stale="drop"``) or played again (``on_stale="rerun"``, at most ``MAX_RERUNS`` times).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import time
import uuid
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from gymbus.runtime.actors import (
    POLICY_ADDRESS,
    TOOLS_ADDRESS,
    USER_ADDRESS,
    Policy,
    ToolExecutor,
    UserHost,
)
from gymbus.runtime.bus import Bus
from gymbus.runtime.context import ContextWindow
from gymbus.runtime.episode import EpisodeOutcome, play_episode
from gymbus.runtime.episode_spec import EpisodeSpec, clean_up
from gymbus.runtime.errors import ToolError
from gymbus.runtime.events import (
    AnyEvent,
    EpisodeCompleted,
    EpisodeFailed,
    EpisodeScored,
)
from gymbus.runtime.jobs import EpisodeJob, JobResult, assemble_groups, is_stale
from gymbus.runtime.model import EpisodeInfo, Model, SamplingParams
from gymbus.runtime.rollout import Failure, Rollout, Timing
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import AuditedUser, UserAudit
from gymbus.runtime.verification import CompletedEpisode
from gymbus.runtime.verifier_pool import VerificationJob, VerifierPool

MAX_RERUNS = 3


@dataclass(slots=True)
class RuntimeStats:
    """Counters a trainer may want to log."""

    stale_dropped: int = 0
    stale_reruns: int = 0


@dataclass(slots=True, eq=False)
class _Live:
    spec: EpisodeSpec
    outcome: EpisodeOutcome
    done: anyio.Event = field(default_factory=anyio.Event)
    terminal: EpisodeScored | EpisodeFailed | None = None
    verify_s: float = 0.0
    audit: UserAudit | None = None


class Runtime:
    """Owns the bus and actors. ``concurrency`` is the global in-flight episode budget;
    ``model_concurrency``/``tool_concurrency``/``user_concurrency``/
    ``verifier_concurrency`` bound each actor kind."""

    def __init__(
        self,
        model: Model,
        *,
        concurrency: int = 64,
        model_concurrency: int | None = None,
        tool_concurrency: int = 256,
        user_concurrency: int = 64,
        verifier_concurrency: int = 16,
        env_concurrency: Mapping[str, int] | None = None,
        params: SamplingParams | None = None,
        max_staleness: int | None = None,
        on_stale: Literal["drop", "rerun"] = "drop",
        context: ContextWindow | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.model = model
        self.concurrency = concurrency
        self.params = params or SamplingParams()
        self._limits = {
            POLICY_ADDRESS: model_concurrency or concurrency,
            TOOLS_ADDRESS: tool_concurrency,
            USER_ADDRESS: user_concurrency,
        }
        self._verifier_concurrency = verifier_concurrency
        self._env_limits = dict(env_concurrency or {})
        self._env_slots: dict[str, anyio.Semaphore] = {}
        self.max_staleness = max_staleness
        self.on_stale = on_stale
        self.context = context
        self.weight_version: int | None = None
        """The trainer's current policy version (set it when weights change)."""
        self.stats = RuntimeStats()
        self._live: dict[str, _Live] = {}
        self._ids = itertools.count()
        self._tg: TaskGroup | None = None
        self._bus: Bus | None = None
        self._budget: anyio.Semaphore | None = None

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise RuntimeError("use the Runtime inside 'async with'")
        return self._bus

    async def __aenter__(self) -> Self:
        self._budget = anyio.Semaphore(self.concurrency)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        bus = self._bus = Bus()
        bus.add_actor(POLICY_ADDRESS, Policy(self.model), concurrency=self._limits[POLICY_ADDRESS])
        bus.add_actor(TOOLS_ADDRESS, ToolExecutor(), concurrency=self._limits[TOOLS_ADDRESS])
        bus.add_actor(USER_ADDRESS, UserHost(), concurrency=self._limits[USER_ADDRESS])
        pool = VerifierPool(
            bus,
            self._verification_job,
            concurrency=self._verifier_concurrency,
            on_verified=self._record_verify_time,
        )
        terminals = bus.subscribe(["episode_scored", "episode_failed"], buffer=self.concurrency)
        tg.start_soon(pool.run, tg, name="verifier-pool")
        tg.start_soon(self._route_terminals, terminals, name="terminal-router")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        assert self._bus is not None
        await self._bus.aclose()
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = self._bus = None
            self._live.clear()

    # -- collection -------------------------------------------------------------------------
    async def collect(self, jobs: Iterable[EpisodeJob]) -> AsyncGenerator[Rollout, None]:
        """Play ``jobs`` (at most ``concurrency`` at once) and yield each rollout as soon as
        it is scored or failed. Breaking out of the loop cancels the remaining episodes
        (use ``contextlib.aclosing`` to make that prompt)."""
        async with aclosing(self._results(jobs)) as results:
            async for result in results:
                if result.rollout is not None:
                    yield result.rollout

    async def collect_groups(
        self, jobs: Iterable[EpisodeJob]
    ) -> AsyncGenerator[tuple[Rollout, ...], None]:
        """Like :meth:`collect`, but yield each GRPO group (the jobs sharing a
        ``group_id``) once all its members are done, ordered by sample."""
        async with aclosing(self._results(jobs)) as results:
            async for group in assemble_groups(results):
                yield group

    async def run(self, jobs: Iterable[EpisodeJob]) -> list[Rollout]:
        """Play ``jobs`` and return every rollout (in completion order)."""
        return [rollout async for rollout in self.collect(jobs)]

    async def _results(self, jobs: Iterable[EpisodeJob]) -> AsyncGenerator[JobResult, None]:
        if self._tg is None:
            raise RuntimeError("use the Runtime inside 'async with'")
        send, receive = anyio.create_memory_object_stream[JobResult](self.concurrency)
        scope = anyio.CancelScope()
        errors: list[Exception] = []
        self._tg.start_soon(self._feed, jobs, send, scope, errors, name="collection-feed")
        try:
            async with receive:
                async for result in receive:
                    yield result
        finally:
            scope.cancel()
        if errors:  # a bug (not an infrastructure failure) stopped the collection
            raise errors[0]

    async def _feed(
        self,
        jobs: Iterable[EpisodeJob],
        send: MemoryObjectSendStream[JobResult],
        scope: anyio.CancelScope,
        errors: list[Exception],
    ) -> None:
        budget = self._budget
        assert budget is not None
        with scope, send:
            try:
                async with anyio.create_task_group() as tg:
                    for job in jobs:
                        await budget.acquire()
                        tg.start_soon(self._run_job, job, send)
            except Exception as exc:
                errors.append(exc)

    async def _run_job(self, job: EpisodeJob, send: MemoryObjectSendStream[JobResult]) -> None:
        episode_id = job.episode_id or f"{uuid.uuid4().hex[:12]}-{next(self._ids)}"
        try:
            async with self._env_slot(job.env):
                rollout: Rollout | None = None
                for attempt in range(MAX_RERUNS + 1):
                    rollout = await self._play(job, episode_id, time.time())
                    if not is_stale(rollout, self.weight_version, self.max_staleness):
                        break
                    if self.on_stale == "drop" or attempt == MAX_RERUNS:
                        self.stats.stale_dropped += 1
                        rollout = None
                        break
                    self.stats.stale_reruns += 1
            # the consumer may have stopped listening
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(JobResult(job, rollout))
        finally:
            assert self._budget is not None
            self._budget.release()

    def _env_slot(self, env: str) -> anyio.Semaphore | contextlib.nullcontext[None]:
        limit = self._env_limits.get(env)
        if limit is None:
            return contextlib.nullcontext()
        slot = self._env_slots.get(env)
        if slot is None:
            slot = self._env_slots[env] = anyio.Semaphore(limit, fast_acquire=True)
        return slot

    async def _play(self, job: EpisodeJob, episode_id: str, started_at: float) -> Rollout:
        try:
            built = job.build()
            spec = await built if inspect.isawaitable(built) else built
        except Exception as exc:
            failure = (  # a tool the episode needs (an MCP server) could not start
                Failure(kind="tool", message=f"could not build the episode: {exc}")
                if isinstance(exc, ToolError)
                else Failure(kind="bad_task", message=f"could not build the task: {exc!r}")
            )
            return Rollout(
                episode_id=episode_id,
                env=job.env,
                task_id=f"{job.env}/{job.seed}",
                seed=job.seed,
                sample=job.sample,
                group_id=job.group_id,
                group_size=job.group_size,
                status="failed",
                reward=None,
                failure=failure,
                timing=Timing(started_at=started_at, wall_s=0.0),
            )
        info = EpisodeInfo(
            episode_id, job.env, spec.task.task_id, job.seed, job.sample, spec.solver
        )
        params = self.params
        if spec.params is not None:
            params = params.model_copy(update=spec.params.model_dump(exclude_unset=True))
        live = self._live[episode_id] = _Live(spec, EpisodeOutcome(Transcript(spec.messages)))
        try:
            return await self._finish(job, info, live, params, started_at)
        finally:
            self._live.pop(episode_id, None)
            if spec.cleanup is not None:  # after verification, failure or cancellation
                await clean_up(spec, episode_id)

    async def _finish(
        self,
        job: EpisodeJob,
        info: EpisodeInfo,
        live: _Live,
        params: SamplingParams,
        started_at: float,
    ) -> Rollout:
        bus, spec, episode_id = self.bus, live.spec, info.episode_id
        outcome = live.outcome = await play_episode(
            bus, spec, info, params, self._current_version, self.context
        )
        user = spec.user  # (a runtime-checkable Protocol isinstance is slow: users only)
        if outcome.failure_kind is None and user is not None and isinstance(user, AuditedUser):
            live.audit = await _audit(user, outcome)
        event: AnyEvent
        if outcome.failure_kind is not None:
            event = EpisodeFailed(
                episode_id=episode_id,
                failure_kind=outcome.failure_kind,
                message=outcome.failure_message or "",
            )
        else:
            event = EpisodeCompleted(
                episode_id=episode_id,
                stop_reason=outcome.stop_reason or "",
                turns=outcome.policy_turns,
                usage=outcome.usage,
            )
        await bus.publish(event)
        await live.done.wait()
        return self._rollout(job, info, live, started_at)

    def _rollout(
        self, job: EpisodeJob, info: EpisodeInfo, live: _Live, started_at: float
    ) -> Rollout:
        outcome, terminal = live.outcome, live.terminal
        scored = isinstance(terminal, EpisodeScored)
        failure = None
        if isinstance(terminal, EpisodeFailed):
            failure = Failure(kind=terminal.failure_kind, message=terminal.message)
        return Rollout(
            episode_id=info.episode_id,
            env=job.env,
            task_id=info.task_id,
            seed=job.seed,
            sample=job.sample,
            group_id=job.group_id,
            group_size=job.group_size,
            status="scored" if scored else "failed",
            reward=terminal.reward if isinstance(terminal, EpisodeScored) else None,
            scores=terminal.scores if isinstance(terminal, EpisodeScored) else {},
            evidence=terminal.evidence if isinstance(terminal, EpisodeScored) else {},
            failure=failure,
            stop_reason=outcome.stop_reason,
            turns=outcome.policy_turns,
            messages=tuple(outcome.transcript),
            metadata=dict(live.spec.metadata),
            usage=outcome.usage,
            user_usage=outcome.user_usage,
            user_cost_usd=outcome.user_cost_usd,
            user_audit=live.audit,
            context_events=tuple(outcome.context_events),
            timing=Timing(
                started_at=started_at,
                wall_s=outcome.wall_s + live.verify_s,
                model_s=outcome.model_s,
                tool_s=outcome.tool_s,
                user_s=outcome.user_s,
                verify_s=live.verify_s,
            ),
        )

    def _current_version(self) -> int | None:
        return self.weight_version

    # -- observers ------------------------------------------------------------------------
    def _verification_job(self, episode_id: str) -> VerificationJob | None:
        live = self._live.get(episode_id)
        if live is None:
            return None
        spec, outcome = live.spec, live.outcome
        episode = CompletedEpisode(
            episode_id, spec.task, outcome.transcript, outcome.stop_reason or "", spec.state
        )
        return VerificationJob(spec.verifier, episode)

    def _record_verify_time(self, episode_id: str, seconds: float) -> None:
        live = self._live.get(episode_id)
        if live is not None:
            live.verify_s = seconds

    async def _route_terminals(self, events: MemoryObjectReceiveStream[AnyEvent]) -> None:
        async with events:
            async for event in events:
                live = self._live.get(event.episode_id)
                if live is None or live.terminal is not None:
                    continue
                assert isinstance(event, EpisodeScored | EpisodeFailed)
                live.terminal = event
                live.done.set()


async def _audit(user: AuditedUser, outcome: EpisodeOutcome) -> UserAudit | None:
    """Audit the simulated user; an unfaithful (or crashing) user fails the episode with
    kind ``user`` so that the policy is neither rewarded nor blamed for it."""
    try:
        audit = await user.audit(outcome.transcript)
    except Exception as exc:
        outcome.failure_kind = "user"
        outcome.failure_message = f"the user audit raised {exc!r}"
        return None
    if not audit.faithful:
        outcome.failure_kind = "user"
        outcome.failure_message = f"simulated user was unfaithful: {audit.summary()}"
    return audit
