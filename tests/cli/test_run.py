"""`gymbus run` and `gymbus envs` as a user runs them: the installed console script in a
subprocess, against real servers on 127.0.0.1 where a server is needed."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from tests.openai_server import Fault, OpenAIServer
from tests.solver_policy import retail_solver_policy
from tests.user_policy import playing_user

GYMBUS = str(Path(sys.executable).parent / "gymbus")
SECRET = "sk-test-DO-NOT-LEAK-7f3a9c"
ROLLOUT_FIELDS = {
    "episode_id", "env", "task_id", "seed", "status", "reward", "scores",
    "failure", "messages", "metadata", "usage", "timing",
}  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update({"COLUMNS": "120", **extra})
    return env


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def _gymbus(*args: str, **env: str) -> tuple[int, str, str]:
    result = await anyio.run_process([GYMBUS, *args], check=False, env=_env(**env))
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.anyio
async def test_oracle_scores_one_on_every_episode(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    code, stdout, stderr = await _gymbus(
        "run", "retail-orders", "--model", "oracle", "--n", "20", "--out", str(out)
    )
    assert code == 0, stderr
    rows = _lines(out)
    assert len(rows) == 20
    assert all(row.keys() >= ROLLOUT_FIELDS for row in rows)
    assert [row["reward"] for row in rows] == [1.0] * 20
    assert {row["status"] for row in rows} == {"scored"}
    assert sorted(row["seed"] for row in rows) == list(range(20))
    assert rows[0]["metadata"]["core_capabilities"] == ["information-dependency"]
    assert "mean reward" in stdout
    assert "1.0000" in stdout


@pytest.mark.anyio
async def test_null_scores_zero_and_is_still_scored(tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    code, _, stderr = await _gymbus("run", "retail-orders", "--model", "null", "--n", "20",
                                    "--out", str(out))  # fmt: skip
    assert code == 0, stderr
    rows = _lines(out)
    assert [row["reward"] for row in rows] == [0.0] * 20
    assert {row["status"] for row in rows} == {"scored"}


@pytest.mark.anyio
async def test_an_unknown_environment_exits_2_and_lists_the_names() -> None:
    code, stdout, stderr = await _gymbus("run", "no-such-env")
    assert code == 2
    assert "unknown environment 'no-such-env'" in stderr
    assert "retail-orders" in stderr
    assert "Traceback" not in stdout + stderr


@pytest.mark.anyio
async def test_an_unreachable_server_gives_model_failures_a_summary_and_exit_1(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "u.jsonl"
    code, stdout, stderr = await _gymbus(
        "run", "retail-orders", "--model", "openai:m", "--base-url",
        f"http://127.0.0.1:{port}/v1", "--max-attempts", "2", "--n", "4", "--out", str(out),
    )  # fmt: skip
    assert code == 1
    rows = _lines(out)
    assert len(rows) == 4
    for row in rows:
        assert row["status"] == "failed"
        assert row["reward"] is None
        assert row["failure"]["kind"] == "model"
        assert f"127.0.0.1:{port}" in row["failure"]["message"]
    assert "failed: model" in stdout
    assert "Traceback" not in stdout + stderr


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_both_apis_complete_episodes_against_a_local_server(api: str, tmp_path: Path) -> None:
    out = tmp_path / f"{api}.jsonl"
    async with OpenAIServer(policy=retail_solver_policy) as server:
        code, stdout, stderr = await _gymbus(
            "run", "retail-orders", "--model", "openai:fake-model", "--base-url",
            server.base_url, "--api", api, "--n", "6", "--out", str(out),
        )  # fmt: skip
    assert code == 0, stdout + stderr
    rows = _lines(out)
    assert {row["status"] for row in rows} == {"scored"}
    assert [row["reward"] for row in rows] == [1.0] * 6
    assert server.count == 6 * 4


@pytest.mark.anyio
async def test_the_api_key_is_sent_but_never_logged_or_written(tmp_path: Path) -> None:
    out = tmp_path / "k.jsonl"
    async with OpenAIServer(policy=retail_solver_policy) as server:
        server.fail_next(Fault.http(401, message="invalid api key"))
        code, stdout, stderr = await _gymbus(
            "--log-format", "json", "--log-level", "debug",
            "run", "retail-orders", "--model", "openai:m", "--base-url", server.base_url,
            "--n", "2", "--concurrency", "1", "--out", str(out),
            OPENAI_API_KEY=SECRET,
        )  # fmt: skip
        headers = [r.headers.get("Authorization") for r in server.requests]
    assert f"Bearer {SECRET}" in headers  # it was used …
    assert code == 1  # … the 401 is a model failure …
    everything = stdout + stderr + out.read_text()
    assert SECRET not in everything  # … and it appears nowhere
    assert "401" in everything


@pytest.mark.anyio
async def test_json_logs_are_one_object_per_line_on_stderr(tmp_path: Path) -> None:
    code, _, stderr = await _gymbus(
        "--log-format", "json", "--log-level", "info", "run", "retail-orders", "--n", "2"
    )
    assert code == 0
    events = [orjson.loads(line) for line in stderr.splitlines() if line.strip()]
    assert [e["event"] for e in events] == ["run.started", "run.finished"]
    assert events[1]["episodes"] == 2
    assert events[1]["level"] == "info"


@pytest.mark.anyio
async def test_envs_json_lists_metadata_in_kebab_case() -> None:
    code, stdout, _ = await _gymbus("envs", "--json")
    assert code == 0
    rows = orjson.loads(stdout)
    names = [row["name"] for row in rows]
    assert "retail-orders" in names
    meta = rows[names.index("retail-orders")]["metadata"]
    assert set(meta) == {
        "rollout_structures", "core_capabilities", "knowledge_domain", "task_type",
        "verification_method",
    }  # fmt: skip
    assert meta["rollout_structures"] == ["multi-step"]


@pytest.mark.anyio
async def test_envs_table_names_every_environment() -> None:
    code, stdout, _ = await _gymbus("envs")
    assert code == 0
    assert "retail-orders" in stdout


@pytest.mark.anyio
async def test_user_model_plays_the_simulated_user_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "llm-user.jsonl"
    async with OpenAIServer(policy=playing_user, model="user-model") as server:
        code, stdout, stderr = await _gymbus(
            "run", "travel-clarify", "--model", "oracle", "--user-model", "openai:user-model",
            "--user-base-url", server.base_url, "--n", "4", "--out", str(out),
        )  # fmt: skip
        user_requests = server.count
    assert code == 0, stdout + stderr
    rows = _lines(out)
    assert [row["reward"] for row in rows] == [1.0] * 4
    assert all(row["user_usage"]["completion_tokens"] > 0 for row in rows)
    assert all(row["user_audit"]["faithful"] for row in rows)
    assert user_requests >= 4


@pytest.mark.anyio
async def test_user_model_on_an_environment_without_a_user_is_bad_input() -> None:
    code, _, stderr = await _gymbus(
        "run", "retail-orders", "--user-model", "openai:m", "--base-url", "http://127.0.0.1:1/v1"
    )
    assert code == 2
    assert "user_model" in stderr
