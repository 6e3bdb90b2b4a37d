"""Offline models: no network, deterministic. For self-tests, CI and prototyping.

- :class:`OracleModel` plays the environment's reference solver.
- :class:`NullModel` always declines (a baseline that should score 0).
- :class:`FunctionModel` wraps a function of the request.
- :class:`ScriptedModel` replays fixed replies, in order, per episode.

Each attaches a :class:`Generation` whose usage counts whitespace-separated words, so
token accounting is nonzero and reproducible.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence

from gymbus.runtime.errors import ModelError
from gymbus.runtime.messages import AnyMessage, AssistantMessage, Generation, Usage
from gymbus.runtime.model import AsyncSolver, ModelRequest

__all__ = ["FunctionModel", "NullModel", "OracleModel", "ScriptedModel", "word_count"]

Reply = AssistantMessage | str
ReplyFunction = Callable[[ModelRequest], Reply | Awaitable[Reply]]

REFUSAL = "I can't help with that."


def word_count(message: AnyMessage) -> int:
    """Rough token count of a message: words of its text, tool call names and arguments
    (cached on the message)."""

    def count() -> int:
        words = len(message.text.split())
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                words += 1 + len(call.arguments.split())
        return words

    return message.cached("offline.words", count)


def _usage(conversation: Iterable[AnyMessage], reply: AssistantMessage) -> Usage:
    return Usage(
        prompt_tokens=sum(word_count(m) for m in conversation),
        completion_tokens=word_count(reply),
    )


def _with_generation(reply: Reply, request: ModelRequest, model: str) -> AssistantMessage:
    """``reply`` as a message carrying an offline :class:`Generation` (kept if it has one)."""
    message = AssistantMessage(content=reply) if isinstance(reply, str) else reply
    if not isinstance(message, AssistantMessage):
        raise ModelError(
            f"{model} model returned {type(message).__name__}; expected AssistantMessage or str"
        )
    if message.generation is not None:
        return message
    generation = Generation(
        model=model,
        finish_reason="tool_calls" if message.tool_calls else "stop",
        usage=_usage(request.conversation, message),
        latency_s=0.0,
    )
    return message.model_copy(update={"generation": generation})


class OracleModel:
    """Plays the episode's reference solver (``request.episode.solver``)."""

    @property
    def name(self) -> str:
        return "oracle"

    def __repr__(self) -> str:
        return "OracleModel()"

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        solver = request.episode.solver
        if solver is None:
            raise ModelError(
                f"the oracle model needs a reference solver, but environment "
                f"{request.episode.env!r} (task {request.episode.task_id!r}) has none"
            )
        if isinstance(solver, AsyncSolver):
            message = await solver.next_message_async(request.conversation)
        else:
            message = solver.next_message(request.conversation)
        return _with_generation(message, request, "oracle")


class NullModel:
    """Always answers with a refusal-like text and never calls tools."""

    def __init__(self, text: str = REFUSAL) -> None:
        self._text = text

    @property
    def name(self) -> str:
        return "null"

    def __repr__(self) -> str:
        return "NullModel()"

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        return _with_generation(self._text, request, "null")


class FunctionModel:
    """A model from a (sync or async) function of the request returning an
    :class:`AssistantMessage` or a string."""

    def __init__(self, fn: ReplyFunction, name: str = "function") -> None:
        self._fn = fn
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"FunctionModel({self._name!r})"

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        reply = self._fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return _with_generation(reply, request, self._name)


class ScriptedModel:
    """Replays ``replies`` in order, separately for each episode (by ``episode_id``).
    Asking for more replies than the script has raises :class:`ModelError`."""

    def __init__(self, replies: Sequence[Reply], name: str = "scripted") -> None:
        self._replies = tuple(replies)
        self._name = name
        self._next: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"ScriptedModel({len(self._replies)} replies)"

    async def generate(self, request: ModelRequest) -> AssistantMessage:
        episode_id = request.episode.episode_id
        index = self._next.get(episode_id, 0)
        if index >= len(self._replies):
            raise ModelError(
                f"scripted model has only {len(self._replies)} replies; episode "
                f"{episode_id!r} asked for reply {index + 1}"
            )
        self._next[episode_id] = index + 1
        return _with_generation(self._replies[index], request, self._name)
