"""Context-window policies: fail, truncate the oldest exchanges, summarize — each
recorded in the rollout; the policy sees exactly the recorded view."""

from __future__ import annotations

import pytest

from gymbus.runtime.context import ContextWindow
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tokenizer import message_tokens
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec
from gymbus.runtime.transcript import Transcript

from .toy import FnModel, jobs

pytestmark = pytest.mark.anyio

PAGE = ToolSpec(
    name="page", parameters={"type": "object", "properties": {"n": {"type": "integer"}}}
)


def page(n: int = 0) -> str:
    return f"page {n}: " + "lorem ipsum dolor sit amet " * 40  # ~240 tokens


class Reader:
    """Reads pages 0..9 one per turn, then answers; records what it was shown."""

    def __init__(self) -> None:
        self.seen: list[Transcript] = []

    async def __call__(self, request: ModelRequest) -> AssistantMessage:
        self.seen.append(request.conversation)
        pages = sum(
            1 for m in request.conversation if isinstance(m, AssistantMessage) and m.tool_calls
        )
        turn = len(self.seen) - 1
        if turn < 10:
            call = ToolCall(id=f"c{turn}", name="page", arguments=f'{{"n": {turn}}}')
            return AssistantMessage(content="", tool_calls=(call,))
        return AssistantMessage(content=f"{request.episode.seed + 1} ({pages} pages in view)")


def _jobs() -> list:  # type: ignore[type-arg]
    tools = Toolbox([FunctionTool(page, PAGE)])
    return jobs(1, tools=tools, limits=Limits(max_turns=20))


async def test_fail_stops_the_episode_and_records_why() -> None:
    reader = Reader()
    async with Runtime(FnModel(reader), context=ContextWindow(window=1500)) as rt:
        [rollout] = await rt.run(_jobs())
    assert rollout.status == "scored"  # a normal stop, verified
    assert rollout.stop_reason == "context_window"
    [event] = rollout.context_events
    assert event.exhausted
    assert event.policy == "fail"
    assert event.tokens_before > 1500
    assert len(reader.seen) == event.turn  # the policy never saw the overflowing prompt


async def test_truncate_oldest_drops_whole_exchanges_and_keeps_the_task() -> None:
    reader = Reader()
    window = ContextWindow(window=1500, on_overflow="truncate_oldest")
    async with Runtime(FnModel(reader), context=window) as rt:
        [rollout] = await rt.run(_jobs())
    assert rollout.stop_reason == "answered"
    assert rollout.context_events
    task = rollout.messages[0]
    for event, view in zip(
        rollout.context_events, [reader.seen[e.turn] for e in rollout.context_events], strict=True
    ):
        assert event.tokens_after <= 1500 < event.tokens_before
        assert view[0] == task  # the task prompt stays pinned
        assert isinstance(view[1], AssistantMessage)  # never an orphan tool result
        assert sum(message_tokens(m) for m in view) == event.tokens_after
    for view in reader.seen:  # every tool result shown is shown with its call
        ids = {c.id for m in view if isinstance(m, AssistantMessage) for c in m.tool_calls}
        assert all(m.tool_call_id in ids for m in view if isinstance(m, ToolMessage))
    assert len(rollout.messages) == 1 + 10 * 2 + 1  # the full transcript is kept


async def test_summarize_replaces_the_oldest_part_with_a_summary() -> None:
    reader = Reader()

    async def summarizer(request: ModelRequest) -> AssistantMessage:
        return AssistantMessage(
            content="pages read so far: " + str(request.conversation[0].text.count("page "))
        )

    window = ContextWindow(window=2000, on_overflow="summarize", summarizer=FnModel(summarizer))
    async with Runtime(FnModel(reader), context=window) as rt:
        [rollout] = await rt.run(_jobs())
    assert rollout.stop_reason == "answered"
    summarized = [e for e in rollout.context_events if e.summary]
    assert summarized
    event = summarized[0]
    view = reader.seen[event.turn]
    assert view[1].author == "environment"
    assert view[1].text.startswith("[Summary of the earlier conversation]")
    assert event.summary == view[1].text
    assert event.tokens_after < event.tokens_before


async def test_the_view_is_the_transcript_itself_until_it_overflows() -> None:
    reader = Reader()
    async with Runtime(FnModel(reader), context=ContextWindow(window=10**6)) as rt:
        [rollout] = await rt.run(_jobs())
    assert rollout.context_events == ()
    assert all(isinstance(v, Transcript) for v in reader.seen)
    assert reader.seen[-1]._items is reader.seen[0]._items  # shared storage: no copies


def test_system_messages_are_pinned_too() -> None:
    assert message_tokens(SystemMessage(content="x")) > 0
