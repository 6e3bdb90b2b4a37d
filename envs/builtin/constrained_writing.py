"""``constrained-writing``: write a short business text from given facts while meeting 2, 4
or 6 verifiable constraints at once (capability: metadata instruction following).

The constraints are about the form of the text, not its content: word and sentence counts,
paragraphs, bullet points, markdown headings, placeholders, letter case, forbidden
characters, an opening and a closing phrase, keywords to include, words to avoid. Each is
one line of the prompt in a fixed wording
(:func:`~gymbus.envs.verifiers.constraints.parse_constraint` reads it back), followed by
the counting rules the checks use. Difficulty is the number of constraints: easy 2, medium
4, hard 6 (only hard asks for an exact word or sentence count).

Verification (:class:`~gymbus.envs.verifiers.constraints.ConstraintVerifier`): reward 1.0
only if the whole final answer satisfies every constraint; one sub-score per constraint.
Null check: every task has at least one constraint that asks for something to be present
(a phrase, a keyword, bullets, headings, placeholders, paragraphs, a letter case that "I
can't help with that." breaks), so the refusal scores 0.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TypeVar

from gymbus.envs.base import Environment
from gymbus.envs.builtin.writing_data import WritingTask, generate
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers.constraint_parsing import parse_constraint
from gymbus.envs.verifiers.constraints import (
    BulletCount,
    Constraint,
    ConstraintVerifier,
    CountConstraint,
    EndsWith,
    ExcludeWords,
    ForbiddenCharacters,
    HeadingCount,
    IncludeKeywords,
    LetterCase,
    ParagraphCount,
    PlaceholderCount,
    SentenceCount,
    StartsWith,
    WordCount,
    counting_rules,
)
from gymbus.envs.verifiers.text_counts import count_sentences, count_words, title_case, words
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import AssistantMessage, SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript

__all__ = ["ConstrainedWriting", "ConstrainedWritingSolver", "compose", "request"]

_SYSTEM_PROMPT = (
    "You are a business writing assistant. You write clear texts from the facts you are "
    "given and follow formatting instructions to the letter."
)
_FACTS_HEADER = "based on these facts:"
_CONSTRAINTS_HEADER = "Your reply must satisfy every one of these constraints:"


def request(task: WritingTask) -> str:
    """The user's request: the brief, the numbered constraints and the counting rules."""
    facts = "\n".join(f"- {fact}" for fact in task.facts)
    lines = "\n".join(f"{i}. {c.describe()}" for i, c in enumerate(task.constraints, start=1))
    text = (
        f"Write {task.document} for {task.audience}, {_FACTS_HEADER}\n{facts}\n\n"
        f"{_CONSTRAINTS_HEADER}\n{lines}\n\n"
    )
    rules = counting_rules(task.constraints)
    if rules:
        text += "How the constraints are checked:\n" + "\n".join(f"- {r}" for r in rules) + "\n\n"
    return text + (
        "The whole reply is checked, so reply with the text itself: no preface and no notes."
    )


class ConstrainedWriting(Environment):
    name = "constrained-writing"
    description = (
        "Write a short business text (announcement, out-of-office reply, meeting summary, "
        "notice, invitation) from given facts while meeting 2/4/6 seeded, mutually "
        "consistent constraints on its form (counts, case, phrases, keywords, banned words "
        "and characters). Reward: all constraints satisfied."
    )
    metadata = EnvMetadata(
        rollout_structures=(),
        core_capabilities=("metadata-instruction-following",),
        knowledge_domain="business-writing",
        task_type="constrained-writing",
        verification_method="programmatic-constraints",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, WritingTask)
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT),
                UserMessage(content=request(data), author="environment"),
            ),
            verifier=ConstraintVerifier(data.constraints),
            solver=ConstrainedWritingSolver(),
            limits=Limits(max_turns=1),
            metadata=self.metadata.model_dump(mode="json"),
        )


_C = TypeVar("_C")
_NUMBERED = re.compile(r"^[0-9]+\. (.+)$")
_PADDING = {  # clauses by length in words, to pad a sentence without ending it
    5: ("with support from our team", "as we set out earlier", "for all of you today"),
    4: ("in the coming weeks", "as part of this", "for the whole group"),
    3: ("for everyone involved", "as discussed before", "at every step"),
    2: ("as planned", "this month", "right away"),
    1: ("too", "now", "again"),
}
_EXTRA_SENTENCES = (
    "We will share more details as soon as we have them.",
    "Reach out to us if anything here is unclear.",
    "We will keep everyone informed as plans change.",
    "Your feedback helps us get these details right.",
    "Thank you for taking the time to read this note.",
    "We are happy to answer any follow-up questions.",
    "More information will follow in the coming days.",
    "Each of these points matters to how we work together.",
)
_HEADINGS = ("Overview", "Details", "Next Steps", "Timeline", "Contacts")
_PLACEHOLDERS = ("[contact name]", "[phone number]", "[email address]", "[date]")


def _section(prompt: str, header: str) -> list[str]:
    """The lines after the line ending with ``header``, up to the next blank line."""
    lines = prompt.splitlines()
    start = next((i for i, line in enumerate(lines) if line.endswith(header)), len(lines))
    section = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        section.append(line)
    return section


def _chunks(items: list[str], n: int) -> list[list[str]]:
    """``items`` cut into ``n`` consecutive runs of near-equal length (longest first)."""
    size, extra = divmod(len(items), n)
    runs, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        runs.append(items[start:end])
        start = end
    return runs


def _extend(sentence: str, clause: str) -> str:
    """``sentence`` with ``clause`` inserted before its final period."""
    return f"{sentence[:-1]} {clause}."


