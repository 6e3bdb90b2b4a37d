"""The records-needle revision log: its records and the seeded generator that builds one.

A log is an unsorted export of employee-record revisions (one JSON object per line). The
asked employee (a badge *in an office*) has several revisions; only the highest
``revision`` (which also has the latest ``updated_at``) is current. Around it sit
designated distractors, every one with a different value of the asked field:

- ``outdated-revision``: the asked employee's earlier revisions (medium and hard always put
  one *after* the current revision, so "the last one listed wins" fails);
- ``same-badge-other-office``: the same badge number in another office (badges are unique
  only per office), with higher revision numbers and later dates;
- ``similar-badge``: a badge one transposition or one digit away, in the same office;
- ``namesake``: another employee of the same office with the same name, with higher
  revision numbers and later dates.

Filler employees make up the rest of the token budget. Sizes are counted with OpenAI's
o200k_base encoding (:mod:`gymbus.runtime.tokenizer`, shipped with gymbus: nothing is
downloaded); the budget sums per-line counts, and ``prompt_tokens`` records the exact
count of the whole prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, get_args

import orjson

from gymbus.envs.base import Difficulty
from gymbus.runtime.messages import Frozen
from gymbus.runtime.tokenizer import count_tokens

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)

Field = Literal["salary_band", "cost_center", "workstation"]
FIELDS: tuple[Field, ...] = get_args(Field)
DistractorKind = Literal[
    "outdated-revision", "same-badge-other-office", "similar-badge", "namesake"
]
Position = Literal["beginning", "middle", "end"]
POSITIONS: tuple[Position, ...] = get_args(Position)

DEFAULT_CONTEXT_TOKENS: dict[Difficulty, int] = {"easy": 8_000, "medium": 32_000, "hard": 128_000}

# Where, as a fraction of the log, the current revision of the asked employee is put.
_DEPTHS: dict[Position, tuple[float, float]] = {
    "beginning": (0.02, 0.30),
    "middle": (0.36, 0.64),
    "end": (0.70, 0.96),
}


class Revision(Frozen):
    """One revision of one employee's record, as it appears (one JSON line) in the log."""

    revision_id: str
    badge: str
    name: str
    office: str
    department: str
    title: str
    salary_band: str
    cost_center: str
    workstation: str
    revision: int
    updated_at: str  # ISO date

    def line(self) -> str:
        return orjson.dumps(self.model_dump()).decode()


class Distractor(Frozen):
    """A designated decoy revision and its value of the asked field (never the answer)."""

    kind: DistractorKind
    revision_id: str
    value: str


class NeedleTask(Frozen):
    """``Task.data`` of a records-needle task: the log, the question, the answer key."""

    difficulty: Difficulty
    context_tokens: int  # the requested size
    prompt_tokens: int  # the size of the generated prompt in o200k tokens
    field: Field
    badge: str
    office: str
    name: str
    answer: str
    answer_revision_id: str
    position: Position  # where the current revision sits in the log
    needle_line: int  # its 0-based line among the records
    depth: float  # needle_line / number of records, rounded to 3 places
    records: tuple[Revision, ...]
    distractors: tuple[Distractor, ...]


@dataclass(frozen=True, slots=True)
class _Size:
    target_revisions: tuple[int, int]  # (min, max) revisions of the asked employee
    other_offices: int  # employees with the asked badge in other offices
    similar_badges: int
    namesakes: int
    outdated_after_current: bool


_SIZES: dict[Difficulty, _Size] = {
    "easy": _Size((2, 2), other_offices=1, similar_badges=1, namesakes=0,
                  outdated_after_current=False),
    "medium": _Size((3, 3), other_offices=1, similar_badges=2, namesakes=1,
                    outdated_after_current=True),
    "hard": _Size((4, 5), other_offices=2, similar_badges=3, namesakes=1,
                  outdated_after_current=True),
}  # fmt: skip

_OFFICES = (
    "Lisbon", "Porto", "Madrid", "Lyon", "Turin", "Krakow", "Dublin", "Ghent", "Leeds",
    "Gdansk", "Bilbao", "Malmo", "Graz", "Tallinn",
)  # fmt: skip
_DEPARTMENTS = (
    "Finance", "Engineering", "Sales", "Legal", "Logistics", "Marketing", "Support",
    "Procurement", "People Operations", "Security", "Facilities", "Data",
)  # fmt: skip
_TITLES = (
    "Analyst", "Senior Analyst", "Engineer", "Senior Engineer", "Team Lead", "Manager",
    "Specialist", "Coordinator", "Associate", "Principal Engineer", "Director", "Consultant",
)  # fmt: skip
_FIRST = (
    "Marta", "Joao", "Ana", "Pedro", "Ines", "Rui", "Sofia", "Tiago", "Clara", "Diogo",
    "Lucia", "Mateo", "Elena", "Pablo", "Camille", "Hugo", "Giulia", "Marco", "Agata",
    "Piotr", "Aoife", "Cian", "Lotte", "Bram", "Freya", "Oliver", "Zofia", "Kacper",
    "Nerea", "Iker", "Elsa", "Axel", "Lena", "Jonas", "Kadri", "Mihkel", "Nadia", "Omar",
    "Priya", "Samir",
)  # fmt: skip
_LAST = (
    "Sousa", "Ferreira", "Costa", "Garcia", "Moreau", "Rossi", "Nowak", "Murphy", "Peeters",
    "Walsh", "Kowalski", "Etxeberria", "Lindqvist", "Huber", "Tamm", "Haddad", "Iyer",
    "Okafor", "Novak", "Duarte", "Silva", "Ricci", "Dubois", "Byrne", "Janssens", "Berg",
    "Wozniak", "Mendes", "Lopez", "Bauer", "Kask", "Larsen", "Marin", "Santos", "Ortiz",
    "Fontaine", "Greco", "Kelly", "Maes", "Nilsson",
)  # fmt: skip

