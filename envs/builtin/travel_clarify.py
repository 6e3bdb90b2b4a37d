"""``travel-clarify``: book a flight for a user whose request leaves out facts the booking
needs, so the agent must ask (capability: proactive asking).

"Could you book a flight to Oslo for our group? Please pick the cheapest flight that day."
names no origin, no day and no party size; a scripted user (:mod:`gymbus.envs.users`)
gives each fact only when a question asks for it. ``search_flights(origin, destination,
date)`` lists a day's flights; ``book_flight(flight_id, passengers)`` books one, and
bookings are final. Guessing fails by construction (see :mod:`.travel_data`): when the
origin or day is withheld, the cheapest flight fitting the request leaves from a wrong one,
and a withheld party is 3-6 people (neither 1 nor "us" = 2).

Difficulty: easy withholds one fact (3 origins), medium two (4 origins), hard all three
(5 origins) and the user mentions liking an airline whose flight is not the cheapest.

Verifier (state check on the bookings, plus the transcript for asking): reward 1.0 iff
``one_booking`` (exactly one booking was made), ``booking_correct`` (the cheapest flight of
the right origin and day, for the right number of passengers) and ``asked_for_<fact>`` for
each withheld fact (the user had said it before the booking) — a lucky guess scores 0.
Null check: the null model books nothing, so ``one_booking`` and ``booking_correct`` fail
and it scores 0.0 (the user nudges it once, then ends the episode as unsatisfied).
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import date
from typing import Any

import orjson

from gymbus.envs.builtin.travel_data import (
    Fact,
    TravelDesk,
    TravelTask,
    generate,
    parse_spoken_date,
    spoken_date,
)
from gymbus.envs.llm_user import LLMUser
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.user_env import UserEnvironment
from gymbus.envs.users import ScriptedUser, UserScript, asked_at
from gymbus.envs.verifiers.state import (
    CheckResult,
    StateCheck,
    StateCheckVerifier,
    TranscriptCheck,
)
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolArgumentsError, ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec
from gymbus.runtime.transcript import Transcript

__all__ = [
    "TravelClarify",
    "TravelClarifySolver",
    "first_booking_index",
    "travel_tools",
    "travel_verifier",
]

_SYSTEM_PROMPT = (
    "You are a travel agent. You book flights for the customer with the tools: "
    "search_flights lists one day's flights between two cities, book_flight books one. "
    "Bookings are final: they cannot be changed or cancelled. Prices are per passenger, in "
    "EUR. Cities served: {cities}."
)


def _json(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()


def travel_tools(desk: TravelDesk) -> Toolbox:
    """``search_flights`` and ``book_flight`` over ``desk``; bad input raises ToolInputError."""

    def search_flights(origin: str, destination: str, date: str) -> str:
        start, end = desk.city(origin), desk.city(destination)
        if start == end:
            raise ToolInputError("origin and destination are the same city")
        try:
            day = _iso_date(date)
        except ValueError:
            raise ToolInputError(f"{date!r} is not a date; use YYYY-MM-DD") from None
        flights = sorted(
            (
                f
                for f in desk.world.flights.values()
                if (f.origin, f.destination, f.date) == (start, end, day)
            ),
            key=lambda f: f.departs,
        )
        return _json(
            {
                "origin": start,
                "destination": end,
                "date": day,
                "flights": [
                    f.model_dump(include={"flight_id", "airline", "departs", "arrives"})
                    | {"price_per_passenger_eur": f.price}
                    for f in flights
                ],
            }
        )

    def book_flight(flight_id: str, passengers: int) -> str:
        flight = desk.world.flights.get(flight_id.strip().upper())
        if flight is None:
            raise ToolInputError(f"no flight {flight_id!r}; flight ids come from search_flights")
        booking = desk.book(flight, passengers)
        return _json(
            booking.model_dump(include={"booking_id", "flight_id", "passengers"})
            | flight.model_dump(include={"airline", "origin", "destination", "date", "departs"})
            | {"total_price_eur": booking.total_price}
        )

    search = ToolSpec(
        name="search_flights",
        description="List the flights from one city to another on one day, with prices.",
        parameters={
            "type": "object",
            "properties": {
                "origin": {"type": "string", "description": "Departure city, like 'Lisbon'."},
                "destination": {"type": "string", "description": "Arrival city."},
                "date": {"type": "string", "description": "Travel day, YYYY-MM-DD."},
            },
            "required": ["origin", "destination", "date"],
            "additionalProperties": False,
        },
    )
    book = ToolSpec(
        name="book_flight",
        description="Book seats on a flight for the customer. Final: cannot be undone.",
        parameters={
            "type": "object",
            "properties": {
                "flight_id": {"type": "string", "description": "From search_flights."},
                "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
            },
            "required": ["flight_id", "passengers"],
            "additionalProperties": False,
        },
    )
    return Toolbox([FunctionTool(search_flights, search), FunctionTool(book_flight, book)])


def _iso_date(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
        raise ValueError(text)
    return date.fromisoformat(text.strip()).isoformat()


def first_booking_index(transcript: Transcript) -> int | None:
    """Index of the assistant message whose ``book_flight`` call first succeeded."""
    made_at: dict[str, int] = {}
    for index, message in enumerate(transcript):
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                if call.name == "book_flight":
                    made_at[call.id] = index
        elif (
            isinstance(message, ToolMessage)
            and message.tool_call_id in made_at
            and not message.is_error
        ):
            return made_at[message.tool_call_id]
    return None


def _asked_for(fact: Fact, user: UserScript) -> TranscriptCheck:
    """The agent asked for ``fact`` before booking: the scripted user revealed it, or
    (with an LLM user, whose wording is free) the agent put a question about it."""

    def asked(transcript: Transcript) -> CheckResult:
        revealed = user.revealed(transcript).get(fact)
        question = asked_at(user, transcript, fact)
        first = min((i for i in (revealed, question) if i is not None), default=None)
        booked_at = first_booking_index(transcript)
        passed = first is not None and (booked_at is None or first < booked_at)
        evidence = {"revealed_at": revealed, "asked_at": question, "booked_at": booked_at}
        return CheckResult(passed, evidence)

    return TranscriptCheck(
        f"asked_for_{fact}", asked, f"the {fact} was asked for before the booking"
    )


def travel_verifier(data: TravelTask) -> StateCheckVerifier[TravelDesk]:
    """The state checks of a travel-clarify task (see the module docstring)."""
    expected = data.expected

    def one_booking(desk: TravelDesk) -> CheckResult:
        got = [b.model_dump(mode="json") for b in desk.bookings]
        return CheckResult(len(desk.bookings) == 1, {"bookings": got})

    def booking_correct(desk: TravelDesk) -> CheckResult:
        passed = any(
            (b.flight_id, b.passengers) == (expected.flight_id, expected.passengers)
            for b in desk.bookings
        )
        return CheckResult(
            passed,
            {
                "expected": expected.model_dump(mode="json"),
                "got": [
                    {"flight_id": b.flight_id, "passengers": b.passengers} for b in desk.bookings
                ],
            },
        )

    return StateCheckVerifier(
        TravelDesk,
        [
            StateCheck("one_booking", one_booking, "exactly one booking was made"),
            StateCheck("booking_correct", booking_correct, "the right flight and party size"),
            *(_asked_for(fact, data.user) for fact in data.withheld),
        ],
    )


class TravelClarify(UserEnvironment):
    name = "travel-clarify"
    description = (
        "Book the cheapest flight for a user whose request leaves out the origin, the day "
        "and/or the party size; a scripted user says each only when asked. Reward: exactly "
        "one booking, the right flight and party size, and every missing fact asked for first."
    )
    metadata = EnvMetadata(
        rollout_structures=("multi-turn", "multi-step"),
        core_capabilities=("proactive-asking",),
        knowledge_domain="travel",
        task_type="booking",
        verification_method="state-check",
    )

    def task(self, seed: int) -> Task:
        data = generate(seed, self.difficulty)
        return self.make_task(seed, data)

    def episode(self, task: Task) -> EpisodeSpec:
        data = self.task_data(task, TravelTask)
        desk = TravelDesk(data.world)  # fresh per episode: parallel episodes never share it
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content=_SYSTEM_PROMPT.format(cities=", ".join(data.world.cities))),
                data.user.opening_message(),
            ),
            tools=travel_tools(desk),
            verifier=travel_verifier(data),
            user=self._user(task, data),
            solver=TravelClarifySolver(),
            limits=Limits(max_turns=12),
            metadata=self.metadata.model_dump(mode="json"),
            state=desk,
        )

    def _user(self, task: Task, data: TravelTask) -> ScriptedUser | LLMUser:
        trip = data.trip
        return self.simulated_user(
            task,
            data.user,
            goal=(
                f"Have the cheapest flight to {trip.destination} booked for your group, "
                "on your date and from your city."
            ),
            alternatives={
                "origin": tuple(set(data.world.cities) - {trip.origin, trip.destination})
            },
        )


_DESTINATION = re.compile(r"\bflight to ([A-Z][a-z]+)\b")
_ORIGIN = re.compile(r"\bfrom ([A-Z][a-z]+)\b")
_PASSENGERS = re.compile(r"\b([0-9]+) passengers?\b")
_QUESTIONS: dict[Fact, str] = {
    "origin": "Which city will you be flying from?",
    "date": "On which date do you want to travel?",
    "passengers": "How many passengers will be travelling?",
}
_MAX_ASKS = 2


class _NextStepError(Exception):
    """The next step is a message to send (control flow)."""

    def __init__(self, message: AssistantMessage) -> None:
        super().__init__(message)
        self.message = message


def _last(pattern: re.Pattern[str], texts: list[str]) -> str | None:
    found = [m for text in texts for m in pattern.findall(text)]
    return found[-1] if found else None


class _Calls:
    """The tool calls made so far in a conversation and their results."""

    def __init__(self, conversation: Transcript) -> None:
        self.calls: dict[tuple[str, bytes], str] = {}  # (name, canonical args) → call id
        self.results: dict[str, ToolMessage] = {}
        self.n_calls = 0
        for message in conversation:
            if isinstance(message, AssistantMessage):
                for call in message.tool_calls:
                    self.n_calls += 1
                    with suppress(ToolArgumentsError):
                        args = orjson.dumps(call.parsed_arguments(), option=orjson.OPT_SORT_KEYS)
                        self.calls[(call.name, args)] = call.id
            elif isinstance(message, ToolMessage):
                self.results[message.tool_call_id] = message

    def require(self, name: str, **arguments: str | int) -> dict[str, Any]:
        """The parsed result of ``name(**arguments)``; raises :class:`_NextStepError` with the
        call when it has not been made, or with a give-up message when it failed."""
        key = (name, orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS))
        call_id = self.calls.get(key)
        result = self.results.get(call_id) if call_id is not None else None
        if result is None:
            call = ToolCall(id=f"call_{self.n_calls + 1}", name=name, arguments=_json(arguments))
            raise _NextStepError(AssistantMessage(tool_calls=(call,)))
        value = None
        with suppress(orjson.JSONDecodeError):
            value = orjson.loads(result.text)
        if result.is_error or not isinstance(value, dict):
            raise _NextStepError(_give_up(f"{name} failed: {result.text}"))
        return value


def _give_up(reason: str) -> AssistantMessage:
    return AssistantMessage(content=f"I'm sorry, I could not complete the booking: {reason}")


class TravelClarifySolver:
    """The reference solver: reads the user's messages and the tool results (never the
    answer key), asks for every fact the request leaves out (one sentence per fact, in one
    message), searches that day's flights, books the cheapest and confirms. A pure function
    of the conversation."""

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        try:
            return self._solve(conversation)
        except _NextStepError as pending:
            return pending.message

    @staticmethod
    def _solve(conversation: Transcript) -> AssistantMessage:
        said = [m.text for m in conversation if isinstance(m, UserMessage)]
        destination = _last(_DESTINATION, said[:1])
        if destination is None:
            return _give_up("the request names no destination")
        known: dict[Fact, str | None] = {
            "origin": _last(_ORIGIN, said),
            "date": parse_spoken_date(" ".join(said)),
            "passengers": _last(_PASSENGERS, said),
        }
        missing = [fact for fact, value in known.items() if value is None]
        if missing:
            asks = sum(
                1 for m in conversation if isinstance(m, AssistantMessage) and not m.tool_calls
            )
            if asks >= _MAX_ASKS:
                return _give_up(f"I still need to know: {', '.join(missing)}")
            return AssistantMessage(
                content=" ".join(["I'd be glad to book that.", *(_QUESTIONS[f] for f in missing)])
            )
        origin, day, passengers = (
            str(known["origin"]),
            str(known["date"]),
            int(str(known["passengers"])),
        )
        calls = _Calls(conversation)
        found = calls.require("search_flights", origin=origin, destination=destination, date=day)
        flights = found.get("flights") or []
        if not flights:
            return _give_up(f"there are no flights from {origin} to {destination} on {day}")
        cheapest = min(flights, key=lambda f: f["price_per_passenger_eur"])
        booking = calls.require(
            "book_flight", flight_id=cheapest["flight_id"], passengers=passengers
        )
        party = "1 passenger" if passengers == 1 else f"{passengers} passengers"
        return AssistantMessage(
            content=(
                f"Done: I booked {cheapest['airline']} flight {cheapest['flight_id']} from "
                f"{origin} to {destination} on {spoken_date(day)}, departing at "
                f"{cheapest['departs']}, for {party}. The total is "
                f"{booking['total_price_eur']} EUR and your booking reference is "
                f"{booking['booking_id']}."
            )
        )
