"""The trainable token view: ids are exactly what the server sent; the mask covers the
policy's tokens only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    Generation,
    TokenLogprob,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tokens import token_view

ids = st.lists(st.integers(0, 200_000), max_size=12)


def _turn(prompt: list[int], completion: list[int]) -> AssistantMessage:
    return AssistantMessage(
        content="x",
        generation=Generation(
            model="m",
            prompt_token_ids=tuple(prompt),
            token_ids=tuple(completion),
            logprobs=tuple(TokenLogprob(token=str(t), logprob=-t / 1e6) for t in completion),
        ),
    )


@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=6))
def test_a_prefix_preserving_episode_is_the_servers_token_stream(
    turns: list[tuple[list[int], list[int]]],
) -> None:
    messages: list[AnyMessage] = []
    sent: list[int] = []  # what the server saw and produced, in order
    completions: list[int] = []
    for context, completion in turns:
        prompt = sent + context  # each prompt extends the previous prompt and completion
        messages += [UserMessage(content="u"), _turn(prompt, completion)]
        sent = prompt + completion
        completions += completion
    view = token_view(messages)
    assert view is not None
    assert view.prefix_consistent
    assert list(view.token_ids) == sent
    assert [t for t, m in zip(view.token_ids, view.mask, strict=True) if m] == completions
    trained = [lp for lp, m in zip(view.logprobs, view.mask, strict=True) if m]
    assert trained == [-t / 1e6 for t in completions]
    assert all(lp is None for lp, m in zip(view.logprobs, view.mask, strict=True) if not m)
    assert view.policy_turns == len(turns)


def test_a_rewritten_history_restarts_the_view_and_says_so() -> None:
    first = _turn([1, 2], [3, 4])
    second = _turn([1, 2, 9, 5], [6])  # the template dropped the first completion
    view = token_view([first, ToolMessage(tool_call_id="t", content="r"), second])
    assert view is not None
    assert not view.prefix_consistent
    assert view.token_ids == (1, 2, 9, 5, 6)
    assert view.mask == (0, 0, 0, 0, 1)


def test_no_view_without_token_ids_from_the_server() -> None:
    assert token_view([AssistantMessage(content="a", generation=Generation(model="m"))]) is None
    assert token_view([UserMessage(content="u")]) is None
