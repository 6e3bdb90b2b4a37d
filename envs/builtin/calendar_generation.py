"""The seeded generator of calendar-intents tasks (records are in calendar_data).

Every intent gets day(s) of its own, its answer is never the obvious first guess (a move
target's window starts busy; the smallest adequate room is taken and a too-small room is
free), and a world that misses a constraint is redrawn from the same generator.
"""

from __future__ import annotations

import random
from contextlib import suppress
from dataclasses import dataclass

from gymbus.envs.base import Difficulty
from gymbus.envs.builtin.calendar_data import (
    ACTION_KINDS,
    AFTERNOON,
    DAYS,
    QUESTION_KINDS,
    STANDUP,
    WORK_END,
    WORK_START,
    AvailabilityIntent,
    Block,
    Booking,
    BookIntent,
    CalendarTask,
    CalendarWorld,
    CancelIntent,
    CountIntent,
    Day,
    Event,
    Intent,
    MoveIntent,
    Room,
    earliest_free,
    free_intervals,
    hhmm,
    minutes,
    render_request,
)

__all__ = ["generate"]


@dataclass(frozen=True, slots=True)
class _Size:
    intents: int
    events_per_day: tuple[int, int]
    standup: bool  # a daily "Team standup" at 09:00: the same title every day
    repeated_one_on_ones: bool  # "1:1 with X" on two days
    rooms: int
    busy_adequate_rooms: int  # adequate rooms already booked at the asked slot


_SIZES: dict[Difficulty, _Size] = {
    "easy": _Size(
        2, (2, 3), standup=False, repeated_one_on_ones=False, rooms=4, busy_adequate_rooms=1
    ),
    "medium": _Size(
        3, (3, 4), standup=True, repeated_one_on_ones=False, rooms=5, busy_adequate_rooms=1
    ),
    "hard": _Size(
        4, (4, 6), standup=True, repeated_one_on_ones=True, rooms=6, busy_adequate_rooms=2
    ),
}

_TITLES = (
    "Budget review", "Design sync", "Hiring debrief", "Quarterly planning", "Roadmap review",
    "Vendor demo", "Security training", "Lunch and learn", "Sprint retro", "Board prep",
    "Architecture review", "Marketing sync", "Onboarding session", "Analytics deep dive",
    "Release go/no-go", "Incident review", "Partner check-in", "Customer call: Lumen",
    "Pricing workshop", "Data platform sync", "Offsite planning", "Interview: backend role",
    "Legal review", "Support escalation", "OKR check-in", "Design critique", "Brand refresh",
    "Capacity planning", "Procurement sync", "Town hall prep",
)  # fmt: skip
_PEOPLE = (
    "Amara Okafor", "Bruno Ferreira", "Chen Wei", "Dagny Lund", "Elif Yilmaz", "Farid Haddad",
    "Greta Novak", "Hiro Tanaka", "Ines Duarte", "Jonas Berg", "Kavya Iyer", "Liam Walsh",
)  # fmt: skip
_ROOMS = ("Aurora", "Basalt", "Cedar", "Dune", "Ember", "Fjord", "Glacier", "Harbor")
_CAPACITIES = (2, 4, 6, 8, 10, 12, 14, 16, 20)
_DURATIONS = (30, 60, 60, 90)


class _FullDayError(Exception):
    """No free slot is left on a day: the world is redrawn."""


