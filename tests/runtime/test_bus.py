from __future__ import annotations

from typing import Any

import anyio
import pytest

from gymbus.runtime.bus import Bus
from gymbus.runtime.events import EpisodeFailed, EpisodeStarted

pytestmark = pytest.mark.anyio


def _started(i: int) -> EpisodeStarted:
    return EpisodeStarted(episode_id=str(i), env="e", task_id="t", seed=i)


class Echo:
    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.release = anyio.Event()

    async def handle(self, request: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        if request == "boom":
            raise ValueError("boom")
        return ("echo", request)


async def test_ask_delivers_to_the_addressed_actor_and_returns_its_reply() -> None:
    bus = Bus()
    echo = Echo()
    echo.release.set()
    bus.add_actor("echo", echo, concurrency=1)
    assert await bus.ask("echo", 42) == ("echo", 42)
    with pytest.raises(ValueError, match="boom"):
        await bus.ask("echo", "boom")
    with pytest.raises(LookupError, match="no actor at address 'nobody'"):
        await bus.ask("nobody", 1)
    with pytest.raises(ValueError, match="already registered"):
        bus.add_actor("echo", echo, concurrency=1)


async def test_an_actor_never_exceeds_its_concurrency_limit() -> None:
    bus = Bus()
    echo = Echo()
    bus.add_actor("echo", echo, concurrency=3)
    results: list[Any] = []

    async def call(i: int) -> None:
        results.append(await bus.ask("echo", i))

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(call, i)
        await anyio.wait_all_tasks_blocked()
        assert echo.in_flight == 3  # the other 7 wait at the actor's door
        echo.release.set()
    assert echo.peak == 3
    assert sorted(r[1] for r in results) == list(range(10))


async def test_observers_get_only_their_kinds_in_order() -> None:
    bus = Bus()
    started = bus.subscribe(["episode_started"], buffer=10)
    assert bus.wants("episode_started")
    assert not bus.wants("episode_failed")
    for i in range(3):
        await bus.publish(_started(i))
    await bus.publish(EpisodeFailed(episode_id="x", failure_kind="model", message="m"))
    got = [started.receive_nowait().episode_id for _ in range(3)]
    assert got == ["0", "1", "2"]
    with pytest.raises(anyio.WouldBlock):
        started.receive_nowait()
    await bus.aclose()
    with pytest.raises(anyio.EndOfStream):
        await started.receive()
    started.close()


async def test_a_blocking_observer_applies_backpressure() -> None:
    bus = Bus()
    slow = bus.subscribe(["episode_started"], buffer=2)
    published = 0

    async def produce() -> None:
        nonlocal published
        for i in range(5):
            await bus.publish(_started(i))
            published += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        await anyio.wait_all_tasks_blocked()
        assert published == 2  # the third publish waits for the observer
        for _ in range(5):
            await slow.receive()
    assert published == 5
    await bus.aclose()
    slow.close()


async def test_a_lossy_observer_drops_and_counts_instead_of_blocking() -> None:
    bus = Bus()
    progress = bus.subscribe(["episode_started"], buffer=2, lossy=True)
    for i in range(5):
        await bus.publish(_started(i))  # never blocks
    assert bus.dropped() == 3
    assert [progress.receive_nowait().episode_id for _ in range(2)] == ["0", "1"]
    await bus.aclose()
    progress.close()


async def test_a_closed_observer_is_unsubscribed() -> None:
    bus = Bus()
    gone = bus.subscribe(["episode_started"], buffer=1)
    gone.close()
    await bus.publish(_started(0))
    assert not bus.wants("episode_started")
