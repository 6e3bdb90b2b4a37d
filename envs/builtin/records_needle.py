"""``records-needle``: find one field of one precisely specified employee in a long revision
log full of look-alikes (capability: information relevance).

The prompt is one long user message (≈8k / 32k / 128k o200k tokens for easy / medium /
hard; ``context_tokens=`` overrides): an unsorted dump of HR record revisions and, at the
end, a question such as "What is the current `salary_band` of the employee with badge
B-4412 (Marta Sousa) in the Lisbon office, per the most recent revision?". Answering needs
the three relevance filters a careful reader applies: the exact badge (similar badges
exist), the office (the same badge exists elsewhere, with later revisions) and the latest
revision of that employee (earlier revisions carry other values; on medium and hard one of
them is listed *after* the current one). A namesake in the same office (medium, hard)
punishes matching on the name. Every decoy has its own value of the asked field, so the
verifier tells which trap an answer fell into. Where the current revision sits (beginning,
middle or end of the log) varies with the seed and is recorded in ``task.data``.

Reward: 1.0 when the last value shaped like the asked field (``SB-14``, ``CC-48213``,
``WS-3117``; case-insensitive) in the final answer is the current value. Sub-scores
``answer_correct`` and ``fell_for_distractor``; evidence ``expected``, ``got`` and the
``distractor`` (kind, revision id) the answer matches, if any. Null check: "I can't help
with that." contains no value of the field's shape, so it scores 0.0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from gymbus.envs.base import Difficulty, Environment
from gymbus.envs.builtin.records_data import (
    LOG_END,
    LOG_START,
    Distractor,
    NeedleTask,
    generate,
    render_prompt,
)
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import ExactMatchVerifier, SubScore, final_answer
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

__all__ = ["DistractorMatch", "RecordsNeedle", "RecordsNeedleSolver", "field_extractor"]

_SYSTEM_PROMPT = (
    "You are an assistant for an HR team. Answer questions about the records you are given, "
    "using only those records."
)
MIN_CONTEXT_TOKENS = 2_000
MAX_CONTEXT_TOKENS = 1_000_000

_FIELD_PATTERNS: dict[str, re.Pattern[str]] = {
    "salary_band": re.compile(r"\bSB-[0-9]{2}\b", re.IGNORECASE),
    "cost_center": re.compile(r"\bCC-[0-9]{5}\b", re.IGNORECASE),
    "workstation": re.compile(r"\bWS-[0-9]{4}\b", re.IGNORECASE),
}


def field_extractor(field: str) -> Callable[[str], str | None]:
    """An extractor for ``field``: the last value of that field's shape in the text,
    upper-cased (``"sb-14"`` → ``"SB-14"``), or ``None``."""
    pattern = _FIELD_PATTERNS[field]

    def extract(text: str) -> str | None:
        matches = pattern.findall(text)
        return str(matches[-1]).upper() if matches else None

    return extract


class DistractorMatch:
    """Sub-score ``fell_for_distractor``: 1.0 when the answer is the value of a designated
    decoy (an outdated revision, the same badge in another office, a similar badge, a
    namesake). Evidence ``distractor``: that decoy's kind and revision id, or ``None``."""

    __slots__ = ("_by_value", "_extract")

    def __init__(
        self, distractors: tuple[Distractor, ...], extract: Callable[[str], str | None]
    ) -> None:
        self._by_value = {d.value: d for d in reversed(distractors)}  # the first one wins
        self._extract = extract

    def __call__(self, episode: CompletedEpisode) -> SubScore:
        answer = final_answer(episode.transcript)
        got = self._extract(answer.text) if answer is not None else None
        decoy = self._by_value.get(got) if got is not None else None
        return SubScore(
            scores={"fell_for_distractor": 1.0 if decoy is not None else 0.0},
            evidence={
                "distractor": (
                    {"kind": decoy.kind, "revision_id": decoy.revision_id} if decoy else None
                )
            },
        )


class RecordsNeedle(Environment):
    name = "records-needle"
    description = (
        "Answer one field of one employee (badge + office, latest revision) from a long, "
        "unsorted HR revision log full of outdated revisions, same-badge records in other "
        "offices, similar badges and namesakes. Reward: the exact current value."
    )
    metadata = EnvMetadata(
        rollout_structures=("long-context",),
        core_capabilities=("information-relevance",),
        knowledge_domain="human-resources",
        task_type="long-context-retrieval",
        verification_method="exact-match",
    )

    def __init__(
        self,
        *,
        difficulty: Difficulty = "medium",
        context_tokens: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(difficulty=difficulty, **options)
        if context_tokens is not None and (
            isinstance(context_tokens, bool)
            or not isinstance(context_tokens, int)
            or not MIN_CONTEXT_TOKENS <= context_tokens <= MAX_CONTEXT_TOKENS
        ):
            raise ConfigError(
                f"environment {self.name!r}: context_tokens must be an integer from "
                f"{MIN_CONTEXT_TOKENS} to {MAX_CONTEXT_TOKENS}, got {context_tokens!r}"
            )
        self.context_tokens = context_tokens

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty, self.context_tokens)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, NeedleTask)
        prompt = render_prompt(data.records, data.field, data.badge, data.name, data.office)
        extract = field_extractor(data.field)
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT),
                UserMessage(content=prompt, author="environment"),
            ),
            verifier=ExactMatchVerifier(
                data.answer,
                extract=extract,
                sub_scorers=(DistractorMatch(data.distractors, extract),),
            ),
            solver=RecordsNeedleSolver(),
            limits=Limits(max_turns=2),
            metadata=self.metadata.model_dump(mode="json"),
        )


_QUESTION = re.compile(
    r"current `(?P<field>\w+)` of the employee with badge (?P<badge>B-[0-9]+) \(.*?\) "
    r"in the (?P<office>[A-Z][\w ]*?) office"
)


class RecordsNeedleSolver:
    """The reference solver: reads the question and the log from the prompt like a careful
    reader — every revision of exactly that badge in exactly that office, the highest
    revision wins — and answers with its value. A pure function of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        prompt = next(
            (m.text for m in conversation if isinstance(m, UserMessage) and LOG_START in m.text),
            None,
        )
        asked = _QUESTION.search(prompt) if prompt is not None else None
        if prompt is None or asked is None:
            return AssistantMessage(content="I found no question about the records.")
        field, badge, office = asked["field"], asked["badge"], asked["office"]
        log = prompt[prompt.index(LOG_START) + len(LOG_START) : prompt.rindex(LOG_END)]
        best: dict[str, Any] | None = None
        for line in log.splitlines():
            if badge not in line:  # cheap pre-filter; the parsed fields decide
                continue
            record = orjson.loads(line)
            if record["badge"] != badge or record["office"] != office:
                continue
            if best is None or (record["revision"], record["updated_at"]) > (
                best["revision"],
                best["updated_at"],
            ):
                best = record
        if best is None:
            return AssistantMessage(content=f"There is no record of {badge} in {office}.")
        return AssistantMessage(content=str(best[field]))
