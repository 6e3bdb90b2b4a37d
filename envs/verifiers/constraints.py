"""Verifiable constraints on the text of a reply, and a verifier that requires all of them.

Each constraint is a frozen model with a ``kind`` discriminator, ``check(text) -> (ok,
evidence)`` and ``describe()``, the instruction sentence shown to the model. Descriptions
form a small regular language that
:func:`~gymbus.envs.verifiers.constraint_parsing.parse_constraint` reads back exactly.
:func:`counting_rules` gives the sentences that tell the model how words, sentences,
paragraphs … are counted; the checks count the same way (see
:mod:`gymbus.envs.verifiers.text_counts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, field_validator, model_validator

from gymbus.envs.verifiers.exact import final_answer
from gymbus.envs.verifiers.schema import extract_json
from gymbus.envs.verifiers.text_counts import (
    RULES,
    count_bullets,
    count_headings,
    count_paragraphs,
    count_placeholders,
    count_sentences,
    count_words,
    words,
)
from gymbus.runtime.messages import Frozen
from gymbus.runtime.verification import CompletedEpisode, Score

__all__ = [
    "CONSTRAINT_ADAPTER",
    "BulletCount",
    "Constraint",
    "ConstraintVerifier",
    "CountConstraint",
    "EndsWith",
    "ExcludeWords",
    "ForbiddenCharacters",
    "HeadingCount",
    "IncludeKeywords",
    "JsonFormat",
    "LetterCase",
    "ParagraphCount",
    "PlaceholderCount",
    "SentenceCount",
    "StartsWith",
    "WordCount",
    "counting_rules",
]


def _quoted_list(items: Sequence[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _single_word(value: str) -> str:
    if words(value) != [value]:
        raise ValueError(f"{value!r} is not a single word")
    return value


class CountConstraint(Frozen):
    """A count of something in the reply that must lie in ``[at_least, at_most]``."""

    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)

    verb: ClassVar[str]
    noun: ClassVar[tuple[str, str]]  # singular, plural
    rule: ClassVar[str]

    @model_validator(mode="after")
    def _bounds(self) -> CountConstraint:
        if self.at_least is None and self.at_most is None:
            raise ValueError("set at_least, at_most or both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError("at_least must not exceed at_most")
        return self

    def count(self, text: str) -> int:
        raise NotImplementedError

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        n = self.count(text)
        ok = (self.at_least is None or n >= self.at_least) and (
            self.at_most is None or n <= self.at_most
        )
        return ok, {"counted": n, "at_least": self.at_least, "at_most": self.at_most}

    def describe(self) -> str:
        low, high = self.at_least, self.at_most
        if low is not None and high is not None and low != high:
            return f"{self.verb} between {low} and {high} {self.noun[1]}."
        if low is not None and low == high:
            quantity, n = f"exactly {low}", low
        elif low is not None:
            quantity, n = f"at least {low}", low
        else:
            assert high is not None
            quantity, n = f"at most {high}", high
        return f"{self.verb} {quantity} {self.noun[0] if n == 1 else self.noun[1]}."


class WordCount(CountConstraint):
    kind: Literal["word_count"] = "word_count"
    verb, noun, rule = "Use", ("word", "words"), "words"

    def count(self, text: str) -> int:
        return count_words(text)


class SentenceCount(CountConstraint):
    kind: Literal["sentence_count"] = "sentence_count"
    verb, noun, rule = "Write", ("sentence", "sentences"), "sentences"

    def count(self, text: str) -> int:
        return count_sentences(text)


class ParagraphCount(CountConstraint):
    kind: Literal["paragraph_count"] = "paragraph_count"
    verb, noun, rule = "Write", ("paragraph", "paragraphs"), "paragraphs"

    def count(self, text: str) -> int:
        return count_paragraphs(text)


class BulletCount(CountConstraint):
    kind: Literal["bullet_count"] = "bullet_count"
    verb, noun, rule = "Include", ("bullet point", "bullet points"), "bullets"

    def count(self, text: str) -> int:
        return count_bullets(text)


class HeadingCount(CountConstraint):
    kind: Literal["heading_count"] = "heading_count"
    verb, noun, rule = "Include", ("markdown heading", "markdown headings"), "headings"

    def count(self, text: str) -> int:
        return count_headings(text)


class PlaceholderCount(CountConstraint):
    kind: Literal["placeholder_count"] = "placeholder_count"
    verb, noun, rule = "Include", ("placeholder", "placeholders"), "placeholders"

    def count(self, text: str) -> int:
        return count_placeholders(text)


_CASE_TEXT = {
    "lowercase": "Write the entire reply in lowercase: no capital letters at all.",
    "uppercase": "Write the entire reply in uppercase: no lowercase letters at all.",
    "title": "Write the entire reply in title case: every word that begins with a letter "
    "must begin with a capital letter.",
}


class LetterCase(Frozen):
    kind: Literal["letter_case"] = "letter_case"
    case: Literal["lowercase", "uppercase", "title"]
    rule: ClassVar[str] = "words"

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        if self.case == "lowercase":
            bad = [w for w in words(text) if any(c.isupper() for c in w)]
        elif self.case == "uppercase":
            bad = [w for w in words(text) if any(c.islower() for c in w)]
        else:
            bad = [w for w in words(text) if w[0].isalpha() and not w[0].isupper()]
        return not bad, {"case": self.case, "offending_words": bad[:10], "n_offending": len(bad)}

    def describe(self) -> str:
        return _CASE_TEXT[self.case]


_CHAR_NAMES = {
    ",": "comma",
    ";": "semicolon",
    ":": "colon",
    "!": "exclamation mark",
    "?": "question mark",
    "&": "ampersand",
    "(": "opening parenthesis",
    ")": "closing parenthesis",
    "/": "slash",
}


class ForbiddenCharacters(Frozen):
    kind: Literal["forbidden_characters"] = "forbidden_characters"
    characters: str = Field(min_length=1)
    rule: ClassVar[str | None] = None

    @field_validator("characters")
    @classmethod
    def _known(cls, value: str) -> str:
        unknown = [c for c in value if c not in _CHAR_NAMES]
        if unknown or len(set(value)) != len(value):
            raise ValueError(f"characters must be distinct, from {''.join(_CHAR_NAMES)!r}")
        return value

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        found = {c: text.count(c) for c in self.characters if c in text}
        return not found, {"forbidden": self.characters, "found": found}

    def describe(self) -> str:
        listed = ", ".join(f'"{c}" ({_CHAR_NAMES[c]})' for c in self.characters)
        return f"Do not use these characters anywhere in the reply: {listed}."


class _Phrase(Frozen):
    phrase: str = Field(min_length=1, pattern=r'^[^"\s](?:[^"\n]*[^"\s])?$')
    rule: ClassVar[str] = "phrases"
    template: ClassVar[str]

    def describe(self) -> str:
        return self.template.format(phrase=self.phrase)


class StartsWith(_Phrase):
    kind: Literal["starts_with"] = "starts_with"
    template = 'Begin the reply with the exact phrase "{phrase}".'

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        start = text.strip()[: len(self.phrase)]
        return start == self.phrase, {"expected": self.phrase, "got": start}


class EndsWith(_Phrase):
    kind: Literal["ends_with"] = "ends_with"
    template = 'End the reply with the exact phrase "{phrase}".'

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        stripped = text.strip()
        end = stripped[max(0, len(stripped) - len(self.phrase)) :]
        return end == self.phrase, {"expected": self.phrase, "got": end}


class IncludeKeywords(Frozen):
    kind: Literal["include_keywords"] = "include_keywords"
    keywords: tuple[str, ...] = Field(min_length=1)
    at_least: int = Field(default=1, ge=1)
    rule: ClassVar[str] = "matching"

    @field_validator("keywords")
    @classmethod
    def _single_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_single_word(w) for w in value)

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        counts = Counter(w.casefold() for w in words(text))
        found = {k: counts[k.casefold()] for k in self.keywords}
        ok = all(n >= self.at_least for n in found.values())
        return ok, {"at_least": self.at_least, "counts": found}

    def describe(self) -> str:
        if len(self.keywords) == 1:
            return f'Include the word "{self.keywords[0]}" at least {_times(self.at_least)}.'
        return (
            f"Include each of these words at least {_times(self.at_least)}: "
            f"{_quoted_list(self.keywords)}."
        )


class ExcludeWords(Frozen):
    kind: Literal["exclude_words"] = "exclude_words"
    banned: tuple[str, ...] = Field(min_length=1)
    rule: ClassVar[str] = "matching"

    @field_validator("banned")
    @classmethod
    def _single_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_single_word(w) for w in value)

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        counts = Counter(w.casefold() for w in words(text))
        found = {w: counts[w.casefold()] for w in self.banned if counts[w.casefold()]}
        return not found, {"banned": list(self.banned), "found": found}

    def describe(self) -> str:
        if len(self.banned) == 1:
            return f'Do not use the word "{self.banned[0]}".'
        return f"Do not use any of these words: {_quoted_list(self.banned)}."


class JsonFormat(Frozen):
    kind: Literal["json_format"] = "json_format"
    rule: ClassVar[str | None] = None

    def check(self, text: str) -> tuple[bool, dict[str, Any]]:
        extraction = extract_json(text)
        return extraction.ok, {"source": extraction.source, "error": extraction.error}

    def describe(self) -> str:
        return (
            "Format the entire reply as valid JSON (optionally inside one ```json fenced "
            "block), with no other text."
        )


Constraint = Annotated[
    WordCount
    | SentenceCount
    | ParagraphCount
    | BulletCount
    | HeadingCount
    | PlaceholderCount
    | LetterCase
    | ForbiddenCharacters
    | StartsWith
    | EndsWith
    | IncludeKeywords
    | ExcludeWords
    | JsonFormat,
    Field(discriminator="kind"),
]
CONSTRAINT_ADAPTER: TypeAdapter[Constraint] = TypeAdapter(Constraint)
"""Validates a constraint from its JSON form (``{"kind": "word_count", ...}``)."""


def counting_rules(constraints: Sequence[Constraint]) -> list[str]:
    """The counting rules the ``constraints`` depend on, once each, in a stable order."""
    needed = {c.rule for c in constraints if c.rule is not None}
    if "phrases" in needed or "matching" in needed:
        needed.add("words")
    return [text for key, text in RULES.items() if key in needed]


class ConstraintVerifier:
    """Reward 1.0 when the final answer satisfies every constraint, else 0.0.

    Sub-scores: ``constraint:<kind>`` per constraint (``#2``, ``#3`` … for repeated kinds),
    1.0 or 0.0, and ``fraction_satisfied`` (a dense signal; the reward stays all-or-none).
    Evidence: ``has_final_answer`` and, per constraint, its description, verdict and what
    was counted or found. With no final answer every constraint fails.
    """

    __slots__ = ("_constraints", "_names")

    def __init__(self, constraints: Sequence[Constraint]) -> None:
        if not constraints:
            raise ValueError("ConstraintVerifier needs at least one constraint")
        self._constraints = tuple(constraints)
        seen: Counter[str] = Counter()
        names = []
        for constraint in self._constraints:
            seen[constraint.kind] += 1
            n = seen[constraint.kind]
            names.append(f"constraint:{constraint.kind}" + (f"#{n}" if n > 1 else ""))
        self._names = tuple(names)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self._constraints

    def score(self, episode: CompletedEpisode) -> Score:
        answer = final_answer(episode.transcript)
        scores: dict[str, float] = {}
        details: list[dict[str, Any]] = []
        for name, constraint in zip(self._names, self._constraints, strict=True):
            if answer is None:
                ok, found = False, {"error": "no final answer"}
            else:
                ok, found = constraint.check(answer.text)
            scores[name] = float(ok)
            details.append(
                {"name": name, "description": constraint.describe(), "satisfied": ok, **found}
            )
        satisfied = sum(scores.values())
        scores["fraction_satisfied"] = satisfied / len(self._constraints)
        reward = 1.0 if satisfied == len(self._constraints) else 0.0
        evidence = {"has_final_answer": answer is not None, "constraints": details}
        return Score(reward=reward, scores=scores, evidence=evidence)

    async def verify(self, episode: CompletedEpisode) -> Score:
        return self.score(episode)
