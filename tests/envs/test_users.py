import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import gymbus
from gymbus.envs.users import (
    AnswerReaction,
    CannedReply,
    Reveal,
    ScriptedUser,
    UserScript,
    next_user_turn,
    questions_in,
)
from gymbus.envs.verifiers import ExactMatchVerifier
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AnyMessage, AssistantMessage, ToolCall, UserMessage
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserSimulator, UserTurn

pytestmark = pytest.mark.anyio

SCRIPT = UserScript(
    opening="I'd like to order a pizza, please.",
    facts={"size": "large", "address": "12 Elm Street"},
    reveals=(
        Reveal(fact="size", triggers=(r"\bsize\b", r"\bhow (big|large)\b")),
        Reveal(fact="address", triggers=(r"\baddress\b", r"\bwhere\b"), template="To {value}."),
    ),
    replies=(CannedReply(triggers=(r"\btopping",), text="Just cheese."),),
    on_answer=AnswerReaction(required=(r"\bORDER-[0-9]+\b",), nudge="Did you place the order?"),
    max_user_turns=3,
)
VALUES = tuple(SCRIPT.facts.values())


def conversation(*texts: str, user_replies: tuple[str, ...] = ()) -> Transcript:
    """The opening, then policy texts interleaved with the given user replies."""
    messages: list[AnyMessage] = [SCRIPT.opening_message()]
    for i, text in enumerate(texts):
        messages.append(AssistantMessage(content=text))
        if i < len(user_replies):
            messages.append(UserMessage(content=user_replies[i]))
    return Transcript(messages)


def turn(*texts: str, user_replies: tuple[str, ...] = ()) -> UserTurn:
    return next_user_turn(SCRIPT, conversation(*texts, user_replies=user_replies))


def said(result: UserTurn) -> str:
    assert isinstance(result, UserMessage), result
    assert result.author == "user"
    return result.text


# --- revealing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("What size would you like?", "It's large."),
        ("How big should it be?", "It's large."),
        ("Where should we deliver it?", "To 12 Elm Street."),
        ("Please tell me your address.", "To 12 Elm Street."),  # a request, not a '?'
        ("Which size, and to which address?", "It's large. To 12 Elm Street."),
        ("Sure! What size? And where to?", "It's large. To 12 Elm Street."),
        ("**What SIZE would you like?**", "It's large."),  # markdown, any case
    ],
)
def test_a_question_reveals_exactly_the_facts_it_asks_for(question: str, reply: str) -> None:
    assert said(turn(question)) == reply


@pytest.mark.parametrize(
    "text",
    [
        "Hello! Happy to help.",
        "Let me check the menu.",
        "What would you like?",
        "Could you give me more details?",
        "Is there anything else I can help you with?",
        "I can't help with that.",
        "",
    ],
)
def test_a_fact_is_never_said_unprompted(text: str) -> None:
    result = turn(text)
    if isinstance(result, UserMessage):
        assert not any(value in result.text for value in VALUES)


_WORDS = ("what", "where", "size", "address", "topping", "big", "how", "the", "pizza", "please")
_PUNCT = ("?", ".", "!", "\n", " ")


@given(st.lists(st.sampled_from(_WORDS + _PUNCT), max_size=12).map(" ".join))
def test_a_fact_is_said_only_when_one_of_its_triggers_is_in_the_message(text: str) -> None:
    result = turn(text)
    if not isinstance(result, UserMessage):
        return
    for reveal in SCRIPT.reveals:
        if SCRIPT.facts[reveal.fact] in result.text:
            assert any(re.search(t, text, re.IGNORECASE) for t in reveal.triggers)


def test_a_question_about_nothing_known_gets_the_fallback() -> None:
    assert said(turn("What's your favourite colour?")) == "I'm not sure what you mean."


def test_a_canned_reply_answers_its_questions_without_facts() -> None:
    assert said(turn("Any toppings?")) == "Just cheese."
    assert said(turn("Which toppings and what size?")) == "It's large."  # facts come first


def test_asking_again_repeats_the_fact() -> None:
    assert said(turn("What size?", "What size again?", user_replies=("It's large.",))) == (
        "It's large."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where to? Done.", ["Where to?"]),
        ("Your order is placed. Anything else?", []),
        ("Have a great day!", []),
        ("1. What size?\n2. Which address?", ["What size?", "Which address?"]),
        ("Let me know your address.", ["Let me know your address."]),
        ("Done! ORDER-1.", []),
    ],
)
def test_questions_in(text: str, expected: list[str]) -> None:
    assert questions_in(SCRIPT, text) == expected


# --- answers and limits ---------------------------------------------------------------------


def test_an_answer_with_the_required_content_ends_the_episode() -> None:
    assert turn("Ordered: ORDER-17. Anything else?") == EndEpisode("goal-met")


def test_an_answer_missing_required_content_is_nudged_once() -> None:
    assert said(turn("All done.")) == "Did you place the order?"
    again = turn("All done.", "All done.", user_replies=("Did you place the order?",))
    assert again == EndEpisode("unsatisfied")


def test_without_requirements_any_answer_ends_with_goal_met() -> None:
    plain = SCRIPT.model_copy(update={"on_answer": AnswerReaction()})
    transcript = conversation("I can't help with that.")
    assert next_user_turn(plain, transcript) == EndEpisode("goal-met")


