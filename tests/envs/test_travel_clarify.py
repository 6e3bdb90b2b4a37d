import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

import gymbus
from gymbus.envs.builtin.travel_clarify import (
    TravelClarify,
    TravelClarifySolver,
    first_booking_index,
)
from gymbus.envs.builtin.travel_data import (
    DIFFICULTIES,
    FACTS,
    Flight,
    TravelDesk,
    TravelTask,
    parse_spoken_date,
    spoken_date,
)
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.users import ScriptedUser, next_user_turn
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ConfigError, ToolArgumentsError, ToolInputError
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript

pytestmark = pytest.mark.anyio

# sha256 of TravelClarify(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "ad3ffa6df81fb7a2ea0fff1a1aeb5cc0ff522f99c3232a9d9bc080a70499b158",
    "medium": "7d82c2fa9a8f465d66b863538ad0ec4b42d7ae0adebd901145cface88a879e59",
    "hard": "bcb1da42292d7df29ceb7667d4fba4cb7fc4522d08cd154f23b9768117de84d3",
}


def env_for(difficulty: str) -> TravelClarify:
    return TravelClarify(difficulty=difficulty)  # type: ignore[arg-type]


def data_for(difficulty: str, seed: int) -> TravelTask:
    return TravelTask.model_validate(env_for(difficulty).task(seed).data)


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def book(flight_id: str, passengers: int, call_id: str = "b1") -> AssistantMessage:
    arguments = orjson.dumps({"flight_id": flight_id, "passengers": passengers}).decode()
    return AssistantMessage(
        tool_calls=(ToolCall(id=call_id, name="book_flight", arguments=arguments),)
    )


