"""LLM-backed users: the role flip, personas, the fidelity audit, and travel-clarify end
to end with the user played by a model behind a real local server."""

from __future__ import annotations

import pytest

import gymbus
from gymbus.adapters import HTTPClient, OpenAIChat
from gymbus.envs.builtin.travel_clarify import TravelClarify
from gymbus.envs.llm_user import GREETING, LLMUser, UserGoal, audit_by_rules, flip_roles
from gymbus.envs.personas import PERSONAS, sample_persona
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.model import EpisodeInfo, ModelRequest
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode
from tests.openai_server import OpenAIServer, SeenRequest, Turn
from tests.user_policy import fact_lines, playing_user

pytestmark = pytest.mark.anyio

GOAL = UserGoal(
    opening="Book me a flight to Oslo.",
    goal="the cheapest flight to Oslo",
    facts={"origin": "Naples", "date": "Monday 7 September 2026"},
    alternatives={"origin": ("Lisbon", "Porto")},
)
INFO = EpisodeInfo("ep/user", "travel-clarify", "t/0", 0)


def _conversation(*texts: tuple[str, str]) -> Transcript:
    messages: list[AnyMessage] = []
    for role, text in texts:
        if role == "user":
            messages.append(UserMessage(content=text, author="user"))
        else:
            messages.append(AssistantMessage(content=text))
    return Transcript(messages)


def test_the_user_model_sees_roles_flipped_and_no_tool_traffic() -> None:
    conversation = Transcript(
        [
            UserMessage(content="Book me a flight to Oslo.", author="user"),
            AssistantMessage(content="Which city are you flying from?"),
            UserMessage(content="We're flying from Naples.", author="user"),
            AssistantMessage(tool_calls=(ToolCall(id="c", name="search_flights"),)),
            ToolMessage(tool_call_id="c", content="[...flights...]"),
            AssistantMessage(content="Booked flight SK1."),
        ]
    )
    flipped = flip_roles(conversation, "PERSONA")
    assert [(m.role, m.text) for m in flipped] == [
        ("system", "PERSONA"),
        ("user", GREETING),
        ("assistant", "Book me a flight to Oslo."),
        ("user", "Which city are you flying from?"),
        ("assistant", "We're flying from Naples."),
        ("user", "Booked flight SK1."),
    ]


def test_personas_are_reproducible_and_diverse() -> None:
    assert sample_persona(7) == sample_persona(7)
    assert len({sample_persona(seed).name for seed in range(40)}) >= 8
    assert all(p.describe().startswith(f"You are {p.name}") for p in PERSONAS)


def test_the_rule_audit_catches_unprompted_reveals_contradictions_and_assistant_speak() -> None:
    faithful = _conversation(
        ("user", GOAL.opening),
        ("agent", "Which city are you flying from?"),
        ("user", "From Naples."),
    )
    assert audit_by_rules(GOAL, faithful).faithful
    unprompted = _conversation(
        ("user", GOAL.opening), ("agent", "Sure."), ("user", "We leave from Naples.")
    )
    assert audit_by_rules(GOAL, unprompted).unprompted_reveals == ("origin",)
    contradicts = _conversation(
        ("user", GOAL.opening), ("agent", "Where from?"), ("user", "From Lisbon.")
    )
    audit = audit_by_rules(GOAL, contradicts)
    assert not audit.faithful
    assert "'Lisbon' for origin" in audit.contradictions[0]
    assistant = _conversation(
        ("user", GOAL.opening), ("agent", "Where from?"), ("user", "How can I help you today?")
    )
    assert audit_by_rules(GOAL, assistant).persona_breaks


