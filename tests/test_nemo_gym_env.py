"""NeMo Gym resources servers driven over HTTP: sessions, the failure taxonomy, the
``gymbus nemo`` command line and the documented example, against local servers."""

from __future__ import annotations

import os
import re
import socket
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import anyio
import orjson
import pytest

from gymbus import Runtime
from gymbus.nemo_gym import read_tasks
from gymbus.nemo_gym_env import NeMoGymResourcesEnv
from gymbus.runtime.errors import ConfigError
from gymbus.runtime.messages import ToolMessage
from gymbus.runtime.rollout import Rollout
from tests.nemo_resources_server import (
    DATA,
    NeMoResourcesServer,
    calls,
    jsonl_lines,
    play,
    replay_model,
    task_line,
)
from tests.openai_server import OpenAIServer, tool_policy

GYMBUS = str(Path(sys.executable).parent / "gymbus")


def test_a_server_off_this_machine_is_refused_in_tests() -> None:
    with pytest.raises(ConfigError, match=r"is not on 127\.0\.0\.1"):
        NeMoGymResourcesEnv([], "http://example.com:8000")


@pytest.mark.anyio
async def test_every_episode_keeps_its_own_server_session() -> None:
    env = "example_session_state_mgmt"
    async with NeMoResourcesServer(env) as server:
        rollouts = await play(env, replay_model(env), server, samples=3)
    assert [r.reward for r in rollouts] == [1.0] * 15
    sessions: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for seen in server.requests:
        sessions[seen.session].append((seen.path, seen.had_cookie))
    assert len(sessions) == 15
    for requests in sessions.values():
        assert requests == [
            ("/seed_session", False), ("/increment_counter", True), ("/increment_counter", True),
            ("/get_counter_value", True), ("/verify", True),
        ]  # fmt: skip


@pytest.mark.anyio
async def test_a_wrong_answer_is_scored_zero() -> None:
    env = "example_session_state_mgmt"
    model = calls([("increment_counter", '{"count": 100}')])
    async with NeMoResourcesServer(env) as server:
        rollouts = await play(env, model, server)
    assert [(r.status, r.reward) for r in rollouts] == [("scored", 0.0)] * 5


Check = Callable[[Rollout], None]


def _error_message_then_answer(rollout: Rollout) -> None:
    assert rollout.status == "scored"
    tool = rollout.messages[3]
    assert isinstance(tool, ToolMessage)
    assert tool.is_error


FAULTS: list[tuple[str, int, str | Check, str]] = [
    ("/seed_session", 500, "bad_task", "/seed_session failed with HTTP 500"),
    ("/get_weather", 500, "tool", "/get_weather failed with HTTP 500"),
    ("/verify", 500, "verifier", "/verify failed with HTTP 500"),
    ("/verify", 200, "verifier", "/verify answered without a finite reward"),
    ("/get_weather", 422, _error_message_then_answer, ""),  # the server rejected the arguments
]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "status", "expect", "cause"), FAULTS)
async def test_server_faults_map_onto_the_failure_taxonomy(
    path: str, status: int, expect: str | Check, cause: str
) -> None:
    env = "example_single_tool_call"
    async with NeMoResourcesServer(env) as server:
        server.fail_next(path, status)
        tasks = read_tasks(DATA / env / "example.jsonl")[:1]
        model = calls([("get_weather", '{"city": "SF"}')])
        async with NeMoGymResourcesEnv(tasks, server.url) as nemo, Runtime(model) as rt:
            (rollout,) = await rt.run(nemo.jobs())
    if callable(expect):
        expect(rollout)
        return
    assert rollout.status == "failed"
    assert rollout.reward is None
    assert rollout.failure is not None
    assert rollout.failure.kind == expect
    assert cause in rollout.failure.message


@pytest.mark.anyio
async def test_arguments_violating_the_schema_go_back_to_the_model() -> None:
    env = "example_single_tool_call"
    model = calls([("get_weather", '{"town": "SF"}')], [("get_weather", '{"city": "SF"}')])
    async with NeMoResourcesServer(env) as server:
        (rollout, *_) = await play(env, model, server)
    assert rollout.reward == 1.0
    error = rollout.messages[3]
    assert isinstance(error, ToolMessage)
    assert error.is_error
    assert "city" in error.text
    assert server.paths().count("/get_weather") == 5  # only the valid calls reached it