def fitting_guess(data: TravelTask) -> tuple[Flight, int]:
    """The best booking a policy can make without asking: the cheapest flight fitting what
    the request says, for the stated party size or 2 ("for us")."""
    trip = data.trip
    fitting = [
        f
        for f in data.world.flights.values()
        if ("origin" in data.withheld or f.origin == trip.origin)
        and ("date" in data.withheld or f.date == trip.date)
    ]
    passengers = 2 if "passengers" in data.withheld else trip.passengers
    return min(fitting, key=lambda f: f.price), passengers


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"travel-clarify/{difficulty}/7"
    assert hashlib.sha256(first.model_dump_json().encode()).hexdigest() == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_task_needs_asking_and_defeats_guessing(difficulty: str) -> None:
    n_withheld = {"easy": 1, "medium": 2, "hard": 3}[difficulty]
    for seed in range(50):
        data = data_for(difficulty, seed)
        trip, world, opening = data.trip, data.world, data.user.opening
        assert len(data.withheld) == n_withheld
        assert set(data.user.facts) == set(data.withheld)
        slot = [f for f in world.flights.values() if (f.origin, f.date) == (trip.origin, trip.date)]
        assert data.expected.flight_id == min(slot, key=lambda f: f.price).flight_id
        assert data.expected.passengers == trip.passengers
        assert trip.destination in opening
        # nothing withheld is in the request; everything given is
        assert (trip.origin in opening) == ("origin" not in data.withheld)
        assert (spoken_date(trip.date) in opening) == ("date" not in data.withheld)
        assert (f"{trip.passengers} passenger" in opening) == ("passengers" not in data.withheld)
        # the best guess from the request is a wrong booking
        guess, passengers = fitting_guess(data)
        assert (guess.flight_id, passengers) != (data.expected.flight_id, trip.passengers)
        if {"origin", "date"} & set(data.withheld):
            assert guess.flight_id == data.deal_flight_id
        if "origin" in data.withheld:
            assert trip.origin != sorted({f.origin for f in world.flights.values()})[0]
        if "date" in data.withheld:
            days = sorted({f.date for f in world.flights.values()})
            assert trip.date not in (days[0], days[-1])
        if "passengers" in data.withheld:
            assert 3 <= trip.passengers <= 6
        if difficulty == "hard":
            assert data.distractor_airline is not None
            assert f"{data.distractor_airline}'s lounges" in opening
            assert data.distractor_airline in {f.airline for f in slot}
            assert world.flights[data.expected.flight_id].airline != data.distractor_airline
        else:
            assert data.distractor_airline is None


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of easy, medium, hard"):
        TravelClarify(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: seats"):
        TravelClarify(seats=2)


def test_spoken_dates_round_trip() -> None:
    assert spoken_date("2026-05-14") == "Thursday 14 May 2026"
    assert parse_spoken_date("on Thursday 14 May 2026, or Friday 1 January 2027.") == "2027-01-01"
    assert parse_spoken_date("on 14 May") is None


# --- episodes -------------------------------------------------------------------------------


def test_episode_spec() -> None:
    spec = spec_for("hard", 3)
    data = TravelTask.model_validate(spec.task.data)
    system, opening = spec.messages
    assert system.role == "system"
    assert all(city in system.text for city in data.world.cities)
    assert isinstance(opening, UserMessage)
    assert opening.author == "user"
    assert opening.text == data.user.opening
    assert isinstance(spec.user, ScriptedUser)
    assert spec.user.script == data.user
    assert list(spec.tools) == ["search_flights", "book_flight"]
    assert spec.limits.max_turns == 12
    assert EnvMetadata.model_validate(spec.metadata) == TravelClarify.metadata
    assert isinstance(spec.state, TravelDesk)
    assert spec.state.bookings == []


async def test_each_episode_gets_fresh_state() -> None:
    env = env_for("easy")
    task = env.task(1)
    first, second = env.episode(task), env.episode(task)
    assert first.state is not second.state
    data = TravelTask.model_validate(task.data)
    await first.tools["book_flight"]({"flight_id": data.expected.flight_id, "passengers": 1})
    assert len(first.state.bookings) == 1
    assert second.state.bookings == []


def test_bad_tasks_are_rejected() -> None:
    env = env_for("medium")
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="travel-clarify", task_id="travel-clarify/x/0", seed=0, data={}))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_reference_solver_scores_one_on_every_seed(difficulty: str) -> None:
    rollouts = await gymbus.run(env_for(difficulty), gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert r.status == "scored", r.failure
        assert r.reward == 1.0, (r.seed, r.evidence)
        assert r.stop_reason == "user:goal-met"
        assert set(r.scores.values()) == {1.0}
        withheld = data_for(difficulty, r.seed).withheld
        assert sorted(r.scores) == sorted(
            ["one_booking", "booking_correct", *(f"asked_for_{f}" for f in withheld)]
        )
        assert r.turns == 4  # ask, search, book, confirm


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: str) -> None:
    rollouts = await gymbus.run(env_for(difficulty), gymbus.NullModel(), n=30)
    for r in rollouts:
        assert r.status == "scored"
        assert r.reward == 0.0
        assert r.scores["one_booking"] == 0.0
        assert r.scores["booking_correct"] == 0.0
        assert r.stop_reason == "user:unsatisfied"  # nudged once, then gave up
        assert r.turns == 2


async def test_solver_is_a_pure_function_of_the_conversation() -> None:
    [rollout] = await gymbus.run(env_for("hard"), gymbus.OracleModel(), n=1, seed=5)
    solver = TravelClarifySolver()
    for i, message in enumerate(rollout.messages):
        if isinstance(message, AssistantMessage):
            replay = solver.next_message(Transcript(rollout.messages[:i]))
            assert replay == message.model_copy(update={"generation": None})


def test_solver_asks_twice_then_gives_up() -> None:
    spec = spec_for("easy", 0)
    solver = TravelClarifySolver()
    fallback = UserMessage(content="I'm not sure what you mean.")
    ask = solver.next_message(Transcript(spec.messages))
    again = solver.next_message(Transcript([*spec.messages, ask, fallback]))
    assert again.text == ask.text
    last = solver.next_message(Transcript([*spec.messages, ask, fallback, again, fallback]))
    assert last.text.startswith("I'm sorry, I could not complete the booking")
    assert not last.tool_calls


