"""The inventory-mcp tasks, reference solver and checks, pure: the store's workspace stands
in for the MCP server (tests/envs/test_inventory_mcp.py plays them on the real one)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gymbus.envs.builtin.inventory_checks import InventorySnapshot, inventory_checks
from gymbus.envs.builtin.inventory_mcp import InventoryMCP
from gymbus.envs.builtin.inventory_solver import InventorySolver, parse_request
from gymbus.envs.builtin.inventory_store import Inventory, InventoryError
from gymbus.envs.builtin.inventory_tasks import DIFFICULTIES, InventoryTask, MoveStep, TopUpStep
from gymbus.runtime.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
from gymbus.runtime.tasks import Task
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.verification import CompletedEpisode, Score

# sha256 of InventoryMCP(difficulty=d).task(7).model_dump_json(): changes only on purpose.
GOLDEN = {
    "easy": "40fb95bf347592f1a33bdf6b0842116dbcdf824e051a971fdca7b4e1362193de",
    "medium": "b0fd842e2f39637e8f5824bc0134e17ee645333cb6d03c94f1e6966e8a00713b",
    "hard": "1f6c4a764085b66e893ba1c66a021cbaaf4ea9da82eed2ec2493aade6581504a",
}


def data_of(difficulty: str, seed: int) -> InventoryTask:
    task = InventoryMCP(difficulty=difficulty).task(seed)  # type: ignore[arg-type]
    return InventoryTask.model_validate(task.data)


# --- tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_tasks_are_deterministic(difficulty: str) -> None:
    first = InventoryMCP(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    second = InventoryMCP(difficulty=difficulty).task(7)  # type: ignore[arg-type]
    assert first.model_dump_json() == second.model_dump_json()
    assert first.task_id == f"inventory-mcp/{difficulty}/7"
    assert hashlib.sha256(first.model_dump_json().encode()).hexdigest() == GOLDEN[difficulty]
    env = InventoryMCP(difficulty=difficulty)  # type: ignore[arg-type]
    assert len({env.task(seed).model_dump_json() for seed in range(20)}) == 20


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", range(40))
def test_tasks_need_lookups(difficulty: str, seed: int) -> None:
    data = data_of(difficulty, seed)
    kinds = [step.kind for step in data.steps]
    if difficulty == "hard":  # the move of another item comes before or after the top-up
        assert kinds in (["move", "top_up", "reserve"], ["top_up", "move", "reserve"])
    else:
        assert kinds == {"easy": ["move"], "medium": ["top_up", "reserve"]}[difficulty]
    assert (data.question is not None) == (difficulty == "hard")
    assert not any(ch.isdigit() for loc in data.locations for ch in loc.name)
    assert not any(ch.isdigit() for item in data.items for ch in item.name)
    for location in data.locations:  # requests name locations; the tools take ids
        assert location.id not in data.request
    for item in data.items:
        assert item.sku not in data.request
    initial = {item.sku: item.stock for item in data.items}
    assert data.expected_stock != {s: {k: v for k, v in b.items() if v} for s, b in initial.items()}
    for step in data.steps:
        if isinstance(step, TopUpStep):  # the amount to move depends on the stock there
            assert 0 < step.moved < step.units
    if data.question is not None:
        q = data.question
        on_hand = data.expected_stock.get(q.sku, {}).get(q.location, 0)
        assert q.answer != on_hand  # reservations make "available" differ


def test_the_request_parses_back() -> None:
    data = data_of("hard", 3)
    jobs = parse_request(data.request)
    assert [j.kind for j in jobs] == [*(s.kind for s in data.steps), "question"]
    for job, step in zip(jobs, data.steps, strict=False):
        assert job.fields["item"] == step.item


# --- solver and checks without MCP: the store's workspace as the tools ----------------------


def play_on_store(data: InventoryTask) -> tuple[Transcript, InventorySnapshot]:
    """Drive the reference solver against the store directly (no server)."""
    ws = Inventory().create("w", data.locations, data.items, data.reservations)
    ops: dict[str, Callable[[dict[str, Any]], Any]] = {
        "list_locations": lambda a: ws.list_locations(),
        "find_item": lambda a: ws.find_item(a["query"]),
        "get_stock": lambda a: ws.get_stock(a["sku"]),
        "move_stock": lambda a: ws.move_stock(
            a["sku"], a["from_location"], a["to_location"], a["quantity"]
        ),
        "reserve_stock": lambda a: ws.reserve_stock(
            a["sku"], a["location"], a["quantity"], a["order_id"]
        ),
    }
    transcript = Transcript(
        [SystemMessage(content="s"), UserMessage(content=data.request, author="environment")]
    )
    for _ in range(16):
        message = InventorySolver().next_message(transcript)
        transcript = transcript.append(message)
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            try:
                output, error = (
                    orjson.dumps(ops[call.name](call.parsed_arguments())).decode(),
                    False,
                )
            except InventoryError as exc:
                output, error = str(exc), True
            transcript = transcript.append(
                ToolMessage(tool_call_id=call.id, name=call.name, content=output, is_error=error)
            )
    return transcript, InventorySnapshot.from_state(ws.state())


def score(data: InventoryTask, transcript: Transcript, snapshot: InventorySnapshot) -> Score:
    task = Task(env="inventory-mcp", task_id="t", seed=0, data={})
    done = CompletedEpisode("e", task, transcript, "final_answer", snapshot)
    return inventory_checks(data).score(done)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_the_solver_scores_one_on_every_seed(difficulty: str) -> None:
    for seed in range(100):
        data = data_of(difficulty, seed)
        transcript, snapshot = play_on_store(data)
        verdict = score(data, transcript, snapshot)
        assert verdict.reward == 1.0, (seed, verdict.evidence)
        turns = sum(isinstance(m, AssistantMessage) for m in transcript)
        assert turns == 1 + len(data.steps) + (difficulty != "easy") + 1


def test_the_solver_is_a_pure_function_of_the_conversation() -> None:
    transcript, _ = play_on_store(data_of("hard", 5))
    for i, message in enumerate(transcript):
        if isinstance(message, AssistantMessage):
            assert InventorySolver().next_message(Transcript(transcript[:i])) == message


def test_the_solver_gives_up_on_a_tool_error() -> None:
    data = data_of("easy", 1)
    request = [UserMessage(content=data.request, author="environment")]
    first = InventorySolver().next_message(Transcript(request))
    failed = [
        ToolMessage(tool_call_id=c.id, content="down", is_error=True) for c in first.tool_calls
    ]
    reply = InventorySolver().next_message(Transcript([*request, first, *failed]))
    assert not reply.tool_calls
    assert "could not finish" in reply.text


def test_a_wrong_quantity_scores_below_one_and_says_where() -> None:
    data = data_of("easy", 2)
    (step,) = data.steps
    assert isinstance(step, MoveStep)
    ws = Inventory().create("w", data.locations, data.items, data.reservations)
    ws.move_stock(step.sku, step.source, step.target, step.quantity - 1)
    verdict = score(data, Transcript([]), InventorySnapshot.from_state(ws.state()))
    assert verdict.reward == 0.0
    assert verdict.scores["job_1"] == verdict.scores["state_exact"] == 0.0
    job = verdict.evidence["job_1"]
    source, target = f"{step.sku} at {step.source}", f"{step.sku} at {step.target}"
    assert job["got_on_hand"][source] == job["expected_on_hand"][source] + 1
    assert job["got_on_hand"][target] == job["expected_on_hand"][target] - 1
    differences = verdict.evidence["state_exact"]["stock_differences"]
    assert {(d["location"], d["got"] - d["expected"]) for d in differences} == {
        (step.source, 1),
        (step.target, -1),
    }
    assert verdict.evidence["failed_checks"] == ["job_1", "state_exact"]


def test_a_wrong_answer_or_a_side_effect_fails() -> None:
    data = data_of("hard", 4)
    assert data.question is not None
    transcript, snapshot = play_on_store(data)
    wrong = transcript.append(AssistantMessage(content=f"{data.question.answer + 1}"))
    assert score(data, wrong, snapshot).scores["answer_correct"] == 0.0
    extra = dict(snapshot.reservations) | {("SO-1", data.items[1].sku, data.locations[0].id): 1}
    side_effect = InventorySnapshot(snapshot.stock, extra)
    verdict = score(data, transcript, side_effect)
    assert verdict.reward == 0.0
    assert verdict.evidence["failed_checks"] == ["state_exact"]
    assert len(verdict.evidence["state_exact"]["got_reservations"]) == len(extra)