@pytest.mark.anyio
async def test_an_unreachable_server_fails_the_episode_as_a_bad_task() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tasks = read_tasks(DATA / "example_single_tool_call" / "example.jsonl")[:2]
    async with (
        NeMoGymResourcesEnv(tasks, f"http://127.0.0.1:{port}") as nemo,
        Runtime(calls()) as rt,
    ):
        rollouts = await rt.run(nemo.jobs())
    for rollout in rollouts:
        assert rollout.failure is not None
        assert rollout.failure.kind == "bad_task"
        assert f"127.0.0.1:{port}/seed_session" in rollout.failure.message


# --- command line ------------------------------------------------------------------


async def _gymbus(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"COLUMNS": "120"}
    result = await anyio.run_process([GYMBUS, *args], check=False, env=env, cwd=cwd)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.anyio
async def test_the_cli_runs_tasks_on_a_server_and_exports_nemo_rollouts(tmp_path: Path) -> None:
    env = "example_single_tool_call"
    tasks = DATA / env / "example.jsonl"
    async with (
        NeMoResourcesServer(env) as server,
        OpenAIServer(policy=tool_policy("get_weather", {"city": "SF"})) as model,
    ):
        code, stdout, stderr = await _gymbus(
            "nemo", "run", str(tasks), "--server", server.url, "--model", "openai:m",
            "--base-url", model.base_url, "--samples", "2", "--out", "played.jsonl", cwd=tmp_path,
        )  # fmt: skip
    assert code == 0, stdout + stderr
    played = jsonl_lines(tmp_path / "played.jsonl")
    assert [row["reward"] for row in played] == [1.0] * 10
    assert {row["env"] for row in played} == {env}
    code, stdout, stderr = await _gymbus(
        "nemo", "export-rollouts", "played.jsonl", "--tasks", str(tasks), "--out", "nemo.jsonl",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, stderr
    assert "wrote 10 NeMo Gym rollouts" in stdout
    sample = jsonl_lines(DATA / env / "example_rollouts.jsonl")[0]
    for line in jsonl_lines(tmp_path / "nemo.jsonl"):
        assert list(line) == list(sample)
        assert [i["type"] for i in line["response"]["output"]] == [
            "function_call",
            "function_call_output",
            "message",
        ]
    other_tasks = str(DATA / "example_multi_step" / "example.jsonl")
    code, _, stderr = await _gymbus(
        "nemo", "export-rollouts", "played.jsonl", "--tasks", other_tasks, "--out", "x.jsonl",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert "played.jsonl:1: messages: the prompt is not" in " ".join(stderr.split())


@pytest.mark.anyio
async def test_the_cli_names_the_bad_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "tasks.jsonl").write_bytes(orjson.dumps(task_line(seed=1)) + b"\n")
    code, stdout, stderr = await _gymbus(
        "nemo", "run", "tasks.jsonl", "--server", "http://127.0.0.1:9", "--model", "null",
        "--out", "o.jsonl", cwd=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert "tasks.jsonl:1: responses_create_params.seed: unknown field" in " ".join(stderr.split())
    assert "Traceback" not in stdout + stderr


def _docs_example() -> str:
    """The Python example of the NeMo Gym section of docs/deployment.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "deployment.md").read_text()
    section = text.partition("\n## NeMo Gym\n")[2]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "docs/deployment.md has no NeMo Gym section with a Python example"
    return str(blocks[0])


@pytest.mark.anyio
async def test_the_documented_example_runs_as_written(tmp_path: Path) -> None:
    env = "example_single_tool_call"
    example = _docs_example()
    async with (
        NeMoResourcesServer(env) as server,
        OpenAIServer(policy=tool_policy("get_weather", {"city": "SF"})) as model,
    ):
        code = (
            example.replace("http://127.0.0.1:8000", server.url)
            .replace("http://127.0.0.1:8001/v1", model.base_url)
            .replace(
                f"resources_servers/{env}/data/example.jsonl", str(DATA / env / "example.jsonl")
            )
        )
        result = await anyio.run_process([sys.executable, "-c", code], check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.decode().splitlines()) == 20
    lines = jsonl_lines(tmp_path / "nemo_rollouts.jsonl")
    assert [line["reward"] for line in lines] == [1.0] * 20
