"""The server's episode table (ownership, idle expiry, the sweeper), replayed tool
replies and conversation deltas — pure parts, on a fake clock."""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from gymbus.remote_protocol import ConversationDelta
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.served_episodes import EpisodeTable, OutOfSyncError, ToolReplies
from tests.served_envs import FaultyEnv


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _spec() -> EpisodeSpec:
    env = FaultyEnv()
    spec = env.episode(env.task(0))
    assert isinstance(spec, EpisodeSpec)
    return spec


def test_an_episode_is_found_only_by_its_owner() -> None:
    table = EpisodeTable(clock=Clock())
    episode = table.add(0, "faulty", _spec())
    assert table.get(episode.episode_id, 0) is episode
    assert table.get(episode.episode_id, 1) is None
    assert table.get(episode.episode_id, None) is None
    assert not table.remove(episode.episode_id, 1)
    assert table.remove(episode.episode_id, 0)
    assert table.get(episode.episode_id, 0) is None
    assert len({table.add(0, "faulty", _spec()).episode_id for _ in range(50)}) == 50


def test_idle_episodes_expire_but_busy_ones_do_not() -> None:
    clock = Clock()
    table = EpisodeTable(idle_expiry=10.0, clock=clock)
    idle, busy, fresh = (table.add(0, "faulty", _spec()) for _ in range(3))
    with table.using(busy):
        clock.now = 11.0
        with table.using(fresh):
            pass  # used at 11.0
        assert table.sweep() == 1
        assert table.get(idle.episode_id, 0) is None
        assert table.get(busy.episode_id, 0) is busy
    clock.now = 20.0
    assert table.get(busy.episode_id, 0) is busy  # its request ended at 11.0
    clock.now = 21.5
    assert table.get(fresh.episode_id, 0) is None  # dropped when touched, sweeper or not
    assert table.sweep() == 1
    assert len(table) == 0


def test_the_table_is_full_at_its_maximum() -> None:
    table = EpisodeTable(max_episodes=2, clock=Clock())
    table.add(0, "faulty", _spec())
    assert not table.full
    table.add(0, "faulty", _spec())
    assert table.full


def test_conversation_deltas_build_on_what_the_server_holds() -> None:
    table = EpisodeTable(clock=Clock())
    episode = table.add(0, "faulty", _spec())
    system, user = SystemMessage(content="s"), UserMessage(content="u", author="environment")
    answer = AssistantMessage(content="a")
    assert list(episode.conversation(ConversationDelta(messages=(system, user)))) == [system, user]
    grown = episode.conversation(ConversationDelta(base=2, messages=(answer,)))
    assert list(grown) == [system, user, answer]
    assert list(episode.conversation(ConversationDelta(base=1))) == [system]  # a fork
    with pytest.raises(OutOfSyncError):
        episode.conversation(ConversationDelta(base=2))


@pytest.mark.anyio
async def test_a_repeated_request_id_runs_the_tool_once() -> None:
    replies = ToolReplies(size=2)
    runs: list[str] = []
    release = anyio.Event()

    async def compute(name: str) -> bytes:
        runs.append(name)
        await release.wait()
        return name.encode()

    got: list[bytes] = []

    async def ask(request_id: str) -> None:
        got.append(await replies.once(request_id, lambda: compute(request_id)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, "a")
        tg.start_soon(ask, "a")  # while the first still runs
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert (runs, got) == (["a"], [b"a", b"a"])
    assert await replies.once("a", lambda: compute("never")) == b"a"
    await replies.once("b", lambda: compute("b"))
    await replies.once("c", lambda: compute("c"))
    assert await replies.once("a", lambda: compute("a")) == b"a"  # "a" was forgotten: ran again
    assert runs == ["a", "b", "c", "a"]


@pytest.mark.anyio
async def test_a_cancelled_first_attempt_lets_the_retry_run() -> None:
    replies = ToolReplies()

    async def hang() -> bytes:
        await anyio.sleep_forever()
        return b""

    async def quick() -> bytes:
        return b"done"

    with anyio.move_on_after(0.01):
        await replies.once("r", hang)
    assert await replies.once("r", quick) == b"done"


@pytest.mark.anyio
async def test_a_dropped_episode_is_cleaned_up_once_and_stopping_cleans_the_rest() -> None:
    cleaned: list[str] = []
    table = EpisodeTable(idle_expiry=10.0, clock=(clock := Clock()))

    def add(task_id: str) -> str:
        async def cleanup() -> None:
            cleaned.append(task_id)

        spec = replace(_spec(), cleanup=cleanup)
        return table.add(None, "faulty", spec).episode_id

    deleted, expired, left = add("deleted"), add("expired"), add("left")
    assert table.remove(deleted, None)
    assert not table.remove(deleted, None)
    clock.now = 5.0
    used = table.get(left, None)
    assert used is not None
    with table.using(used):  # used at 5 s: it does not expire at 11 s
        pass
    clock.now = 11.0
    assert table.sweep() == 1
    assert table.get(expired, None) is None
    await table.aclose()
    assert sorted(cleaned) == ["deleted", "expired", "left"]
    assert len(table) == 0