def _find(constraints: list[Constraint], cls: type[_C]) -> _C | None:
    return next((c for c in constraints if isinstance(c, cls)), None)


def _bounds(constraint: CountConstraint | None, default: int = 0) -> tuple[int, int]:
    if constraint is None:
        return default, 10**6
    low, high = constraint.at_least, constraint.at_most
    return (default if low is None else low), (10**6 if high is None else high)


def compose(facts: list[str], constraints: list[Constraint]) -> str:
    """A text built from ``facts`` that satisfies ``constraints`` (as generated: at most
    one of each kind, mutually consistent). Uses only what the prompt states.

    Layout: the opening phrase on its own line; body sentences (one per fact, then a
    placeholder sentence) cut into the paragraphs, headings spread over them, the bullet
    points in the second paragraph, the closing phrase last. Keyword mentions and padding
    clauses go inside body sentences, so they change the word count, never the sentence
    count. The letter case is applied to the finished text.
    """
    forbidden_chars = _find(constraints, ForbiddenCharacters)
    forbidden = forbidden_chars.characters if forbidden_chars else ""
    exclude = _find(constraints, ExcludeWords)
    banned = {w.casefold() for w in exclude.banned} if exclude else set()

    def clean(text: str) -> str:
        text = "".join(" " if c in forbidden else c for c in text)
        return " ".join(w for w in text.split() if not {x.casefold() for x in words(w)} & banned)

    starts, ends = _find(constraints, StartsWith), _find(constraints, EndsWith)
    opener, closer = (starts.phrase if starts else None), (ends.phrase if ends else None)
    n_paragraphs = _bounds(_find(constraints, ParagraphCount), 2)[0]
    n_bullets = _bounds(_find(constraints, BulletCount))[0]
    n_headings = _bounds(_find(constraints, HeadingCount))[0]
    n_placeholders = _bounds(_find(constraints, PlaceholderCount))[0]
    fixed = count_sentences(opener or "") + count_sentences(closer or "")
    s_low, s_high = _bounds(_find(constraints, SentenceCount))
    n_body = max(n_paragraphs, min(max(3, s_low - fixed), s_high - fixed))

    n_body = max(n_paragraphs, min(max(3, s_low - fixed), s_high - fixed))
    bullets = [clean(f) for f in reversed(facts)][:n_bullets]  # the last facts
    pool = [clean(f) + "." for f in facts[: len(facts) - len(bullets)]]
    pool += [clean(x[:-1]) + "." for x in _EXTRA_SENTENCES]
    placeholder = []
    if n_placeholders:
        names = " and ".join(_PLACEHOLDERS[:n_placeholders])
        placeholder = [clean(f"Questions can go to {names}") + "."]
    body = pool[: n_body - len(placeholder)] + placeholder
    headings = [f"## {h}" for h in _HEADINGS if clean(h) == h][:n_headings]
    heading_blocks = Counter(j * n_paragraphs // max(1, n_headings) for j in range(n_headings))

    def assemble() -> str:
        queue, blocks = list(headings), []
        for b, run in enumerate(_chunks(body, n_paragraphs)):
            lines: list[str] = [opener] if b == 0 and opener else []
            k = heading_blocks[b]
            for group in _chunks(run, k) if k else [run]:
                lines += [queue.pop(0)] if k else []
                lines += [" ".join(group)] if group else []
            if b == min(1, n_paragraphs - 1):
                lines += [f"- {bullet}" for bullet in bullets]
            if b == n_paragraphs - 1 and closer:
                lines.append(closer)
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    keywords = _find(constraints, IncludeKeywords)
    if keywords is not None:
        counts = Counter(w.casefold() for w in words(assemble()))
        missing = [
            k for k in keywords.keywords for _ in range(keywords.at_least - counts[k.casefold()])
        ]
        for i, keyword in enumerate(missing):  # one mention per sentence, round robin
            body[i % len(body)] = _extend(body[i % len(body)], f"with {keyword} in mind")
    w_low, w_high = _bounds(_find(constraints, WordCount))
    unused = pool[n_body - len(placeholder) :]
    while unused and len(body) < s_high - fixed:  # more sentences while they fit
        n_words = count_words(assemble())
        if n_words >= w_low or n_words + count_words(unused[0]) > w_high:
            break
        body.insert(len(body) - len(placeholder), unused.pop(0))
    deficit, i = w_low - count_words(assemble()), 0
    while deficit > 0:  # then pad inside sentences
        options = _PADDING[min(deficit, 5)]
        clause = options[i % len(options)]
        body[i % len(body)] = _extend(body[i % len(body)], clause)
        deficit -= len(clause.split())
        i += 1
    text = assemble()
    case = _find(constraints, LetterCase)
    if case is not None:
        text = {"lowercase": str.lower, "uppercase": str.upper, "title": title_case}[case.case](
            text
        )
    return text


class ConstrainedWritingSolver:
    """The reference solver: reads the facts and the constraint lines from the prompt and
    composes a text that meets them all. A pure function of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        prompt = next((m.text for m in conversation if isinstance(m, UserMessage)), "")
        facts = [line[2:] for line in _section(prompt, _FACTS_HEADER) if line.startswith("- ")]
        lines = [_NUMBERED.match(line) for line in _section(prompt, _CONSTRAINTS_HEADER)]
        try:
            constraints = [parse_constraint(m[1]) for m in lines if m is not None]
        except ValueError as exc:
            return AssistantMessage(content=f"I cannot follow these instructions: {exc}")
        if not facts:
            return AssistantMessage(content="I cannot find the facts to write about.")
        return AssistantMessage(content=compose(facts, constraints))
