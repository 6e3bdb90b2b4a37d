"""The verifier pool: subscribes to EpisodeCompleted, scores episodes with bounded
concurrency, publishes EpisodeScored — or EpisodeFailed(kind="verifier") when a verifier
raises or returns a non-finite reward. A broken verifier never becomes a reward of 0.

A :class:`~gymbus.runtime.errors.ToolError` raised while verifying is the tool side's
failure, not the verifier's — e.g. a state check whose MCP server died after the last
tool call — and fails the episode with kind ``tool``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from gymbus.runtime.bus import Bus
from gymbus.runtime.errors import ToolError
from gymbus.runtime.events import AnyEvent, EpisodeFailed, EpisodeScored
from gymbus.runtime.verification import CompletedEpisode, Verifier


@dataclass(frozen=True, slots=True)
class VerificationJob:
    verifier: Verifier
    episode: CompletedEpisode


class VerifierPool:
    def __init__(
        self,
        bus: Bus,
        lookup: Callable[[str], VerificationJob | None],
        *,
        concurrency: int,
        on_verified: Callable[[str, float], None] | None = None,
    ) -> None:
        self._bus = bus
        self._lookup = lookup
        self._slots = anyio.Semaphore(concurrency)
        self._on_verified = on_verified
        self._events = bus.subscribe(["episode_completed"], buffer=concurrency)

    async def run(self, task_group: TaskGroup) -> None:
        async with self._events:
            async for event in self._events:
                job = self._lookup(event.episode_id)
                if job is None:  # its collection was cancelled meanwhile
                    continue
                await self._slots.acquire()
                task_group.start_soon(self._verify, job)

    async def _verify(self, job: VerificationJob) -> None:
        episode_id = job.episode.episode_id
        started = time.perf_counter()
        event: AnyEvent
        try:
            score = await job.verifier.verify(job.episode)
            if not math.isfinite(score.reward):
                raise ValueError(f"verifier returned a non-finite reward {score.reward!r}")
            event = EpisodeScored(
                episode_id=episode_id,
                reward=score.reward,
                scores=score.scores,
                evidence=score.evidence,
            )
        except ToolError as exc:
            event = EpisodeFailed(
                episode_id=episode_id,
                failure_kind="tool",
                message=f"while {type(job.verifier).__name__} checked the state: {exc}",
            )
        except Exception as exc:
            event = EpisodeFailed(
                episode_id=episode_id,
                failure_kind="verifier",
                message=f"{type(job.verifier).__name__} raised {exc!r}",
            )
        finally:
            self._slots.release()
        if self._on_verified is not None:
            self._on_verified(episode_id, time.perf_counter() - started)
        await self._bus.publish(event)
