"""NeMo Gym's files: task lines read as gymbus tasks, rollout lines read and written back
field for field (checked against the sample files of three NeMo Gym environments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from gymbus.nemo_gym import (
    NeMoGymFileError,
    env_name_for,
    export_rollouts,
    read_rollouts,
    read_tasks,
)
from gymbus.nemo_gym_wire import output_items
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AnyMessage,
    AssistantMessage,
    Generation,
    SystemMessage,
    TokenLogprob,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.sink import RolloutSink
from gymbus.runtime.wire_responses import from_responses
from tests.nemo_resources_server import (
    DATA,
    ENVS,
    NeMoResourcesServer,
    calls,
    check_response,
    jsonl_lines,
    play,
    replay_model,
    task_line,
)
from tests.runtime.strategies import conversations

STORE = MediaStore()


def _prompt_key(items: list[dict[str, Any]]) -> str:
    return str(items[-1]["content"])


def _without_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "id" or v is None} for item in items]


# --- task files --------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_sample_tasks_read_as_gymbus_tasks(env: str) -> None:
    path = DATA / env / "example.jsonl"
    tasks = read_tasks(path)
    assert [t.task.seed for t in tasks] == [0, 1, 2, 3, 4]
    assert {t.task.env for t in tasks} == {env}
    assert [t.data for t in tasks] == jsonl_lines(path)
    for task in tasks:
        prompt = task.data["responses_create_params"]
        assert [s.name for s in task.tools] == [tool["name"] for tool in prompt["tools"]]
        assert all(s.strict and s.parameters["type"] == "object" for s in task.tools)
        last = task.messages[-1]
        assert isinstance(last, UserMessage)
        assert last.author == "environment"
        assert last.text == prompt["input"][-1]["content"]
        assert all(isinstance(m, SystemMessage) for m in task.messages[:-1])  # developer too


def test_task_ids_are_the_id_field_or_the_line() -> None:
    assert [t.task.task_id for t in read_tasks(DATA / "example_multi_step" / "example.jsonl")] == [
        f"example_multi_step/{i}" for i in range(5)
    ]
    tasks = read_tasks(DATA / "example_single_tool_call" / "example.jsonl", env="weather")
    assert tasks[3].task.task_id == "weather/3"


def test_the_environment_is_named_after_the_folder(tmp_path: Path) -> None:
    assert env_name_for(tmp_path / "my_server" / "data" / "example.jsonl") == "my_server"
    assert env_name_for(tmp_path / "my_server" / "train.jsonl") == "my_server"


RCP = "responses_create_params"
BAD_LINES = [
    (b"{not json", "(line)"),
    (b"[1, 2]", "(line)"),
    (orjson.dumps({"expected": 1}), RCP),
    (orjson.dumps(task_line(input=[{"role": "robot", "content": "x"}])), f"{RCP}.input[0].role"),
    (orjson.dumps(task_line(input=[])), f"{RCP}.input"),
    (orjson.dumps(task_line(seed=3)), f"{RCP}.seed"),
    (orjson.dumps(task_line(tools=[{"type": "web_search"}])), f"{RCP}.tools[0].type"),
    (orjson.dumps(task_line(tools=[{"type": "function", "name": "a b"}])), f"{RCP}.tools[0].name"),
    (orjson.dumps(task_line(tools=[{"type": "function", "name": "f", "parameters": {"type": 5}}])),
     f"{RCP}.tools[0].parameters"),
    (orjson.dumps({**task_line(), "id": [1]}), "id"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "field"), BAD_LINES)
def test_a_bad_task_line_names_file_line_and_field(tmp_path: Path, line: bytes, field: str) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(orjson.dumps(task_line()) + b"\n\n" + line + b"\n")
    with pytest.raises(NeMoGymFileError) as info:
        read_tasks(path)
    assert (info.value.path, info.value.line, info.value.field) == (path, 3, field)
    assert str(info.value).startswith(f"{path}:3: {field}: ")


def test_duplicate_ids_are_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps({**task_line(), "id": 7}) for _ in range(2)) + b"\n")
    with pytest.raises(NeMoGymFileError, match=r"tasks.jsonl:2: id: duplicate task id '7'"):
        read_tasks(path)


def test_a_torn_last_line_is_skipped_and_a_complete_one_kept(tmp_path: Path) -> None:
    good = orjson.dumps(task_line(instructions="be brief", input="hello"))
    path = tmp_path / "t.jsonl"
    path.write_bytes(good + b"\n" + good[:20])
    assert len(read_tasks(path)) == 1
    path.write_bytes(good + b"\n" + good)  # no final newline, but whole
    tasks = read_tasks(path)
    assert len(tasks) == 2
    assert [m.text for m in tasks[1].messages] == ["be brief", "hello"]


def test_a_task_asks_for_the_sampling_settings_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [task_line(temperature=0.2, max_output_tokens=64), task_line()]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    with_params, without = read_tasks(path)
    params = with_params.sampling()
    assert params is not None
    assert params.model_dump(exclude_unset=True) == {"temperature": 0.2, "max_tokens": 64}
    assert without.sampling() is None


# --- rollout files -----------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_sample_rollouts_read_and_write_back_item_for_item(env: str) -> None:
    path = DATA / env / "example_rollouts.jsonl"
    rollouts = list(read_rollouts(path))
    assert [r.reward for r in rollouts] == [1.0] * 5
    for rollout, line in zip(rollouts, jsonl_lines(path), strict=True):
        assert isinstance(rollout.output[-1], AssistantMessage)
        assert rollout.extra == {
            k: v
            for k, v in line.items()
            if k not in ("responses_create_params", "response", "reward")
        }
        written = output_items(rollout.output, id_seed="x")
        assert _without_ids(written) == _without_ids(line["response"]["output"])


def _nemo_expressible(message: AnyMessage) -> AnyMessage:
    """NeMo Gym tool outputs are one string, without a name."""
    if isinstance(message, ToolMessage):
        return ToolMessage(tool_call_id=message.tool_call_id, content=message.text)
    return message


@settings(max_examples=150)
@given(conversations(STORE, ("text",), assistant_kinds=("text",)))
def test_output_items_round_trip_and_validate(conversation: list[AnyMessage]) -> None:
    """Written as NeMo Gym output items, read back as the same messages (identity for
    text conversations without adjacent assistant turns, which merge on the wire)."""
    conversation = [_nemo_expressible(m) for m in conversation]
    items = orjson.loads(orjson.dumps(output_items(conversation, id_seed="p", media=STORE)))
    check_response({"id": "r", "model": "m", "created_at": 0, "object": "response",
                    "parallel_tool_calls": True, "tools": [], "output": items})  # fmt: skip
    assert from_responses(items, STORE) == conversation
    assert items == output_items(conversation, id_seed="p", media=STORE)  # deterministic


def test_token_ids_travel_on_the_last_item_of_each_turn_and_back(tmp_path: Path) -> None:
    def generation(prompt: list[int], tokens: list[int]) -> Generation:
        logprobs = tuple(TokenLogprob(token=str(t), logprob=-0.5, token_id=t) for t in tokens)
        return Generation(
            model="m", prompt_token_ids=tuple(prompt), token_ids=tuple(tokens), logprobs=logprobs
        )

    call = ToolCall(id="c1", name="get_weather", arguments="{}")
    turns: list[AnyMessage] = [
        AssistantMessage(
            reasoning="look it up", tool_calls=(call,), generation=generation([1, 2], [3, 4])
        ),
        ToolMessage(tool_call_id="c1", content="cold"),
        AssistantMessage(content="It is cold.", generation=generation([1, 2, 3, 4, 5], [6])),
    ]
    items = output_items(turns, id_seed="e")
    assert [i["type"] for i in items] == [
        "reasoning",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert "generation_token_ids" not in items[0]
    assert items[1]["generation_token_ids"] == [3, 4]
    assert items[3]["prompt_token_ids"] == [1, 2, 3, 4, 5]
    check_response({"id": "r", "model": "m", "created_at": 0, "object": "response",
                    "parallel_tool_calls": True, "tools": [], "output": items})  # fmt: skip
    path = tmp_path / "r.jsonl"
    line = {"responses_create_params": task_line()["responses_create_params"], "reward": 0.5,
            "response": {"model": "m", "output": items}}  # fmt: skip
    path.write_bytes(orjson.dumps(line) + b"\n")
    (rollout,) = read_rollouts(path)
    back = rollout.output
    assert [type(m) for m in back] == [AssistantMessage, ToolMessage, AssistantMessage]
    assert isinstance(back[0], AssistantMessage)
    assert back[0].generation is not None
    assert back[0].generation.token_ids == (3, 4)
    assert back[0].reasoning == "look it up"
    assert isinstance(back[2], AssistantMessage)
    assert back[2].generation is not None
    assert back[2].generation.prompt_token_ids == (1, 2, 3, 4, 5)


def test_a_bad_rollout_line_names_its_field(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    line = {
        **task_line(),
        "reward": 1.0,
        "response": {"output": [{"type": "function_call", "name": "f"}]},
    }
    path.write_bytes(orjson.dumps(line) + b"\n")
    with pytest.raises(NeMoGymFileError, match=r"r.jsonl:1: response.output\[0\].call_id: "):
        list(read_rollouts(path))


# --- played on a resources server, exported -------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("env", ENVS)
async def test_tasks_played_on_a_server_export_like_the_samples(env: str, tmp_path: Path) -> None:
    async with NeMoResourcesServer(env) as server:
        rollouts = await play(env, replay_model(env), server, samples=2)
    assert len(rollouts) == 10
    assert all(r.status == "scored" and r.reward == 1.0 for r in rollouts), rollouts[0].failure
    assert {r.metadata["source"] for r in rollouts} == {"nemo-gym"}
    gymbus_file, nemo_file = tmp_path / "gymbus.jsonl", tmp_path / "nemo.jsonl"
    with RolloutSink(gymbus_file) as sink:
        for rollout in rollouts:
            sink.write(rollout)
    result = export_rollouts(gymbus_file, DATA / env / "example.jsonl", nemo_file)
    assert (result.written, result.skipped_failed) == (10, 0)
    samples = {
        _prompt_key(s["responses_create_params"]["input"]): s
        for s in jsonl_lines(DATA / env / "example_rollouts.jsonl")
    }
    for line in jsonl_lines(nemo_file):
        sample = samples[_prompt_key(line["responses_create_params"]["input"])]
        assert list(line) == list(sample)  # same fields, same order
        assert list(line["response"]) == list(sample["response"])
        assert list(line["responses_create_params"]) == list(sample["responses_create_params"])
        for ours, theirs in zip(
            line["responses_create_params"]["input"],
            sample["responses_create_params"]["input"],
            strict=True,
        ):
            assert list(ours) == list(theirs)
        assert _without_ids(line["response"]["output"]) == _without_ids(
            sample["response"]["output"]
        )
        for ours, theirs in zip(
            line["response"]["output"], sample["response"]["output"], strict=True
        ):
            assert list(ours) == list(theirs)
        assert {
            k: v for k, v in line.items() if k not in ("response", "responses_create_params")
        } == {k: v for k, v in sample.items() if k not in ("response", "responses_create_params")}
        check_response(line["response"])


# --- export ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_export_leaves_out_failures_and_refuses_other_tasks(tmp_path: Path) -> None:
    env = "example_single_tool_call"
    async with NeMoResourcesServer(env) as server:
        server.fail_next("/verify", 500)
        rollouts = await play(env, calls(), server)
    played = tmp_path / "played.jsonl"
    with RolloutSink(played) as sink:
        for rollout in rollouts:
            sink.write(rollout)
    result = export_rollouts(played, DATA / env / "example.jsonl", tmp_path / "out.jsonl")
    assert (result.written, result.skipped_failed) == (4, 1)
    with pytest.raises(NeMoGymFileError, match=r"played.jsonl:\d+: messages: the prompt is not"):
        export_rollouts(played, DATA / "example_multi_step" / "example.jsonl", tmp_path / "x.jsonl")
