import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

import gymbus
from gymbus.envs.builtin.calendar_checks import KIND_PART, answer_lines, time_ranges
from gymbus.envs.builtin.calendar_data import (
    AFTERNOON,
    DIFFICULTIES,
    STANDUP,
    WORK_START,
    BookIntent,
    CalendarState,
    CalendarTask,
    CancelIntent,
    Intent,
    MoveIntent,
    earliest_free,
    minutes,
    render_request,
)
from gymbus.envs.builtin.calendar_intents import CalendarIntents
from gymbus.envs.builtin.calendar_solver import CalendarIntentsSolver, parse_request
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ConfigError, ToolArgumentsError, ToolInputError
from gymbus.runtime.messages import AnyMessage, AssistantMessage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

pytestmark = pytest.mark.anyio

# sha256 of CalendarIntents(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "4e9bf0d45f0d0919e03e255641dc30c6c03dae4623e140778f17fa64dd28be45",
    "medium": "646bdfc89ca281108dbafce1e27e6d723ff422472e07f48d763f82ca089bd844",
    "hard": "3a0d64f5dfc1289da42f335e6136b7b3492c85639068c5ec0856b7c8c8b13665",
}
N_INTENTS = {"easy": 2, "medium": 3, "hard": 4}


def env_for(difficulty: str) -> CalendarIntents:
    return CalendarIntents(difficulty=difficulty)  # type: ignore[arg-type]


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = env_for(difficulty)
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> CalendarTask:
    return CalendarTask.model_validate(spec.task.data)


def seed_with(difficulty: str, kind: str) -> int:
    """The first seed whose task has an intent of ``kind``."""
    env = env_for(difficulty)
    return next(
        s for s in range(100) if any(i.kind == kind for i in data_of_task(env.task(s)).intents)
    )


def data_of_task(task: Task) -> CalendarTask:
    return CalendarTask.model_validate(task.data)


async def verdict(spec: EpisodeSpec, *messages: AnyMessage) -> Score:
    done = CompletedEpisode(
        episode_id="test",
        task=spec.task,
        transcript=Transcript([*spec.messages, *messages]),
        stop_reason="final_answer",
        state=spec.state,
    )
    return await spec.verifier.verify(done)


async def call(spec: EpisodeSpec, name: str, **arguments: Any) -> Any:
    result = await spec.tools[name](arguments)
    assert isinstance(result, str)
    return orjson.loads(result)


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first, second = env_for(difficulty).task(7), env_for(difficulty).task(7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"calendar-intents/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = env_for("medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


def _days(intent: Intent) -> list[str]:
    if isinstance(intent, MoveIntent):
        return [intent.from_day, intent.to_day]
    return [] if isinstance(intent, BookIntent) else [intent.day]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(40))
def test_every_intent_needs_the_tools(difficulty: str, seed: int) -> None:
    data = data_of_task(env_for(difficulty).task(seed))
    world, intents = data.world, data.intents
    kinds = [i.kind for i in intents]
    assert len(kinds) == N_INTENTS[difficulty] == len(set(kinds))
    assert set(kinds) & {"move", "cancel", "book"}
    assert set(kinds) & {"count", "availability"}
    assert [k for k, _ in parse_request(data.request)] == kinds  # a careful reader finds all
    days = [d for i in intents for d in _days(i)]
    assert len(days) == len(set(days))  # no intent changes another's answer
    assert "EVT-" not in data.request  # ids come from lookups
    for intent in intents:
        if isinstance(intent, MoveIntent):
            after = AFTERNOON if intent.afternoon else WORK_START
            event = world.events[intent.event_id]
            busy = [
                (minutes(e.start), minutes(e.end))
                for e in world.events.values()
                if e.day == intent.to_day
            ]
            length = minutes(event.end) - minutes(event.start)
            assert earliest_free(busy, after, length) == minutes(intent.expected_start) != after
            assert (event.title, event.day) == (intent.title, intent.from_day)
        elif isinstance(intent, CancelIntent):
            same_day = [e for e in world.events.values() if e.day == intent.day]
            assert [e.title for e in same_day].count(intent.title) == 1
            if difficulty != "easy":  # the title recurs: the day decides which one
                assert sum(e.title == intent.title for e in world.events.values()) > 1
        elif isinstance(intent, BookIntent):
            rooms = sorted(world.rooms.values(), key=lambda r: r.capacity)
            start, end = minutes(intent.start), minutes(intent.end)

            def free(room: str, start: int = start, end: int = end, day: str = intent.day) -> bool:
                return all(
                    end <= minutes(b.start) or minutes(b.end) <= start
                    for b in world.bookings.values()
                    if b.room == room and b.day == day
                )

            adequate = [r for r in rooms if r.capacity >= intent.seats]
            assert next(r.name for r in adequate if free(r.name)) == intent.expected_room
            assert not free(adequate[0].name)  # the smallest adequate room is taken
            assert rooms[0].capacity < intent.seats  # and a too-small room exists


