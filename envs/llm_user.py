"""An LLM-backed simulated user: a persona with a hidden goal and facts it may reveal,
driven by any model adapter.

The user model sees the conversation with roles flipped — its own turns as
``assistant``, the agent's replies as ``user`` — and no tool traffic (tool calls and
results are the agent's business, invisible to a real user). It opens after a fixed
greeting so that chat templates which require a user turn first still work. It ends the
conversation by writing ``[END: goal-met]`` or ``[END: gave-up]``; after
``max_user_turns`` replies it ends with ``turn-limit`` without calling the model.

Its tokens and latency ride on each reply's ``generation`` and are summed into the
rollout's ``user_usage``, never into the policy's. :meth:`LLMUser.audit` checks its
fidelity with rules (facts revealed unprompted, values contradicting its facts,
assistant-speak) and, optionally, a judge model.
"""

from __future__ import annotations

import re

import orjson
from pydantic import Field

from gymbus.envs.personas import Persona
from gymbus.envs.users import find_questions, mentions
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    Frozen,
    SystemMessage,
    UserMessage,
)
from gymbus.runtime.model import EpisodeInfo, Model, ModelRequest, SamplingParams
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserAudit, UserTurn

GREETING = "Hi! How can I help you today?"
_END = re.compile(r"\[END:\s*([a-z-]+)\s*\]", re.IGNORECASE)
END_REASONS = ("goal-met", "gave-up")
_ASSISTANT_SPEAK = (
    r"\bas an ai\b",
    r"\bi('m| am) (an|a) (ai|assistant|language model)\b",
    r"\bhow (can|may) i (help|assist) you\b",
    r"\bi('d| would) be happy to help\b",
)


class UserGoal(Frozen):
    """What the user wants and knows. ``facts`` are revealed only when asked;
    ``alternatives`` lists plausible wrong values per fact (saying one of them is a
    contradiction)."""

    opening: str
    goal: str
    facts: dict[str, str] = Field(default_factory=dict)
    alternatives: dict[str, tuple[str, ...]] = Field(default_factory=dict)


def flip_roles(conversation: Transcript, instructions: str) -> list[AnyMessage]:
    """The conversation as the user model sees it: its instructions, a greeting from the
    agent, then every user turn as ``assistant`` and every agent text as ``user``."""
    flipped: list[AnyMessage] = [SystemMessage(content=instructions), UserMessage(content=GREETING)]
    for message in conversation:
        if isinstance(message, UserMessage):
            flipped.append(AssistantMessage(content=message.content))
        elif isinstance(message, AssistantMessage) and message.text.strip():
            flipped.append(UserMessage(content=message.text))
    return flipped


