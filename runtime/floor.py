"""Floor control: who speaks next. A pure function of the transcript and the counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage
from gymbus.runtime.transcript import Transcript

Speaker = Literal["policy", "tools", "user", "end"]


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: Speaker
    reason: str | None = None  # why the episode ends, when speaker == "end"


POLICY = Turn("policy")
TOOLS = Turn("tools")
USER = Turn("user")


def next_turn(
    transcript: Transcript,
    *,
    has_user: bool,
    policy_turns: int,
    completion_tokens: int,
    limits: Limits,
) -> Turn:
    """Decide the next speaker.

    - the policy asked for tools → the tool executor answers;
    - the policy answered in text → the user replies if there is a simulated user,
      otherwise the episode ends (``stop_reason="answered"``);
    - anyone else spoke last → the policy, unless a turn or token limit is reached.
    """
    last = transcript.last
    if isinstance(last, AssistantMessage):
        if last.tool_calls:
            return TOOLS
        return USER if has_user else Turn("end", "answered")
    if limits.max_turns is not None and policy_turns >= limits.max_turns:
        return Turn("end", "max_turns")
    if limits.max_tokens is not None and completion_tokens >= limits.max_tokens:
        return Turn("end", "max_tokens")
    return POLICY
