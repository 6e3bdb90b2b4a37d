"""An episode's ``cleanup`` (runtime/episode_spec.py): awaited once after verification,
failure or cancellation, shielded and bounded; and an episode whose build raises
``ToolError`` fails with kind ``tool``."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial

import anyio
import pytest
from structlog.testing import capture_logs

from gymbus.runtime import episode_spec
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tools import FunctionTool, Toolbox
from gymbus.runtime.verification import CompletedEpisode, Score

from .toy import ADD_SPEC, AnswerVerifier, CallModel, FnModel, spec

pytestmark = pytest.mark.anyio


def _other_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


class Journal:
    """What happened, in order: verifications and cleanups, by seed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def job(self, seed: int, **kwargs: object) -> EpisodeJob:
        async def cleanup() -> None:
            await anyio.lowlevel.checkpoint()
            self.events.append(("cleanup", seed))

        journal = self

        class Verifier(AnswerVerifier):
            async def verify(self, episode: CompletedEpisode) -> Score:
                journal.events.append(("verified", seed))
                return await super().verify(episode)

        built = replace(spec(seed, verifier=Verifier(), **kwargs), cleanup=cleanup)  # type: ignore[arg-type]
        return EpisodeJob(env="toy", seed=seed, build=lambda: built, episode_id=f"toy/{seed}")


async def test_cleanup_runs_once_after_the_episode_is_verified() -> None:
    journal = Journal()
    async with Runtime(CallModel(), concurrency=4) as rt:
        rollouts = await rt.run([journal.job(seed) for seed in range(8)])
    assert {r.reward for r in rollouts} == {1.0}
    for seed in range(8):
        mine = [event for event in journal.events if event[1] == seed]
        assert mine == [("verified", seed), ("cleanup", seed)]


async def test_cleanup_runs_after_a_failed_episode() -> None:
    def broken(a: int, b: int) -> str:
        raise RuntimeError("disk on fire")

    journal = Journal()
    toolbox = Toolbox([FunctionTool(broken, ADD_SPEC)])
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run([journal.job(0, tools=toolbox)])
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"
    assert journal.events == [("cleanup", 0)]


async def test_cleanup_runs_when_the_episodes_are_cancelled() -> None:
    calls = 0
    all_started = anyio.Event()

    async def hang(request: ModelRequest) -> AssistantMessage:
        nonlocal calls
        calls += 1
        if calls == 3:
            all_started.set()
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    journal = Journal()
    before = _other_tasks()
    async with Runtime(FnModel(hang), concurrency=3) as rt, anyio.create_task_group() as tg:
        tg.start_soon(rt.run, [journal.job(seed) for seed in range(3)])
        with anyio.fail_after(5):
            await all_started.wait()
        tg.cancel_scope.cancel()
    assert sorted(journal.events) == [("cleanup", 0), ("cleanup", 1), ("cleanup", 2)]
    assert _other_tasks() == before


async def test_a_raising_cleanup_is_logged_and_leaves_the_rollout_alone() -> None:
    async def cleanup() -> None:
        raise OSError("socket already gone")

    built = replace(spec(0), cleanup=cleanup)
    job = EpisodeJob(env="toy", seed=0, build=lambda: built, episode_id="toy/0")
    with capture_logs() as logs:
        async with Runtime(CallModel()) as rt:
            [rollout] = await rt.run([job])
    assert rollout.reward == 1.0
    [failed] = [e for e in logs if e["event"] == "episode.cleanup_failed"]
    assert failed["episode_id"] == "toy/0"
    assert "socket already gone" in failed["error"]


async def test_a_hanging_cleanup_is_abandoned_after_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(episode_spec, "CLEANUP_TIMEOUT", 0.05)

    async def cleanup() -> None:
        await anyio.Event().wait()

    built = replace(spec(0), cleanup=cleanup)
    job = EpisodeJob(env="toy", seed=0, build=lambda: built, episode_id="toy/0")
    with capture_logs() as logs, anyio.fail_after(5):
        async with Runtime(CallModel()) as rt:
            [rollout] = await rt.run([job])
    assert rollout.reward == 1.0
    assert [e["event"] for e in logs].count("episode.cleanup_timed_out") == 1


async def test_a_build_raising_tool_error_fails_with_kind_tool() -> None:
    async def build() -> EpisodeSpec:
        raise ToolError("could not start MCP server 'notes': exited (code 1) before it was ready")

    async def build_bad() -> EpisodeSpec:
        raise ValueError("no such seed")

    jobs = [
        EpisodeJob(env="toy", seed=0, build=build, episode_id="toy/0"),
        EpisodeJob(env="toy", seed=1, build=build_bad, episode_id="toy/1"),
        EpisodeJob(env="toy", seed=2, build=partial(spec, 2), episode_id="toy/2"),
    ]
    async with Runtime(CallModel()) as rt:
        rollouts = {r.seed: r for r in await rt.run(jobs)}
    tool, bad, good = rollouts[0].failure, rollouts[1].failure, rollouts[2]
    assert tool is not None
    assert tool.kind == "tool"
    assert tool.message == (
        "could not build the episode: could not start MCP server 'notes': exited (code 1) "
        "before it was ready"
    )
    assert bad is not None
    assert bad.kind == "bad_task"
    assert good.reward == 1.0
