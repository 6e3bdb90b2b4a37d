"""Reusable verifiers and the pieces they are made of.

An answer is read from the *final answer*: the last message of the transcript, if it is an
assistant message without tool calls. An episode that stopped anywhere else (a turn limit
after a tool call, a pending tool call) has no final answer and scores 0 — the policy did
not answer; that is not an infrastructure failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from gymbus.runtime.errors import ToolArgumentsError
from gymbus.runtime.messages import AssistantMessage, Frozen
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = [
    "ExactMatchVerifier",
    "ExpectedCall",
    "Extractor",
    "RequiredCalls",
    "SubScore",
    "SubScorer",
    "final_answer",
    "last_integer",
    "stripped_text",
]

Extractor = Callable[[str], str | None]
"""Reads the answer out of the final answer's text; ``None`` when there is none."""

# An integer is a run of ASCII digits (optionally grouped by commas: 1,234) with an optional
# minus sign. It must stand on its own: not glued to a word or an identifier (ORD-48213,
# x2, 37units) and not part of a decimal (3.5 contains no integer).
_INTEGER = re.compile(
    r"(?<![\w.-])(?<![0-9],)(-?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?!\w|[.,][0-9])"
)


def last_integer(text: str) -> str | None:
    """The last stand-alone integer in ``text``, canonical (``"1,234"`` → ``"1234"``,
    ``"007"`` → ``"7"``, ``"-0"`` → ``"0"``), or ``None``. Digits inside identifiers and
    decimals do not count: in "37 units for ORD-48213 (2.5%)" the last integer is 37."""
    matches = _INTEGER.findall(text)
    if not matches:
        return None
    sign, digits = matches[-1]
    return str(int(sign + digits.replace(",", "")))


def stripped_text(text: str) -> str | None:
    """The whole text without surrounding whitespace; ``None`` when that is empty."""
    return text.strip() or None


def final_answer(transcript: Transcript) -> AssistantMessage | None:
    """The last message if it is an assistant message that calls no tools, else ``None``."""
    last = transcript.last
    if isinstance(last, AssistantMessage) and not last.tool_calls:
        return last
    return None


@dataclass(frozen=True, slots=True)
class SubScore:
    """Named sub-scores and evidence a :class:`SubScorer` adds to a verdict."""

    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)


class SubScorer(Protocol):
    """Measures one aspect of an episode as evidence; never changes the reward."""

    def __call__(self, episode: CompletedEpisode) -> SubScore: ...


class ExpectedCall(Frozen):
    """A tool call the task needs: the tool name and the exact (parsed) arguments."""

    name: str
    arguments: dict[str, Any]


class RequiredCalls:
    """Sub-score ``used_tools``: the fraction of the required calls the policy made, matching
    tool name and parsed arguments exactly (a call with unparsable arguments never matches).
    Evidence: ``calls_made`` (name and raw arguments, in order) and ``missing_calls``."""

    __slots__ = ("_required",)

    def __init__(self, required: Iterable[ExpectedCall]) -> None:
        self._required = tuple(required)

    def __call__(self, episode: CompletedEpisode) -> SubScore:
        made: list[dict[str, str]] = []
        seen: list[tuple[str, dict[str, Any]]] = []
        for message in episode.transcript:
            if isinstance(message, AssistantMessage):
                for call in message.tool_calls:
                    made.append({"name": call.name, "arguments": call.arguments})
                    with suppress(ToolArgumentsError):
                        seen.append((call.name, call.parsed_arguments()))
        missing = [c for c in self._required if (c.name, c.arguments) not in seen]
        fraction = 1.0 - len(missing) / len(self._required) if self._required else 1.0
        return SubScore(
            scores={"used_tools": fraction},
            evidence={
                "calls_made": made,
                "missing_calls": [c.model_dump(mode="json") for c in missing],
            },
        )


class ExactMatchVerifier:
    """Reward 1.0 when the answer extracted from the final answer equals ``expected``
    (compared as strings after extraction, so ``expected`` must be in the extractor's
    canonical form), else 0.0. Sub-score ``answer_correct`` repeats the reward; the
    ``sub_scorers`` add evidence only. Evidence: ``expected``, ``got``, ``has_final_answer``.
    """

    __slots__ = ("_expected", "_extract", "_sub_scorers")

    def __init__(
        self,
        expected: str,
        *,
        extract: Extractor = stripped_text,
        sub_scorers: Sequence[SubScorer] = (),
    ) -> None:
        self._expected = expected
        self._extract = extract
        self._sub_scorers = tuple(sub_scorers)

    @property
    def expected(self) -> str:
        return self._expected

    def score(self, episode: CompletedEpisode) -> Score:
        """The verdict, computed synchronously (it is cheap and pure)."""
        answer = final_answer(episode.transcript)
        got = self._extract(answer.text) if answer is not None else None
        correct = 1.0 if got is not None and got == self._expected else 0.0
        scores: dict[str, float] = {"answer_correct": correct}
        evidence: dict[str, Any] = {
            "expected": self._expected,
            "got": got,
            "has_final_answer": answer is not None,
        }
        for sub_scorer in self._sub_scorers:
            part = sub_scorer(episode)
            scores.update(part.scores)
            evidence.update(part.evidence)
        return Score(reward=correct, scores=scores, evidence=evidence)

    async def verify(self, episode: CompletedEpisode) -> Score:
        return self.score(episode)
