"""`gymbus serve` and `gymbus run ENV --remote URL` as a user runs them: installed console
scripts in subprocesses (started outside the repository), on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from anyio.abc import Process

pytestmark = pytest.mark.anyio

GYMBUS = str(Path(sys.executable).parent / "gymbus")
TOKEN = "cli-serve-token-0123456789abcdef"
SECOND = "cli-serve-second-token-abcdef012345"
LISTENING = "gymbus serve: listening on "


def _env(**extra: str) -> dict[str, str]:
    drop = {"GYMBUS_SERVER_TOKEN", "OPENAI_API_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"COLUMNS": "120", **extra})
    return env


async def _gymbus(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    result = await anyio.run_process([GYMBUS, *args], check=False, cwd=cwd, env=_env(**env))
    return result.returncode, result.stdout.decode(), result.stderr.decode()


class Served:
    def __init__(self, url: str, process: Process) -> None:
        self.url = url
        self.process = process
        self.output = ""  # stdout and stderr, once stopped


@asynccontextmanager
async def gymbus_serve(cwd: Path, *args: str, **env: str) -> AsyncIterator[Served]:
    """``gymbus serve --port 0 ARGS``; yields once it printed the URL, then stops it."""
    command = [GYMBUS, "--log-level", "info", "serve", "--port", "0", *args]
    process = await anyio.open_process(command, cwd=cwd, env=_env(**env))
    assert process.stdout is not None
    assert process.stderr is not None
    seen = b""
    try:
        with anyio.fail_after(60):
            while LISTENING.encode() not in seen or not seen.endswith(b"\n"):
                seen += await process.stdout.receive()
        line = next(x for x in seen.decode().splitlines() if x.startswith(LISTENING))
        served = Served(line.removeprefix(LISTENING), process)
        yield served
    finally:
        process.terminate()
        with anyio.fail_after(30):
            assert await process.wait() == 0  # SIGTERM: a clean shutdown
            rest = [seen]
            for stream in (process.stdout, process.stderr):
                async for chunk in stream:
                    rest.append(chunk)
        await process.aclose()
    served.output = b"".join(rest).decode()


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    for row in rows:
        del row["timing"]
    return sorted(rows, key=lambda row: row["episode_id"])


async def test_a_served_environment_plays_from_the_command_line_like_a_local_one(
    tmp_path: Path,
) -> None:
    async with gymbus_serve(tmp_path, GYMBUS_SERVER_TOKEN=TOKEN) as served:
        assert served.url.startswith("http://127.0.0.1:")
        code, stdout, stderr = await _gymbus(
            tmp_path, "run", "retail-orders", "--remote", served.url, "--model", "oracle",
            "--n", "50", "--out", "remote.jsonl", GYMBUS_SERVER_TOKEN=TOKEN,
        )  # fmt: skip
        assert code == 0, stderr
    remote = _rows(tmp_path / "remote.jsonl")
    assert [row["reward"] for row in remote] == [1.0] * 50
    assert "1.0000" in stdout
    code, _, stderr = await _gymbus(
        tmp_path, "run", "retail-orders", "--model", "oracle", "--n", "50", "--out", "local.jsonl"
    )
    assert code == 0, stderr
    assert remote == _rows(tmp_path / "local.jsonl")
    assert TOKEN not in served.output + stdout + stderr
    assert "serve.started" in served.output


async def test_each_token_of_a_token_file_is_a_client_and_others_are_refused(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# one per client\n{TOKEN}\n\n{SECOND}\n")
    async with gymbus_serve(tmp_path, "--env", "retail-orders", "--token-file", str(tokens)) as s:
        code, _, stderr = await _gymbus(
            tmp_path, "run", "retail-orders", "--remote", s.url, "--n", "3",
            GYMBUS_SERVER_TOKEN=SECOND,
        )  # fmt: skip
        assert code == 0, stderr
        code, _, stderr = await _gymbus(
            tmp_path, "run", "travel-clarify", "--remote", s.url, GYMBUS_SERVER_TOKEN=TOKEN
        )
        assert code == 2
        assert "unknown environment 'travel-clarify'; available: retail-orders" in stderr
        wrong = "not-the-token-0123456789abcdef"
        code, stdout, stderr = await _gymbus(
            tmp_path, "run", "retail-orders", "--remote", s.url, GYMBUS_SERVER_TOKEN=wrong
        )
        assert code == 2
        assert "HTTP 401" in stderr
        assert wrong not in stdout + stderr
        assert TOKEN not in stdout + stderr
        code, _, stderr = await _gymbus(tmp_path, "run", "retail-orders", "--remote", s.url)
        assert code == 2
        assert "HTTP 401" in stderr
    assert TOKEN not in s.output
    assert SECOND not in s.output


async def test_insecure_serves_without_a_token_on_loopback(tmp_path: Path) -> None:
    async with gymbus_serve(tmp_path, "--insecure", "--env", "travel-clarify") as served:
        code, _, stderr = await _gymbus(
            tmp_path, "run", "travel-clarify", "--remote", served.url, "--n", "4",
            "--difficulty", "hard", "--out", "o.jsonl",
        )  # fmt: skip
        assert code == 0, stderr
    rows = _rows(tmp_path / "o.jsonl")
    assert [row["reward"] for row in rows] == [1.0] * 4
    assert all(row["user_audit"]["faithful"] for row in rows)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--insecure", "--host", "0.0.0.0"], {}, "only on a loopback address"),
        ([], {}, "no token: set GYMBUS_SERVER_TOKEN"),
        ([], {"GYMBUS_SERVER_TOKEN": "short"}, "at least 16 characters"),
        (["--env", "no-such-env"], {"GYMBUS_SERVER_TOKEN": TOKEN}, "unknown environment"),
        (["--token-file", "missing.txt"], {}, "cannot read the token file"),
    ],
)
async def test_serve_refuses_bad_input_with_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    code, stdout, stderr = await _gymbus(tmp_path, "serve", "--port", "0", *args, **env)
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stdout + stderr


async def test_run_remote_refuses_a_user_model(tmp_path: Path) -> None:
    code, _, stderr = await _gymbus(
        tmp_path, "run", "travel-clarify", "--remote", "http://127.0.0.1:9",
        "--user-model", "openai:u", "--base-url", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert code == 2
    assert "--user-model cannot be used with --remote" in stderr


async def test_run_remote_reports_an_unreachable_server(tmp_path: Path) -> None:
    code, stdout, stderr = await _gymbus(
        tmp_path, "run", "retail-orders", "--remote", "http://127.0.0.1:9", "--max-attempts", "1"
    )
    assert code == 2
    assert "environment server http://127.0.0.1:9" in stderr
    assert "Traceback" not in stdout + stderr


async def test_serve_reports_a_port_in_use(tmp_path: Path) -> None:
    async with gymbus_serve(tmp_path, "--insecure") as served:
        port = served.url.rsplit(":", 1)[1]
        code, _, stderr = await _gymbus(tmp_path, "serve", "--insecure", "--port", port)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
