"""Simulated users built from data: a :class:`ScriptedUser` plays a :class:`UserScript`.

A script is plain data (a frozen pydantic model, loadable from ``task.data`` JSON): the
opening request, the facts the user holds back, the questions that make them reveal each
fact, canned replies, how they react to a final answer, and a turn limit. No environment
writes control flow for its user.

The user is stateless: every decision is derived from the transcript, so one instance can
serve parallel episodes and a transcript always replays to the same replies. It reacts to
the policy's latest message, split into sentences:

1. a sentence is a *question* if it ends with ``?``, starts with an interrogative word or
   makes a request ("please tell me …"), unless it is a pleasantry ("anything else?");
2. no question → the message is a final answer: the user ends the episode
   (``on_answer.end_reason``; the verifier decides whether the answer is right), or, when
   the answer misses required content and nudges are left, replies with the nudge;
3. questions matching a fact's triggers → the user reveals those facts (one reply);
4. else a question matching a canned reply's triggers → that reply;
5. else the fallback ("I'm not sure what you mean.").

A withheld fact is said only in step 3: the opening, canned replies, the nudge and the
fallback are checked not to contain any fact's value. After ``max_user_turns`` replies the
user ends the episode with ``"turn-limit"`` instead of speaking again.
"""

from __future__ import annotations

import re
from string import Formatter

from pydantic import Field, field_validator, model_validator

from gymbus.runtime.messages import AssistantMessage, Frozen, UserMessage
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserAudit, UserTurn

__all__ = [
    "DEFAULT_PLEASANTRY_PATTERNS",
    "DEFAULT_QUESTION_PATTERNS",
    "AnswerReaction",
    "CannedReply",
    "Reveal",
    "ScriptedUser",
    "UserScript",
    "asked_at",
    "audit_script",
    "find_questions",
    "mentions",
    "next_user_turn",
    "questions_in",
]

DEFAULT_QUESTION_PATTERNS: tuple[str, ...] = (
    r"\?$",
    r"^(where|when|what|which|who|whom|whose|how|why|could|would|can|may|do|does|did|is|are"
    r"|will|shall|should)\b",
    r"\b(tell me|let me know|i need to know|i('ll| will)? need your"
    r"|please (provide|share|confirm|specify|give|send))\b",
)
"""A sentence matching any of these (case-insensitive) is a question or a request."""

