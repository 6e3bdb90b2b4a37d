"""A test environment whose option ``fault`` makes one part misbehave, for comparing a
served environment with the same one in-process (tests/test_remote.py, test_server.py).

The episode: the solver looks ``a`` up with the ``lookup`` tool and answers with the
value; the user asks "Are you sure?" once, then ends; the verifier checks the answer and
reports the server-side state (lookups made) as evidence. Every episode's ``cleanup``
counts itself in :attr:`FaultyEnv.cleanups`; with ``fault="toolserver"`` the (then
asynchronous) build raises ``ToolError``, as an MCP server that cannot start does.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable
from typing import Any, ClassVar, Literal

import anyio
import anyio.lowlevel
from PIL import Image

from gymbus.envs import Environment, EnvMetadata
from gymbus.envs.base import Difficulty
from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.errors import ToolError, ToolInputError
from gymbus.runtime.limits import Limits
from gymbus.runtime.media import MediaStore
from gymbus.runtime.messages import (
    AssistantMessage,
    ImagePart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolOutput, ToolSpec
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import EndEpisode, UserAudit, UserTurn
from gymbus.runtime.verification import CompletedEpisode, Score

Fault = Literal[
    "none", "input", "arguments", "crash", "hang", "gate", "user", "audit", "solver",
    "verifier", "nan", "task", "media", "toolserver",
]  # fmt: skip
FAULTS: tuple[Fault, ...] = (
    "none", "input", "arguments", "crash", "hang", "user", "audit", "solver", "verifier",
    "nan", "task", "media", "toolserver",
)  # fmt: skip

LOOKUP = ToolSpec(
    name="lookup",
    description="The value stored under a key.",
    parameters={
        "type": "object",
        "properties": {"key": {"type": "string"}},
        "required": ["key"],
        "additionalProperties": False,
    },
)


def png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


class FaultyEnv(Environment):
    name = "faulty"
    description = "One lookup and an answer; the option `fault` breaks one part."
    metadata = EnvMetadata(
        rollout_structures=("multi-step", "multi-turn"),
        core_capabilities=(),
        knowledge_domain="testing",
        task_type="lookup",
        verification_method="state-check",
    )
    gate: ClassVar[anyio.Event | None] = None
    """With ``fault="gate"``, lookups wait for this event (set by the test)."""
    cleanups: ClassVar[int] = 0
    """Episodes cleaned up (in this process)."""
    closed: ClassVar[int] = 0
    """Instances closed (``aclose``)."""

    def __init__(self, *, difficulty: Difficulty = "medium", fault: Fault = "none") -> None:
        super().__init__(difficulty=difficulty)
        self.fault = fault

    async def aclose(self) -> None:
        FaultyEnv.closed += 1

    def task(self, seed: int) -> Task:
        if self.fault == "task":
            raise ValueError("no task today")
        return Task(env=self.name, task_id=f"{self.name}/{self.fault}/{seed}", seed=seed)

    def episode(self, task: Task) -> EpisodeSpec | Awaitable[EpisodeSpec]:
        if self.fault == "toolserver":
            return self._tool_server_down()
        return self._episode(task)

    async def _tool_server_down(self) -> EpisodeSpec:
        await anyio.lowlevel.checkpoint()
        raise ToolError("could not start MCP server 'lookup': exited (code 1) before it was ready")

    def _episode(self, task: Task) -> EpisodeSpec:
        fault = self.fault
        state = {"lookups": 0}
        image = MediaStore.shared().put(png("blue" if task.seed % 2 else "red"))

        async def lookup(key: str) -> ToolOutput:
            if fault == "input":
                raise ToolInputError(f"no record {key!r}")
            if fault == "crash":
                raise KeyError(key)
            if fault == "hang":
                await anyio.sleep_forever()
            if fault == "gate" and FaultyEnv.gate is not None:
                await FaultyEnv.gate.wait()
            state["lookups"] += 1
            if fault == "media":
                return (TextPart(text=f"value-of-{key}"), ImagePart(media=image))
            return f"value-of-{key}"

        opening: Any = "What is stored under a?"
        if fault == "media":
            opening = (TextPart(text="What is stored under a?"), ImagePart(media=image))
        return EpisodeSpec(
            task=task,
            messages=(
                SystemMessage(content="Use the tools."),
                UserMessage(content=opening, author="environment"),
            ),
            verifier=FaultyVerifier(fault),
            tools=Toolbox([FunctionTool(lookup, LOOKUP)]),
            user=FaultyUser(fault),
            solver=FaultySolver(fault),
            limits=Limits(max_turns=6, tool_timeout=0.2 if fault == "hang" else 30.0),
            metadata={"fault": fault, **self.metadata.model_dump(mode="json")},
            state=state,
            cleanup=_count_cleanup,
        )


async def _count_cleanup() -> None:
    FaultyEnv.cleanups += 1


class FaultyUser:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    async def reply(self, conversation: Transcript) -> UserTurn:
        if self.fault == "user":
            raise RuntimeError("the user broke")
        if any(isinstance(m, UserMessage) and m.author == "user" for m in conversation):
            return EndEpisode("satisfied")
        return UserMessage(content="Are you sure?", author="user")

    async def audit(self, conversation: Transcript) -> UserAudit:
        if self.fault == "audit":
            raise RuntimeError("the audit broke")
        return UserAudit(faithful=True, evidence={"messages": len(conversation)})


class FaultySolver:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    def next_message(self, conversation: Transcript) -> AssistantMessage:
        if self.fault == "solver":
            raise ZeroDivisionError("the solver broke")
        results = [m for m in conversation if isinstance(m, ToolMessage)]
        if not results:
            arguments = '{"key": 1}' if self.fault == "arguments" else '{"key": "a"}'
            return AssistantMessage(
                tool_calls=(ToolCall(id="call_1", name="lookup", arguments=arguments),)
            )
        prefix = "yes" if isinstance(conversation.last, UserMessage) else "answer"
        return AssistantMessage(content=f"{prefix}: {results[-1].text}")


class FaultyVerifier:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    async def verify(self, episode: CompletedEpisode) -> Score:
        if self.fault == "verifier":
            raise ValueError("the verifier broke")
        found = any(
            isinstance(m, AssistantMessage) and "value-of-a" in m.text for m in episode.transcript
        )
        reward = float("nan") if self.fault == "nan" else float(found)
        return Score(
            reward=reward,
            scores={"found": float(found)},
            evidence={
                "lookups": episode.state["lookups"],
                "stop_reason": episode.stop_reason,
                "episode_id": episode.episode_id,
            },
        )
