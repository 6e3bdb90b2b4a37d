"""The message bus: addressed delivery to actors, and fan-out of events to observers.

**Addressed delivery** (``await bus.ask("policy", request)``) routes a request to the
actor registered at that address and returns its reply. The design sketch had each
actor serve a bounded inbox from its own task; we deliver instead by running the actor's
handler *in the sender's task*, under the actor's concurrency limit (a FIFO semaphore:
callers queue when the actor is saturated — the same backpressure a bounded inbox
gives, with the queue bounded by the global in-flight budget). Why: an inbox costs two
task switches and a task spawn per message, which measured at ~60% of the runtime's CPU
per episode; and work done for an episode now runs inside the episode's own cancel
scope, so its deadline and cancellation reach it with no cross-task bookkeeping.

**Observers** subscribe by event kind and receive events on bounded anyio memory object
streams. A subscription is either blocking (a slow observer slows the producers:
verifiers, the rollout collector, sinks) or lossy (events that do not fit are dropped
and counted: progress displays). The choice is made at subscribe time. Producers ask
:meth:`Bus.wants` first so that events nobody listens to are never built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from gymbus.runtime.events import AnyEvent


class Actor(Protocol):
    """Something that answers requests at an address: a policy, tool executor, user."""

    async def handle(self, request: Any) -> Any: ...


@dataclass(slots=True, eq=False)
class _Registration:
    actor: Actor
    slots: anyio.Semaphore


@dataclass(slots=True, eq=False)
class _Subscription:
    send: MemoryObjectSendStream[AnyEvent]
    lossy: bool
    dropped: int = 0


class Bus:
    def __init__(self) -> None:
        self._actors: dict[str, _Registration] = {}
        self._subs: dict[str, list[_Subscription]] = {}

    # -- addressed delivery -------------------------------------------------------------
    def add_actor(self, address: str, actor: Actor, *, concurrency: int) -> None:
        if address in self._actors:
            raise ValueError(f"an actor is already registered at {address!r}")
        self._actors[address] = _Registration(
            actor, anyio.Semaphore(concurrency, fast_acquire=True)
        )

    async def ask(self, address: str, request: Any) -> Any:
        """Deliver ``request`` to the actor at ``address`` and return its reply (its
        exceptions propagate). Waits while the actor is at its concurrency limit."""
        try:
            registration = self._actors[address]
        except KeyError:
            raise LookupError(f"no actor at address {address!r}") from None
        async with registration.slots:
            return await registration.actor.handle(request)

    # -- observers ------------------------------------------------------------------------
    def subscribe(
        self, kinds: Iterable[str], *, buffer: int = 256, lossy: bool = False
    ) -> MemoryObjectReceiveStream[AnyEvent]:
        """Receive every published event whose ``kind`` is in ``kinds``.

        ``lossy=False``: publishers wait when the buffer is full. ``lossy=True``: events
        that do not fit are dropped (see :meth:`dropped`). Close the returned stream to
        unsubscribe.
        """
        send, receive = anyio.create_memory_object_stream[AnyEvent](
            math.inf if buffer < 0 else buffer
        )
        sub = _Subscription(send, lossy)
        for kind in kinds:
            self._subs.setdefault(kind, []).append(sub)
        return receive

    def wants(self, kind: str) -> bool:
        """Whether anyone listens to ``kind`` (lets producers skip building events)."""
        return bool(self._subs.get(kind))

    async def publish(self, event: AnyEvent) -> None:
        subs = self._subs.get(event.kind)
        if not subs:
            return
        for sub in tuple(subs):
            try:
                if sub.lossy:
                    try:
                        sub.send.send_nowait(event)
                    except anyio.WouldBlock:
                        sub.dropped += 1
                else:
                    await sub.send.send(event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._unsubscribe(sub)

    def _unsubscribe(self, sub: _Subscription) -> None:
        for subs in self._subs.values():
            if sub in subs:
                subs.remove(sub)
        sub.send.close()

    def dropped(self) -> int:
        """Events dropped by lossy subscriptions so far."""
        return sum(s.dropped for subs in self._subs.values() for s in set(subs) if s.lossy)

    async def aclose(self) -> None:
        """Close every subscription: observers see the end of their streams."""
        seen: set[int] = set()
        for subs in self._subs.values():
            for sub in subs:
                if id(sub) not in seen:
                    seen.add(id(sub))
                    sub.send.close()
        self._subs.clear()
