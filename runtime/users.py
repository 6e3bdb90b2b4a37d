"""The hook point for simulated users: who speaks when the floor passes to the user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from gymbus.runtime.messages import Frozen, UserMessage
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


class UserAudit(Frozen):
    """Was the simulated user faithful to its script or persona? Recorded in every
    rollout that had a user. An unfaithful user makes the episode fail with kind
    ``user`` — the policy is not blamed (no reward), and a trainer can drop it."""

    faithful: bool
    unprompted_reveals: tuple[str, ...] = ()
    """Withheld facts the user gave without being asked."""
    contradictions: tuple[str, ...] = ()
    """Statements that contradict the user's own facts."""
    persona_breaks: tuple[str, ...] = ()
    """Replies out of character (speaking as an assistant, style rules broken)."""
    method: Literal["rules", "judge", "rules+judge"] = "rules"
    evidence: dict[str, Any] = Field(default_factory=dict)

    def summary(self) -> str:
        problems = [
            *(f"revealed {f!r} unprompted" for f in self.unprompted_reveals),
            *(f"contradicted: {c}" for c in self.contradictions),
            *(f"broke persona: {b}" for b in self.persona_breaks),
        ]
        return "; ".join(problems) or "faithful"


@runtime_checkable
class AuditedUser(Protocol):
    """A user simulator that can audit its own conduct in a finished conversation."""

    async def audit(self, conversation: Transcript) -> UserAudit: ...
