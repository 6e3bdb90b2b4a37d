import hashlib
from typing import Any

import orjson
import pytest

from gymbus.envs.builtin.retail_data import DIFFICULTIES, RetailTask, RetailWorld, ships_from
from gymbus.envs.builtin.retail_orders import RetailOrders, RetailOrdersSolver, question
from gymbus.envs.metadata import EnvMetadata
from gymbus.envs.verifiers import last_integer
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import (
    BadTaskError,
    ConfigError,
    ToolArgumentsError,
    ToolInputError,
)
from gymbus.runtime.messages import (
    AssistantMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode
from tests.envs.scoring import play, verify_ending

pytestmark = pytest.mark.anyio

# sha256 of RetailOrders(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "1c20d5aa4a544f68fe79de1109f0a7b7b0b8f0c601fb0ff65b00980ddf55c013",
    "medium": "4415ad81880132b985baa7173bfb07f4c062677052365df18aeb1d56fe82d2d3",
    "hard": "a3d76ea58dc60f0229f3fff9c554caf5968f5e8cb460b0c67786961dabfc60cd",
}


def spec_for(difficulty: str = "medium", seed: int = 0) -> EpisodeSpec:
    env = RetailOrders(difficulty=difficulty)  # type: ignore[arg-type]
    return env.episode(env.task(seed))


def data_of(spec: EpisodeSpec) -> RetailTask:
    return RetailTask.model_validate(spec.task.data)


def tool_calls(done: CompletedEpisode) -> list[ToolCall]:
    return [c for m in done.transcript if isinstance(m, AssistantMessage) for c in m.tool_calls]


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_task_is_deterministic(difficulty: str) -> None:
    first = RetailOrders(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    second = RetailOrders(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"retail-orders/{difficulty}/7"
    digest = hashlib.sha256(first.model_dump_json().encode()).hexdigest()
    assert digest == GOLDEN[difficulty]


def test_seeds_give_different_tasks() -> None:
    env = RetailOrders(difficulty="medium")
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(50))
def test_world_has_decoys(difficulty: str, seed: int) -> None:
    data = RetailTask.model_validate(RetailOrders(difficulty=difficulty).task(seed).data)  # type: ignore[arg-type]
    world = data.world
    quantities = [q for by_sku in world.stock.values() for q in by_sku.values()]
    assert len(set(quantities)) == len(quantities)  # any wrong lookup gives a wrong number
    assert len(world.orders) >= 4
    assert len(world.warehouses) >= 3
    order = world.orders[data.order_id]
    assert data.answer == world.stock[ships_from(world, order).stock_location_code][order.sku]
    assert last_integer(question(data.order_id)) is None  # nothing to copy from the prompt
    if difficulty == "hard":
        assert order.rerouted_to is not None
        assert order.original_warehouse_id != ships_from(world, order).warehouse_id
    if difficulty != "easy":
        assert all(w.returns_location_code in world.stock for w in world.warehouses.values())


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="difficulty must be one of easy, medium, hard"):
        RetailOrders(difficulty="extreme")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown options: colour"):
        RetailOrders(colour="red")


# --- episodes -------------------------------------------------------------------------------


def test_episode_spec() -> None:
    spec = spec_for("hard", 3)
    data = data_of(spec)
    system, user = spec.messages
    assert system.role == "system"
    assert isinstance(user, UserMessage)
    assert user.author == "environment"
    assert data.order_id in user.text
    assert "Answer with just the number." in user.text
    assert list(spec.tools) == ["get_order", "get_shipment", "get_warehouse", "get_stock"]
    assert list(spec_for("easy").tools) == ["get_order", "get_warehouse", "get_stock"]
    assert spec.limits.max_turns == 12
    assert EnvMetadata.model_validate(spec.metadata) == RetailOrders.metadata
    assert isinstance(spec.state, RetailWorld)


def test_each_episode_gets_fresh_state() -> None:
    env = RetailOrders()
    task = env.task(1)
    first, second = env.episode(task), env.episode(task)
    assert first.state == second.state
    assert first.state is not second.state
    assert first.state.orders is not second.state.orders


def test_bad_tasks_are_rejected() -> None:
    env = RetailOrders()
    task = env.task(0)
    with pytest.raises(BadTaskError, match="belongs to 'other'"):
        env.episode(task.model_copy(update={"env": "other"}))
    with pytest.raises(BadTaskError, match="invalid data"):
        env.episode(Task(env="retail-orders", task_id="retail-orders/x/0", seed=0, data={}))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
async def test_reference_solver_scores_one_on_every_seed(difficulty: str) -> None:
    hops = 4 if difficulty == "hard" else 3
    for seed in range(50):
        spec = spec_for(difficulty, seed)
        done = await play(spec)
        score = await spec.verifier.verify(done)
        assert score.reward == 1.0, (seed, score)
        assert score.scores == {"answer_correct": 1.0, "used_tools": 1.0}
        assert score.evidence["expected"] == str(data_of(spec).answer)
        assert [c.id for c in tool_calls(done)] == [f"call_{i}" for i in range(1, hops + 1)]
        assert done.stop_reason == "final_answer"