DEFAULT_PLEASANTRY_PATTERNS: tuple[str, ...] = (
    r"\b(anything|something) else\b",
    r"\b(have|enjoy) (a |your )?((great|good|nice|safe|pleasant|wonderful) )?"
    r"(trip|flight|day|journey|stay)\b",
)
"""A question matching any of these is small talk, not a question about the task."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_DECORATION = " \t*_#>-•`\"'"


def _search(patterns: tuple[str, ...], text: str) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


def _compiles(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    return patterns


def mentions(text: str, value: str) -> bool:
    """Whether ``value`` occurs in ``text`` as a whole token (case-insensitive)."""
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE) is not None


class Reveal(Frozen):
    """Say ``fact`` (rendered with ``template``) when a question matches a trigger."""

    fact: str
    triggers: tuple[str, ...] = Field(min_length=1)
    template: str = "It's {value}."

    @field_validator("triggers")
    @classmethod
    def _triggers_compile(cls, triggers: tuple[str, ...]) -> tuple[str, ...]:
        return _compiles(triggers)

    @field_validator("template")
    @classmethod
    def _one_value_field(cls, template: str) -> str:
        fields = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
        if fields != {"value"}:
            raise ValueError(f"template must use exactly the field {{value}}, got {template!r}")
        return template

    def render(self, value: str) -> str:
        return self.template.format(value=value)


class CannedReply(Frozen):
    """A fixed reply (no fact in it) to a question matching a trigger."""

    triggers: tuple[str, ...] = Field(min_length=1)
    text: str

    @field_validator("triggers")
    @classmethod
    def _triggers_compile(cls, triggers: tuple[str, ...]) -> tuple[str, ...]:
        return _compiles(triggers)


class AnswerReaction(Frozen):
    """How the user reacts to a final answer (a message with no question in it)."""

    end_reason: str = "goal-met"
    required: tuple[str, ...] = ()
    """Regexes the answer must all match; one missing → the nudge (if any is left)."""
    nudge: str | None = None
    max_nudges: int = Field(default=1, ge=0)
    unsatisfied_reason: str = "unsatisfied"
    """The end reason when the answer misses required content and no nudge is left."""

    @field_validator("required")
    @classmethod
    def _required_compile(cls, required: tuple[str, ...]) -> tuple[str, ...]:
        return _compiles(required)


class UserScript(Frozen):
    """Everything a :class:`ScriptedUser` says and when. ``facts`` maps a fact's name to
    its value; each fact needs at least one :class:`Reveal`."""

    opening: str
    facts: dict[str, str] = Field(default_factory=dict)
    reveals: tuple[Reveal, ...] = ()
    replies: tuple[CannedReply, ...] = ()
    on_answer: AnswerReaction = AnswerReaction()
    max_user_turns: int = Field(default=8, ge=0)
    fallback: str = "I'm not sure what you mean."
    question_patterns: tuple[str, ...] = DEFAULT_QUESTION_PATTERNS
    pleasantry_patterns: tuple[str, ...] = DEFAULT_PLEASANTRY_PATTERNS

    @field_validator("question_patterns", "pleasantry_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        return _compiles(patterns)

    @model_validator(mode="after")
    def _consistent(self) -> UserScript:
        for reveal in self.reveals:
            if reveal.fact not in self.facts:
                raise ValueError(f"reveal of unknown fact {reveal.fact!r}")
        unrevealable = set(self.facts) - {r.fact for r in self.reveals}
        if unrevealable:
            raise ValueError(f"facts with no reveal rule: {', '.join(sorted(unrevealable))}")
        said_unprompted = {
            "the opening": self.opening,
            "the fallback": self.fallback,
            "the nudge": self.on_answer.nudge or "",
            **{f"canned reply {i}": r.text for i, r in enumerate(self.replies)},
            **{f"the template of reveal {i}": r.render("") for i, r in enumerate(self.reveals)},
        }
        for name, value in self.facts.items():
            if not value.strip():
                raise ValueError(f"fact {name!r} has an empty value")
            for where, text in said_unprompted.items():
                if mentions(text, value):
                    raise ValueError(f"{where} gives away fact {name!r} ({value!r})")
        return self

    def opening_message(self) -> UserMessage:
        """The user's first message, which opens the conversation."""
        return UserMessage(content=self.opening, author="user")

    def revealed(self, conversation: Transcript) -> dict[str, int]:
        """Fact name → index of the user reply that first said it (the opening never does)."""
        found: dict[str, int] = {}
        for index, message in _replies(conversation):
            text = message.text
            for reveal in self.reveals:
                if reveal.fact not in found and reveal.render(self.facts[reveal.fact]) in text:
                    found[reveal.fact] = index
        return found


def find_questions(
    text: str,
    question_patterns: tuple[str, ...] = DEFAULT_QUESTION_PATTERNS,
    pleasantry_patterns: tuple[str, ...] = DEFAULT_PLEASANTRY_PATTERNS,
) -> list[str]:
    """The sentences of ``text`` that are questions or requests (pleasantries excluded)."""
    questions = []
    for raw in _SENTENCE_END.split(text):
        sentence = raw.strip(_DECORATION)
        if (
            sentence
            and _search(question_patterns, sentence)
            and not _search(pleasantry_patterns, sentence)
        ):
            questions.append(sentence)
    return questions


def questions_in(script: UserScript, text: str) -> list[str]:
    """The sentences of ``text`` the user takes as questions (pleasantries excluded)."""
    return find_questions(text, script.question_patterns, script.pleasantry_patterns)


