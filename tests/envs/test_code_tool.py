"""``python_exec`` through the real runtime: the model calls it and reads the result."""

from __future__ import annotations

import json
import sys

import pytest

import gymbus
from gymbus.envs.code_tool import TOOL_LIMITS, describe_run, python_exec_tool
from gymbus.envs.sandbox import Sandbox, SandboxLimits, SandboxProtections, SandboxResult
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolArgumentsError
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.rollout import Rollout
from gymbus.runtime.runtime import Runtime
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox
from gymbus.runtime.verification import CompletedEpisode, Score

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
]


class SaysFortyTwo:
    async def verify(self, episode: CompletedEpisode) -> Score:
        last = episode.transcript.last
        return Score(reward=float(last is not None and "42" in last.text))


def coder(code: str) -> gymbus.FunctionModel:
    """Calls ``python_exec(code)`` once, then answers with the tool's output."""

    def reply(request: ModelRequest) -> AssistantMessage:
        last = request.conversation.last
        if isinstance(last, ToolMessage):
            return AssistantMessage(content=last.text)
        call = ToolCall(id="c1", name="python_exec", arguments=json.dumps({"code": code}))
        return AssistantMessage(tool_calls=(call,))

    return gymbus.FunctionModel(reply)


async def episode(code: str, tool: FunctionTool | None = None) -> Rollout:
    spec = EpisodeSpec(
        task=Task(env="sandbox-tool", task_id="sandbox-tool/0", seed=0),
        messages=(UserMessage(content="What is 6 × 7? Use python_exec."),),
        tools=Toolbox([tool or python_exec_tool()]),
        verifier=SaysFortyTwo(),
    )
    async with Runtime(coder(code)) as runtime:
        [rollout] = await runtime.run([EpisodeJob(env="sandbox-tool", seed=0, build=lambda: spec)])
    return rollout


def tool_message(rollout: Rollout) -> ToolMessage:
    [message] = [m for m in rollout.messages if isinstance(m, ToolMessage)]
    return message


async def test_the_model_gets_the_output_back_as_a_tool_message() -> None:
    rollout = await episode("print(6 * 7)")
    assert rollout.status == "scored"
    assert rollout.reward == 1.0
    message = tool_message(rollout)
    assert not message.is_error
    assert message.name == "python_exec"
    assert message.text == "status: exited with code 0\nstdout:\n42"


async def test_crashing_code_is_a_normal_result_the_model_can_read() -> None:
    rollout = await episode("print('before')\nraise SystemExit(1 / 0)\n")
    assert rollout.status == "scored"
    text = tool_message(rollout).text
    assert not tool_message(rollout).is_error
    assert text.startswith("status: exited with code 1\nstdout:\nbefore\nstderr:\nTraceback")
    assert text.endswith("ZeroDivisionError: division by zero")
    assert 'File "main.py", line 2, in <module>' in text


async def test_a_loop_is_reported_as_stopped() -> None:
    tool = python_exec_tool(Sandbox(SandboxLimits(timeout=0.5)))
    rollout = await episode("while True:\n    pass\n", tool)
    assert rollout.status == "scored"
    assert tool_message(rollout).text == ("status: stopped at the wall-clock timeout\n(no output)")


async def test_refusals_and_truncation_are_in_the_result() -> None:
    tool = python_exec_tool(Sandbox(SandboxLimits(output_limit=10)))
    code = "print('x' * 100)\nopen('/etc/passwd')\n"
    rollout = await episode(code, tool)
    text = tool_message(rollout).text
    assert text.startswith("status: exited with code 1\nstdout:\nxxxxxxxxxx\n")
    assert "[stdout truncated: 101 bytes written, the start is shown]" in text
    assert text.endswith("refused by the sandbox: open '/etc/passwd'")


async def test_a_sandbox_that_cannot_start_fails_the_episode_as_a_tool_failure() -> None:
    tool = python_exec_tool(Sandbox(python="/nonexistent/python"))
    rollout = await episode("print(42)", tool)
    assert rollout.status == "failed"
    assert rollout.failure is not None
    assert rollout.failure.kind == "tool"
    assert "python_exec: sandbox could not start '/nonexistent/python'" in rollout.failure.message


async def test_the_spec_tells_the_model_the_limits_and_checks_arguments() -> None:
    tool = python_exec_tool()
    assert tool.spec.name == "python_exec"
    assert tool.spec.parameters["required"] == ["code"]
    assert "10 s wall clock" in tool.spec.description
    assert f"{TOOL_LIMITS.output_limit:,} bytes" in tool.spec.description
    with pytest.raises(ToolArgumentsError, match="code"):
        await tool({"source": "print(1)"})
    assert python_exec_tool(name="run_python").spec.name == "run_python"


def result(**fields: object) -> SandboxResult:
    protections = SandboxProtections(
        network_isolated=True,
        user_namespace=True,
        nproc_enforced=False,
        audit_hook=True,
        limits={"cpu": 3},
    )
    defaults: dict[str, object] = {
        "exit_code": 0,
        "timed_out": False,
        "stdout": "",
        "stderr": "",
        "stdout_bytes": 0,
        "stderr_bytes": 0,
        "stdout_truncated": False,
        "stderr_truncated": False,
        "duration_s": 0.1,
        "protections": protections,
    }
    return SandboxResult.model_validate(defaults | fields)


def test_describe_run() -> None:
    assert describe_run(result()) == "status: exited with code 0\n(no output)"
    assert describe_run(result(exit_code=-24)) == (
        "status: killed by SIGXCPU: CPU time limit (3 s)\n(no output)"
    )
    assert describe_run(result(exit_code=-9)) == "status: killed by SIGKILL\n(no output)"
    refused = tuple(f"open '/f{i}'" for i in range(7))
    text = describe_run(result(stderr="e\n", stderr_bytes=2, refused=refused, stray_processes=2))
    assert text == (
        "status: exited with code 0\nstderr:\ne\n"
        "refused by the sandbox: open '/f0'; open '/f1'; open '/f2'; open '/f3'; "
        "open '/f4' (+2 more)\n[2 process(es) left running were killed]"
    )