async def test_solver_is_a_pure_function_of_the_conversation() -> None:
    spec = spec_for("hard", 5)
    done = await play(spec)
    solver = RetailOrdersSolver()  # a new solver, driven from every prefix of the transcript
    for i, message in enumerate(done.transcript):
        if isinstance(message, AssistantMessage):
            assert solver.next_message(Transcript(done.transcript[:i])) == message


async def test_solver_gives_up_on_a_tool_error() -> None:
    spec = spec_for("easy", 0)
    first = RetailOrdersSolver().next_message(Transcript(spec.messages))
    (call,) = first.tool_calls
    failed = ToolMessage(tool_call_id=call.id, content="no order", is_error=True)
    reply = RetailOrdersSolver().next_message(Transcript([*spec.messages, first, failed]))
    assert not reply.tool_calls
    assert (await verify_ending(spec, first, failed, reply)).reward == 0.0


# --- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reward"),
    [
        ("{answer}", 1.0),
        ("There are {answer} units of it for {order_id}.", 1.0),
        ("I can't help with that.", 0.0),
        ("{wrong}", 0.0),
        ("{order_id}", 0.0),
    ],
)
async def test_final_answer_scoring(reply: str, reward: float) -> None:
    spec = spec_for("medium", 11)
    data = data_of(spec)
    text = reply.format(answer=data.answer, wrong=data.answer + 1, order_id=data.order_id)
    score = await verify_ending(spec, AssistantMessage(content=text))
    assert score.reward == reward
    assert score.scores["answer_correct"] == reward
    assert score.scores["used_tools"] == 0.0


async def test_no_final_answer_scores_zero() -> None:
    spec = spec_for("easy", 2)
    call = ToolCall(id="call_1", name="get_order", arguments="{}")
    score = await verify_ending(spec, AssistantMessage(content="checking", tool_calls=(call,)))
    assert score.reward == 0.0
    assert score.evidence["has_final_answer"] is False


async def test_used_tools_is_the_fraction_of_required_lookups() -> None:
    spec = spec_for("easy", 4)
    done = await play(spec)
    two_lookups = Transcript(list(done.transcript)[:5])  # system, user, call, result, call
    wrong = AssistantMessage(content="12")
    score = await verify_ending(spec, *two_lookups[2:], wrong)
    assert score.scores["used_tools"] == pytest.approx(2 / 3)
    assert len(score.evidence["calls_made"]) == 2
    assert [c["name"] for c in score.evidence["missing_calls"]] == ["get_stock"]


# --- tools ----------------------------------------------------------------------------------


async def call_tool(spec: EpisodeSpec, name: str, **arguments: Any) -> dict[str, Any]:
    result = await spec.tools[name](arguments)
    assert isinstance(result, str)
    value: dict[str, Any] = orjson.loads(result)
    return value


async def test_tools_return_records_as_json() -> None:
    spec = spec_for("hard", 9)
    data = data_of(spec)
    order = await call_tool(spec, "get_order", order_id=data.order_id)
    assert order["status"] == "rerouted"
    assert "warehouse_id" not in order
    shipment = await call_tool(spec, "get_shipment", shipment_id=order["rerouted_to"])
    warehouse = await call_tool(spec, "get_warehouse", warehouse_id=shipment["warehouse_id"])
    stock = await call_tool(
        spec, "get_stock", location_code=warehouse["stock_location_code"], sku=order["sku"]
    )
    assert stock["quantity"] == data.answer
    decoy = await call_tool(
        spec, "get_stock", location_code=warehouse["returns_location_code"], sku=order["sku"]
    )
    assert decoy["quantity"] != data.answer


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("get_order", {"order_id": "ORD-00000"}, "no order 'ORD-00000'"),
        ("get_shipment", {"shipment_id": "SHP-1"}, "no shipment 'SHP-1'"),
        ("get_warehouse", {"warehouse_id": "WH-1"}, "no warehouse 'WH-1'"),
        ("get_stock", {"location_code": "LOC-?", "sku": "x"}, "no stock location 'LOC-\\?'"),
    ],
)
async def test_unknown_ids_are_tool_input_errors(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    spec = spec_for("hard", 0)
    with pytest.raises(ToolInputError, match=message):
        await spec.tools[name](arguments)


async def test_stock_lookup_errors_explain_what_is_expected() -> None:
    spec = spec_for("easy", 0)
    world = data_of(spec).world
    warehouse = next(iter(world.warehouses.values()))
    with pytest.raises(ToolInputError, match="is a warehouse id, not a stock location code"):
        await spec.tools["get_stock"]({"location_code": warehouse.warehouse_id, "sku": "x"})
    with pytest.raises(ToolInputError, match="no product with sku 'SKU-NONE'"):
        await spec.tools["get_stock"](
            {"location_code": warehouse.stock_location_code, "sku": "SKU-NONE"}
        )


@pytest.mark.parametrize(
    "arguments",
    [{}, {"order_id": 48213}, {"order_id": "ORD-1", "customer": "x"}, {"id": "ORD-1"}],
)
async def test_bad_arguments_are_rejected_by_the_schema(arguments: dict[str, Any]) -> None:
    spec = spec_for("easy", 0)
    with pytest.raises(ToolArgumentsError, match="invalid arguments for 'get_order'"):
        await spec.tools["get_order"](arguments)
