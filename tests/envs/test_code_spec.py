import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

import gymbus
from gymbus.envs.builtin.code_data import DIFFICULTIES, CodeSpecTask, outcome
from gymbus.envs.builtin.code_families import FAMILIES
from gymbus.envs.builtin.code_spec import CodeSpec, CodeSpecSolver, render_solution, request
from gymbus.envs.metadata import EnvMetadata
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import BadTaskError, ToolArgumentsError, ToolInputError
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode

pytestmark = pytest.mark.anyio

# sha256 of CodeSpec(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "0a4915d4a8d45163e0b200ecdda287709ae9fefc5cac826c84497130e74ec682",
    "medium": "29100115cabb189a9c4b439c2be4bdb21fdf458a2cf035e5db3945e043610781",
    "hard": "a86aa228359b91995eccaf8b83297ec0fcf7e1c00457336bad1eaf4d060bb24b",
}


def task_for(difficulty: str = "medium", seed: int = 0) -> Task:
    return CodeSpec(difficulty=difficulty).task(seed)  # type: ignore[arg-type]


def data_of(task: Task) -> CodeSpecTask:
    return CodeSpecTask.model_validate(task.data)


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = CodeSpec(difficulty=difficulty)  # type: ignore[arg-type]
    return env.episode(env.task(seed))


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first, second = task_for(difficulty, 7), task_for(difficulty, 7)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"code-spec/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    assert len({task_for("easy", seed).model_dump_json() for seed in range(20)}) == 20


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_family_is_drawn(difficulty: str) -> None:
    tasks = [data_of(task_for(difficulty, seed)) for seed in range(30)]
    assert {t.functions[t.target].family for t in tasks} == set(FAMILIES)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(20))
def test_module_and_hidden_tests(difficulty: str, seed: int) -> None:
    data = data_of(task_for(difficulty, seed))
    target = data.functions[data.target]
    family = FAMILIES[target.family]
    assert data.purpose == family.purpose
    assert target.summary.lower() == family.purpose + "."
    assert len({f.family for f in data.functions.values()}) == 3  # two other families
    assert list(data.functions) == sorted(data.functions)
    assert all(f.module == data.module for f in data.functions.values())
    legacy = data.functions.get(f"legacy_{data.target}")
    main_tests = [t for t in data.tests if t.function == data.target]
    assert len(main_tests) == (12 if difficulty == "easy" else 18)
    assert len({t.args for t in main_tests}) == len(main_tests)
    if difficulty == "easy":
        assert legacy is None
        assert not target.edge_cases
    else:
        assert legacy is not None
        assert legacy.summary.startswith("Deprecated")
        assert legacy.constants != target.constants
        assert target.edge_cases
    if difficulty == "hard":
        assert data.helper is not None
        assert target.depends_on == (data.helper,)
        helper = data.functions[data.helper]
        assert not set(helper.constants) & set(target.constants)
        assert len([t for t in data.tests if t.function == data.helper]) == 5
    else:
        assert data.helper is None
        assert target.depends_on == ()
        assert {t.function for t in data.tests} == {data.target}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_specs_name_every_constant_in_their_rules(difficulty: str) -> None:
    for seed in range(20):
        data = data_of(task_for(difficulty, seed))
        for spec in data.functions.values():
            prose = " ".join((spec.description, *spec.edge_cases))
            for constant in spec.constants:
                assert constant in prose, (spec.name, constant)
            assert spec.signature.startswith(f"{spec.name}(")
            assert len(spec.examples) == 2
            assert all(e.call.startswith(f"{spec.name}(") for e in spec.examples)


def test_examples_and_hidden_tests_follow_the_reference() -> None:
    data = data_of(task_for("medium", 3))
    family = FAMILIES[data.functions[data.target].family]
    constants = data.functions[data.target].constants
    for test in data.tests:
        assert outcome(lambda *a: family.run(constants, *a), test.args) == (
            test.expected,
            test.raises,
        )


def test_bad_tasks_are_rejected() -> None:
    env = CodeSpec()
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="code-spec", task_id="code-spec/x/0", seed=0, data={}))


def test_episode_spec() -> None:
    spec = spec_for("hard", 2)
    data = data_of(spec.task)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    assert user.text == request(data.module, data.purpose)
    assert data.target not in user.text  # the name comes from list_functions
    assert list(spec.tools) == ["list_functions", "get_spec"]
    assert spec.limits.max_turns == 8
    assert EnvMetadata.model_validate(spec.metadata) == CodeSpec.metadata
    assert spec.state == data


# --- tools ----------------------------------------------------------------------------------


async def call_tool(spec: EpisodeSpec, name: str, **arguments: Any) -> Any:
    result = await spec.tools[name](arguments)
    assert isinstance(result, str)
    return orjson.loads(result)


