"""The hook point for simulated users: who speaks when the floor passes to the user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gymbus.runtime.messages import UserMessage
from gymbus.runtime.transcript import Transcript


@dataclass(frozen=True, slots=True)
class EndEpisode:
    """The user ends the conversation, saying why (goal met, gave up, turn limit …)."""

    reason: str


UserTurn = UserMessage | EndEpisode


@runtime_checkable
class UserSimulator(Protocol):
    """Replies to the policy when the floor passes to the user. Raising fails the
    episode with kind ``user``."""

    async def reply(self, conversation: Transcript) -> UserTurn: ...
