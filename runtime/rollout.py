"""The rollout record: one per episode, one JSON line in a rollout file (versioned)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gymbus.runtime.context import ContextEvent
from gymbus.runtime.errors import FailureKind
from gymbus.runtime.messages import Frozen, Message, Usage
from gymbus.runtime.tokens import TokenView, token_view
from gymbus.runtime.users import UserAudit

ROLLOUT_SCHEMA_VERSION: Literal[1] = 1


class Failure(Frozen):
    kind: FailureKind
    message: str


class Timing(Frozen):
    """Seconds. ``started_at`` is wall-clock (Unix time); the rest are durations."""

    started_at: float
    wall_s: float
    model_s: float = 0.0
    tool_s: float = 0.0
    user_s: float = 0.0
    verify_s: float = 0.0


class Rollout(Frozen):
    """A finished episode: ``status`` is ``scored`` (``reward`` is a number) or ``failed``
    (``reward`` is null and ``failure`` says why). Infrastructure failures are never
    scored."""

    schema_version: Literal[1] = ROLLOUT_SCHEMA_VERSION
    episode_id: str
    env: str
    task_id: str
    seed: int
    sample: int = 0
    group_id: str | None = None
    """The rollouts of one task sampled together (a GRPO group) share it."""
    group_size: int = 1
    status: Literal["scored", "failed"]
    reward: float | None
    scores: dict[str, float] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    failure: Failure | None = None
    stop_reason: str | None = None
    turns: int = 0
    messages: tuple[Message, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Usage()
    """Policy tokens only."""
    user_usage: Usage = Usage()
    """Tokens of an LLM-backed simulated user, kept apart from the policy's."""
    user_cost_usd: float = 0.0
    """Cost of the LLM-backed user's calls, when its prices are known."""
    user_audit: UserAudit | None = None
    context_events: tuple[ContextEvent, ...] = ()
    """Each time the policy's view was trimmed to fit its context window."""
    timing: Timing

    def tokens(self) -> TokenView | None:
        """Token ids of the whole episode with the trainable mask (policy tokens only)
        and the policy's logprobs — see :mod:`gymbus.runtime.tokens`."""
        return token_view(self.messages)

    def to_json_line(self) -> bytes:
        return self.model_dump_json().encode() + b"\n"
