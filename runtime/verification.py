"""What verifiers see and return. Verifiers score completed episodes; they never see
an episode that failed for infrastructure reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from gymbus.runtime.messages import Frozen
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript


class Score(Frozen):
    """A verifier's verdict: the reward, named sub-scores, and the evidence behind them."""

    reward: float
    scores: dict[str, float] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompletedEpisode:
    """An episode that ran to a normal stop, handed to its verifier."""

    episode_id: str
    task: Task
    transcript: Transcript
    stop_reason: str
    state: Any = None  # environment-side state after the episode (for state checks)


@runtime_checkable
class Verifier(Protocol):
    """Scores a completed episode. Raising anything makes the episode fail with kind
    ``verifier`` — a broken verifier never turns into a reward of 0."""

    async def verify(self, episode: CompletedEpisode) -> Score: ...