_BASE_DATE = date(2018, 1, 1)


def field_value(field: Field, n: int) -> str:
    """The ``n``-th possible value of ``field`` (n ≥ 0), in its canonical form."""
    if field == "salary_band":
        return f"SB-{10 + n % 90:02d}"
    if field == "cost_center":
        return f"CC-{10000 + n % 90000:05d}"
    return f"WS-{1000 + n % 9000:04d}"


_VALUE_SPACE: dict[Field, int] = {"salary_band": 90, "cost_center": 90000, "workstation": 9000}
_DRIFTING = ("department", "title", *FIELDS)  # the fields that change between revisions


def _similar_badges(number: int, rng: random.Random, count: int) -> list[int]:
    """Badge numbers one adjacent-digit swap or one changed digit away from ``number``."""
    digits = str(number)
    candidates: set[int] = set()
    for i in range(3):
        swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        candidates.add(int(swapped))
    for i in range(4):
        for d in "0123456789":
            candidates.add(int(digits[:i] + d + digits[i + 1 :]))
    pool = sorted(c for c in candidates if 1000 <= c <= 9999 and c != number)
    return rng.sample(pool, count)


class _Builder:
    """Draws people and revisions from one ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.revision_ids: set[int] = set()

    def revision_id(self) -> str:
        while True:
            n = self.rng.randrange(1_000_000, 10_000_000)
            if n not in self.revision_ids:
                self.revision_ids.add(n)
                return f"REV-{n}"

    def _draw(self, key: str) -> str:
        if key == "department":
            return self.rng.choice(_DEPARTMENTS)
        if key == "title":
            return self.rng.choice(_TITLES)
        field = FIELDS[FIELDS.index(key)]
        return field_value(field, self.rng.randrange(_VALUE_SPACE[field]))

    def name(self, avoid: str = "") -> str:
        while True:
            name = f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"
            if name != avoid:
                return name

    def history(
        self,
        *,
        badge: str,
        name: str,
        office: str,
        count: int,
        field: Field,
        values: list[str] | None = None,
        first_revision: int = 1,
        first_day: int | None = None,
    ) -> list[Revision]:
        """``count`` revisions of one employee, dates increasing with the revision number.
        ``values`` (one per revision) fixes the asked field; other fields drift at random."""
        rng = self.rng
        record = {key: self._draw(key) for key in _DRIFTING}
        day = rng.randrange(0, 900) if first_day is None else first_day
        revisions = []
        for i in range(count):
            if i:
                day += rng.randrange(20, 400)
                for key in rng.sample(_DRIFTING, rng.randint(1, 2)):
                    record[key] = self._draw(key)
            if values is not None:
                record[field] = values[i]
            revisions.append(
                Revision(
                    revision_id=self.revision_id(),
                    badge=badge,
                    name=name,
                    office=office,
                    revision=first_revision + i,
                    updated_at=(_BASE_DATE + timedelta(days=day)).isoformat(),
                    **record,
                )
            )
        return revisions


def question(field: str, badge: str, name: str, office: str) -> str:
    """The question asked after the log."""
    return (
        f"Question: What is the current `{field}` of the employee with badge {badge} "
        f"({name}) in the {office} office, per the most recent revision? "
        "Answer with just the value."
    )


def generate(seed: int, difficulty: Difficulty, context_tokens: int | None = None) -> NeedleTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``.
    ``context_tokens`` overrides the difficulty's prompt size (estimated tokens)."""
    rng = random.Random(seed)
    size = _SIZES[difficulty]
    budget = context_tokens or DEFAULT_CONTEXT_TOKENS[difficulty]
    build = _Builder(rng)
    field = rng.choice(FIELDS)

    offices = rng.sample(_OFFICES, len(_OFFICES))
    office, other_offices = offices[0], offices[1 : 1 + size.other_offices]
    number = rng.randrange(1000, 10000)
    badge = f"B-{number}"
    name = build.name()
    similar = _similar_badges(number, rng, size.similar_badges)

    # Every designated revision gets its own value of the asked field.
    n_target = rng.randint(*size.target_revisions)
    n_other = [rng.randint(2, 3) for _ in other_offices]
    n_similar = [rng.randint(1, 2) for _ in similar]
    n_namesake = [2] * size.namesakes
    n_values = n_target + sum(n_other) + sum(n_similar) + sum(n_namesake)
    values = iter(field_value(field, n) for n in rng.sample(range(_VALUE_SPACE[field]), n_values))

    target = build.history(
        badge=badge, name=name, office=office, count=n_target, field=field,
        values=[next(values) for _ in range(n_target)],
    )  # fmt: skip
    current = target[-1]
    current_day = (date.fromisoformat(current.updated_at) - _BASE_DATE).days
    decoys: list[tuple[DistractorKind, Revision]] = [("outdated-revision", r) for r in target[:-1]]
    for other, count in zip(other_offices, n_other, strict=True):
        history = build.history(
            badge=badge, name=build.name(avoid=name), office=other, count=count, field=field,
            values=[next(values) for _ in range(count)], first_revision=n_target,
            first_day=current_day + rng.randrange(1, 60),
        )  # fmt: skip
        decoys += [("same-badge-other-office", r) for r in history]
    for similar_number, count in zip(similar, n_similar, strict=True):
        history = build.history(
            badge=f"B-{similar_number}", name=build.name(avoid=name), office=office,
            count=count, field=field, values=[next(values) for _ in range(count)],
        )  # fmt: skip
        decoys += [("similar-badge", r) for r in history]
    taken = {number, *similar}
    for count in n_namesake:
        other_number = rng.choice([n for n in range(1000, 10000) if n not in taken])
        taken.add(other_number)
        history = build.history(
            badge=f"B-{other_number}", name=name, office=office, count=count, field=field,
            values=[next(values) for _ in range(count)], first_revision=n_target,
            first_day=current_day + rng.randrange(1, 60),
        )  # fmt: skip
        decoys += [("namesake", r) for r in history]

    # Fillers: other employees, never the asked badge or name, until the budget is spent.
    special = [current, *(r for _, r in decoys)]
    overhead = count_tokens(render_prompt((), field, badge, name, office))
    used = overhead + sum(count_tokens(r.line() + "\n") for r in special)
    fillers: list[Revision] = []
    badges_in_use = {(r.office, r.badge) for r in special}
    while used < budget:
        filler_number, filler_office = rng.randrange(1000, 10000), rng.choice(offices)
        filler_badge = f"B-{filler_number}"
        if filler_number in taken or (filler_office, filler_badge) in badges_in_use:
            continue
        badges_in_use.add((filler_office, filler_badge))
        history = build.history(
            badge=filler_badge, name=build.name(avoid=name), office=filler_office,
            count=rng.choice((1, 1, 2, 3)), field=field,
        )  # fmt: skip
        for revision in history:
            fillers.append(revision)
            used += count_tokens(revision.line() + "\n")
    rng.shuffle(fillers)

    # Place the current revision at the drawn depth, then the decoys around it.
    n_lines = len(fillers) + len(special)
    position = rng.choice(POSITIONS)
    low, high = _DEPTHS[position]
    needle_line = min(int(rng.uniform(low, high) * n_lines), n_lines - 2)
    free = [i for i in range(n_lines) if i != needle_line]
    slots: dict[int, Revision] = {needle_line: current}
    outdated = [r for kind, r in decoys if kind == "outdated-revision"]
    if size.outdated_after_current:
        after = rng.randrange(needle_line + 1, n_lines)
        slots[after] = outdated[0]
        free.remove(after)
    placed = {id(r) for r in slots.values()}
    rest = [r for _, r in decoys if id(r) not in placed]
    for i, revision in zip(rng.sample(free, len(rest)), rest, strict=True):
        slots[i] = revision
    filler_iter = iter(fillers)
    records = tuple(slots[i] if i in slots else next(filler_iter) for i in range(n_lines))

    prompt = render_prompt(records, field, badge, name, office)
    return NeedleTask(
        difficulty=difficulty,
        context_tokens=budget,
        prompt_tokens=count_tokens(prompt),
        field=field,
        badge=badge,
        office=office,
        name=name,
        answer=getattr(current, field),
        answer_revision_id=current.revision_id,
        position=position,
        needle_line=needle_line,
        depth=round(needle_line / n_lines, 3),
        records=records,
        distractors=tuple(
            Distractor(kind=kind, revision_id=r.revision_id, value=getattr(r, field))
            for kind, r in decoys
        ),
    )


LOG_START = "<records>"
LOG_END = "</records>"
_PREAMBLE = (
    "Below is an export of the HR system's employee revision log, one JSON record per line, "
    "in no particular order. Every change to an employee's record is stored as a new "
    "revision with a higher `revision` number and a later `updated_at` date; older "
    "revisions stay in the log. Badge numbers are unique only within an office, and "
    "different employees may share a name."
)


def render_prompt(
    records: tuple[Revision, ...] | list[Revision], field: str, badge: str, name: str, office: str
) -> str:
    """The user message: preamble, the log between ``<records>`` tags, the question."""
    lines = "\n".join(r.line() for r in records)
    return (
        f"{_PREAMBLE}\n\n{LOG_START}\n{lines}\n{LOG_END}\n\n{question(field, badge, name, office)}"
    )