def _replies(conversation: Transcript) -> list[tuple[int, UserMessage]]:
    """The user's replies: user-authored messages after the policy first spoke."""
    replies: list[tuple[int, UserMessage]] = []
    policy_spoke = False
    for index, message in enumerate(conversation):
        if isinstance(message, AssistantMessage):
            policy_spoke = True
        elif policy_spoke and isinstance(message, UserMessage) and message.author == "user":
            replies.append((index, message))
    return replies


def _react_to_answer(script: UserScript, text: str, said: list[str]) -> UserTurn:
    reaction = script.on_answer
    if all(re.search(p, text, re.IGNORECASE) for p in reaction.required):
        return EndEpisode(reaction.end_reason)
    if reaction.nudge is not None and said.count(reaction.nudge) < reaction.max_nudges:
        return UserMessage(content=reaction.nudge, author="user")
    return EndEpisode(reaction.unsatisfied_reason)


def _react_to_questions(script: UserScript, questions: list[str]) -> str:
    revealed: list[str] = []
    for reveal in script.reveals:
        if any(_search(reveal.triggers, q) for q in questions):
            line = reveal.render(script.facts[reveal.fact])
            if line not in revealed:
                revealed.append(line)
    if revealed:
        return " ".join(revealed)
    for reply in script.replies:
        if any(_search(reply.triggers, q) for q in questions):
            return reply.text
    return script.fallback


def next_user_turn(script: UserScript, conversation: Transcript) -> UserTurn:
    """What the user says (or whether they end the episode) after the policy's latest
    message: a pure function of the script and the conversation."""
    last = conversation.last
    if not isinstance(last, AssistantMessage) or last.tool_calls:
        raise ValueError(
            "the scripted user replies only to an assistant message without tool calls"
        )
    text = last.text or (last.refusal or "")
    said = [message.text for _, message in _replies(conversation)]
    questions = questions_in(script, text)
    turn: UserTurn = (
        UserMessage(content=_react_to_questions(script, questions), author="user")
        if questions
        else _react_to_answer(script, text, said)
    )
    if isinstance(turn, UserMessage) and len(said) >= script.max_user_turns:
        return EndEpisode("turn-limit")
    return turn


class ScriptedUser:
    """A :class:`~gymbus.runtime.users.UserSimulator` that plays a :class:`UserScript`
    deterministically (stateless: see the module docstring)."""

    __slots__ = ("_script",)

    def __init__(self, script: UserScript) -> None:
        self._script = script

    @property
    def script(self) -> UserScript:
        return self._script

    def __repr__(self) -> str:
        return f"ScriptedUser({len(self._script.facts)} facts)"

    async def audit(self, conversation: Transcript) -> UserAudit:
        return audit_script(self._script, conversation)

    async def reply(self, conversation: Transcript) -> UserTurn:
        return next_user_turn(self._script, conversation)


def asked_at(script: UserScript, conversation: Transcript, fact: str) -> int | None:
    """Index of the first policy message with a question about ``fact`` (one matching
    the fact's reveal triggers), whoever the user is — scripted or LLM-backed."""
    triggers = tuple(t for r in script.reveals if r.fact == fact for t in r.triggers)
    for index, message in enumerate(conversation):
        if isinstance(message, AssistantMessage) and any(
            _search(triggers, q) for q in questions_in(script, message.text)
        ):
            return index
    return None


def audit_script(script: UserScript, conversation: Transcript) -> UserAudit:
    """Rule-based fidelity audit of a scripted user: every fact it revealed must answer
    a question about that fact in the policy message just before the reveal."""
    unprompted: list[str] = []
    revealed = script.revealed(conversation)
    for fact, index in revealed.items():
        previous = next(
            (m for m in reversed(conversation[:index]) if isinstance(m, AssistantMessage)), None
        )
        triggers = tuple(t for r in script.reveals if r.fact == fact for t in r.triggers)
        questions = questions_in(script, previous.text) if previous is not None else []
        if not any(_search(triggers, q) for q in questions):
            unprompted.append(fact)
    return UserAudit(
        faithful=not unprompted,
        unprompted_reveals=tuple(unprompted),
        method="rules",
        evidence={"revealed_at": revealed},
    )