def test_difficulty_changes_the_week() -> None:
    def stats(difficulty: str) -> tuple[float, bool]:
        worlds = [data_of_task(env_for(difficulty).task(s)).world for s in range(20)]
        events = sum(len(w.events) for w in worlds) / len(worlds)
        standup = all(any(e.title == STANDUP for e in w.events.values()) for w in worlds)
        return events, standup

    (easy, easy_standup), (medium, _), (hard, hard_standup) = map(stats, DIFFICULTIES)
    assert easy < medium < hard
    assert not easy_standup
    assert hard_standup


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of"):
        CalendarIntents(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: colour"):
        CalendarIntents(colour="red")


# --- episodes -------------------------------------------------------------------------------


def test_episode_spec() -> None:
    spec = spec_for("hard", 3)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "user"  # the scripted user opens with the request
    assert spec.user is not None
    assert user.text == data_of(spec).request
    assert list(spec.tools) == [
        "list_events",
        "find_event",
        "check_availability",
        "list_rooms",
        "room_schedule",
        "move_event",
        "cancel_event",
        "book_room",
    ]
    for tool_spec in spec.tools.specs:
        assert tool_spec.parameters["additionalProperties"] is False
    assert spec.limits.max_turns == 24
    assert EnvMetadata.model_validate(spec.metadata) == CalendarIntents.metadata
    assert isinstance(spec.state, CalendarState)


async def test_each_episode_gets_fresh_state() -> None:
    env = env_for("easy")
    task = env.task(1)
    first, second = env.episode(task), env.episode(task)
    event_id = next(iter(data_of(first).world.events))
    await first.tools["cancel_event"]({"event_id": event_id})
    assert first.state.events[event_id].status == "cancelled"
    assert second.state.events[event_id].status == "confirmed"
    assert data_of(first).world.events[event_id].status == "confirmed"


def test_bad_tasks_are_rejected() -> None:
    env = env_for("medium")
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="calendar-intents", task_id="calendar-intents/x/0", seed=0, data={}))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_oracle_scores_one_on_every_seed(difficulty: str) -> None:
    rollouts = await gymbus.run(env_for(difficulty), gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 1.0), (r.task_id, r.scores, r.evidence)
        assert set(r.scores.values()) == {1.0}
        assert len(r.scores) == N_INTENTS[difficulty] + 1  # one per intent + no_side_effects
        assert r.turns <= 5  # the intents' tool chains run side by side


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: str) -> None:
    rollouts = await gymbus.run(env_for(difficulty), gymbus.NullModel(), n=30)
    for r in rollouts:
        assert r.status == "scored"
        assert r.reward == 0.0
        assert r.scores["no_side_effects"] == 1.0  # it did nothing, so all intents fail
        assert all(v == 0.0 for part, v in r.scores.items() if part != "no_side_effects")