# --- the capability's failure modes ---------------------------------------------------------

Policy = Callable[[TravelTask, Transcript], AssistantMessage]


async def play(difficulty: str, policy: Policy, n: int = 10) -> list[Rollout]:
    env = env_for(difficulty)

    def generate(request: ModelRequest) -> AssistantMessage:
        data = TravelTask.model_validate(env.task(request.episode.seed).data)
        return policy(data, request.conversation)

    return await gymbus.run(env, gymbus.FunctionModel(generate), n=n)


def booked(conversation: Transcript) -> AssistantMessage | None:
    """A confirmation once a booking tool call has been answered."""
    results = [m for m in conversation if isinstance(m, ToolMessage)]
    if results and results[-1].name == "book_flight":
        return AssistantMessage(content=f"Booked: {orjson.loads(results[-1].text)['booking_id']}.")
    return None


def the_answer_key_without_asking(data: TravelTask, conversation: Transcript) -> AssistantMessage:
    return booked(conversation) or book(data.expected.flight_id, data.expected.passengers)


def the_best_guess(data: TravelTask, conversation: Transcript) -> AssistantMessage:
    flight, passengers = fitting_guess(data)
    return booked(conversation) or book(flight.flight_id, passengers)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_booking_without_asking_scores_zero_even_when_right(difficulty: str) -> None:
    for r in await play(difficulty, the_answer_key_without_asking):
        assert r.reward == 0.0
        assert r.scores["booking_correct"] == 1.0
        assert r.scores["one_booking"] == 1.0
        asked = {k: v for k, v in r.scores.items() if k.startswith("asked_for_")}
        assert asked
        assert set(asked.values()) == {0.0}
        assert r.stop_reason == "user:goal-met"


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_guessing_books_the_wrong_flight(difficulty: str) -> None:
    for r in await play(difficulty, the_best_guess):
        assert r.reward == 0.0
        assert r.scores["booking_correct"] == 0.0
        got = r.evidence["booking_correct"]["got"]
        assert got != [r.evidence["booking_correct"]["expected"]]


def _solver_then(change: Callable[[TravelTask, dict[str, Any]], list[dict[str, Any]]]) -> Policy:
    """The reference solver, with its booking call replaced by ``change``'s calls."""

    def policy(data: TravelTask, conversation: Transcript) -> AssistantMessage:
        done = booked(conversation)
        if done is not None:
            return done
        message = TravelClarifySolver().next_message(conversation)
        calls = [c for c in message.tool_calls if c.name == "book_flight"]
        if not calls:
            return message
        replaced = change(data, calls[0].parsed_arguments())
        return AssistantMessage(
            tool_calls=tuple(
                ToolCall(id=f"x{i}", name="book_flight", arguments=orjson.dumps(a).decode())
                for i, a in enumerate(replaced)
            )
        )

    return policy


@pytest.mark.parametrize(
    ("difficulty", "change", "failed"),
    [
        ("medium", lambda d, a: [a, a], ["one_booking"]),
        ("easy", lambda d, a: [a | {"passengers": a["passengers"] + 1}], ["booking_correct"]),
        (
            "hard",
            lambda d, a: [
                a
                | {
                    "flight_id": next(
                        f.flight_id
                        for f in d.world.flights.values()
                        if (f.origin, f.date, f.airline)
                        == (d.trip.origin, d.trip.date, d.distractor_airline)
                    )
                }
            ],
            ["booking_correct"],
        ),
    ],
    ids=["double-booking", "wrong-party-size", "hard-distractor-airline"],
)
async def test_asking_then_booking_wrong_scores_zero(
    difficulty: str,
    change: Callable[[TravelTask, dict[str, Any]], list[dict[str, Any]]],
    failed: list[str],
) -> None:
    for r in await play(difficulty, _solver_then(change), n=5):
        assert r.reward == 0.0
        assert r.evidence["failed_checks"] == failed


