"""``calendar-intents``: one message asks for 2-4 calendar chores at once; each needs its own
tool work, and all of them must be done (capability: multiple-intent synthesis).

"Move my "Budget review" on Tuesday to the earliest time I'm free on Thursday afternoon.
Also, cancel my "Team standup" on Friday. Then book the smallest free room that seats 7
people on Monday from 14:00 to 15:00. Lastly, tell me (Q1) how many meetings I have on
Wednesday." Every intent depends on lookups: event ids come from ``list_events`` or
``find_event``, the free slot from the target day's meetings, the room from capacities and
room schedules (the smallest adequate room is taken; a smaller, free room is too small),
a colleague's free time from ``check_availability`` (busy blocks only), the count from
``list_events``.

Difficulty: easy asks 2 intents (one change, one question) over a light week; medium 3,
with a daily "Team standup" (a cancel names a recurring title, so the day decides which
one); hard 4, with more meetings, 1:1s that recur, and two adequate rooms already taken.

Verifier: :func:`~gymbus.envs.builtin.calendar_checks.calendar_verifier`, all-or-nothing
over one part per intent (state checks on the final calendar, answers read from ``Q1: …``
lines) and ``no_side_effects``. Null check: the null model calls no tools, so every change
is missing from the calendar and no question is answered: reward 0.0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gymbus.envs.builtin.calendar_checks import calendar_verifier
from gymbus.envs.builtin.calendar_data import (
    DAYS,
    WORK_END,
    WORK_START,
    AvailabilityIntent,
    Booking,
    CalendarState,
    CalendarTask,
    CountIntent,
    Day,
    Event,
    hhmm,
    minutes,
)
from gymbus.envs.builtin.calendar_generation import generate
from gymbus.envs.builtin.calendar_solver import CalendarIntentsSolver
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.user_env import UserEnvironment
from gymbus.envs.users import AnswerReaction, UserScript
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import SystemMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec

__all__ = ["CalendarIntents", "calendar_tools"]

_SYSTEM_PROMPT = (
    "You are a scheduling assistant. Through the tools you can read and change the user's "
    "work calendar, see colleagues' busy times and book meeting rooms. The week runs Monday "
    "to Friday; working hours are 09:00-17:00 (24-hour HH:MM); 'afternoon' means "
    "13:00-17:00. A moved meeting keeps its length. Look every id, time and room up with the "
    "tools; never guess."
)

_DAY = {"type": "string", "enum": list(DAYS), "description": "A weekday, like 'Tuesday'."}
_TIME = {
    "type": "string",
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "description": "A 24-hour time, like '14:30'.",
}


def _text(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _tool(fn: Callable[..., str], description: str, **properties: dict[str, Any]) -> FunctionTool:
    parameters = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    spec = ToolSpec(name=fn.__name__, description=description, parameters=parameters)
    return FunctionTool(fn, spec)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _event(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude={"status"})


def _span(start: str, end: str) -> tuple[int, int]:
    begin, finish = minutes(start), minutes(end)
    if not WORK_START <= begin < finish <= WORK_END:
        raise ToolInputError(
            f"{start}-{end} is not a range within working hours (09:00-17:00, start before end)"
        )
    return begin, finish


def _minutes_of(item: Event | Booking) -> tuple[int, int]:
    return minutes(item.start), minutes(item.end)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def calendar_tools(state: CalendarState) -> Toolbox:
    """Tools over one episode's calendar ``state`` (changes are made in place)."""

    def confirmed(event_id: str) -> Event:
        event = state.events.get(event_id)
        if event is None:
            raise ToolInputError(
                f"no event {event_id!r}; event ids (like 'EVT-1234') come from list_events "
                "or find_event"
            )
        if event.status == "cancelled":
            raise ToolInputError(f"event {event_id} ({event.title!r}) is cancelled")
        return event

    def list_events(day: Day) -> str:
        return _json({"day": day, "events": [_event(e) for e in state.events_on(day)]})

    def find_event(title: str) -> str:
        query = title.strip().lower()
        if not query:
            raise ToolInputError("title must not be empty")
        found = [
            _event(e) for day in DAYS for e in state.events_on(day) if query in e.title.lower()
        ]
        return _json({"query": title, "matches": found})

    def check_availability(person: str, day: Day) -> str:
        if person not in state.private_busy:
            known = ", ".join(sorted(state.private_busy))
            raise ToolInputError(f"no colleague named {person!r}; colleagues: {known}")
        busy = [b.model_dump(mode="json") for b in state.busy(person, day)]
        return _json({"person": person, "day": day, "working_hours": "09:00-17:00", "busy": busy})

    def list_rooms() -> str:
        return _json({"rooms": [r.model_dump(mode="json") for r in state.rooms.values()]})

    def room_schedule(room: str, day: Day) -> str:
        if room not in state.rooms:
            raise ToolInputError(f"no room {room!r}; rooms: {', '.join(state.rooms)}")
        bookings = sorted(
            (b for b in state.bookings.values() if b.room == room and b.day == day),
            key=lambda b: minutes(b.start),
        )
        shown = [b.model_dump(mode="json", exclude={"room", "day"}) for b in bookings]
        return _json({"room": room, "day": day, "bookings": shown})

    def move_event(event_id: str, day: Day, start: str) -> str:
        event = confirmed(event_id)
        duration = minutes(event.end) - minutes(event.start)
        begin = minutes(start)
        end = hhmm(begin + duration)
        if begin + duration > WORK_END:
            raise ToolInputError(f"{event.title!r} lasts {duration} minutes: it would end at {end}")
        _span(start, end)
        moved = event.model_copy(update={"day": day, "start": start, "end": end})
        state.events[event_id] = moved
        conflicts = [
            e.title
            for e in state.events_on(day)
            if e.event_id != event_id and _overlap(_minutes_of(e), _minutes_of(moved))
        ]
        return _json({"moved": _event(moved), "conflicts": conflicts})

    def cancel_event(event_id: str) -> str:
        event = confirmed(event_id)
        state.events[event_id] = event.model_copy(update={"status": "cancelled"})
        return _json({"cancelled": _event(event)})

    def book_room(room: str, day: Day, start: str, end: str) -> str:
        if room not in state.rooms:
            raise ToolInputError(f"no room {room!r}; rooms: {', '.join(state.rooms)}")
        begin, finish = _span(start, end)
        for b in state.bookings.values():
            if b.room == room and b.day == day and _overlap((begin, finish), _minutes_of(b)):
                raise ToolInputError(f"{room} is already booked on {day} from {b.start} to {b.end}")
        booking = Booking(
            booking_id=f"BKG-{state.next_booking}",
            room=room,
            day=day,
            start=start,
            end=end,
            booked_by=state.owner,
        )
        state.next_booking += 1
        state.bookings[booking.booking_id] = booking
        return _json({"booked": booking.model_dump(mode="json")})

    event_id = _text("An event id, like 'EVT-1234'.")
    return Toolbox(
        [
            _tool(list_events, "The user's meetings on a day, by start time.", day=_DAY),
            _tool(
                find_event,
                "The user's meetings whose title contains the text.",
                title=_text("Part of a meeting title (case-insensitive)."),
            ),
            _tool(
                check_availability,
                "A colleague's busy times on a day.",
                person=_text("The colleague's full name."),
                day=_DAY,
            ),
            _tool(list_rooms, "All meeting rooms with their capacity (seats)."),
            _tool(
                room_schedule,
                "A room's bookings on a day.",
                room=_text("A room name from list_rooms."),
                day=_DAY,
            ),
            _tool(
                move_event,
                "Move a meeting to a day and start time (it keeps its length).",
                event_id=event_id,
                day=_DAY,
                start=_TIME,
            ),
            _tool(cancel_event, "Cancel a meeting.", event_id=event_id),
            _tool(
                book_room,
                "Book a room for the user (fails if it is taken).",
                room=_text("A room name from list_rooms."),
                day=_DAY,
                start=_TIME,
                end=_TIME,
            ),
        ]
    )


