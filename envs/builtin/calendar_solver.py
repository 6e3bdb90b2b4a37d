"""The calendar-intents reference solver: parses the request's intents (written from fixed
templates, as a careful agent would read them), then works every intent's tool chain in
parallel — each turn makes all the calls that are ready — and answers the questions.

It reads only the conversation: the request and the tool results, never the answer key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gymbus.envs.builtin.calendar_data import (
    AFTERNOON,
    WORK_START,
    earliest_free,
    free_intervals,
    hhmm,
    minutes,
)
from gymbus.envs.builtin.recorded_calls import (
    CallFailedError,
    CallsPendingError,
    RecordedCalls,
    Request,
)
from gymbus.runtime.messages import AssistantMessage, UserMessage
from gymbus.runtime.transcript import Transcript

__all__ = ["CalendarIntentsSolver", "parse_request"]

_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday)"
_PATTERNS = {
    "move": re.compile(
        rf'move my "(?P<title>[^"]+)" on (?P<source>{_DAY}) to the earliest time '
        rf"I'm free on (?P<target>{_DAY})(?P<afternoon> afternoon)?"
    ),
    "cancel": re.compile(rf'cancel my "(?P<title>[^"]+)" on (?P<day>{_DAY})'),
    "book": re.compile(
        rf"book the smallest free room that seats (?P<seats>[0-9]+) people on (?P<day>{_DAY}) "
        r"from (?P<start>[0-9]{2}:[0-9]{2}) to (?P<end>[0-9]{2}:[0-9]{2})"
    ),
    "count": re.compile(
        rf"tell me \((?P<label>Q[0-9]+)\) how many meetings I have on (?P<day>{_DAY})"
    ),
    "availability": re.compile(
        rf"tell me \((?P<label>Q[0-9]+)\) when (?P<person>[^.]+?) is free on (?P<day>{_DAY})"
    ),
}


def parse_request(text: str) -> list[tuple[str, dict[str, str]]]:
    """The intents in ``text``, in order, as (kind, fields) pairs."""
    found = [
        (match.start(), kind, match.groupdict())
        for kind, pattern in _PATTERNS.items()
        for match in pattern.finditer(text)
    ]
    return [(kind, fields) for _, kind, fields in sorted(found, key=lambda f: f[0])]


def _event(calls: RecordedCalls, title: str, day: str) -> dict[str, Any]:
    (listing,) = calls.need(("list_events", {"day": day}))
    for event in listing["events"]:
        if event["title"] == title:
            return dict(event)
    raise CallFailedError(f'there is no "{title}" on {day}')


def _move(calls: RecordedCalls, f: dict[str, str]) -> str:
    _, target = calls.need(
        ("list_events", {"day": f["source"]}), ("list_events", {"day": f["target"]})
    )
    event = _event(calls, f["title"], f["source"])
    duration = minutes(event["end"]) - minutes(event["start"])
    busy = [(minutes(e["start"]), minutes(e["end"])) for e in target["events"]]
    start = earliest_free(busy, AFTERNOON if f["afternoon"] else WORK_START, duration)
    if start is None:
        raise CallFailedError(f"you have no free {duration} minutes on {f['target']}")
    arguments = {"event_id": event["event_id"], "day": f["target"], "start": hhmm(start)}
    calls.need(("move_event", arguments))
    return f'Moved "{f["title"]}" to {f["target"]} at {hhmm(start)}.'


def _cancel(calls: RecordedCalls, f: dict[str, str]) -> str:
    event = _event(calls, f["title"], f["day"])
    calls.need(("cancel_event", {"event_id": event["event_id"]}))
    return f'Cancelled "{f["title"]}" on {f["day"]}.'


def _book(calls: RecordedCalls, f: dict[str, str]) -> str:
    (listing,) = calls.need(("list_rooms", {}))
    rooms = sorted(
        (r for r in listing["rooms"] if r["capacity"] >= int(f["seats"])),
        key=lambda r: r["capacity"],
    )
    schedules = calls.need(
        *[("room_schedule", {"room": r["name"], "day": f["day"]}) for r in rooms]
    )
    begin, end = minutes(f["start"]), minutes(f["end"])
    for schedule in schedules:
        taken = [(minutes(b["start"]), minutes(b["end"])) for b in schedule["bookings"]]
        if all(end <= s or e <= begin for s, e in taken):
            room = schedule["room"]
            arguments = {"room": room, "day": f["day"], "start": f["start"], "end": f["end"]}
            calls.need(("book_room", arguments))
            return f"Booked {room} on {f['day']} from {f['start']} to {f['end']}."
    raise CallFailedError(f"no room for {f['seats']} people is free then")


def _count(calls: RecordedCalls, f: dict[str, str]) -> str:
    (listing,) = calls.need(("list_events", {"day": f["day"]}))
    return f"{f['label']}: {len(listing['events'])}"


def _availability(calls: RecordedCalls, f: dict[str, str]) -> str:
    (result,) = calls.need(("check_availability", {"person": f["person"], "day": f["day"]}))
    free = free_intervals([(minutes(b["start"]), minutes(b["end"])) for b in result["busy"]])
    return f"{f['label']}: " + ", ".join(f"{hhmm(s)}-{hhmm(e)}" for s, e in free)


_HANDLERS: dict[str, Callable[[RecordedCalls, dict[str, str]], str]] = {
    "move": _move,
    "cancel": _cancel,
    "book": _book,
    "count": _count,
    "availability": _availability,
}


class CalendarIntentsSolver:
    """The reference solver; a pure function of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        request = next((m for m in conversation if isinstance(m, UserMessage)), None)
        intents = parse_request(request.text) if request is not None else []
        if not intents:
            return AssistantMessage(content="I could not find a calendar request to work on.")
        calls = RecordedCalls(conversation)
        pending: list[Request] = []
        done: list[tuple[str, str]] = []
        for kind, fields in intents:
            try:
                done.append((kind, _HANDLERS[kind](calls, fields)))
            except CallsPendingError as waiting:
                pending.extend(r for r in waiting.requests if r not in pending)
            except CallFailedError as failed:
                return AssistantMessage(content=f"I could not finish your request: {failed}")
        if pending:
            return calls.message(pending)
        changes = [line for kind, line in done if kind in ("move", "cancel", "book")]
        answers = sorted(line for kind, line in done if kind in ("count", "availability"))
        return AssistantMessage(content="\n".join(["All done.", *changes, *answers]))
