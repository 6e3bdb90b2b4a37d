"""Everything the runtime needs to play one episode, built by an environment from a task."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AnyMessage
from gymbus.runtime.model import SamplingParams, Solver
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import Toolbox
from gymbus.runtime.users import UserSimulator
from gymbus.runtime.verification import Verifier

CLEANUP_TIMEOUT = 10.0
"""Seconds an episode's ``cleanup`` may take before it is abandoned."""

log = structlog.get_logger("gymbus.episode")


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    """One episode's ingredients.

    ``state`` is the environment-side object the tools act on (per episode, so parallel
    episodes never share it); it is handed to the verifier for state checks.
    ``params`` are sampling overrides the environment asks for (merged over the run's).
    ``cleanup`` releases what the episode holds (an MCP connection, a sandbox): the
    runtime awaits it once, after the episode is verified, failed or cancelled — see
    :func:`clean_up`.
    """

    task: Task
    messages: tuple[AnyMessage, ...]
    verifier: Verifier
    tools: Toolbox = field(default_factory=Toolbox)
    user: UserSimulator | None = None
    limits: Limits = field(default_factory=Limits)
    solver: Solver | None = None
    params: SamplingParams | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    state: Any = None
    cleanup: Callable[[], Awaitable[None]] | None = None


async def clean_up(spec: EpisodeSpec, episode_id: str) -> None:
    """Await ``spec.cleanup`` shielded from cancellation and bounded by
    :data:`CLEANUP_TIMEOUT`; what it raises is logged, never propagated (the rollout is
    already decided)."""
    cleanup = spec.cleanup
    if cleanup is None:
        return
    with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True) as scope:
        try:
            await cleanup()
        except Exception as exc:
            log.warning(
                "episode.cleanup_failed",
                episode_id=episode_id,
                task_id=spec.task.task_id,
                error=repr(exc),
            )
    if scope.cancelled_caught:
        log.warning(
            "episode.cleanup_timed_out",
            episode_id=episode_id,
            task_id=spec.task.task_id,
            timeout_s=CLEANUP_TIMEOUT,
        )
