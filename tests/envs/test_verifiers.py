import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymbus.envs.verifiers import (
    ExactMatchVerifier,
    ExpectedCall,
    RequiredCalls,
    final_answer,
    last_integer,
    stripped_text,
)
from gymbus.runtime.messages import AnyMessage, AssistantMessage, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode


def episode(*messages: AnyMessage) -> CompletedEpisode:
    return CompletedEpisode(
        episode_id="e1",
        task=Task(env="test", task_id="test/0", seed=0),
        transcript=Transcript([UserMessage(content="How many?"), *messages]),
        stop_reason="test",
    )


def call(call_id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=arguments)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("37", "37"),
        ("There are 37 units.", "37"),
        ("**37**", "37"),
        ("ORD-48213 has 37 units", "37"),
        ("37 units for ORD-48213", "37"),
        ("37 units at LOC-K47 (SKU-2FD9)", "37"),
        ("1,234 units", "1234"),
        ("12,34", None),
        ("007", "7"),
        ("-5", "-5"),
        ("-0", "0"),
        ("first 3, then 5", "5"),
        ("about 2.5 units", None),
        ("2.5 units, so 3", "3"),
        ("37units", None),
        ("version v2", None),
        ("ORD-48213", None),
        ("I can't help with that.", None),
        ("", None),
        ("٣٧", None),  # only ASCII digits count
    ],
)
def test_last_integer(text: str, expected: str | None) -> None:
    assert last_integer(text) == expected


filler = st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=30)


@given(st.integers(min_value=-(10**12), max_value=10**12), filler)
def test_last_integer_reads_a_number_after_any_text(n: int, prefix: str) -> None:
    assert last_integer(f"{prefix} {n}") == str(n)
    assert last_integer(f"{prefix} {n:,}.") == str(n)


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=99999))
def test_identifiers_after_the_answer_do_not_count(n: int, order: int) -> None:
    assert last_integer(f"{n} units for ORD-{order} at LOC-K{order % 100:02d}") == str(n)


def test_final_answer_is_the_last_assistant_message_without_tool_calls() -> None:
    answer = AssistantMessage(content="42")
    assert final_answer(episode(answer).transcript) is answer
    pending = AssistantMessage(content="let me look", tool_calls=(call("c1", "f", "{}"),))
    assert final_answer(episode(pending).transcript) is None
    result = ToolMessage(tool_call_id="c1", content="{}")
    assert final_answer(episode(answer, pending, result).transcript) is None
    assert final_answer(episode().transcript) is None


@pytest.mark.anyio
async def test_exact_match_rewards_the_exact_answer_only() -> None:
    verifier = ExactMatchVerifier("42", extract=last_integer)
    right = await verifier.verify(episode(AssistantMessage(content="The answer is 42.")))
    assert right.reward == 1.0
    assert right.scores == {"answer_correct": 1.0}
    assert right.evidence == {"expected": "42", "got": "42", "has_final_answer": True}
    wrong = await verifier.verify(episode(AssistantMessage(content="43")))
    assert (wrong.reward, wrong.evidence["got"]) == (0.0, "43")


@pytest.mark.anyio
async def test_no_final_answer_scores_zero() -> None:
    verifier = ExactMatchVerifier("42", extract=last_integer)
    stuck = episode(AssistantMessage(content="42?", tool_calls=(call("c1", "f", "{}"),)))
    score = await verifier.verify(stuck)
    assert score.reward == 0.0
    assert score.evidence == {"expected": "42", "got": None, "has_final_answer": False}


@pytest.mark.anyio
async def test_default_extractor_compares_the_stripped_text() -> None:
    verifier = ExactMatchVerifier("Paris")
    assert (await verifier.verify(episode(AssistantMessage(content=" Paris\n")))).reward == 1.0
    assert (await verifier.verify(episode(AssistantMessage(content="paris")))).reward == 0.0
    assert stripped_text("  ") is None


@pytest.mark.anyio
async def test_required_calls_are_evidence_not_reward() -> None:
    required = [
        ExpectedCall(name="get_order", arguments={"order_id": "ORD-1"}),
        ExpectedCall(name="get_stock", arguments={"location_code": "LOC-A01", "sku": "SKU-X"}),
    ]
    verifier = ExactMatchVerifier(
        "42", extract=last_integer, sub_scorers=(RequiredCalls(required),)
    )
    made = (
        call("c1", "get_order", '{"order_id": "ORD-1"}'),
        call("c2", "get_stock", '{"sku": "SKU-X", "location_code": "LOC-B02"}'),
        call("c3", "get_stock", "not json"),
    )
    score = await verifier.verify(
        episode(AssistantMessage(tool_calls=made), AssistantMessage(content="42"))
    )
    assert score.reward == 1.0
    assert score.scores == {"answer_correct": 1.0, "used_tools": 0.5}
    assert score.evidence["calls_made"] == [
        {"name": c.name, "arguments": c.arguments} for c in made
    ]
    assert score.evidence["missing_calls"] == [required[1].model_dump(mode="json")]


def test_no_required_calls_means_full_tool_use() -> None:
    assert RequiredCalls(())(episode()).scores == {"used_tools": 1.0}