async def test_tools_show_the_module_and_its_specs() -> None:
    spec = spec_for("hard", 4)
    data = data_of(spec.task)
    listing = await call_tool(spec, "list_functions", module=data.module)
    assert [f["name"] for f in listing] == list(data.functions)
    shown = await call_tool(spec, "get_spec", function_name=data.target)
    assert "family" not in shown
    assert shown["constants"] == data.functions[data.target].constants
    assert shown["depends_on"] == [data.helper]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("list_functions", {"module": "nope"}, "no module 'nope'; the spec library has: "),
        ("get_spec", {"function_name": "nope"}, "no function 'nope' in the spec library"),
    ],
)
async def test_unknown_names_are_tool_input_errors(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolInputError, match=message):
        await spec_for("easy", 0).tools[name](arguments)


@pytest.mark.parametrize("arguments", [{}, {"module": 3}, {"module": "a", "extra": "b"}])
async def test_bad_arguments_are_rejected_by_the_schema(arguments: dict[str, Any]) -> None:
    with pytest.raises(ToolArgumentsError, match="invalid arguments for 'list_functions'"):
        await spec_for("easy", 0).tools["list_functions"](arguments)


# --- through the runtime --------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_oracle_scores_one(difficulty: str) -> None:
    env = CodeSpec(difficulty=difficulty)  # type: ignore[arg-type]
    rollouts = await gymbus.run(env, gymbus.OracleModel(), n=30)
    assert len(rollouts) == 30
    for r in rollouts:
        assert (r.status, r.reward) == ("scored", 1.0), (r.task_id, r.failure, r.evidence)
        assert r.scores == {"all_passed": 1.0, "tests_passed": 1.0, "used_tools": 1.0}
        assert r.turns == (4 if difficulty == "hard" else 3)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_null_model_scores_zero(difficulty: str) -> None:
    env = CodeSpec(difficulty=difficulty)  # type: ignore[arg-type]
    for r in await gymbus.run(env, gymbus.NullModel(), n=3):
        assert (r.status, r.reward) == ("scored", 0.0)
        assert r.evidence["code_found"] is False
        assert r.scores["used_tools"] == 0.0


def results(conversation: Transcript) -> dict[tuple[str, str], Any]:
    """Tool results so far, by (tool name, raw arguments)."""
    calls = {
        c.id: (c.name, c.arguments)
        for m in conversation
        if isinstance(m, AssistantMessage)
        for c in m.tool_calls
    }
    return {
        calls[m.tool_call_id]: orjson.loads(m.text)
        for m in conversation
        if isinstance(m, ToolMessage)
    }


def policy(answer: Callable[[dict[tuple[str, str], Any], str, str], str | ToolCall]) -> Any:
    """A model that lists the module, then lets ``answer(results, module, target)`` decide:
    another tool call, or the code to reply with."""

    def reply(req: ModelRequest) -> AssistantMessage:
        prompt = next(m.text for m in req.conversation if isinstance(m, UserMessage))
        module = prompt.split("`")[1]
        seen = results(req.conversation)
        listing = seen.get(("list_functions", orjson.dumps({"module": module}).decode()))
        if listing is None:
            arguments = orjson.dumps({"module": module}).decode()
            call = ToolCall(id="c0", name="list_functions", arguments=arguments)
            return AssistantMessage(tool_calls=(call,))
        purpose = prompt.split("function that ")[1].split(".")[0]
        target = next(f["name"] for f in listing if f["summary"].lower() == purpose + ".")
        decision = answer(seen, module, target)
        if isinstance(decision, ToolCall):
            return AssistantMessage(tool_calls=(decision,))
        return AssistantMessage(content=f"```python\n{decision}```")

    return gymbus.FunctionModel(reply)


def read_spec(seen: dict[tuple[str, str], Any], name: str) -> dict[str, Any] | ToolCall:
    arguments = orjson.dumps({"function_name": name}).decode()
    spec = seen.get(("get_spec", arguments))
    if spec is None:
        return ToolCall(id=f"c{len(seen)}", name="get_spec", arguments=arguments)
    assert isinstance(spec, dict)
    return spec


CONVENTIONAL = {
    "check-digit": """
def {name}(number):  # Luhn
    total = 0
    for i, d in enumerate(int(c) for c in reversed(number) if c.isdigit()):
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return (10 - total % 10) % 10
""",
    "run-length": """
def {name}(text):
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        out.append(f"{{text[i]}}{{j - i}}")
        i = j
    return "".join(out)
""",
    "step-rounding": """
def {name}(value):
    return round(value / 10) * 10
""",
    "calendar": """
LENGTHS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
def {name}(month, day, days):
    day += days
    while day > LENGTHS[month - 1]:
        day -= LENGTHS[month - 1]
        month = month % 12 + 1
    return [month, day]
""",
}