def _overlaps(a: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(a[0] < e and s < a[1] for s, e in taken)


def _place(
    rng: random.Random, taken: list[tuple[int, int]], duration: int, *, at: int | None = None
) -> tuple[int, int]:
    """A random (or the given) free grid slot of ``duration`` minutes, added to ``taken``.
    Falls back to 30 minutes when no longer slot is left."""
    starts = [
        s
        for s in range(WORK_START, WORK_END - duration + 1, 30)
        if not _overlaps((s, s + duration), taken)
    ]
    if at is not None:
        starts = [at]
    elif not starts and duration > 30:
        return _place(rng, taken, 30)
    elif not starts:
        raise _FullDayError
    start = rng.choice(starts)
    taken.append((start, start + duration))
    return start, start + duration


def generate(seed: int, difficulty: Difficulty) -> CalendarTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``.
    A world that misses a constraint is redrawn from the same generator."""
    rng = random.Random(seed)
    while True:
        with suppress(_FullDayError):
            task = _attempt(rng, difficulty)
            if task is not None:
                return task


def _week(rng: random.Random, size: _Size, colleagues: list[str]) -> dict[str, Event]:
    ids = iter(f"EVT-{n}" for n in rng.sample(range(1000, 10000), 40))
    titles = iter(rng.sample(_TITLES, len(_TITLES)))
    taken: dict[Day, list[tuple[int, int]]] = {day: [] for day in DAYS}
    events: dict[str, Event] = {}

    def add(title: str, day: Day, slot: tuple[int, int], attendees: list[str]) -> None:
        event = Event(
            event_id=next(ids),
            title=title,
            day=day,
            start=hhmm(slot[0]),
            end=hhmm(slot[1]),
            attendees=tuple(attendees),
        )
        events[event.event_id] = event

    if size.standup:
        for day in DAYS:
            add(STANDUP, day, _place(rng, taken[day], 30, at=WORK_START), colleagues[:3])
    if size.repeated_one_on_ones:
        for person in rng.sample(colleagues, 2):
            for day in rng.sample(DAYS, 2):
                add(f"1:1 with {person.split()[0]}", day, _place(rng, taken[day], 30), [person])
    for day in DAYS:
        for _ in range(rng.randint(*size.events_per_day)):
            slot = _place(rng, taken[day], rng.choice(_DURATIONS))
            add(next(titles), day, slot, rng.sample(colleagues, rng.randint(1, 3)))
    return dict(sorted(events.items(), key=lambda kv: (DAYS.index(kv[1].day), kv[1].start)))


def _slots(events: dict[str, Event], day: Day, person: str | None = None) -> list[tuple[int, int]]:
    return [
        (minutes(e.start), minutes(e.end))
        for e in events.values()
        if e.day == day and (person is None or person in e.attendees)
    ]


def _attempt(rng: random.Random, difficulty: Difficulty) -> CalendarTask | None:
    size = _SIZES[difficulty]
    people = rng.sample(_PEOPLE, 6)
    owner, colleagues = people[0], people[1:]
    events = _week(rng, size, colleagues)
    private: dict[str, dict[Day, tuple[Block, ...]]] = {}
    for person in colleagues:  # private blocks never overlap their meetings with the owner
        private[person] = {}
        for day in DAYS:
            busy = _slots(events, day, person)
            own = [_place(rng, busy, rng.choice(_DURATIONS)) for _ in range(rng.randint(1, 3))]
            private[person][day] = tuple(Block(start=hhmm(s), end=hhmm(e)) for s, e in sorted(own))
    capacities = sorted(rng.sample(_CAPACITIES, size.rooms))
    rooms = {
        name: Room(name=name, capacity=capacity, floor=rng.randint(1, 5))
        for name, capacity in zip(rng.sample(_ROOMS, size.rooms), capacities, strict=True)
    }

    while True:
        kinds = rng.sample(ACTION_KINDS + QUESTION_KINDS, size.intents)
        if set(kinds) & set(ACTION_KINDS) and set(kinds) & set(QUESTION_KINDS):
            break
    days = iter(rng.sample(DAYS, len(DAYS)))  # each intent gets day(s) of its own
    labels = iter(("Q1", "Q2"))
    intents: list[Intent] = []
    booked: list[tuple[str, Day, int, int]] = []  # (room, day, start, end) by colleagues
    for kind in kinds:
        intent: Intent | None
        if kind == "move":
            intent = _move(rng, events, next(days), next(days))
        elif kind == "cancel":
            intent = _cancel(rng, events, next(days), repeated=size.standup)
        elif kind == "book":
            intent = _book(rng, rooms, size.busy_adequate_rooms, booked)
        elif kind == "count":
            day = next(days)
            intent = CountIntent(label=next(labels), day=day, expected=len(_slots(events, day)))
        else:
            intent = _availability(rng, events, private, colleagues, next(days), next(labels))
        if intent is None:
            return None
        intents.append(intent)
    book = next((i for i in intents if isinstance(i, BookIntent)), None)
    bookings = _bookings(rng, rooms, booked, book, colleagues)
    world = CalendarWorld(
        owner=owner, events=events, private_busy=private, rooms=rooms, bookings=bookings
    )
    return CalendarTask(
        difficulty=difficulty, world=world, intents=tuple(intents), request=render_request(intents)
    )


def _move(rng: random.Random, events: dict[str, Event], source: Day, target: Day) -> Intent | None:
    """Move a meeting to the earliest free slot on ``target`` (morning or afternoon window,
    whichever starts busy, so the answer is never the window's first minute)."""
    event = rng.choice([e for e in events.values() if e.day == source and e.title != STANDUP])
    duration = minutes(event.end) - minutes(event.start)
    busy = _slots(events, target)
    windows = [True, False] if rng.random() < 0.5 else [False, True]
    for afternoon in windows:
        after = AFTERNOON if afternoon else WORK_START
        start = earliest_free(busy, after, duration)
        if start is not None and start != after:
            return MoveIntent(
                event_id=event.event_id,
                title=event.title,
                from_day=source,
                to_day=target,
                afternoon=afternoon,
                expected_start=hhmm(start),
            )
    return None


def _cancel(rng: random.Random, events: dict[str, Event], day: Day, *, repeated: bool) -> Intent:
    """Cancel a meeting; with ``repeated``, one whose title recurs on other days."""
    on_day = [e for e in events.values() if e.day == day]
    titles = [e.title for e in events.values()]
    recurring = [e for e in on_day if titles.count(e.title) > 1]
    event = rng.choice(recurring if repeated and recurring else on_day)
    return CancelIntent(event_id=event.event_id, title=event.title, day=day)


def _book(
    rng: random.Random,
    rooms: dict[str, Room],
    busy_rooms: int,
    booked: list[tuple[str, Day, int, int]],
) -> Intent:
    """Book the smallest room that seats N and is free: the smallest adequate room(s) are
    taken at that slot, and a smaller (too small) room is free as a decoy."""
    by_size = list(rooms.values())  # sorted by capacity
    first = rng.randint(1, len(by_size) - busy_rooms - 1)  # index of the smallest adequate room
    seats = rng.randint(by_size[first - 1].capacity + 1, by_size[first].capacity)
    day: Day = rng.choice(DAYS)
    duration = rng.choice((60, 60, 90))
    start = rng.randrange(WORK_START + 30, WORK_END - duration - 30 + 1, 30)
    for room in by_size[first : first + busy_rooms]:  # overlapping by 30 minutes or more
        shift = rng.choice((-30, 0, 30))
        booked.append((room.name, day, start + shift, start + shift + duration))
    return BookIntent(
        day=day,
        start=hhmm(start),
        end=hhmm(start + duration),
        seats=seats,
        expected_room=by_size[first + busy_rooms].name,
    )


def _bookings(
    rng: random.Random,
    rooms: dict[str, Room],
    booked: list[tuple[str, Day, int, int]],
    book: BookIntent | None,
    colleagues: list[str],
) -> dict[str, Booking]:
    """Colleagues' room bookings: the required ones plus random others (none of which
    takes the expected room at the asked slot)."""
    taken: dict[tuple[str, Day], list[tuple[int, int]]] = {}
    for room, day, start, end in booked:
        taken.setdefault((room, day), []).append((start, end))
    if book is not None:  # keep the answer free: reserve its slot while placing the rest
        taken.setdefault((book.expected_room, book.day), []).append(
            (minutes(book.start), minutes(book.end))
        )
    placed = list(booked)
    for room in rooms:
        for day in DAYS:
            slots = taken.setdefault((room, day), [])
            for _ in range(rng.randint(0, 2)):
                start, end = _place(rng, slots, rng.choice(_DURATIONS))
                placed.append((room, day, start, end))
    numbers = rng.sample(range(1000, 9000), len(placed))
    placed.sort(key=lambda b: (b[0], DAYS.index(b[1]), b[2]))
    return {
        f"BKG-{n}": Booking(
            booking_id=f"BKG-{n}",
            room=room,
            day=day,
            start=hhmm(start),
            end=hhmm(end),
            booked_by=rng.choice(colleagues),
        )
        for n, (room, day, start, end) in zip(numbers, placed, strict=True)
    }


def _availability(
    rng: random.Random,
    events: dict[str, Event],
    private: dict[str, dict[Day, tuple[Block, ...]]],
    colleagues: list[str],
    day: Day,
    label: str,
) -> Intent | None:
    """When a colleague (preferably one the owner meets that day) is free: their busy
    blocks are private ones plus meetings with the owner; at least two free ranges."""
    meeting = [p for p in colleagues if _slots(events, day, p)]
    for person in rng.sample(meeting, len(meeting)) + rng.sample(colleagues, len(colleagues)):
        busy = _slots(events, day, person) + [
            (minutes(b.start), minutes(b.end)) for b in private[person][day]
        ]
        free = free_intervals(busy)
        if len(busy) >= 2 and len(free) >= 2:
            blocks = tuple(Block(start=hhmm(s), end=hhmm(e)) for s, e in free)
            return AvailabilityIntent(label=label, person=person, day=day, expected=blocks)
    return None