async def test_solver_is_a_pure_function_of_the_conversation() -> None:
    (rollout,) = await gymbus.run(env_for("hard"), gymbus.OracleModel(), n=1, seed=5)
    messages = list(rollout.messages)
    solver = CalendarIntentsSolver()  # a new solver, driven from every prefix
    for i, message in enumerate(messages):
        if isinstance(message, AssistantMessage):
            replay = solver.next_message(Transcript(messages[:i]))
            assert replay == message.model_copy(update={"generation": None})


# --- the capability: every intent counts ----------------------------------------------------


def only(intents: Sequence[Intent]) -> gymbus.FunctionModel:
    """A careful agent that works on ``intents`` only (the reference solver, shown a request
    without the others)."""

    def reply(request: ModelRequest) -> AssistantMessage:
        shown = [
            UserMessage(content=render_request(list(intents)), author="environment")
            if isinstance(m, UserMessage)
            else m
            for m in request.conversation
        ]
        return CalendarIntentsSolver().next_message(Transcript(shown))

    return gymbus.FunctionModel(reply)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(6))
async def test_forgetting_any_one_intent_scores_zero(difficulty: str, seed: int) -> None:
    env = env_for(difficulty)
    intents = data_of_task(env.task(seed)).intents
    for forgotten in intents:
        rest = [i for i in intents if i is not forgotten]
        (r,) = await gymbus.run(env, only(rest), n=1, seed=seed)
        assert (r.status, r.reward) == ("scored", 0.0), (forgotten.kind, r.scores)
        assert r.scores[KIND_PART[forgotten.kind]] == 0.0
        assert all(r.scores[KIND_PART[i.kind]] == 1.0 for i in rest)
        assert r.scores["no_side_effects"] == 1.0


async def test_doing_only_the_first_intent_scores_zero() -> None:
    env = env_for("hard")
    first = data_of_task(env.task(0)).intents[0]
    (r,) = await gymbus.run(env, only([first]), n=1, seed=0)
    assert r.reward == 0.0
    assert r.scores[KIND_PART[first.kind]] == 1.0
    assert sum(r.scores.values()) == 2.0  # that intent and no_side_effects


async def test_the_too_small_free_room_does_not_count() -> None:
    spec = spec_for("hard", seed_with("hard", "book"))
    intent = next(i for i in data_of(spec).intents if isinstance(i, BookIntent))
    smallest = min(spec.state.rooms.values(), key=lambda r: r.capacity)
    await call(
        spec, "book_room", room=smallest.name, day=intent.day, start=intent.start, end=intent.end
    )
    score = await verdict(spec, AssistantMessage(content="Done."))
    assert score.scores["book_room"] == 0.0
    assert score.evidence["parts"]["book_room"]["evidence"]["got"][0]["room"] == smallest.name


async def test_moving_to_the_start_of_the_window_does_not_count() -> None:
    spec = spec_for("medium", seed_with("medium", "move"))
    intent = next(i for i in data_of(spec).intents if isinstance(i, MoveIntent))
    start = "13:00" if intent.afternoon else "09:00"
    moved = await call(spec, "move_event", event_id=intent.event_id, day=intent.to_day, start=start)
    assert moved["conflicts"]  # the tool warned about the overlap
    score = await verdict(spec, AssistantMessage(content="Done."))
    assert score.scores["move_event"] == 0.0
    assert score.evidence["parts"]["move_event"]["evidence"]["got"]["start"] == start


async def test_cancelling_every_occurrence_is_a_side_effect() -> None:
    spec = spec_for("medium", seed_with("medium", "cancel"))
    intent = next(i for i in data_of(spec).intents if isinstance(i, CancelIntent))
    found = await call(spec, "find_event", title=intent.title)
    assert len(found["matches"]) > 1
    for event in found["matches"]:
        await call(spec, "cancel_event", event_id=event["event_id"])
    score = await verdict(spec, AssistantMessage(content="Done."))
    assert score.scores["cancel_event"] == 1.0
    assert score.scores["no_side_effects"] == 0.0
    assert score.reward == 0.0


