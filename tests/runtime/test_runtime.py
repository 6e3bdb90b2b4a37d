"""The runtime end to end with in-test models: scoring, failures by kind, limits, users,
observers, cancellation and task hygiene."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import aclosing

import anyio
import pytest

from gymbus.runtime.errors import ModelConnectionError, ToolError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, Generation, ToolMessage, Usage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserAudit, UserTurn
from gymbus.runtime.verification import CompletedEpisode, Score

from .toy import ADD_SPEC, CallModel, FnModel, add, jobs

pytestmark = pytest.mark.anyio


def _other_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def test_scores_every_episode_and_records_the_transcript() -> None:
    async with Runtime(CallModel(), concurrency=8) as rt:
        rollouts = await rt.run(jobs(40))
    assert len(rollouts) == 40
    assert {r.episode_id for r in rollouts} == {f"toy/{i}" for i in range(40)}
    for r in rollouts:
        assert r.status == "scored"
        assert r.reward == 1.0, r.evidence
        assert r.failure is None
        assert r.stop_reason == "answered"
        assert r.turns == 2
        assert [m.role for m in r.messages] == ["user", "assistant", "tool", "assistant"]
        assert r.usage.completion_tokens == 4
        assert r.scores == {"exact": 1.0}
        assert r.metadata == {"rollout_structures": ["multi-step"]}
        assert r.timing.wall_s >= r.timing.model_s >= 0


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ("{not json", "not valid JSON"),
        ('{"a": "x", "b": 1}', "invalid arguments for 'add' at a"),
        ('{"a": 1}', "'b' is a required property"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
async def test_bad_tool_arguments_go_back_to_the_model(arguments: str, error: str) -> None:
    async with Runtime(CallModel(lambda seed: arguments)) as rt:
        [rollout] = await rt.run(jobs(1))
    assert rollout.status == "scored"
    tool_message = rollout.messages[2]
    assert isinstance(tool_message, ToolMessage)
    assert tool_message.is_error
    assert error in tool_message.text
    assert rollout.reward == 0.0  # the model answered with the error text
    assert rollout.turns == 2


async def test_unknown_tool_goes_back_to_the_model() -> None:
    async def fn(request: ModelRequest) -> AssistantMessage:
        from gymbus.runtime.messages import ToolCall

        if isinstance(request.conversation.last, ToolMessage):
            return AssistantMessage(content=request.conversation.last.text)
        return AssistantMessage(tool_calls=(ToolCall(id="x", name="mul", arguments="{}"),))

    async with Runtime(FnModel(fn)) as rt:
        [rollout] = await rt.run(jobs(1))
    assert rollout.status == "scored"
    assert rollout.messages[2].text == "error: unknown tool 'mul'; available: add"


async def test_a_crashed_tool_fails_the_episode_with_kind_tool() -> None:
    def broken(a: int, b: int) -> str:
        raise RuntimeError("disk on fire")

    toolbox = Toolbox([FunctionTool(broken, ADD_SPEC)])
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, tools=toolbox))
    assert rollout.status == "failed"
    assert rollout.reward is None
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"
    assert "disk on fire" in rollout.failure.message


async def test_a_hanging_tool_times_out_with_kind_tool() -> None:
    async def hang(a: int, b: int) -> str:
        await anyio.Event().wait()
        return "never"

    toolbox = Toolbox([FunctionTool(hang, ADD_SPEC)])
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, tools=toolbox, limits=Limits(tool_timeout=0.05)))
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"
    assert "timed out after 0.05s" in rollout.failure.message


async def test_model_errors_are_failures_of_kind_model_not_rewards() -> None:
    async def fn(request: ModelRequest) -> AssistantMessage:
        raise ModelConnectionError("cannot connect to http://127.0.0.1:9/v1")

    async with Runtime(FnModel(fn)) as rt:
        rollouts = await rt.run(jobs(5))
    assert {r.status for r in rollouts} == {"failed"}
    assert {r.failure.kind for r in rollouts if r.failure} == {"model"}
    assert all(r.reward is None for r in rollouts)
    assert "cannot connect" in (rollouts[0].failure.message if rollouts[0].failure else "")


async def test_a_model_call_past_its_deadline_fails_with_kind_model() -> None:
    async def fn(request: ModelRequest) -> AssistantMessage:
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    async with Runtime(FnModel(fn)) as rt:
        [rollout] = await rt.run(jobs(1, limits=Limits(call_timeout=0.05)))
    assert rollout.failure is not None
    assert rollout.failure.kind == "model"
    assert "did not answer within 0.05s" in rollout.failure.message


async def test_an_episode_past_its_deadline_fails_with_kind_timeout() -> None:
    async def fn(request: ModelRequest) -> AssistantMessage:
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    async with Runtime(FnModel(fn)) as rt:
        [rollout] = await rt.run(jobs(1, limits=Limits(call_timeout=30, episode_timeout=0.05)))
    assert rollout.failure is not None
    assert rollout.failure.kind == "timeout"


async def test_a_raising_verifier_is_a_verifier_failure_never_a_zero() -> None:
    class Broken:
        async def verify(self, episode: CompletedEpisode) -> Score:
            raise KeyError("answer")

    class NotANumber:
        async def verify(self, episode: CompletedEpisode) -> Score:
            return Score(reward=float("nan"))

    async with Runtime(CallModel()) as rt:
        [broken] = await rt.run(jobs(1, verifier=Broken()))
        [nan] = await rt.run(jobs(1, verifier=NotANumber()))
    for rollout in (broken, nan):
        assert rollout.status == "failed"
        assert rollout.reward is None
        assert rollout.failure is not None
        assert rollout.failure.kind == "verifier"
    assert "KeyError" in (broken.failure.message if broken.failure else "")
    assert "non-finite" in (nan.failure.message if nan.failure else "")


async def test_a_tool_server_lost_while_verifying_is_a_tool_failure() -> None:
    class StateCheck:  # reads the tool server's state, which is gone
        async def verify(self, episode: CompletedEpisode) -> Score:
            raise ToolError("MCP server 'inventory' exited (code -9)")

    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, verifier=StateCheck()))
    assert (rollout.status, rollout.reward) == ("failed", None)
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"
    assert rollout.failure.message == (
        "while StateCheck checked the state: MCP server 'inventory' exited (code -9)"
    )


async def test_a_task_that_cannot_be_built_fails_with_kind_bad_task() -> None:
    def build() -> object:
        raise ValueError("seed out of range")

    job = EpisodeJob(env="toy", seed=7, build=build)  # type: ignore[arg-type]
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run([job])
    assert rollout.status == "failed"
    assert rollout.failure is not None
    assert rollout.failure.kind == "bad_task"
    assert "seed out of range" in rollout.failure.message


async def test_max_turns_ends_the_episode_normally() -> None:
    async def fn(request: ModelRequest) -> AssistantMessage:
        from gymbus.runtime.messages import ToolCall

        return AssistantMessage(
            tool_calls=(ToolCall(id="c", name="add", arguments='{"a":1,"b":1}'),)
        )

    async with Runtime(FnModel(fn)) as rt:
        [rollout] = await rt.run(jobs(1, limits=Limits(max_turns=3)))
    assert rollout.status == "scored"
    assert rollout.stop_reason == "max_turns"
    assert rollout.turns == 3
    assert rollout.reward == 0.0


async def test_max_tokens_ends_the_episode_normally() -> None:
    async with Runtime(CallModel()) as rt:  # each call produces 2 completion tokens
        [rollout] = await rt.run(jobs(1, limits=Limits(max_tokens=2)))
    assert rollout.stop_reason == "max_tokens"
    assert rollout.turns == 1


class TwoStepUser:
    """Asks a follow-up once, then ends the conversation."""

    async def reply(self, conversation: Transcript) -> UserTurn:
        if sum(isinstance(m, UserMessage) for m in conversation) == 1:
            return UserMessage(content="and again?")
        return EndEpisode("goal-met")


async def test_the_user_simulator_gets_the_floor_when_the_policy_answers() -> None:
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, user=TwoStepUser()))
    assert rollout.stop_reason == "user:goal-met"
    roles = [m.role for m in rollout.messages]
    assert roles == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert rollout.messages[4].author == "user"
    assert rollout.messages[0].author == "environment"


async def test_a_failing_user_simulator_fails_with_kind_user() -> None:
    class Broken:
        async def reply(self, conversation: Transcript) -> UserTurn:
            raise RuntimeError("persona file missing")

    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, user=Broken()))
    assert rollout.failure is not None
    assert rollout.failure.kind == "user"


async def test_the_in_flight_budget_bounds_concurrent_model_calls() -> None:
    in_flight = peak = 0
    five_in_flight = anyio.Event()

    async def fn(request: ModelRequest) -> AssistantMessage:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 5:
            five_in_flight.set()
        await five_in_flight.wait()
        await anyio.lowlevel.checkpoint()
        in_flight -= 1
        return AssistantMessage(content=str(request.episode.seed + 1))

    async with Runtime(FnModel(fn), concurrency=5) as rt:
        rollouts = await rt.run(jobs(60, tools=Toolbox()))
    assert len(rollouts) == 60
    assert all(r.reward == 1.0 for r in rollouts)
    assert peak == 5


async def test_every_episode_ends_in_exactly_one_terminal_event() -> None:
    def maybe_broken(a: int, b: int) -> str:
        if a % 3 == 0:
            raise RuntimeError("crash")
        return add(a, b)

    toolbox = Toolbox([FunctionTool(maybe_broken, ADD_SPEC)])
    async with Runtime(CallModel(), concurrency=7) as rt:
        terminals = rt.bus.subscribe(["episode_scored", "episode_failed"], buffer=-1)
        messages = rt.bus.subscribe(["message_posted"], buffer=8, lossy=True)
        rollouts = await rt.run(jobs(30, tools=toolbox))
        seen: Counter[str] = Counter()
        while True:
            try:
                seen[terminals.receive_nowait().episode_id] += 1
            except anyio.WouldBlock:
                break
        messages.close()
        terminals.close()
    assert len(rollouts) == 30
    assert seen == Counter({f"toy/{i}": 1 for i in range(30)})
    assert sum(r.status == "failed" for r in rollouts) == 10


async def test_breaking_out_early_cancels_the_rest_and_leaks_no_task() -> None:
    before = _other_tasks()
    started = 0

    async def fn(request: ModelRequest) -> AssistantMessage:
        nonlocal started
        started += 1
        await anyio.lowlevel.checkpoint()
        return AssistantMessage(content=str(request.episode.seed + 1))

    async with Runtime(FnModel(fn), concurrency=4) as rt:
        got = 0
        async with aclosing(rt.collect(jobs(1000, tools=Toolbox()))) as stream:
            async for _ in stream:
                got += 1
                if got == 3:
                    break
        # the runtime is still usable after a cancelled collection
        again = await rt.run(jobs(2, tools=Toolbox()))
    assert got == 3
    assert len(again) == 2
    assert started < 50
    assert _other_tasks() == before


async def test_a_tool_returning_unserializable_output_is_a_tool_failure() -> None:
    not_json = FunctionTool(lambda a, b: object(), ToolSpec(name="add"))  # type: ignore[arg-type,return-value]
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, tools=Toolbox([not_json])))
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"


class AuditedTwoStepUser(TwoStepUser):
    """Replies like TwoStepUser, with an LLM-like generation, and audits itself."""

    def __init__(self, faithful: bool) -> None:
        self.faithful = faithful

    async def reply(self, conversation: Transcript) -> UserTurn:
        turn = await super().reply(conversation)
        if isinstance(turn, UserMessage):
            usage = Usage(prompt_tokens=11, completion_tokens=5)
            return turn.model_copy(update={"generation": Generation(model="u", usage=usage)})
        return turn

    async def audit(self, conversation: Transcript) -> UserAudit:
        if self.faithful:
            return UserAudit(faithful=True)
        return UserAudit(faithful=False, unprompted_reveals=("origin",))


async def test_a_faithful_user_is_audited_and_its_tokens_are_kept_apart() -> None:
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, user=AuditedTwoStepUser(faithful=True)))
    assert rollout.status == "scored"
    assert rollout.user_audit == UserAudit(faithful=True)
    assert rollout.usage.completion_tokens == 8  # four policy turns of 2 tokens
    assert rollout.user_usage == Usage(prompt_tokens=11, completion_tokens=5)


async def test_an_unfaithful_user_fails_the_episode_with_kind_user_not_a_reward() -> None:
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, user=AuditedTwoStepUser(faithful=False)))
    assert rollout.status == "failed"
    assert rollout.reward is None
    assert rollout.failure is not None
    assert rollout.failure.kind == "user"
    assert "revealed 'origin' unprompted" in rollout.failure.message
    assert rollout.user_audit is not None
    assert not rollout.user_audit.faithful


async def test_every_message_records_its_author() -> None:
    async with Runtime(CallModel()) as rt:
        [rollout] = await rt.run(jobs(1, user=TwoStepUser()))
    authors = [m.author for m in rollout.messages]
    assert authors == [
        "environment", "policy", "tool", "policy", "user", "policy", "tool", "policy",
    ]  # fmt: skip
    dumped = rollout.model_dump(mode="json")
    assert [m["author"] for m in dumped["messages"]] == authors