class LLMUser:
    """A simulated user played by ``model`` (any :class:`~gymbus.runtime.model.Model`)."""

    def __init__(
        self,
        model: Model,
        persona: Persona,
        goal: UserGoal,
        *,
        episode: EpisodeInfo,
        params: SamplingParams | None = None,
        max_user_turns: int = 8,
        judge: Model | None = None,
        prices: tuple[float, float] | None = None,
    ) -> None:
        """``prices``: USD per million prompt and completion tokens of ``model``; when
        given, each reply's ``generation.cost_usd`` is set (summed in the rollout's
        ``user_cost_usd``)."""
        self.model = model
        self.persona = persona
        self.goal = goal
        self.judge = judge
        self._episode = episode
        self._params = params or SamplingParams(temperature=0.7)
        self._max_turns = max_user_turns
        self._prices = prices
        self.instructions = self._instructions()

    def opening_message(self) -> UserMessage:
        return UserMessage(content=self.goal.opening, author="user")

    def _instructions(self) -> str:
        facts = "\n".join(f"- {name}: {value}" for name, value in self.goal.facts.items())
        return (
            "You are role-playing a customer talking to a support agent. Stay in character; "
            "you are NOT an assistant and never offer help.\n"
            f"{self.persona.describe()}\n"
            f"Your goal (do not state it all at once; it is what you want): {self.goal.goal}\n"
            "Facts you know. Give a fact ONLY when the agent asks for it, and never change it:\n"
            f"{facts or '- (none)'}\n"
            "When the agent has done what you wanted, reply with exactly [END: goal-met]. "
            "If the agent cannot help after several tries, reply with [END: gave-up]."
        )

    async def reply(self, conversation: Transcript) -> UserTurn:
        spoken = sum(isinstance(m, UserMessage) and m.author == "user" for m in conversation)
        if spoken > self._max_turns:  # the opening does not count
            return EndEpisode("turn-limit")
        request = ModelRequest(
            Transcript(flip_roles(conversation, self.instructions)), (), self._params, self._episode
        )
        message = await self.model.generate(request)
        text = message.text.strip()
        end = _END.search(text)
        if end is not None:
            reason = end.group(1).lower()
            return EndEpisode(reason if reason in END_REASONS else "goal-met")
        generation = message.generation
        if generation is not None and self._prices is not None:
            usage, (per_in, per_out) = generation.usage, self._prices
            cost = (usage.prompt_tokens * per_in + usage.completion_tokens * per_out) / 1e6
            generation = generation.model_copy(update={"cost_usd": cost})
        return UserMessage(content=text, author="user", generation=generation)

    async def audit(self, conversation: Transcript) -> UserAudit:
        """Rules always; the judge model too when one is given."""
        audit = audit_by_rules(self.goal, conversation)
        if self.judge is None:
            return audit
        verdict = await self._judge(conversation)
        merged = UserAudit(
            faithful=audit.faithful and verdict.faithful,
            unprompted_reveals=tuple(
                dict.fromkeys(audit.unprompted_reveals + verdict.unprompted_reveals)
            ),
            contradictions=audit.contradictions + verdict.contradictions,
            persona_breaks=audit.persona_breaks + verdict.persona_breaks,
            method="rules+judge",
            evidence={**audit.evidence, "judge": verdict.evidence},
        )
        return merged

    async def _judge(self, conversation: Transcript) -> UserAudit:
        assert self.judge is not None
        dialogue = "\n".join(
            f"{'USER' if isinstance(m, UserMessage) else 'AGENT'}: {m.text}"
            for m in conversation
            if isinstance(m, UserMessage) or (isinstance(m, AssistantMessage) and m.text)
        )
        prompt = (
            "You audit a simulated USER in a dialogue. The USER should play this persona: "
            f"{self.persona.describe()}\nIts facts (to be revealed only when asked): "
            f"{orjson.dumps(self.goal.facts).decode()}\n\nDialogue:\n{dialogue}\n\n"
            'Reply with JSON only: {"unprompted_reveals": [fact names], '
            '"contradictions": [short descriptions], "persona_breaks": [short descriptions]}'
        )
        request = ModelRequest(
            Transcript([UserMessage(content=prompt)]),
            (),
            SamplingParams(temperature=0.0),
            self._episode,
        )
        answer = (await self.judge.generate(request)).text
        match = re.search(r"\{.*\}", answer, re.DOTALL)
        try:
            data = orjson.loads(match.group(0)) if match else None
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise ValueError(f"the user judge did not answer with a JSON object: {answer[:200]!r}")
        fields = ("unprompted_reveals", "contradictions", "persona_breaks")
        found = {f: tuple(str(x) for x in data.get(f) or ()) for f in fields}
        return UserAudit(
            faithful=not any(found.values()),
            method="judge",
            evidence={"raw": answer[:2000]},
            **found,
        )


def audit_by_rules(goal: UserGoal, conversation: Transcript) -> UserAudit:
    """Rule-based fidelity audit of a user's replies (the opening is the task itself):

    - *unprompted reveal*: a fact's value appears in a reply although the agent's message
      just before it asked no question;
    - *contradiction*: a reply states one of a fact's ``alternatives`` (a wrong value);
    - *persona break*: a reply talks like an assistant ("as an AI", "how can I help you").
    """
    unprompted: list[str] = []
    contradictions: list[str] = []
    breaks: list[str] = []
    last_agent_text = ""
    replies = 0
    for index, message in enumerate(conversation):
        if isinstance(message, AssistantMessage) and message.text.strip():
            last_agent_text = message.text
            continue
        if not (isinstance(message, UserMessage) and message.author == "user"):
            continue
        if replies == 0 and not last_agent_text:
            continue  # the opening request
        replies += 1
        text = message.text
        asked = bool(find_questions(last_agent_text))
        for name, value in goal.facts.items():
            if mentions(text, value) and not asked and name not in unprompted:
                unprompted.append(name)
            for wrong in goal.alternatives.get(name, ()):
                if mentions(text, wrong):
                    contradictions.append(f"message {index} says {wrong!r} for {name}")
        for pattern in _ASSISTANT_SPEAK:
            if re.search(pattern, text, re.IGNORECASE):
                breaks.append(f"message {index} talks like an assistant: {text[:80]!r}")
                break
    return UserAudit(
        faithful=not (unprompted or contradictions or breaks),
        unprompted_reveals=tuple(unprompted),
        contradictions=tuple(contradictions),
        persona_breaks=tuple(breaks),
        method="rules",
        evidence={"replies_checked": replies},
    )
