from __future__ import annotations

from gymbus.runtime.floor import Turn, next_turn
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.transcript import Transcript

ASK = UserMessage(content="q")
CALL = AssistantMessage(tool_calls=(ToolCall(id="1", name="f"),))
RESULT = ToolMessage(tool_call_id="1", content="r")
ANSWER = AssistantMessage(content="a")


def turn(
    *messages: object,
    has_user: bool = False,
    turns: int = 0,
    tokens: int = 0,
    limits: Limits | None = None,
) -> Turn:
    return next_turn(
        Transcript(messages),  # type: ignore[arg-type]
        has_user=has_user,
        policy_turns=turns,
        completion_tokens=tokens,
        limits=limits or Limits(),
    )


def test_policy_speaks_after_the_user_and_after_tools() -> None:
    assert turn(ASK).speaker == "policy"
    assert turn(ASK, CALL, RESULT, turns=1).speaker == "policy"


def test_tool_calls_pass_the_floor_to_the_tool_executor() -> None:
    assert turn(ASK, CALL, turns=1).speaker == "tools"
    # even at the turn limit, requested tools still run (their results are recorded)
    assert turn(ASK, CALL, turns=1, limits=Limits(max_turns=1)).speaker == "tools"


def test_an_answer_ends_the_episode_or_passes_to_the_user() -> None:
    assert turn(ASK, ANSWER, turns=1) == Turn("end", "answered")
    assert turn(ASK, ANSWER, turns=1, has_user=True).speaker == "user"


def test_limits_end_the_episode_before_another_policy_call() -> None:
    assert turn(ASK, CALL, RESULT, turns=2, limits=Limits(max_turns=2)) == Turn("end", "max_turns")
    assert turn(ASK, CALL, RESULT, turns=1, tokens=50, limits=Limits(max_tokens=50)) == Turn(
        "end", "max_tokens"
    )
    assert turn(ASK, turns=5, limits=Limits(max_turns=None)).speaker == "policy"
