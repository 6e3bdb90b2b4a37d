"""The travel-clarify world, the per-episode booking desk over it, and the seeded generator
that builds one world per task.

A world is a small flight network into one destination: every served origin has 2-3
flights a day, over eight days. The trip the user wants is one (origin, day, number of
passengers); the right booking is the cheapest flight on that origin and day. The user's
opening request leaves out 1 to 3 of those facts (the :class:`~gymbus.envs.users.UserScript`
holds them back until asked), and the world is built so guessing fails:

- when the origin or the day is withheld, the cheapest flight among all that fit the
  request (a "deal") is never the right one: it leaves from another origin or day;
- a withheld origin is never the first served origin (sorted), a withheld day never the
  first or last of the eight;
- a withheld party size is 3-6 (so "1" and "for us → 2" are both wrong);
- hard: the user mentions liking an airline whose flight that day is not the cheapest.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, get_args

from gymbus.envs.base import Difficulty
from gymbus.envs.users import AnswerReaction, CannedReply, Reveal, UserScript
from gymbus.runtime.errors import ToolInputError
from gymbus.runtime.messages import Frozen

__all__ = [
    "DIFFICULTIES",
    "FACTS",
    "Booking",
    "ExpectedBooking",
    "Fact",
    "Flight",
    "TravelDesk",
    "TravelTask",
    "TravelWorld",
    "Trip",
    "generate",
    "parse_spoken_date",
    "spoken_date",
]

DIFFICULTIES: tuple[Difficulty, ...] = get_args(Difficulty)

Fact = Literal["origin", "date", "passengers"]
FACTS: tuple[Fact, ...] = get_args(Fact)


class Flight(Frozen):
    flight_id: str
    airline: str
    origin: str
    destination: str
    date: str  # ISO, YYYY-MM-DD
    departs: str  # HH:MM
    arrives: str
    price: int  # per passenger, EUR


class TravelWorld(Frozen):
    cities: tuple[str, ...]  # every served city (origins and the destination), sorted
    flights: dict[str, Flight]


class Trip(Frozen):
    """What the user actually wants (the answer key's source)."""

    origin: str
    destination: str
    date: str
    passengers: int


class Booking(Frozen):
    booking_id: str
    flight_id: str
    passengers: int
    total_price: int


@dataclass(eq=False, slots=True)
class TravelDesk:
    """The per-episode state the tools act on: the flight network and the bookings made."""

    world: TravelWorld
    bookings: list[Booking] = field(default_factory=list)

    def city(self, name: str) -> str:
        for city in self.world.cities:
            if city.casefold() == name.strip().casefold():
                return city
        raise ToolInputError(
            f"no airport in {name!r}; cities served: {', '.join(self.world.cities)}"
        )

    def book(self, flight: Flight, passengers: int) -> Booking:
        booking = Booking(
            booking_id=f"BK-{1001 + len(self.bookings)}",
            flight_id=flight.flight_id,
            passengers=passengers,
            total_price=flight.price * passengers,
        )
        self.bookings.append(booking)
        return booking


class ExpectedBooking(Frozen):
    flight_id: str
    passengers: int


class TravelTask(Frozen):
    """``Task.data`` of a travel-clarify task: the world, the user and the answer key."""

    difficulty: Difficulty
    trip: Trip
    withheld: tuple[Fact, ...]
    deal_flight_id: str  # the cheapest flight consistent with the request: a wrong guess
    distractor_airline: str | None  # hard: the airline the user mentions, not to be picked
    user: UserScript
    world: TravelWorld
    expected: ExpectedBooking


@dataclass(frozen=True, slots=True)
class _Size:
    origins: int
    withheld: int
    distractor: bool


_SIZES: dict[Difficulty, _Size] = {
    "easy": _Size(origins=3, withheld=1, distractor=False),
    "medium": _Size(origins=4, withheld=2, distractor=False),
    "hard": _Size(origins=5, withheld=3, distractor=True),
}
_DAYS = 8
_EPOCH = date(2026, 1, 5)

_CITIES = (
    "Amsterdam", "Athens", "Barcelona", "Berlin", "Bordeaux", "Brussels", "Budapest",
    "Copenhagen", "Dublin", "Edinburgh", "Geneva", "Hamburg", "Helsinki", "Krakow", "Lisbon",
    "Lyon", "Madrid", "Milan", "Munich", "Naples", "Oslo", "Porto", "Prague", "Riga", "Seville",
    "Stockholm", "Tallinn", "Valencia", "Vienna", "Vilnius", "Warsaw", "Zurich",
)  # fmt: skip
_AIRLINES = (
    ("Nordair", "NR"), ("Bluewing", "BW"), ("Aurora Jet", "AJ"), ("Meridian Air", "MA"),
    ("Skylark", "SK"), ("Vela Airways", "VA"),
)  # fmt: skip
_GROUPS = ("our group", "my family", "me and my colleagues", "us")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_SPOKEN_DATE = re.compile(
    rf"\b(?:{'|'.join(_WEEKDAYS)}) ([0-9]{{1,2}}) ({'|'.join(_MONTHS)}) ([0-9]{{4}})\b"
)

# What makes the user say each fact: patterns over the policy's questions (case-insensitive).
_TRIGGERS: dict[Fact, tuple[str, ...]] = {
    "origin": (
        r"\bwhere\b.{0,40}\b(from|depart\w*|leav\w*|start\w*|fly(ing)? out)\b",
        r"\b(origin|departure (city|airport)|home airport)\b",
        r"\b(depart\w*|leav\w*|fly\w*|travel\w*|start\w*) (from|out of)\b",
        r"\bwhich (city|airport)\b",
    ),
    "date": (r"\bwhen\b", r"\bdates?\b", r"\bday\b"),
    "passengers": (
        r"\bhow many (people|passengers|travell?ers|persons|adults|seats|tickets|of you)\b",
        r"\bhow many\b.{0,30}\b(travel\w*|fly\w*|coming|going)\b",
        r"\b(passengers?|travell?ers|people|persons|adults|group size|party size)\b",
        r"\bwho (is|will be) (travell?ing|flying|coming)\b",
        r"\b(in|of) your (group|party|family)\b",
    ),
}
_TEMPLATES: dict[Fact, str] = {
    "origin": "We're flying from {value}.",
    "date": "We want to fly on {value}.",
    "passengers": "There will be {value}.",
}
_PREFERENCE_TRIGGERS = (r"\b(airlines?|carriers?|lounges?|cheapest|price|budget|cost)\b",)
_PREFERENCE_REPLY = "Any airline is fine; I just want the cheapest flight that day."
_CONSENT_REPLY = CannedReply(
    triggers=(
        r"\b(shall|should|may|can) I (go ahead|book|proceed|reserve|confirm)\b",
        r"\b(want|like) me to (go ahead|book|proceed|reserve)\b",
        r"\b(ok|okay|alright|good) to (book|proceed)\b",
        r"\bproceed\b",
    ),
    text="Please go ahead if it matches what I asked for.",
)
_ON_ANSWER = AnswerReaction(
    required=(r"\bBK-[0-9]+\b",),  # a booking reference
    nudge="That's not what I asked for. Please book the flight for me.",
)


def spoken_date(iso: str) -> str:
    """'2026-05-14' → 'Thursday 14 May 2026' (locale-independent)."""
    day = date.fromisoformat(iso)
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def parse_spoken_date(text: str) -> str | None:
    """The ISO date of the last spoken date in ``text`` ('Thursday 14 May 2026'), or None."""
    matches = _SPOKEN_DATE.findall(text)
    if not matches:
        return None
    day, month, year = matches[-1]
    return date(int(year), _MONTHS.index(month) + 1, int(day)).isoformat()


def _passengers(n: int) -> str:
    return f"{n} passenger" if n == 1 else f"{n} passengers"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _flights(
    rng: random.Random, destination: str, origins: list[str], days: list[str]
) -> dict[tuple[str, str], list[Flight]]:
    slots = [(origin, day) for origin in origins for day in days]
    per_slot = [rng.randint(2, 3) for _ in slots]
    prices = iter(rng.sample(range(120, 640), sum(per_slot)))
    numbers = iter(rng.sample(range(100, 10000), sum(per_slot)))
    schedule: dict[tuple[str, str], list[Flight]] = {}
    for (origin, day), k in zip(slots, per_slot, strict=True):
        departures = sorted(rng.sample(range(6 * 12, 20 * 12), k))  # 5-minute steps
        flights = []
        for (airline, code), slot in zip(rng.sample(_AIRLINES, k), departures, strict=True):
            departs = slot * 5
            flights.append(
                Flight(
                    flight_id=f"{code}{next(numbers)}",
                    airline=airline,
                    origin=origin,
                    destination=destination,
                    date=day,
                    departs=_clock(departs),
                    arrives=_clock(departs + rng.randrange(80, 240, 5)),
                    price=next(prices),
                )
            )
        schedule[(origin, day)] = flights
    return schedule


def _opening(
    rng: random.Random, trip: Trip, withheld: tuple[Fact, ...], distractor: str | None
) -> str:
    request = f"Hi! Could you book a flight to {trip.destination}"
    if "origin" not in withheld:
        request += f" from {trip.origin}"
    if "date" not in withheld:
        request += f" on {spoken_date(trip.date)}"
    if "passengers" in withheld:
        request += f" for {rng.choice(_GROUPS)}"
    else:
        request += f" for {_passengers(trip.passengers)}"
    request += "? Please pick the cheapest flight that day."
    if distractor is not None:
        request += f" I do like {distractor}'s lounges, but honestly the price is all that matters."
    return request


def generate(seed: int, difficulty: Difficulty) -> TravelTask:
    """The task for ``seed`` at ``difficulty``; draws only from ``random.Random(seed)``."""
    rng = random.Random(seed)
    size = _SIZES[difficulty]

    chosen = rng.sample(_CITIES, size.origins + 1)
    destination, origins = chosen[0], sorted(chosen[1:])
    start = _EPOCH + timedelta(days=rng.randrange(300))
    days = [(start + timedelta(days=i)).isoformat() for i in range(_DAYS)]
    picked = rng.sample(FACTS, size.withheld)
    withheld = tuple(f for f in FACTS if f in picked)

    trip = Trip(
        origin=rng.choice(origins[1:] if "origin" in withheld else origins),
        destination=destination,
        date=rng.choice(days[1:-1] if "date" in withheld else days),
        passengers=rng.randint(3, 6) if "passengers" in withheld else rng.randint(1, 6),
    )
    schedule = _flights(rng, destination, origins, days)

    # The deal: the cheapest flight of all that fit what the user said, on a wrong slot.
    wanted = (trip.origin, trip.date)
    fitting = [
        slot
        for slot in schedule
        if slot != wanted
        and ("origin" in withheld or slot[0] == trip.origin)
        and ("date" in withheld or slot[1] == trip.date)
    ] or [slot for slot in schedule if slot != wanted]
    deal_slot = rng.choice(fitting)
    deal_index = rng.randrange(len(schedule[deal_slot]))
    deal = schedule[deal_slot][deal_index].model_copy(update={"price": rng.randint(59, 119)})
    schedule[deal_slot][deal_index] = deal

    options = sorted(schedule[wanted], key=lambda f: f.price)
    distractor = rng.choice(options[1:]).airline if size.distractor else None

    facts = {
        "origin": trip.origin,
        "date": spoken_date(trip.date),
        "passengers": _passengers(trip.passengers),
    }
    preference_triggers = _PREFERENCE_TRIGGERS + (
        (rf"\b{re.escape(distractor)}\b",) if distractor is not None else ()
    )
    user = UserScript(
        opening=_opening(rng, trip, withheld, distractor),
        facts={fact: facts[fact] for fact in withheld},
        reveals=tuple(
            Reveal(fact=fact, triggers=_TRIGGERS[fact], template=_TEMPLATES[fact])
            for fact in withheld
        ),
        replies=(
            _CONSENT_REPLY,
            CannedReply(triggers=preference_triggers, text=_PREFERENCE_REPLY),
        ),
        on_answer=_ON_ANSWER,
        max_user_turns=6,
    )
    world = TravelWorld(
        cities=tuple(sorted(chosen)),
        flights={f.flight_id: f for flights in schedule.values() for f in flights},
    )
    return TravelTask(
        difficulty=difficulty,
        trip=trip,
        withheld=withheld,
        deal_flight_id=deal.flight_id,
        distractor_airline=distractor,
        user=user,
        world=world,
        expected=ExpectedBooking(flight_id=options[0].flight_id, passengers=trip.passengers),
    )
