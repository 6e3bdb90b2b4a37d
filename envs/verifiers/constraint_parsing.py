"""Reading constraint descriptions back: :func:`parse_constraint` is the exact inverse of
each constraint's ``describe()``, so a prompt whose constraint lines were written with
``describe()`` can be followed by a program (a reference solver) as well as by a model."""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import ValidationError

from gymbus.envs.verifiers.constraints import (
    CONSTRAINT_ADAPTER,
    BulletCount,
    Constraint,
    CountConstraint,
    HeadingCount,
    JsonFormat,
    LetterCase,
    ParagraphCount,
    PlaceholderCount,
    SentenceCount,
    WordCount,
)

__all__ = ["parse_constraint"]

_QUOTED = re.compile(r'"([^"\n]+)"')
_COUNTED: dict[str, type[CountConstraint]] = {
    noun: cls
    for cls in (
        WordCount,
        SentenceCount,
        ParagraphCount,
        BulletCount,
        HeadingCount,
        PlaceholderCount,
    )
    for noun in cls.noun
}
_COUNT_LINE = re.compile(
    r"^(?P<verb>Use|Write|Include) (?:at least (?P<least>\d+)|at most (?P<most>\d+)|"
    r"exactly (?P<exact>\d+)|between (?P<low>\d+) and (?P<high>\d+)) (?P<noun>[a-z ]+)\.$"
)
_KEYWORD_LINE = re.compile(
    r'^Include (?:the word "(?P<one>[^"\n]+)"|each of these words) at least '
    r"(?:(?P<once>once)|(?P<n>\d+) times)(?:: (?P<many>.+))?\.$"
)
_EXCLUDE_LINE = re.compile(
    r'^Do not use (?:the word "(?P<one>[^"\n]+)"|any of these words: (?P<many>.+))\.$'
)
_PHRASE_LINE = re.compile(r'^(?P<which>Begin|End) the reply with the exact phrase "(?P<p>.+)"\.$')
_CHARS_LINE = re.compile(r"^Do not use these characters anywhere in the reply: (?P<list>.+)\.$")


def parse_constraint(description: str) -> Constraint:
    """The constraint whose :meth:`describe` is ``description`` (exact inverse); raises
    ``ValueError`` for a sentence that is not a constraint description."""
    text = description.strip()
    data: dict[str, Any] | None = None
    if m := _COUNT_LINE.match(text):
        cls = _COUNTED.get(m["noun"])
        if cls is not None and cls.verb == m["verb"]:
            low = m["least"] or m["exact"] or m["low"]
            high = m["most"] or m["exact"] or m["high"]
            data = {"kind": cls.model_fields["kind"].default, "at_least": low, "at_most": high}
    elif m := _KEYWORD_LINE.match(text):
        keywords = [m["one"]] if m["one"] else _QUOTED.findall(m["many"] or "")
        data = {"kind": "include_keywords", "keywords": keywords, "at_least": m["n"] or 1}
    elif m := _EXCLUDE_LINE.match(text):
        banned = [m["one"]] if m["one"] else _QUOTED.findall(m["many"])
        data = {"kind": "exclude_words", "banned": banned}
    elif m := _PHRASE_LINE.match(text):
        kind = "starts_with" if m["which"] == "Begin" else "ends_with"
        data = {"kind": kind, "phrase": m["p"]}
    elif m := _CHARS_LINE.match(text):
        characters = "".join(re.findall(r'"(.)" \(', m["list"]))
        data = {"kind": "forbidden_characters", "characters": characters}
    else:
        for case in get_args(LetterCase.model_fields["case"].annotation):
            if text == LetterCase(case=case).describe():
                data = {"kind": "letter_case", "case": case}
        if text == JsonFormat().describe():
            data = {"kind": "json_format"}
    if data is None:
        raise ValueError(f"not a constraint description: {description!r}")
    try:
        constraint = CONSTRAINT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ValueError(f"not a constraint description: {description!r} ({problem})") from None
    if constraint.describe() != text:
        raise ValueError(f"not a constraint description: {description!r}")
    return constraint