def ask_first_fact_only(data: TravelTask, conversation: Transcript) -> AssistantMessage:
    if not any(isinstance(m, AssistantMessage) for m in conversation):
        first = data.withheld[0]
        question = {"origin": "Where are you flying from?", "date": "When?"}.get(
            first, "How many passengers?"
        )
        return AssistantMessage(content=question)
    return the_answer_key_without_asking(data, conversation)


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
async def test_each_withheld_fact_must_be_asked_for(difficulty: str) -> None:
    for r in await play(difficulty, ask_first_fact_only):
        data = data_for(difficulty, r.seed)
        assert r.reward == 0.0
        assert r.scores["booking_correct"] == 1.0
        assert r.scores[f"asked_for_{data.withheld[0]}"] == 1.0
        assert r.evidence["failed_checks"] == [f"asked_for_{f}" for f in data.withheld[1:]]


# --- the simulated user on this environment -------------------------------------------------

ALL = {"origin", "date", "passengers"}


@pytest.mark.parametrize(
    ("question", "revealed"),
    [
        ("Which city will you be flying from?", {"origin"}),
        ("Where are you departing from?", {"origin"}),
        ("What's your departure airport?", {"origin"}),
        ("On which date do you want to travel?", {"date"}),
        ("When would you like to fly?", {"date"}),
        ("What day works for you?", {"date"}),
        ("How many passengers will be travelling?", {"passengers"}),
        ("How many of you are flying?", {"passengers"}),
        ("Who is travelling?", {"passengers"}),
        ("Could you tell me your departure city, travel date and number of travellers?", ALL),
        ("Where are you flying from, and when? How many people?", ALL),
        ("Do you have a preferred airline?", set()),
        ("Shall I book it?", set()),
        ("Can you share more details about your trip?", set()),
    ],
)
def test_the_user_answers_what_is_asked(question: str, revealed: set[str]) -> None:
    spec = spec_for("hard", 2)
    data = TravelTask.model_validate(spec.task.data)
    transcript = Transcript([*spec.messages, AssistantMessage(content=question)])
    reply = next_user_turn(data.user, transcript)
    assert isinstance(reply, UserMessage)
    said = {fact for fact in FACTS if data.user.facts[fact] in reply.text}
    assert said == revealed
    assert data.user.revealed(transcript.append(reply)).keys() == revealed


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_the_user_never_volunteers_a_fact(difficulty: str) -> None:
    statements = ["Searching flights from Madrid now.", "Booked!", "I can't help with that."]
    for seed in range(10):
        spec = spec_for(difficulty, seed)
        data = TravelTask.model_validate(spec.task.data)
        for text in statements:
            transcript = Transcript([*spec.messages, AssistantMessage(content=text)])
            reply = next_user_turn(data.user, transcript)
            if isinstance(reply, UserMessage):
                assert not any(v in reply.text for v in data.user.facts.values())


# --- tools ----------------------------------------------------------------------------------


async def call_tool(spec: EpisodeSpec, name: str, **arguments: Any) -> dict[str, Any]:
    result = await spec.tools[name](arguments)
    assert isinstance(result, str)
    value: dict[str, Any] = orjson.loads(result)
    return value


