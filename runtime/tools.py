"""Tools the policy can call: specs the model sees, and the callables behind them."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from pydantic import Field

from gymbus.runtime.errors import ToolArgumentsError
from gymbus.runtime.messages import Content, Frozen

ToolOutput = str | Content


class ToolSpec(Frozen):
    """What the model is told about a tool (OpenAI function-tool shape)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


def string_tool_spec(name: str, description: str, **arguments: str) -> ToolSpec:
    """A spec whose arguments are all required strings (``argument="what it is"``) and
    no other argument is accepted — the common shape of lookup tools."""
    return ToolSpec(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {k: {"type": "string", "description": v} for k, v in arguments.items()},
            "required": list(arguments),
            "additionalProperties": False,
        },
    )


def check_arguments(validator: Validator, tool: str, arguments: Mapping[str, Any]) -> None:
    """Raise :class:`ToolArgumentsError` naming where ``arguments`` first violate the
    schema of ``validator`` (the wording the model sees for every tool)."""
    error = next(iter(validator.iter_errors(arguments)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ToolArgumentsError(f"invalid arguments for {tool!r} at {where}: {error.message}")


@runtime_checkable
class Tool(Protocol):
    """A callable tool. Raise :class:`~gymbus.runtime.errors.ToolInputError` for input the
    model got wrong (it is reported back to the model); any other exception is a crashed
    tool and fails the episode with kind ``tool``."""

    @property
    def spec(self) -> ToolSpec: ...

    async def __call__(self, arguments: dict[str, Any]) -> ToolOutput: ...


class FunctionTool:
    """Wrap a plain (sync or async) function taking keyword arguments as a :class:`Tool`.

    Arguments are checked against the JSON Schema in ``spec.parameters`` and against the
    function's parameters before the call; a violation (or an argument the function does
    not take) raises :class:`ToolArgumentsError` naming the offending field.
    """

    __slots__ = ("_fn", "_is_async", "_signature", "_spec", "_validator")

    def __init__(self, fn: Callable[..., ToolOutput | Awaitable[ToolOutput]], spec: ToolSpec):
        self._fn = fn
        self._spec = spec
        self._is_async = inspect.iscoroutinefunction(fn)
        self._validator = Draft202012Validator(spec.parameters)
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # a callable without a signature: not checked
            self._signature = None

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def __call__(self, arguments: dict[str, Any]) -> ToolOutput:
        check_arguments(self._validator, self._spec.name, arguments)
        if self._signature is not None:
            try:  # a schema need not forbid extra fields: don't let them crash the call
                self._signature.bind(**arguments)
            except TypeError as exc:
                raise ToolArgumentsError(
                    f"invalid arguments for {self._spec.name!r}: {exc}"
                ) from None
        result = self._fn(**arguments)
        if self._is_async:
            return await result  # type: ignore[no-any-return,misc]
        return result  # type: ignore[return-value]


class Toolbox(Mapping[str, Tool]):
    """An immutable name → tool mapping with the specs precomputed once."""

    __slots__ = ("_specs", "_tools")

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            name = tool.spec.name
            if name in self._tools:
                raise ValueError(f"duplicate tool name {name!r}")
            self._tools[name] = tool
        self._specs = tuple(t.spec for t in self._tools.values())

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return self._specs

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)
