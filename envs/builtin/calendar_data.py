"""The calendar-intents records: the world, the intents with their answer keys, the
per-episode state, time arithmetic and the wording of requests.

A world is one work week (Monday to Friday, 09:00-17:00, on a 30-minute grid): the owner's
meetings, colleagues' private busy blocks, meeting rooms and their bookings. A task asks
for 2-4 intents in one message; each intent that reads or changes the owner's calendar has
day(s) of its own, so the intents can be done in any order and none changes another's
answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import Field

from gymbus.envs.base import Difficulty
from gymbus.runtime.messages import Frozen

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)

Day = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
DAYS: tuple[Day, ...] = get_args(Day)
WORK_START, AFTERNOON, WORK_END = 9 * 60, 13 * 60, 17 * 60
STANDUP = "Team standup"


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


class Event(Frozen):
    event_id: str
    title: str
    day: Day
    start: str
    end: str
    attendees: tuple[str, ...]
    status: Literal["confirmed", "cancelled"] = "confirmed"


class Block(Frozen):
    """A time range on one day (a busy block, or a free interval in an answer key)."""

    start: str
    end: str


class Room(Frozen):
    name: str
    capacity: int
    floor: int


class Booking(Frozen):
    booking_id: str
    room: str
    day: Day
    start: str
    end: str
    booked_by: str


class CalendarWorld(Frozen):
    owner: str
    events: dict[str, Event]
    private_busy: dict[str, dict[Day, tuple[Block, ...]]]  # colleague → day → blocks
    rooms: dict[str, Room]
    bookings: dict[str, Booking]


class MoveIntent(Frozen):
    kind: Literal["move"] = "move"
    event_id: str
    title: str
    from_day: Day
    to_day: Day
    afternoon: bool
    expected_start: str


class CancelIntent(Frozen):
    kind: Literal["cancel"] = "cancel"
    event_id: str
    title: str
    day: Day


class BookIntent(Frozen):
    kind: Literal["book"] = "book"
    day: Day
    start: str
    end: str
    seats: int
    expected_room: str


class CountIntent(Frozen):
    kind: Literal["count"] = "count"
    label: str
    day: Day
    expected: int


class AvailabilityIntent(Frozen):
    kind: Literal["availability"] = "availability"
    label: str
    person: str
    day: Day
    expected: tuple[Block, ...]


Intent = Annotated[
    MoveIntent | CancelIntent | BookIntent | CountIntent | AvailabilityIntent,
    Field(discriminator="kind"),
]
ACTION_KINDS = ("move", "cancel", "book")
QUESTION_KINDS = ("count", "availability")


class CalendarTask(Frozen):
    """``Task.data`` of a calendar-intents task: the world, the request and its intents
    (each with its answer key)."""

    difficulty: Difficulty
    world: CalendarWorld
    intents: tuple[Intent, ...]
    request: str


@dataclass(slots=True)
class CalendarState:
    """The per-episode, mutable calendar the tools act on (built fresh from the world)."""

    owner: str
    events: dict[str, Event]
    private_busy: dict[str, dict[Day, tuple[Block, ...]]]
    rooms: dict[str, Room]
    bookings: dict[str, Booking]
    next_booking: int = 9001  # colleagues' bookings are BKG-1000 … BKG-8999

    @classmethod
    def from_world(cls, world: CalendarWorld) -> CalendarState:
        return cls(
            owner=world.owner,
            events=dict(world.events),
            private_busy=world.private_busy,  # read-only
            rooms=world.rooms,  # read-only
            bookings=dict(world.bookings),
        )

    def events_on(self, day: str) -> list[Event]:
        return sorted(
            (e for e in self.events.values() if e.day == day and e.status == "confirmed"),
            key=lambda e: minutes(e.start),
        )

    def busy(self, person: str, day: Day) -> list[Block]:
        """``person``'s busy blocks on ``day``: private ones and the owner's meetings."""
        blocks = [
            Block(start=e.start, end=e.end) for e in self.events_on(day) if person in e.attendees
        ]
        blocks.extend(self.private_busy[person][day])
        return sorted(blocks, key=lambda b: minutes(b.start))


def free_intervals(busy: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Working-hours intervals not covered by ``busy`` (ranges in minutes)."""
    free, cursor = [], WORK_START
    for start, end in sorted(busy):
        if start > cursor:
            free.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < WORK_END:
        free.append((cursor, WORK_END))
    return free


def earliest_free(busy: list[tuple[int, int]], after: int, duration: int) -> int | None:
    """The earliest start ≥ ``after`` of a ``duration``-minute slot clear of ``busy``."""
    for start, end in free_intervals(busy):
        begin = max(start, after)
        if begin + duration <= end:
            return begin
    return None


_LEADS = {
    2: ("Please ", "Also, "),
    3: ("Please ", "Also, ", "Lastly, "),
    4: ("Please ", "Also, ", "Then ", "Lastly, "),
}


def clause(intent: Intent) -> str:
    """The words asking for ``intent`` (the reference solver parses these back)."""
    if isinstance(intent, MoveIntent):
        window = " afternoon" if intent.afternoon else ""
        return (
            f'move my "{intent.title}" on {intent.from_day} to the earliest time '
            f"I'm free on {intent.to_day}{window}."
        )
    if isinstance(intent, CancelIntent):
        return f'cancel my "{intent.title}" on {intent.day}.'
    if isinstance(intent, BookIntent):
        return (
            f"book the smallest free room that seats {intent.seats} people on {intent.day} "
            f"from {intent.start} to {intent.end}."
        )
    if isinstance(intent, CountIntent):
        return f"tell me ({intent.label}) how many meetings I have on {intent.day}."
    return f"tell me ({intent.label}) when {intent.person} is free on {intent.day}."


def render_request(intents: tuple[Intent, ...] | list[Intent]) -> str:
    """The user's one message carrying every intent, then how to report the answers."""
    leads = _LEADS.get(len(intents), ("Please ",) + ("Also, ",) * (len(intents) - 1))
    asks = " ".join(lead + clause(i) for lead, i in zip(leads, intents, strict=True))
    return (
        f"Hi! I need a few things done in my calendar this week. {asks}\n\n"
        "Make the changes with the tools. When you are done, answer my questions with one "
        'line each, like "Q1: <answer>": a number of meetings as a number, free times as '
        "HH:MM-HH:MM ranges separated by commas."
    )