async def test_search_and_book() -> None:
    spec = spec_for("hard", 4)
    data = TravelTask.model_validate(spec.task.data)
    trip = data.trip
    found = await call_tool(
        spec,
        "search_flights",
        origin=trip.origin.upper(),
        destination=trip.destination,
        date=trip.date,
    )
    assert found["origin"] == trip.origin
    flights = found["flights"]
    assert [f["departs"] for f in flights] == sorted(f["departs"] for f in flights)
    assert set(flights[0]) == {
        "flight_id",
        "airline",
        "departs",
        "arrives",
        "price_per_passenger_eur",
    }
    cheapest = min(flights, key=lambda f: f["price_per_passenger_eur"])
    assert cheapest["flight_id"] == data.expected.flight_id
    booking = await call_tool(spec, "book_flight", flight_id=cheapest["flight_id"], passengers=3)
    assert booking["booking_id"] == "BK-1001"
    assert booking["total_price_eur"] == 3 * cheapest["price_per_passenger_eur"]
    again = await call_tool(
        spec, "book_flight", flight_id=cheapest["flight_id"].lower(), passengers=1
    )
    assert again["booking_id"] == "BK-1002"
    assert [b.booking_id for b in spec.state.bookings] == ["BK-1001", "BK-1002"]
    empty = await call_tool(
        spec, "search_flights", origin=trip.origin, destination=trip.destination, date="2031-01-01"
    )
    assert empty["flights"] == []


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        (
            "search_flights",
            {"origin": "Atlantis", "destination": "x", "date": "2026-01-01"},
            "no airport in 'Atlantis'; cities served: ",
        ),
        (
            "search_flights",
            {"origin": "{o}", "destination": "{o}", "date": "2026-01-01"},
            "the same city",
        ),
        (
            "search_flights",
            {"origin": "{o}", "destination": "{d}", "date": "14 May"},
            "'14 May' is not a date; use YYYY-MM-DD",
        ),
        (
            "search_flights",
            {"origin": "{o}", "destination": "{d}", "date": "2026-02-30"},
            "is not a date",
        ),
        (
            "book_flight",
            {"flight_id": "XX0000", "passengers": 1},
            "no flight 'XX0000'; flight ids come from search_flights",
        ),
    ],
)
async def test_bad_input_is_a_tool_input_error(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    spec = spec_for("easy", 0)
    trip = TravelTask.model_validate(spec.task.data).trip
    filled = {
        k: v.format(o=trip.origin, d=trip.destination) if isinstance(v, str) else v
        for k, v in arguments.items()
    }
    with pytest.raises(ToolInputError, match=message):
        await spec.tools[name](filled)


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"flight_id": "NR100", "passengers": 0},
        {"flight_id": "NR100", "passengers": "2"},
        {"flight_id": "NR100", "passengers": 2, "seat": "12A"},
    ],
)
async def test_bad_arguments_are_rejected_by_the_schema(arguments: dict[str, Any]) -> None:
    spec = spec_for("easy", 0)
    with pytest.raises(ToolArgumentsError, match="invalid arguments for 'book_flight'"):
        await spec.tools["book_flight"](arguments)
    assert spec.state.bookings == []


# --- scoring details ------------------------------------------------------------------------


async def test_evidence_says_when_each_fact_was_asked_and_the_booking_made() -> None:
    [r] = await gymbus.run(env_for("medium"), gymbus.OracleModel(), n=1, seed=8)
    transcript = Transcript(r.messages)
    booked_at = first_booking_index(transcript)
    assert booked_at is not None
    for fact in TravelTask.model_validate(env_for("medium").task(8).data).withheld:
        evidence = r.evidence[f"asked_for_{fact}"]
        assert evidence["booked_at"] == booked_at
        assert evidence["revealed_at"] == 3  # system, opening, question, reply
    assert r.evidence["booking_correct"]["got"] == [r.evidence["booking_correct"]["expected"]]
    assert r.evidence["failed_checks"] == []


def test_a_failed_booking_call_is_not_a_booking() -> None:
    call = book("XX0000", 2)
    failed = ToolMessage(tool_call_id="b1", name="book_flight", content="no flight", is_error=True)
    assert first_booking_index(Transcript([call, failed])) is None
    ok = ToolMessage(tool_call_id="b2", name="book_flight", content="{}")
    assert first_booking_index(Transcript([call, failed, book("NR1", 2, "b2"), ok])) == 2
