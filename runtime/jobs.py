"""Episode jobs, what becomes of them, GRPO group assembly and the staleness rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.rollout import Rollout


@dataclass(frozen=True, slots=True)
class EpisodeJob:
    """One episode to play. ``build`` makes the spec lazily (when the episode starts), so
    a long job list costs nothing up front; it may be a coroutine function (a remote
    environment starts its episode over the network); if it raises, the episode fails
    with kind ``bad_task`` (kind ``tool`` for a :class:`~gymbus.runtime.errors.ToolError`:
    a tool server the episode needs could not start). Jobs sharing a ``group_id`` are the
    ``group_size`` samples of one task (a GRPO group) and come out together from
    ``Runtime.collect_groups``."""

    env: str
    seed: int
    build: Callable[[], EpisodeSpec | Awaitable[EpisodeSpec]]
    sample: int = 0
    episode_id: str | None = None
    group_id: str | None = None
    group_size: int = 1


@dataclass(frozen=True, slots=True)
class JobResult:
    """A finished job: its rollout, or None when it was dropped as stale."""

    job: EpisodeJob
    rollout: Rollout | None


def oldest_version(rollout: Rollout) -> int | None:
    """The oldest policy (weight) version any turn of the rollout was sampled with."""
    versions = []
    for message in rollout.messages:
        if isinstance(message, AssistantMessage) and message.generation is not None:
            version = message.generation.weight_version
            if version is not None and version.lstrip("-").isdigit():
                versions.append(int(version))
    return min(versions, default=None)


def is_stale(rollout: Rollout, current: int | None, max_staleness: int | None) -> bool:
    """More than ``max_staleness`` versions behind the trainer's current version."""
    if max_staleness is None or current is None or rollout.status != "scored":
        return False
    oldest = oldest_version(rollout)
    return oldest is not None and current - oldest > max_staleness


async def assemble_groups(
    results: AsyncIterator[JobResult],
) -> AsyncIterator[tuple[Rollout, ...]]:
    """Yield each group once all its members are in (ordered by sample). A member
    dropped as stale shrinks its group; a group with no member left is not yielded."""
    members: dict[str, list[Rollout]] = {}
    expected: dict[str, int] = {}
    async for result in results:
        job = result.job
        key = job.group_id if job.group_id is not None else f"\0{id(job)}"
        expected.setdefault(key, job.group_size)
        if result.rollout is None:
            expected[key] -= 1
        else:
            members.setdefault(key, []).append(result.rollout)
        got = members.get(key, [])
        if len(got) >= expected[key]:
            members.pop(key, None)
            del expected[key]
            if got:
                yield tuple(sorted(got, key=lambda r: r.sample))