async def test_textbook_implementations_score_zero() -> None:
    """Knowing the function's name and purpose is not enough: the spec must be read."""

    def textbook(seen: dict[tuple[str, str], Any], module: str, target: str) -> str:
        listing = next(v for (name, _), v in seen.items() if name == "list_functions")
        summary = next(f["summary"] for f in listing if f["name"] == target)
        family = next(f for f in FAMILIES.values() if summary.lower() == f.purpose + ".")
        return CONVENTIONAL[family.name].format(name=target)

    for difficulty in DIFFICULTIES:
        env = CodeSpec(difficulty=difficulty)
        for r in await gymbus.run(env, policy(textbook), n=15):
            assert (r.status, r.reward) == ("scored", 0.0), (r.task_id, r.evidence)
            assert r.evidence["code_found"] is True
            assert r.scores["used_tools"] == 0.0


async def test_reading_the_deprecated_twin_scores_zero() -> None:
    def legacy(seen: dict[tuple[str, str], Any], module: str, target: str) -> str | ToolCall:
        spec = read_spec(seen, f"legacy_{target}")
        return spec if isinstance(spec, ToolCall) else render_solution(spec, [])

    for r in await gymbus.run(CodeSpec(difficulty="medium"), policy(legacy), n=30):
        assert (r.status, r.reward) == ("scored", 0.0), (r.task_id, r.evidence)
        assert r.evidence["load_error"] is None
        assert r.scores["used_tools"] == 0.0


async def test_ignoring_the_edge_case_rule_scores_zero() -> None:
    edge_constants = {"SEPARATORS", "CASE_INSENSITIVE", "NEGATIVE_TIES", "FESTIVAL_DAYS"}

    def careless(seen: dict[tuple[str, str], Any], module: str, target: str) -> str | ToolCall:
        spec = read_spec(seen, target)
        if isinstance(spec, ToolCall):
            return spec
        constants = {k: v for k, v in spec["constants"].items() if k not in edge_constants}
        return render_solution({**spec, "constants": constants}, [])

    for r in await gymbus.run(CodeSpec(difficulty="medium"), policy(careless), n=30):
        assert (r.status, r.reward) == ("scored", 0.0), (r.task_id, r.evidence)
        assert r.scores["used_tools"] == 1.0
        assert 0.0 < r.scores["tests_passed"] < 1.0


async def test_skipping_the_helper_spec_scores_zero() -> None:
    """Hard: the main spec alone leaves the helper's rules (and constants) unknown."""

    def main_only(seen: dict[tuple[str, str], Any], module: str, target: str) -> str | ToolCall:
        spec = read_spec(seen, target)
        if isinstance(spec, ToolCall):
            return spec
        legacy = read_spec(seen, f"legacy_{target}")  # borrow the old constants
        if isinstance(legacy, ToolCall):
            return legacy
        helper = {"name": spec["depends_on"][0], "constants": legacy["constants"]}
        return render_solution(spec, [helper])

    for r in await gymbus.run(CodeSpec(difficulty="hard"), policy(main_only), n=30):
        assert (r.status, r.reward) == ("scored", 0.0), (r.task_id, r.evidence)
        assert r.scores["used_tools"] == 0.5


# --- the solver -----------------------------------------------------------------------------


async def play(spec: EpisodeSpec) -> Transcript:
    assert spec.solver is not None
    transcript = Transcript(spec.messages)
    for _ in range(spec.limits.max_turns or 1):
        message = spec.solver.next_message(transcript)
        transcript = transcript.append(message)
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            output = await spec.tools[call.name](call.parsed_arguments())
            assert isinstance(output, str)
            transcript = transcript.append(
                ToolMessage(tool_call_id=call.id, name=call.name, content=output)
            )
    return transcript


async def test_solver_is_a_pure_function_of_the_conversation() -> None:
    spec = spec_for("hard", 5)
    transcript = await play(spec)
    assert len(transcript) == 2 + 2 * 3 + 1
    solver = CodeSpecSolver()
    for i, message in enumerate(transcript):
        if isinstance(message, AssistantMessage):
            assert solver.next_message(Transcript(transcript[:i])) == message
    done = CompletedEpisode(
        episode_id="t", task=spec.task, transcript=transcript, stop_reason="final_answer"
    )
    assert (await spec.verifier.verify(done)).reward == 1.0


async def test_solver_gives_up_on_a_tool_error() -> None:
    spec = spec_for("easy", 0)
    first = CodeSpecSolver().next_message(Transcript(spec.messages))
    (call,) = first.tool_calls
    failed = ToolMessage(tool_call_id=call.id, content="error: no module", is_error=True)
    reply = CodeSpecSolver().next_message(Transcript([*spec.messages, first, failed]))
    assert not reply.tool_calls
    assert "could not read the spec" in reply.text