def calendar_user(data: CalendarTask) -> UserScript:
    """The scripted user: opens with the request, holds no withheld facts, and once the
    agent answers, nudges once if a question of the request has no ``Qn:`` line."""
    labels = [i.label for i in data.intents if isinstance(i, CountIntent | AvailabilityIntent)]
    return UserScript(
        opening=data.request,
        on_answer=AnswerReaction(
            required=tuple(rf"\b{label}\s*\)?\s*:" for label in labels),
            nudge="You haven't answered all my questions. Please answer each one on its own "
            "line, like 'Q1: …'.",
        ),
        fallback="Everything you need is in my first message.",
        max_user_turns=3,
    )


class CalendarIntents(UserEnvironment):
    name = "calendar-intents"
    description = (
        "One user message asks for 2-4 calendar chores (move a meeting to the earliest free "
        "slot, cancel one, book the smallest free adequate room, count meetings, find when a "
        "colleague is free), each needing its own tool chain. Reward: 1.0 only if every "
        "intent is satisfied (final calendar state and 'Q1: …' answer lines) with no side "
        "effects."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-step", "multi-turn"),
        core_capabilities=("multiple-intent-synthesis",),
        knowledge_domain="calendar",
        task_type="calendar-management",
        verification_method="composite",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, CalendarTask)
        state = CalendarState.from_world(data.world)  # fresh per episode: tools mutate it
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT),
                UserMessage(content=data.request, author="user"),
            ),
            user=self.simulated_user(
                task,
                calendar_user(data),
                goal="Have every chore in your first message done and every question answered.",
            ),
            tools=calendar_tools(state),
            verifier=calendar_verifier(data.world, data.intents),
            solver=CalendarIntentsSolver(),
            limits=Limits(max_turns=24),
            metadata=self.metadata.model_dump(mode="json"),
            state=state,
        )