async def test_busy_times_are_not_free_times() -> None:
    spec = spec_for("easy", seed_with("easy", "availability"))
    intent = next(i for i in data_of(spec).intents if i.kind == "availability")
    assert intent.kind == "availability"
    busy = await call(spec, "check_availability", person=intent.person, day=intent.day)
    wrong = ", ".join(f"{b['start']}-{b['end']}" for b in busy["busy"])
    right = ", ".join(f"{b.start}-{b.end}" for b in intent.expected)
    assert (await verdict(spec, AssistantMessage(content=f"{intent.label}: {wrong}"))).scores[
        "free_time"
    ] == 0.0
    assert (await verdict(spec, AssistantMessage(content=f"**{intent.label}:** {right}"))).scores[
        "free_time"
    ] == 1.0


async def test_a_verifier_without_calendar_state_fails_loudly() -> None:
    spec = spec_for("easy", 0)
    done = CompletedEpisode("test", spec.task, Transcript(spec.messages), "final_answer", None)
    with pytest.raises(TypeError, match="expected a CalendarState"):
        await spec.verifier.verify(done)


# --- answer parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Q1: 3", {"Q1": "3"}),
        ("All done.\nQ1: 3\nQ2: 09:00-10:00", {"Q1": "3", "Q2": "09:00-10:00"}),
        ("- **Q1:** 4 meetings", {"Q1": "4 meetings"}),
        ("(Q2) 10:00-11:00", {"Q2": "10:00-11:00"}),
        ("q1 = 5", {"Q1": "5"}),
        ("Q1: 3\nQ1: 4", {"Q1": "4"}),
        ("I moved the Quarterly planning: done", {}),
        ("I can't help with that.", {}),
    ],
)
def test_answer_lines(text: str, expected: dict[str, str]) -> None:
    assert answer_lines(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-10:30, 14:00-17:00", [("09:00", "10:30"), ("14:00", "17:00")]),
        ("14:00 to 17:00 and 9:00–10:30", [("09:00", "10:30"), ("14:00", "17:00")]),
        ("09:00-10:00, 10:00-10:30", [("09:00", "10:30")]),
        ("9.00-9.30", [("09:00", "09:30")]),
        ("never", []),
    ],
)
def test_time_ranges(text: str, expected: list[tuple[str, str]]) -> None:
    assert time_ranges(text) == expected


# --- tools ----------------------------------------------------------------------------------