def test_the_user_stops_after_max_user_turns_replies() -> None:
    replies = ("It's large.", "It's large.", "It's large.")
    texts = ("Size?", "Size?", "Size?", "Size?")
    assert turn(*texts, user_replies=replies) == EndEpisode("turn-limit")
    assert said(turn(*texts[:3], user_replies=replies[:2])) == "It's large."
    # an answer still ends the episode on its own terms at the limit
    assert turn("Size?", "Size?", "Size?", "ORDER-3", user_replies=replies) == EndEpisode(
        "goal-met"
    )


def test_the_user_replies_only_to_a_finished_assistant_message() -> None:
    pending = AssistantMessage(tool_calls=(ToolCall(id="c1", name="f"),))
    with pytest.raises(ValueError, match="only to an assistant message without tool calls"):
        next_user_turn(SCRIPT, Transcript([SCRIPT.opening_message(), pending]))
    with pytest.raises(ValueError, match="only to an assistant message"):
        next_user_turn(SCRIPT, Transcript([SCRIPT.opening_message()]))


def test_revealed_maps_each_fact_to_the_reply_that_first_said_it() -> None:
    transcript = conversation(
        "Size?", "Where?", "Size?", user_replies=("It's large.", "To 12 Elm Street.", "It's large.")
    )
    assert SCRIPT.revealed(transcript) == {"size": 2, "address": 4}
    assert SCRIPT.revealed(conversation("Hi")) == {}


# --- determinism and the protocol -----------------------------------------------------------


async def test_the_scripted_user_is_a_deterministic_stateless_user_simulator() -> None:
    user = ScriptedUser(SCRIPT)
    assert isinstance(user, UserSimulator)
    first = conversation("What size?")
    second = conversation("Where to?")
    replies = [await user.reply(first), await user.reply(second), await user.reply(first)]
    assert [said(r) for r in replies] == ["It's large.", "To 12 Elm Street.", "It's large."]
    assert await ScriptedUser(SCRIPT).reply(first) == replies[0]
    assert user.script is SCRIPT


def test_a_script_round_trips_through_json() -> None:
    data: dict[str, Any] = SCRIPT.model_dump(mode="json")
    assert UserScript.model_validate(data) == SCRIPT
    assert UserScript.model_validate_json(SCRIPT.model_dump_json()) == SCRIPT
    with pytest.raises(ValidationError):
        SCRIPT.model_copy().__setattr__("opening", "x")  # frozen


async def test_the_scripted_user_plays_through_the_runtime() -> None:
    task = Task(env="pizza", task_id="pizza/0", seed=0, data={})

    def build() -> EpisodeSpec:
        return EpisodeSpec(
            task=task,
            messages=(SCRIPT.opening_message(),),
            verifier=ExactMatchVerifier("ORDER-1 for a large pizza to 12 Elm Street."),
            user=ScriptedUser(SCRIPT),
            limits=Limits(max_turns=5),
        )

    model = gymbus.ScriptedModel(
        ["What size?", "Where to?", "ORDER-1 for a large pizza to 12 Elm Street."]
    )
    async with Runtime(model) as runtime:
        [rollout] = await runtime.run([EpisodeJob(env="pizza", seed=0, build=build)])
    assert rollout.reward == 1.0
    assert rollout.stop_reason == "user:goal-met"
    assert [m.text for m in rollout.messages if isinstance(m, UserMessage)] == [
        SCRIPT.opening,
        "It's large.",
        "To 12 Elm Street.",
    ]


# --- script validation ----------------------------------------------------------------------


def script(**changes: Any) -> UserScript:
    data = SCRIPT.model_dump(mode="json") | changes
    return UserScript.model_validate(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reveals": [{"fact": "crust", "triggers": ["crust"]}]}, "reveal of unknown fact 'crust'"),
        (
            {"reveals": [{"fact": "size", "triggers": ["size"]}]},
            "facts with no reveal rule: address",
        ),
        ({"opening": "A large pizza, please."}, "the opening gives away fact 'size'"),
        ({"fallback": "Is it large?"}, "the fallback gives away fact 'size'"),
        (
            {"replies": [{"triggers": ["where"], "text": "12 Elm Street"}]},
            "canned reply 0 gives away fact 'address'",
        ),
        (
            {"on_answer": {"nudge": "Send it to 12 Elm Street!"}},
            "the nudge gives away fact 'address'",
        ),
        ({"facts": {"size": " ", "address": "x"}}, "fact 'size' has an empty value"),
        ({"question_patterns": ["("]}, "bad regular expression"),
        (
            {
                "reveals": [
                    {"fact": "size", "triggers": ["[a-"]},
                    {"fact": "address", "triggers": ["a"]},
                ]
            },
            "bad regular expression",
        ),
        (
            {
                "reveals": [
                    {"fact": "size", "triggers": ["size"], "template": "It's {size}."},
                    {"fact": "address", "triggers": ["where"]},
                ]
            },
            "exactly the field",
        ),
        ({"reveals": [{"fact": "size", "triggers": []}]}, "at least 1 item"),
        ({"max_user_turns": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_scripts_are_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        script(**changes)


def test_a_value_inside_a_longer_word_is_not_a_leak() -> None:
    assert script(opening="I'd like to order a pizza, largest you have.").opening.endswith("have.")