async def test_the_judge_is_merged_with_the_rules() -> None:
    judge = gymbus.FunctionModel(
        lambda request: (
            '{"unprompted_reveals": [], "contradictions": [], '
            '"persona_breaks": ["too formal for the persona"]}'
        )
    )
    user = LLMUser(gymbus.NullModel(), PERSONAS[0], GOAL, episode=INFO, judge=judge)
    conversation = _conversation(
        ("user", GOAL.opening), ("agent", "Where from?"), ("user", "Naples.")
    )
    audit = await user.audit(conversation)
    assert audit.method == "rules+judge"
    assert not audit.faithful
    assert audit.persona_breaks == ("too formal for the persona",)


async def test_end_markers_and_the_turn_limit_end_the_episode() -> None:
    done = LLMUser(gymbus.FunctionModel(lambda r: "Thanks! [END: goal-met]"), PERSONAS[1], GOAL,
                   episode=INFO)  # fmt: skip
    conversation = _conversation(("user", GOAL.opening), ("agent", "Booked."))
    assert await done.reply(conversation) == EndEpisode("goal-met")
    chatty = LLMUser(gymbus.FunctionModel(lambda r: "Hmm."), PERSONAS[1], GOAL, episode=INFO,
                     max_user_turns=1)  # fmt: skip
    long = _conversation(("user", GOAL.opening), ("agent", "?"), ("user", "a"), ("agent", "?"),
                         ("user", "b"), ("agent", "?"))  # fmt: skip
    assert await chatty.reply(long) == EndEpisode("turn-limit")


async def test_travel_clarify_completes_with_an_llm_user_behind_a_local_server() -> None:
    async with (
        OpenAIServer(policy=playing_user, model="user-model") as server,
        HTTPClient() as http,
    ):
        user_model = OpenAIChat("user-model", base_url=server.base_url, client=http)
        env = TravelClarify(difficulty="hard", user_model=user_model, user_prices=(2.0, 8.0))
        rollouts = await gymbus.run(env, gymbus.OracleModel(), n=6)
        first_request = server.requests[0].json()
    assert [r.status for r in rollouts] == ["scored"] * 6, [r.failure for r in rollouts]
    assert [r.reward for r in rollouts] == [1.0] * 6, [r.evidence for r in rollouts]
    for rollout in rollouts:
        assert rollout.user_usage.completion_tokens > 0
        usage = rollout.user_usage  # apart from the policy's (the oracle's own usage)
        assert rollout.user_cost_usd == pytest.approx(
            (usage.prompt_tokens * 2.0 + usage.completion_tokens * 8.0) / 1e6
        )
        assert rollout.timing.user_s > 0
        assert rollout.user_audit is not None
        assert rollout.user_audit.faithful
        replies = [m for m in rollout.messages if isinstance(m, UserMessage) and m.generation]
        assert replies
        assert all(m.author == "user" for m in replies)
    # the exact request the user model received: persona instructions, greeting, the
    # user's own opening as assistant, the agent's question as user; no tool traffic
    roles = [m["role"] for m in first_request["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "You are " in first_request["messages"][0]["content"]
    assert first_request["messages"][1]["content"] == GREETING
    assert "flight to" in first_request["messages"][2]["content"]
    assert "?" in first_request["messages"][3]["content"]
    assert "tools" not in first_request


async def test_an_llm_user_that_leaks_a_fact_fails_the_episode_as_a_user_failure() -> None:
    def leaky(request: SeenRequest) -> Turn:
        facts = fact_lines(request)  # says every fact, asked or not
        return Turn(text="Also: " + "; ".join(facts.values()) + ".")

    async with OpenAIServer(policy=leaky) as server, HTTPClient() as http:
        user_model = OpenAIChat("m", base_url=server.base_url, client=http)
        env = TravelClarify(difficulty="easy", user_model=user_model)

        async def confirm(request: ModelRequest) -> AssistantMessage:
            return AssistantMessage(content="Noted. I will book it now.")

        rollouts = await gymbus.run(env, gymbus.FunctionModel(confirm), n=3)
    for rollout in rollouts:
        assert rollout.status == "failed"
        assert rollout.failure is not None
        assert rollout.failure.kind == "user"
        assert "unprompted" in rollout.failure.message
        assert rollout.reward is None
