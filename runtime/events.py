"""Lifecycle events: a discriminated union on ``kind``. Every episode ends in exactly one
terminal event, :class:`EpisodeScored` or :class:`EpisodeFailed`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from gymbus.runtime.errors import FailureKind
from gymbus.runtime.messages import AnyMessage, Frozen, Usage


class _Event(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    episode_id: str


class EpisodeStarted(_Event):
    kind: Literal["episode_started"] = "episode_started"
    env: str
    task_id: str
    seed: int
    sample: int = 0


class MessagePosted(_Event):
    kind: Literal["message_posted"] = "message_posted"
    index: int
    message: AnyMessage


class ModelCallFinished(_Event):
    kind: Literal["model_call_finished"] = "model_call_finished"
    model: str
    latency_s: float
    usage: Usage
    attempts: int = 1


class ToolCallFinished(_Event):
    kind: Literal["tool_call_finished"] = "tool_call_finished"
    call_id: str
    name: str
    latency_s: float
    is_error: bool


class EpisodeCompleted(_Event):
    """The conversation stopped normally; verification follows."""

    kind: Literal["episode_completed"] = "episode_completed"
    stop_reason: str
    turns: int
    usage: Usage


class EpisodeScored(_Event):
    kind: Literal["episode_scored"] = "episode_scored"
    reward: float
    scores: dict[str, float] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)


class EpisodeFailed(_Event):
    kind: Literal["episode_failed"] = "episode_failed"
    failure_kind: FailureKind
    message: str


Event = Annotated[
    EpisodeStarted
    | MessagePosted
    | ModelCallFinished
    | ToolCallFinished
    | EpisodeCompleted
    | EpisodeScored
    | EpisodeFailed,
    Field(discriminator="kind"),
]
AnyEvent = (
    EpisodeStarted
    | MessagePosted
    | ModelCallFinished
    | ToolCallFinished
    | EpisodeCompleted
    | EpisodeScored
    | EpisodeFailed
)
EventKind = Literal[
    "episode_started",
    "message_posted",
    "model_call_finished",
    "tool_call_finished",
    "episode_completed",
    "episode_scored",
    "episode_failed",
]
TERMINAL_KINDS: frozenset[str] = frozenset({"episode_scored", "episode_failed"})