async def test_tools_read_and_change_the_calendar() -> None:
    spec = spec_for("hard", 2)
    state = spec.state
    monday = await call(spec, "list_events", day="Monday")
    starts = [e["start"] for e in monday["events"]]
    assert starts == sorted(starts)
    assert monday["events"][0]["title"] == STANDUP
    standups = await call(spec, "find_event", title="team STANDUP")
    assert [e["day"] for e in standups["matches"]] == [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
    ]
    person = monday["events"][0]["attendees"][0]
    busy = await call(spec, "check_availability", person=person, day="Monday")
    assert {"start": "09:00", "end": "09:30"} in busy["busy"]  # the standup they attend
    rooms = await call(spec, "list_rooms")
    room = rooms["rooms"][0]["name"]
    taken = (await call(spec, "room_schedule", room=room, day="Friday"))["bookings"]
    start = next(
        t
        for t in range(WORK_START, 16 * 60 + 30, 30)
        if all(t + 30 <= minutes(b["start"]) or minutes(b["end"]) <= t for b in taken)
    )
    slot = {
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{(start + 30) // 60:02d}:{(start + 30) % 60:02d}",
    }
    booked = (await call(spec, "book_room", room=room, day="Friday", **slot))["booked"]
    assert booked == {
        "booking_id": "BKG-9001",
        "room": room,
        "day": "Friday",
        **slot,
        "booked_by": state.owner,
    }
    schedule = await call(spec, "room_schedule", room=room, day="Friday")
    assert "BKG-9001" in [b["booking_id"] for b in schedule["bookings"]]
    event = monday["events"][1]
    moved = await call(spec, "move_event", event_id=event["event_id"], day="Friday", start="09:00")
    assert moved["conflicts"] == [STANDUP]
    assert state.events[event["event_id"]].day == "Friday"


async def test_book_room_refuses_a_taken_room() -> None:
    spec = spec_for("easy", 0)
    booking = next(iter(spec.state.bookings.values()))
    with pytest.raises(ToolInputError, match=f"{booking.room} is already booked"):
        await spec.tools["book_room"](
            {"room": booking.room, "day": booking.day, "start": booking.start, "end": booking.end}
        )


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        (
            "move_event",
            {"event_id": "EVT-0", "day": "Monday", "start": "10:00"},
            "no event 'EVT-0'",
        ),
        ("cancel_event", {"event_id": "nope"}, "no event 'nope'"),
        (
            "check_availability",
            {"person": "Nobody", "day": "Monday"},
            "no colleague named 'Nobody'",
        ),
        ("room_schedule", {"room": "Attic", "day": "Monday"}, "no room 'Attic'"),
        (
            "book_room",
            {"room": "Attic", "day": "Monday", "start": "10:00", "end": "11:00"},
            "no room",
        ),
        ("find_event", {"title": " "}, "must not be empty"),
    ],
)
async def test_unknown_ids_are_tool_input_errors(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    spec = spec_for("medium", 0)
    with pytest.raises(ToolInputError, match=message):
        await spec.tools[name](arguments)


async def test_times_outside_working_hours_are_refused() -> None:
    spec = spec_for("medium", 0)
    event = next(iter(spec.state.events.values()))
    with pytest.raises(ToolInputError, match="not a range within working hours"):
        await spec.tools["move_event"](
            {"event_id": event.event_id, "day": "Monday", "start": "07:00"}
        )
    with pytest.raises(ToolInputError, match="it would end at"):
        await spec.tools["move_event"](
            {"event_id": event.event_id, "day": "Monday", "start": "16:59"}
        )
    room = next(iter(spec.state.rooms))
    with pytest.raises(ToolInputError, match="start before end"):
        await spec.tools["book_room"](
            {"room": room, "day": "Monday", "start": "12:00", "end": "11:00"}
        )
    await spec.tools["cancel_event"]({"event_id": event.event_id})
    with pytest.raises(ToolInputError, match="is cancelled"):
        await spec.tools["cancel_event"]({"event_id": event.event_id})


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("list_events", {"day": "Saturday"}),
        ("list_events", {}),
        ("list_events", {"day": "Monday", "week": 2}),
        ("move_event", {"event_id": "EVT-1", "day": "Monday", "start": "9am"}),
        ("list_rooms", {"floor": 1}),
    ],
)
async def test_bad_arguments_are_rejected_by_the_schema(
    name: str, arguments: dict[str, Any]
) -> None:
    spec = spec_for("easy", 0)
    with pytest.raises(ToolArgumentsError, match=f"invalid arguments for '{name}'"):
        await spec.tools[name](arguments)


async def test_the_user_nudges_once_when_a_question_is_left_unanswered() -> None:
    """Multi-turn: after an answer missing a `Qn:` line the user asks again; the policy
    that then answers everything still scores 1.0 (state changes done in turn one)."""
    oracle = gymbus.OracleModel()
    answers: dict[str, int] = {}

    async def forgetful(request: ModelRequest) -> AssistantMessage:
        reply = await oracle.generate(request)
        episode = request.episode.episode_id
        if reply.tool_calls or answers.get(episode):
            return reply
        answers[episode] = 1  # the first final answer drops its Q lines
        kept = [line for line in reply.text.splitlines() if not line.lstrip().startswith("Q")]
        return AssistantMessage(content="\n".join(kept) or "Done.")

    env = CalendarIntents(difficulty="medium")
    rollouts = await gymbus.run(env, gymbus.FunctionModel(forgetful), n=5)
    for rollout in rollouts:
        users = [m for m in rollout.messages if isinstance(m, UserMessage)]
        assert len(users) == 2, [m.text for m in users]
        assert "haven't answered all my questions" in users[1].text
        assert rollout.stop_reason == "user:goal-met"
        assert rollout.reward == 1.0, rollout.evidence
