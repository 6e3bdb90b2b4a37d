"""The calendar-intents verifier: one part per intent plus a side-effect check, combined
all-or-nothing (a forgotten intent scores 0 however well the others were done).

State-changing intents are checked on the final calendar (``CompletedEpisode.state``);
questions on the final answer, read line by line as ``Q1: <answer>``.
"""

from __future__ import annotations

import re
from typing import Any

from gymbus.envs.builtin.calendar_data import (
    BookIntent,
    CalendarState,
    CalendarWorld,
    CancelIntent,
    CountIntent,
    Intent,
    MoveIntent,
    hhmm,
    minutes,
)
from gymbus.envs.verifiers import final_answer, last_integer
from gymbus.envs.verifiers.composite import CompositeVerifier, Part
from gymbus.runtime.verification import CompletedEpisode, Score, Verifier

__all__ = ["answer_lines", "calendar_verifier", "time_ranges"]

_ANSWER_LINE = re.compile(
    r"^[\s>*_`#-]*\(?(Q[0-9]+)\)?[*_`]*\s*[:.)=\-–—]?\s*(.*?)\s*$", re.MULTILINE | re.IGNORECASE
)
_RANGE = re.compile(
    r"\b([0-9]{1,2})[:.]([0-9]{2})\s*(?:-|–|—|to|until)\s*([0-9]{1,2})[:.]([0-9]{2})\b"
)

KIND_PART = {
    "move": "move_event",
    "cancel": "cancel_event",
    "book": "book_room",
    "count": "meeting_count",
    "availability": "free_time",
}
"""The verifier part (and sub-score) name of each intent kind."""


def answer_lines(text: str) -> dict[str, str]:
    """``{"Q1": "3", …}`` from lines like ``Q1: 3`` (markdown and ``(Q1)`` tolerated; the
    last line for a label wins)."""
    return {label.upper(): value.strip("*_` ") for label, value in _ANSWER_LINE.findall(text)}


def time_ranges(text: str) -> list[tuple[str, str]]:
    """The ``HH:MM-HH:MM`` ranges in ``text``, canonical, sorted, touching ones merged."""
    ranges = sorted(
        (int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)) for h1, m1, h2, m2 in _RANGE.findall(text)
    )
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return [(hhmm(s), hhmm(e)) for s, e in merged]


def _state(episode: CompletedEpisode) -> CalendarState:
    if not isinstance(episode.state, CalendarState):  # a wiring bug: fail, never score 0
        raise TypeError(f"expected a CalendarState, got {type(episode.state).__name__}")
    return episode.state


def _answers(episode: CompletedEpisode) -> dict[str, str]:
    answer = final_answer(episode.transcript)
    return answer_lines(answer.text) if answer is not None else {}


class _MoveCheck:
    def __init__(self, intent: MoveIntent, world: CalendarWorld) -> None:
        self._intent = intent
        self._original = world.events[intent.event_id]

    async def verify(self, episode: CompletedEpisode) -> Score:
        intent, original = self._intent, self._original
        event = _state(episode).events[intent.event_id]
        duration = minutes(original.end) - minutes(original.start)
        expected = {
            "day": intent.to_day,
            "start": intent.expected_start,
            "end": hhmm(minutes(intent.expected_start) + duration),
            "status": "confirmed",
        }
        got = {"day": event.day, "start": event.start, "end": event.end, "status": event.status}
        return _verdict(expected == got, expected=expected, got=got, event_id=intent.event_id)


class _CancelCheck:
    def __init__(self, intent: CancelIntent) -> None:
        self._intent = intent

    async def verify(self, episode: CompletedEpisode) -> Score:
        event = _state(episode).events[self._intent.event_id]
        return _verdict(
            event.status == "cancelled",
            expected="cancelled",
            got=event.status,
            event_id=event.event_id,
        )


class _BookCheck:
    def __init__(self, intent: BookIntent, world: CalendarWorld) -> None:
        self._intent = intent
        self._world = world

    async def verify(self, episode: CompletedEpisode) -> Score:
        state, intent = _state(episode), self._intent
        expected = {"room": intent.expected_room, "day": intent.day,
                    "start": intent.start, "end": intent.end}  # fmt: skip
        new = [
            {"room": b.room, "day": b.day, "start": b.start, "end": b.end}
            for b in state.bookings.values()
            if b.booking_id not in self._world.bookings and b.booked_by == state.owner
        ]
        return _verdict(expected in new, expected=expected, got=new)


class _CountAnswer:
    def __init__(self, intent: CountIntent) -> None:
        self._intent = intent

    async def verify(self, episode: CompletedEpisode) -> Score:
        line = _answers(episode).get(self._intent.label)
        got = last_integer(line) if line is not None else None
        expected = str(self._intent.expected)
        return _verdict(got == expected, expected=expected, got=got, line=line)


class _FreeTimeAnswer:
    def __init__(self, label: str, expected: list[tuple[str, str]]) -> None:
        self._label = label
        self._expected = expected

    async def verify(self, episode: CompletedEpisode) -> Score:
        line = _answers(episode).get(self._label)
        got = time_ranges(line) if line is not None else None
        return _verdict(got == self._expected, expected=self._expected, got=got, line=line)


class _NoSideEffects:
    """Nothing changed that no intent asked for: other meetings as they were, and no room
    booked beyond the one asked for."""

    def __init__(self, world: CalendarWorld, intents: tuple[Intent, ...]) -> None:
        self._world = world
        self._targets = {i.event_id for i in intents if isinstance(i, MoveIntent | CancelIntent)}
        self._books = any(isinstance(i, BookIntent) for i in intents)

    async def verify(self, episode: CompletedEpisode) -> Score:
        state = _state(episode)
        changed = sorted(
            event_id
            for event_id, event in state.events.items()
            if event_id not in self._targets and self._world.events.get(event_id) != event
        )
        new = [b for b in state.bookings if b not in self._world.bookings]
        allowed = 1 if self._books else 0
        ok = not changed and len(new) <= allowed
        return _verdict(ok, changed_events=changed, new_bookings=new, bookings_allowed=allowed)


def _verdict(ok: bool, **evidence: Any) -> Score:
    return Score(reward=1.0 if ok else 0.0, evidence=evidence)


def calendar_verifier(world: CalendarWorld, intents: tuple[Intent, ...]) -> CompositeVerifier:
    """All-or-nothing over one part per intent (named by :data:`KIND_PART`) and
    ``no_side_effects``."""
    parts: list[Part] = []
    for intent in intents:
        check: Verifier
        if isinstance(intent, MoveIntent):
            check = _MoveCheck(intent, world)
        elif isinstance(intent, CancelIntent):
            check = _CancelCheck(intent)
        elif isinstance(intent, BookIntent):
            check = _BookCheck(intent, world)
        elif isinstance(intent, CountIntent):
            check = _CountAnswer(intent)
        else:
            check = _FreeTimeAnswer(intent.label, [(b.start, b.end) for b in intent.expected])
        parts.append(Part(KIND_PART[intent.kind], check))
    parts.append(Part("no_side_effects", _NoSideEffects(world, intents)))
    return CompositeVerifier(parts, mode="all")
