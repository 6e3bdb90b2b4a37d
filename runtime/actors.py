"""The actors behind bus addresses: the policy (a model), the tool executor, the user."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from gymbus.runtime.errors import (
    InfraError,
    ModelError,
    PolicyError,
    ToolError,
    UnknownToolError,
    UserSimulatorError,
)
from gymbus.runtime.messages import (
    AssistantMessage,
    Generation,
    TextPart,
    ToolCall,
    ToolMessage,
)
from gymbus.runtime.model import Model, ModelRequest
from gymbus.runtime.tools import Toolbox, ToolOutput
from gymbus.runtime.transcript import Transcript
from gymbus.runtime.users import UserSimulator, UserTurn

POLICY_ADDRESS = "policy"
TOOLS_ADDRESS = "tools"
USER_ADDRESS = "user"


@dataclass(frozen=True, slots=True)
class PolicyCall:
    request: ModelRequest
    timeout: float | None


class Policy:
    """Serves model calls. ``timeout`` bounds one policy turn, retries included."""

    def __init__(self, model: Model) -> None:
        self.model = model

    async def handle(self, call: PolicyCall) -> AssistantMessage:
        try:
            with anyio.fail_after(call.timeout):
                message = await self.model.generate(call.request)
        except TimeoutError:
            raise ModelError(
                f"model {self.model.name!r} did not answer within {call.timeout}s"
            ) from None
        except InfraError:
            raise
        except Exception as exc:  # an adapter bug is still the model side failing
            raise ModelError(f"model {self.model.name!r} failed: {exc!r}") from exc
        version = call.request.weight_version
        if version is not None:
            message = _stamp(message, version, self.model.name)
        return message


def _stamp(message: AssistantMessage, version: int, model: str) -> AssistantMessage:
    """Record the policy version a turn was sampled with (unless the server said)."""
    generation = message.generation or Generation(model=model)
    if generation.weight_version is not None:
        return message
    generation = generation.model_copy(update={"weight_version": str(version)})
    return message.model_copy(update={"generation": generation})


@dataclass(frozen=True, slots=True)
class ToolBatch:
    toolbox: Toolbox
    calls: tuple[ToolCall, ...]
    timeout: float | None
    max_parallel: int


@dataclass(frozen=True, slots=True)
class ToolResults:
    messages: tuple[ToolMessage, ...]
    latencies: tuple[float, ...]


def _as_content(output: Any) -> Any:
    if isinstance(output, str):
        return (TextPart(text=output),)
    if isinstance(output, tuple):
        return output
    return (TextPart(text=orjson.dumps(output).decode()),)


class ToolExecutor:
    """Runs one assistant turn's tool calls concurrently, each under ``timeout``.

    The model's mistakes (unknown tool, malformed or schema-violating arguments, input a
    tool rejects) become error tool messages the model sees. A tool that crashes or times
    out raises :class:`ToolError`: infrastructure, not the policy's fault.
    """

    async def handle(self, batch: ToolBatch) -> ToolResults:
        n = len(batch.calls)
        messages: list[ToolMessage | None] = [None] * n
        latencies = [0.0] * n
        if n == 1:
            messages[0], latencies[0] = await self._run(batch, batch.calls[0])
        else:
            failures: list[ToolError] = []
            limiter = anyio.Semaphore(batch.max_parallel)

            async def run(i: int, call: ToolCall) -> None:
                async with limiter:
                    try:
                        messages[i], latencies[i] = await self._run(batch, call)
                    except ToolError as exc:
                        failures.append(exc)

            async with anyio.create_task_group() as tg:
                for i, call in enumerate(batch.calls):
                    tg.start_soon(run, i, call)
            if failures:
                raise failures[0]
        return ToolResults(tuple(m for m in messages if m is not None), tuple(latencies))

    @staticmethod
    async def _run(batch: ToolBatch, call: ToolCall) -> tuple[ToolMessage, float]:
        start = time.perf_counter()
        try:
            tool = batch.toolbox.get(call.name)
            if tool is None:
                available = ", ".join(batch.toolbox) or "(none)"
                raise UnknownToolError(f"unknown tool {call.name!r}; available: {available}")
            arguments = call.parsed_arguments()
            with anyio.fail_after(batch.timeout):
                output: ToolOutput = await tool(arguments)
            message = ToolMessage(tool_call_id=call.id, name=call.name, content=_as_content(output))
        except PolicyError as exc:
            message = ToolMessage(
                tool_call_id=call.id, name=call.name, content=f"error: {exc}", is_error=True
            )
        except TimeoutError:
            raise ToolError(f"tool {call.name!r} timed out after {batch.timeout}s") from None
        except ToolError:  # a tool's own infrastructure failure says its cause already
            raise
        except Exception as exc:
            raise ToolError(f"tool {call.name!r} crashed: {exc!r}") from exc
        return message, time.perf_counter() - start


@dataclass(frozen=True, slots=True)
class UserCall:
    user: UserSimulator
    conversation: Transcript
    timeout: float | None


class UserHost:
    """Serves simulated users; any exception is a user-simulator failure."""

    async def handle(self, call: UserCall) -> UserTurn:
        try:
            with anyio.fail_after(call.timeout):
                return await call.user.reply(call.conversation)
        except TimeoutError:
            raise UserSimulatorError(
                f"simulated user did not answer within {call.timeout}s"
            ) from None
        except UserSimulatorError:
            raise
        except Exception as exc:
            raise UserSimulatorError(f"simulated user failed: {exc!r}") from exc
