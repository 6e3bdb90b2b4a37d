"""The constrained-writing tasks: a business-writing brief (the facts to convey) and a seeded
set of verifiable constraints that can all be met at once.

Consistency by construction: phrases and keywords are written in the case the letter-case
constraint asks for; no phrase, keyword or fact word is banned; no phrase or keyword holds
a forbidden character; counts leave room for each other (every paragraph can hold a
sentence, the word range fits the required content). Every task has at least one
constraint that asks for something to be present (a phrase, a keyword, bullets …), so a
refusal never satisfies them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from gymbus.envs.base import Difficulty
from gymbus.envs.verifiers.constraints import (
    BulletCount,
    Constraint,
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
)
from gymbus.envs.verifiers.text_counts import title_case, words
from gymbus.runtime.messages import Frozen

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)
N_CONSTRAINTS: dict[Difficulty, int] = {"easy": 2, "medium": 4, "hard": 6}


class WritingTask(Frozen):
    """``Task.data`` of a constrained-writing task: the brief and the constraints."""

    difficulty: Difficulty
    document: str  # what to write, e.g. "a product announcement"
    audience: str
    facts: tuple[str, ...]
    constraints: tuple[Constraint, ...]


@dataclass(frozen=True, slots=True)
class _Brief:
    document: str
    audience: str
    facts: tuple[str, ...]
    keywords: tuple[str, ...]  # single words that occur in the facts
    openers: tuple[str, ...]
    closers: tuple[str, ...]


_PRODUCTS = ("Lumen", "Quill", "Orbit", "Tessera", "Kestrel", "Marlow", "Cobalt", "Nimbus")
_COMPANIES = ("Brightwave", "Northwind", "Copperleaf", "Bluefjord", "Halcyon Labs", "Redwood")
_PEOPLE = ("Maya Patel", "Jonas Berg", "Aiko Sato", "Luis Romero", "Grace Obi", "Nina Kovac")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_MONTHS = ("March", "April", "May", "June", "September", "October", "November")
_CITIES = ("Lisbon", "Toronto", "Melbourne", "Dublin", "Osaka", "Denver", "Utrecht")


def _date(rng: random.Random) -> str:
    return f"{rng.choice(_DAYS)} {rng.randint(2, 28)} {rng.choice(_MONTHS)}"


def _date_range(rng: random.Random) -> tuple[str, str]:
    """Two dates of one month, the first one earlier."""
    month, (first, last) = rng.choice(_MONTHS), sorted(rng.sample(range(2, 29), 2))
    return f"{rng.choice(_DAYS)} {first} {month}", f"{rng.choice(_DAYS)} {last} {month}"


def _announcement(rng: random.Random) -> _Brief:
    product, company = rng.choice(_PRODUCTS), rng.choice(_COMPANIES)
    features = rng.sample(
        (
            "syncs notes across phone and laptop",
            "works offline on long flights",
            "exports reports in one click",
            "keeps a full version history",
            "supports shared team workspaces",
            "encrypts every file at rest",
        ),
        3,
    )
    return _Brief(
        document=f"a product announcement for {product}",
        audience=f"the customers of {company}",
        facts=(
            f"{product} is the new planning app from {company}",
            f"{product} launches on {_date(rng)}",
            f"The starting price is {rng.choice((9, 12, 15, 19))} dollars per month",
            *(f"{product} {feature}" for feature in features),
            f"Existing customers get the first {rng.choice(('two', 'three'))} months free",
            f"Support webinars run every {rng.choice(_DAYS)} in the launch month",
        ),
        keywords=(product, "launch", "customers", "price", "webinars"),
        openers=("Dear customers", "Big news today", "Hello everyone"),
        closers=("Thank you for choosing us.", "We hope you enjoy it.", "Happy planning"),
    )


def _out_of_office(rng: random.Random) -> _Brief:
    person, backup = rng.sample(_PEOPLE, 2)
    first, backup_first = person.split()[0], backup.split()[0]
    leaves, returns = _date_range(rng)
    return _Brief(
        document=f"an out-of-office email reply for {person}",
        audience=f"people who email {first}",
        facts=(
            f"{person} is out of the office from {leaves} until {returns}",
            f"{first} is attending a trade fair in {rng.choice(_CITIES)}",
            "Email replies will be slower than usual during this time",
            f"{backup} covers urgent client requests",
            "Invoices and billing questions go to the finance desk",
            f"Calls to the main line are forwarded to {backup_first}",
            "Meetings planned during the trip move to the following week",
            f"{first} reads messages again on the first working day back",
        ),
        keywords=(first, backup_first, "urgent", "office", "email"),
        openers=("Thank you for your email", "Hello and thanks for writing", "Hi there"),
        closers=("Kind regards", "Thanks for your patience.", "Talk soon"),
    )


def _meeting_summary(rng: random.Random) -> _Brief:
    project = rng.choice(("Atlas", "Beacon", "Harbor", "Juniper", "Meridian", "Summit"))
    owner, writer = rng.sample(_PEOPLE, 2)
    met, next_meeting = _date_range(rng)
    return _Brief(
        document=f"a summary of the weekly {project} project meeting",
        audience="the project team and its sponsors",
        facts=(
            f"The {project} team met on {met}",
            f"The team agreed to move the beta release to {rng.choice(_MONTHS)}",
            f"{owner} owns the updated test plan",
            f"{writer} will draft the customer survey",
            f"The budget stays at {rng.choice((40, 55, 70, 85))} thousand dollars",
            "Two open bugs still block the mobile release",
            "Design reviews now happen every second week",
            f"The next meeting is on {next_meeting}",
        ),
        keywords=(project, "budget", "release", "team", "meeting"),
        openers=("Hi team", "Here is the summary", "Hello all"),
        closers=("Thanks everyone.", "See you at the next meeting.", "Best regards"),
    )


def _office_move(rng: random.Random) -> _Brief:
    company = rng.choice(_COMPANIES)
    day, movers = rng.sample(_DAYS, 2)
    return _Brief(
        document=f"an office move notice for the staff of {company}",
        audience=f"everyone who works at {company}",
        facts=(
            f"{company} moves to a new office on {_date(rng)}",
            f"The new office is at {rng.randint(10, 250)} Mill Street in {rng.choice(_CITIES)}",
            f"Please pack your desk into the labelled boxes by {day}",
            f"The movers arrive early on {movers} morning",
            "The new building has bike storage and a small gym",
            "Parking permits are issued at the reception desk",
            "Everyone works from home on the moving day",
            f"The old office closes for good at the end of {rng.choice(_MONTHS)}",
        ),
        keywords=(company.split()[0], "office", "boxes", "parking", "building"),
        openers=("Dear colleagues", "Moving day is coming", "Hello everyone"),
        closers=("Thanks for your help.", "See you in the new office.", "Best wishes"),
    )


def _outage_notice(rng: random.Random) -> _Brief:
    service = rng.choice(_PRODUCTS)
    return _Brief(
        document=f"a service outage notice about {service}",
        audience=f"the customers of {service}",
        facts=(
            f"{service} was unavailable on {_date(rng)} for {rng.randint(2, 6)} hours",
            "A failed database upgrade caused the outage",
            "No customer data was lost",
            "The team restored service by rolling back the upgrade",
            "Upgrades now go through a staged rollout",
            f"Affected customers receive a credit of {rng.choice((10, 15, 20))} percent on "
            "their next invoice",
            "The status page now updates every five minutes",
            "Support lines stay open late this week",
        ),
        keywords=(service, "outage", "customers", "credit", "upgrade"),
        openers=("Dear customers", "We owe you an update", "Hello everyone"),
        closers=("Thank you for your patience.", "We apologize for the trouble.", "With apologies"),
    )


def _invitation(rng: random.Random) -> _Brief:
    company, city = rng.choice(_COMPANIES), rng.choice(_CITIES)
    register_by, summit = _date_range(rng)
    return _Brief(
        document=f"an invitation to the {company} partner summit",
        audience=f"the partners of {company}",
        facts=(
            f"{company} hosts its annual partner summit on {summit}",
            f"The summit takes place at the {rng.choice(('Harbour Hall', 'Grand Pavilion'))} "
            f"in {city}",
            "Doors open at nine in the morning",
            "The keynote covers the product roadmap for next year",
            "Afternoon workshops focus on pricing and onboarding",
            "Lunch and evening drinks are included",
            f"Please register by {register_by}",
            f"Seats are limited to {rng.choice((80, 120, 150))} guests",
        ),
        keywords=("summit", city, "workshops", "register", "keynote"),
        openers=("You are invited", "Dear partners", "Save the date"),
        closers=("We hope to see you there.", "See you at the summit.", "Warm regards"),
    )


_BRIEFS: tuple[Callable[[random.Random], _Brief], ...] = (
    _announcement,
    _out_of_office,
    _meeting_summary,
    _office_move,
    _outage_notice,
    _invitation,
)
_PRESENCE_KINDS = (
    "paragraph_count",
    "bullet_count",
    "heading_count",
    "placeholder_count",
    "letter_case",
    "starts_with",
    "ends_with",
    "include_keywords",
)
_KINDS = (*_PRESENCE_KINDS, "word_count", "sentence_count", "forbidden_characters", "exclude_words")
_FILLER_WORDS = (
    "very", "really", "just", "actually", "basically", "amazing", "exciting", "thrilled",
    "unfortunately", "literally", "awesome", "totally", "simply", "definitely", "hopefully",
    "new", "great", "please",
)  # fmt: skip
_OTHER_FORBIDDEN = (";", ":", "!", "?", "&")


def _renderer(case: str | None) -> Callable[[str], str]:
    """Writes a phrase or keyword the way the letter-case constraint wants it."""
    if case == "lowercase":
        return str.lower
    if case == "uppercase":
        return str.upper
    if case == "title":
        return title_case
    return str


def _range(
    rng: random.Random,
    difficulty: Difficulty,
    *,
    least: range,
    most: range,
    span: range,
    exact: range,
) -> tuple[int | None, int | None]:
    variant = rng.choice(
        ("at_least", "at_most", "between") + (("exact",) if difficulty == "hard" else ())
    )
    if variant == "at_least":
        return rng.choice(least), None
    if variant == "at_most":
        return None, rng.choice(most)
    if variant == "between":
        low = rng.choice(least)
        return low, low + rng.choice(span)
    n = rng.choice(exact)
    return n, n


def _constraints(rng: random.Random, brief: _Brief, difficulty: Difficulty) -> list[Constraint]:
    kinds = rng.sample(_KINDS, N_CONSTRAINTS[difficulty])
    if not set(kinds) & set(_PRESENCE_KINDS):  # a refusal must miss something
        kinds[0] = rng.choice(_PRESENCE_KINDS)
    case = rng.choice(("lowercase", "uppercase", "title")) if "letter_case" in kinds else None
    render = _renderer(case)
    opener, closer = rng.choice(brief.openers), rng.choice(brief.closers)
    keywords = rng.sample(brief.keywords, 3)
    constraints: list[Constraint] = []
    for kind in kinds:
        if kind == "letter_case":
            assert case is not None
            constraints.append(LetterCase(case=case))
        elif kind == "starts_with":
            constraints.append(StartsWith(phrase=render(opener)))
        elif kind == "ends_with":
            constraints.append(EndsWith(phrase=render(closer)))
        elif kind == "include_keywords":
            if rng.random() < 0.5:
                chosen, times = keywords[: rng.randint(2, 3)], 1
            else:
                chosen, times = keywords[:1], rng.randint(2, 3)
            constraints.append(
                IncludeKeywords(keywords=tuple(render(k) for k in chosen), at_least=times)
            )
        elif kind == "exclude_words":
            used = {
                w.casefold()
                for text in (*brief.facts, opener, closer, *keywords)
                for w in words(text)
            }
            pool = [w for w in _FILLER_WORDS if w not in used]
            banned = rng.sample(pool, rng.randint(2, 3))
            constraints.append(ExcludeWords(banned=tuple(render(w) for w in banned)))
        elif kind == "forbidden_characters":
            characters = "," if rng.random() < 0.6 else rng.choice(_OTHER_FORBIDDEN)
            if rng.random() < 0.4:
                characters += rng.choice([c for c in _OTHER_FORBIDDEN if c not in characters])
            constraints.append(ForbiddenCharacters(characters=characters))
        elif kind == "paragraph_count":
            n = rng.randint(2, 4)
            constraints.append(ParagraphCount(at_least=n, at_most=n))
        elif kind == "bullet_count":
            n = rng.randint(3, 5)
            constraints.append(BulletCount(at_least=n, at_most=n))
        elif kind == "heading_count":
            n = rng.randint(1, 3)
            constraints.append(HeadingCount(at_least=n, at_most=n))
        elif kind == "placeholder_count":
            constraints.append(PlaceholderCount(at_least=rng.randint(1, 3)))
        elif kind == "word_count":
            low, high = _range(
                rng,
                difficulty,
                least=range(50, 110, 10),
                most=range(150, 230, 10),
                span=range(60, 120, 20),
                exact=range(120, 170),
            )
            constraints.append(WordCount(at_least=low, at_most=high))
        else:
            low, high = _range(
                rng,
                difficulty,
                least=range(4, 8),
                most=range(9, 13),
                span=range(3, 6),
                exact=range(7, 11),
            )
            constraints.append(SentenceCount(at_least=low, at_most=high))
    return constraints


def generate(seed: int, difficulty: Difficulty) -> WritingTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``."""
    rng = random.Random(seed)
    brief = rng.choice(_BRIEFS)(rng)
    return WritingTask(
        difficulty=difficulty,
        document=brief.document,
        audience=brief.audience,
        facts=brief.facts,
        constraints=tuple(_constraints(rng, brief, difficulty)),
    )
