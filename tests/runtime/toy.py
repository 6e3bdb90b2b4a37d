"""A tiny in-test environment and models for runtime tests (no envs/ or adapters/)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from gymbus.runtime.episode_spec import EpisodeSpec
from gymbus.runtime.jobs import EpisodeJob
from gymbus.runtime.limits import Limits
from gymbus.runtime.messages import (
    AssistantMessage,
    Generation,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)
from gymbus.runtime.model import ModelRequest
from gymbus.runtime.tasks import Task
from gymbus.runtime.tools import FunctionTool, Toolbox, ToolSpec
from gymbus.runtime.users import UserSimulator
from gymbus.runtime.verification import CompletedEpisode, Score, Verifier

ADD_SPEC = ToolSpec(
    name="add",
    description="add two integers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
)


def add(a: int, b: int) -> str:
    return str(a + b)


class AnswerVerifier:
    """Reward 1 when the last message's text equals ``task.data['answer']``."""

    async def verify(self, episode: CompletedEpisode) -> Score:
        last = episode.transcript.last
        got = last.text if last is not None else ""
        expected = str(episode.task.data["answer"])
        return Score(
            reward=float(got == expected),
            scores={"exact": float(got == expected)},
            evidence={"expected": expected, "got": got},
        )


class CallModel:
    """Calls ``add(seed, 1)`` then answers with the tool's result (or the error text)."""

    name = "call-model"

    def __init__(self, arguments: Callable[[int], str] | None = None) -> None:
        self._arguments = arguments or (lambda seed: f'{{"a": {seed}, "b": 1}}')

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        last = request.conversation.last
        generation = Generation(model=self.name, usage=Usage(prompt_tokens=3, completion_tokens=2))
        if isinstance(last, ToolMessage):
            return AssistantMessage(content=last.text, generation=generation)
        call = ToolCall(id="c1", name="add", arguments=self._arguments(request.episode.seed))
        return AssistantMessage(tool_calls=(call,), generation=generation)


class FnModel:
    name = "fn"

    def __init__(self, fn: Callable[[ModelRequest], Awaitable[AssistantMessage]]) -> None:
        self._fn = fn

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        return await self._fn(request)


def spec(
    seed: int,
    *,
    verifier: Verifier | None = None,
    tools: Toolbox | None = None,
    limits: Limits | None = None,
    user: UserSimulator | None = None,
    answer: Any = None,
) -> EpisodeSpec:
    return EpisodeSpec(
        task=Task(env="toy", task_id=f"toy/{seed}", seed=seed, data={"answer": answer or seed + 1}),
        messages=(UserMessage(content=f"what is {seed} + 1?", author="environment"),),
        verifier=verifier or AnswerVerifier(),
        tools=tools if tools is not None else Toolbox([FunctionTool(add, ADD_SPEC)]),
        limits=limits or Limits(),
        user=user,
        metadata={"rollout_structures": ["multi-step"]},
    )


def jobs(n: int, **kwargs: Any) -> list[EpisodeJob]:
    return [
        EpisodeJob(env="toy", seed=i, build=partial(spec, i, **kwargs), episode_id=f"toy/{i}")
        for i in range(n)
    ]
